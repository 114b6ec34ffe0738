//! [`PatternSubscription`]: the events of every channel a pattern matches, as a `Stream`, across reconnects.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::{mpsc, oneshot};
use futures_util::{Stream, StreamExt};

use super::channel_event::PatternItem;
use super::command::Command;
use super::error::RequestError;

/// The events of every channel a pattern matches ([`Client::subscribe_pattern`](super::Client::subscribe_pattern)),
/// those that exist and those made later. The client keeps the pattern subscribed across reconnects with its own
/// position in every channel, so each channel continues without gap or repeat. Dropping the last
/// `PatternSubscription` of a pattern unsubscribes it.
#[derive(Debug)]
pub struct PatternSubscription {
    pattern: String,
    sink_id: u64,
    items: mpsc::UnboundedReceiver<PatternItem>,
    commands: mpsc::UnboundedSender<Command>,
    unsubscribed: bool,
}

impl PatternSubscription {
    pub(crate) fn new(
        pattern: String,
        sink_id: u64,
        items: mpsc::UnboundedReceiver<PatternItem>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> PatternSubscription {
        PatternSubscription {
            pattern,
            sink_id,
            items,
            commands,
            unsubscribed: false,
        }
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Stops this subscription and waits for the server's `unsubscribe_res` when it was the pattern's last one here.
    pub async fn unsubscribe(mut self) -> Result<(), RequestError> {
        self.unsubscribed = true;
        let (done, outcome) = oneshot::channel();
        let command = Command::UnsubscribePattern {
            pattern: self.pattern.clone(),
            sink_id: self.sink_id,
            done: Some(done),
        };
        if self.commands.unbounded_send(command).is_err() {
            return Err(RequestError::Closed);
        }
        outcome.await.unwrap_or(Err(RequestError::Closed))
    }
}

impl Stream for PatternSubscription {
    type Item = PatternItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PatternItem>> {
        self.items.poll_next_unpin(cx)
    }
}

impl Drop for PatternSubscription {
    fn drop(&mut self) {
        if !self.unsubscribed {
            let _ = self.commands.unbounded_send(Command::UnsubscribePattern {
                pattern: self.pattern.clone(),
                sink_id: self.sink_id,
                done: None,
            });
        }
    }
}
