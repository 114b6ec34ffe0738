//! [`RedisSubscriber`]: a connection for pub/sub, and what it hears.

use futures_channel::{mpsc, oneshot};
use switchboard_protocol::redis::Mode;

use super::driver::{Driver, Op};
use super::options::RedisOptions;
use super::pub_sub_event::PubSubEvent;
use crate::Runtime;

/// A connection to Redis for subscriptions. It keeps them across reconnects; its events come out of the receiver
/// [`start`](Self::start) returns.
#[derive(Debug, Clone)]
pub struct RedisSubscriber {
    ops: mpsc::UnboundedSender<Op>,
}

impl RedisSubscriber {
    /// Starts the connection's task on `runtime`, and the receiver of its events.
    pub fn start<R: Runtime>(
        runtime: R,
        options: RedisOptions,
    ) -> (RedisSubscriber, mpsc::UnboundedReceiver<PubSubEvent>) {
        let (ops, receiver) = mpsc::unbounded();
        let (events, heard) = mpsc::unbounded();
        let driver = Driver::new(
            runtime.clone(),
            options,
            Mode::PubSub,
            receiver,
            Some(events),
        );
        runtime.spawn(Box::pin(driver.run()));
        (RedisSubscriber { ops }, heard)
    }

    /// Subscribes to `channel` ([`PubSubEvent::Subscribed`] says when it is live).
    pub fn subscribe(&self, channel: &[u8]) {
        let _ = self.ops.unbounded_send(Op::Subscribe(channel.to_vec()));
    }

    /// Stops receiving `channel`.
    pub fn unsubscribe(&self, channel: &[u8]) {
        let _ = self.ops.unbounded_send(Op::Unsubscribe(channel.to_vec()));
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let (sender, receiver) = oneshot::channel();
        if self.ops.unbounded_send(Op::Close(sender)).is_ok() {
            let _ = receiver.await;
        }
    }
}
