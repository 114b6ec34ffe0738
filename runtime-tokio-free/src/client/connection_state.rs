//! [`ConnectionState`]: where the client's connection stands, as every [`Feed`](super::Feed) of state changes yields
//! it.

use std::time::Duration;

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
