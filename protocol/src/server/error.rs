//! Errors of the hub's commands, split by who is at fault: the caller ([`MisuseError`]: depends only on call order
//! and arguments) or a limit ([`LimitError`]). Peers never cause these: a peer's bad input is answered on the wire.

use super::conn_table::ConnId;
use super::dialect::DialectKind;

/// A command of the hub failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The caller asked for something the hub cannot do.
    #[error(transparent)]
    Misuse(#[from] MisuseError),
    /// A limit of [`HubConfig`](super::HubConfig) refused it.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

/// The caller asked for something the hub cannot do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// No open connection has this id (it may have closed).
    #[error("no open connection {0}")]
    UnknownConnection(ConnId),
    /// Server requests go to native connections only; the other dialects cannot answer them.
    #[error("connection {conn} speaks the {dialect} dialect, which cannot answer server requests")]
    NotNative {
        /// The connection.
        conn: ConnId,
        /// Its dialect.
        dialect: DialectKind,
    },
    /// A channel event must not be `null` (PROTOCOL §2.2).
    #[error("a channel event must not be null")]
    NullEvent,
}

/// A limit refused the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The event, as JSON, is longer than `max_message_bytes`.
    #[error("the event is {bytes} bytes, over the limit of {max}")]
    EventTooLarge {
        /// Its length as compact JSON.
        bytes: usize,
        /// `max_message_bytes`.
        max: usize,
    },
}
