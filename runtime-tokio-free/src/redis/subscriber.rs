//! [`RedisSubscriber`]: a connection for pub/sub, and what it hears.

use futures_channel::{mpsc, oneshot};
use switchboard_protocol::redis::Mode;

use super::driver::{Driver, Op};
use super::link_status::LinkStatus;
use super::options::RedisOptions;
use super::pub_sub_event::PubSubEvent;
use crate::Runtime;

/// A connection to Redis for subscriptions. It keeps them across reconnects; its events come out of the receiver
/// [`start`](Self::start) returns.
#[derive(Debug, Clone)]
pub struct RedisSubscriber {
    ops: mpsc::UnboundedSender<Op>,
    status: LinkStatus,
}

impl RedisSubscriber {
    /// Starts the connection's task on `runtime`, and the receiver of its events.
    pub fn start<R: Runtime>(
        runtime: R,
        options: RedisOptions,
    ) -> (RedisSubscriber, mpsc::UnboundedReceiver<PubSubEvent>) {
        let (ops, receiver) = mpsc::unbounded();
        let (events, heard) = mpsc::unbounded();
        let status = LinkStatus::new(runtime.now());
        let driver = Driver::new(
            runtime.clone(),
            options,
            Mode::PubSub,
            receiver,
            Some(events),
            status.clone(),
        );
        runtime.spawn(Box::pin(driver.run()));
        (RedisSubscriber { ops, status }, heard)
    }

    /// Whether the connection is up (logged in) right now.
    pub fn is_up(&self) -> bool {
        self.status.is_up()
    }

    /// A reader of [`is_up`](Self::is_up) that does not keep the connection open.
    pub(crate) fn status(&self) -> LinkStatus {
        self.status.clone()
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
