//! [`Feed`]: a stream of copies of what the client hears — [`Notification`]s and [`ConnectionState`] changes. Every
//! feed gets every item; a feed keeps the client running while it lives.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use super::command::Command;

/// A `notification` from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// What kind.
    pub notification_type: String,
    /// Human text.
    pub message: Option<String>,
    /// Anything else.
    pub additional_data: Option<Value>,
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// The first connection is being made.
    Connecting,
    /// The server greeted a connection; commands flow.
    Connected {
        /// The connection's name in the server's registry.
        app_id: String,
    },
    /// The connection dropped.
    Disconnected {
        /// The close code (1006 when it dropped without a close frame, 4008 when it fell silent).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The next connection attempt is scheduled.
    Reconnecting {
        /// Which retry of the current streak, from 1.
        attempt: u32,
        /// How long until it starts.
        delay: Duration,
    },
    /// The client stopped trying: the server refused the connection (401/403/404, or a 1008 close), or the
    /// reconnect schedule ran out. Every pending request has failed.
    GaveUp {
        /// Why.
        reason: String,
    },
    /// The application closed the client.
    Closed,
}

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
