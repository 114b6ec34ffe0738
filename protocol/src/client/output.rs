//! What [`ClientMachine::poll_output`](super::ClientMachine::poll_output) hands the driver, and the timers behind
//! [`Output::Timeout`].

use alloc::borrow::Cow;
use alloc::string::String;

use super::event::ClientEvent;
use crate::time::Timestamp;
use crate::timer::TimerKind;
use crate::wire::CloseCode;

/// One thing for the driver to do. Drain with [`ClientMachine::poll_output`](super::ClientMachine::poll_output) until
/// [`Output::Timeout`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Open a new connection, then report [`handle_connected`](super::ClientMachine::handle_connected) or
    /// [`handle_connect_failed`](super::ClientMachine::handle_connect_failed).
    Connect,
    /// Send this text frame on the current connection.
    Transmit(String),
    /// Close the current connection (or abandon the attempt in progress) with this code and reason. The machine
    /// already considers it gone: do not report its end with
    /// [`handle_disconnected`](super::ClientMachine::handle_disconnected) (such a report is ignored).
    Close {
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: Cow<'static, str>,
    },
    /// Tell the application.
    Event(ClientEvent),
    /// Nothing more to do now: call [`handle_timeout`](super::ClientMachine::handle_timeout) at this instant, or
    /// earlier when something else happens. [`Timestamp::MAX`] when no timer is armed.
    Timeout(Timestamp),
}

/// Which timer set the deadline of the last [`Output::Timeout`]
/// ([`ClientMachine::last_timeout_reason`](super::ClientMachine::last_timeout_reason)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutReason {
    /// The earliest deadline of a pending request.
    Request,
    /// The connection has been silent too long (`heartbeat_ms + heartbeat_timeout`).
    Heartbeat,
    /// A connection attempt, or the wait for the server's greeting, is taking too long.
    Connect,
    /// The reconnect delay is over.
    Reconnect,
    /// Time for the next client `ping`.
    Ping,
}

impl TimerKind for TimeoutReason {
    // Ties go in this order: requests due at the same instant as a dead connection time out rather than fail as
    // disconnected.
    const ALL: &'static [Self] = &[
        TimeoutReason::Request,
        TimeoutReason::Heartbeat,
        TimeoutReason::Connect,
        TimeoutReason::Reconnect,
        TimeoutReason::Ping,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The number of [`TimeoutReason`]s, the size of the client's timer table.
pub(crate) const TIMER_KINDS: usize = 5;
