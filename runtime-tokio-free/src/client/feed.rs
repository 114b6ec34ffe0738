//! [`Feed`]: a stream of copies of what the client hears — [`Notification`]s and [`ConnectionState`] changes. Every
//! feed gets every item; a feed keeps the client running while it lives.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_util::{Stream, StreamExt};

use super::command::Command;
use super::connection_state::ConnectionState;
use super::notification::Notification;

/// A stream of copies ([`Client::notifications`](super::Client::notifications),
/// [`Client::state_changes`](super::Client::state_changes)). It ends when the client does.
#[derive(Debug)]
pub struct Feed<T> {
    items: mpsc::UnboundedReceiver<T>,
    // Keeps the client's task running while the feed is read.
    _client: mpsc::UnboundedSender<Command>,
}

/// The server's notifications.
pub type Notifications = Feed<Notification>;
/// The connection's state changes, starting with the current state.
pub type StateChanges = Feed<ConnectionState>;

impl<T> Feed<T> {
    pub(crate) fn new(
        items: mpsc::UnboundedReceiver<T>,
        client: mpsc::UnboundedSender<Command>,
    ) -> Feed<T> {
        Feed {
            items,
            _client: client,
        }
    }
}

impl<T> Stream for Feed<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.items.poll_next_unpin(cx)
    }
}
