//! [`Subscription`]: a channel's events as a `Stream`, across reconnects.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::{mpsc, oneshot};
use futures_util::{Stream, StreamExt};

use super::channel_event::SubscriptionItem;
use super::command::Command;
use super::error::RequestError;

/// A channel's events ([`Client::subscribe`](super::Client::subscribe)). The client keeps the channel subscribed
/// across reconnects, resuming after the last event seen so that nothing is missed or repeated. Dropping the
/// last `Subscription` of a channel unsubscribes; the stream ends when the client closes.
#[derive(Debug)]
pub struct Subscription {
    channel: String,
    sink_id: u64,
    items: mpsc::UnboundedReceiver<SubscriptionItem>,
    commands: mpsc::UnboundedSender<Command>,
    unsubscribed: bool,
}

impl Subscription {
    pub(crate) fn new(
        channel: String,
        sink_id: u64,
        items: mpsc::UnboundedReceiver<SubscriptionItem>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Subscription {
        Subscription {
            channel,
            sink_id,
            items,
            commands,
            unsubscribed: false,
        }
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Stops this subscription and waits for the server's `unsubscribe_res` when it was the channel's last one
    /// here. Dropping the subscription does the same without waiting.
    pub async fn unsubscribe(mut self) -> Result<(), RequestError> {
        self.unsubscribed = true;
        let (done, outcome) = oneshot::channel();
        let command = Command::Unsubscribe {
            channel: self.channel.clone(),
            sink_id: self.sink_id,
            done: Some(done),
        };
        if self.commands.unbounded_send(command).is_err() {
            return Err(RequestError::Closed);
        }
        outcome.await.unwrap_or(Err(RequestError::Closed))
    }
}

impl Stream for Subscription {
    type Item = SubscriptionItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubscriptionItem>> {
        self.items.poll_next_unpin(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.unsubscribed {
            // The client may be gone already; then there is nothing to unsubscribe from.
            let _ = self.commands.unbounded_send(Command::Unsubscribe {
                channel: self.channel.clone(),
                sink_id: self.sink_id,
                done: None,
            });
        }
    }
}
