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

impl HubError {
    /// The index of the event that made a batch publish fail, when one did.
    pub fn batch_index(&self) -> Option<usize> {
        match self {
            HubError::Misuse(MisuseError::NullEventInBatch { index })
            | HubError::Limit(LimitError::EventInBatchTooLarge { index, .. }) => Some(*index),
            _ => None,
        }
    }
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
    /// A batch publish with no events.
    #[error("events must hold at least one event")]
    EmptyBatch,
    /// An event of a batch publish is `null`; nothing of the batch was published.
    #[error("events[{index}]: a channel event must not be null")]
    NullEventInBatch {
        /// The event's position in the batch, from 0.
        index: usize,
    },
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
    /// A batch publish with more than [`MAX_BATCH_EVENTS`](crate::wire::MAX_BATCH_EVENTS) events.
    #[error("events holds {len} events, over the limit of {max}")]
    BatchTooLong {
        /// How many it held.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The channel has no events yet and `max_channels` channels already have some: publishing would start one
    /// channel too many (PROTOCOL §2.4 `CHANNEL_LIMIT`). Publishing to a channel that has events still works.
    #[error(
        "the server holds {max} channels with events, its limit: publishing to a new channel is refused"
    )]
    ChannelLimit {
        /// `max_channels`.
        max: usize,
    },
    /// An event of a batch publish is longer than `max_message_bytes` as JSON; nothing of the batch was published.
    #[error("events[{index}]: the event is {bytes} bytes, over the limit of {max}")]
    EventInBatchTooLarge {
        /// The event's position in the batch, from 0.
        index: usize,
        /// Its length as compact JSON.
        bytes: usize,
        /// `max_message_bytes`.
        max: usize,
    },
}
