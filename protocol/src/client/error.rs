//! Why a command was refused, split by whose fault it is.
//!
//! Commands never fail because output was not drained, and never because of the network: a request that cannot be
//! answered ends with a [`RequestFailed`](super::ClientEvent::RequestFailed) event instead (timed out, disconnected,
//! refused by the server, queue full). What is left is the caller's own mistake ([`UsageError`]: it depends only on
//! the order and arguments of calls) and a size limit ([`SendLimitError`]).

use alloc::string::String;

use crate::wire::{MessageId, NameError};

/// A command the machine refused. Nothing was queued or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The caller misused the API.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The command is over a limit.
    #[error(transparent)]
    Limit(#[from] SendLimitError),
}

/// API misuse: the same calls in the same order always give the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The channel name breaks the naming rule (PROTOCOL §3).
    #[error("invalid channel name {name:?}: {reason}")]
    InvalidChannel {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// [`ClientMachine::request`](super::ClientMachine::request) was given a type it must not send that way: an empty
    /// type, one of the answers `server_response` / `server_pong`, or `subscribe` / `unsubscribe` / `serve`, whose
    /// bookkeeping needs the dedicated commands.
    #[error("`{type_name}` cannot be sent with `request`")]
    ReservedType {
        /// The refused type.
        type_name: String,
    },
    /// `publish` of `null`: the contract allows any JSON value but `null` as an event.
    #[error("an event must not be null")]
    NullEvent,
    /// A batch `publish` with no events, more than [`MAX_BATCH_EVENTS`](crate::wire::MAX_BATCH_EVENTS), or a
    /// `null` among them (`index` names it): the server would refuse it whole.
    #[error("{}", batch_problem(*index))]
    BadBatch {
        /// The `null` event's position, or `None` for a wrong count.
        index: Option<usize>,
    },
    /// [`ClientMachine::respond`](super::ClientMachine::respond) named no server request awaiting an answer: it was
    /// never received, was already answered, or belonged to a connection that has since closed (the server cancels
    /// those, PROTOCOL §4), or it is older than the server's own request timeout.
    #[error("no server request {id} is awaiting an answer")]
    UnknownServerRequest {
        /// The id given.
        id: MessageId,
    },
    /// A command after [`ClientMachine::close`](super::ClientMachine::close) or after the machine gave up
    /// ([`GaveUp`](super::ClientEvent::GaveUp)).
    #[error("the client is closed")]
    Closed,
}

/// A command whose frame is over the size limit on what the client may send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendLimitError {
    /// The encoded frame is larger than the server accepts (its `max_message_bytes`, or the configured default
    /// before the first greeting). Sending it would get the connection closed with 1009.
    #[error("the message is {size} bytes, over the limit of {max}")]
    MessageTooLarge {
        /// The encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

fn batch_problem(index: Option<usize>) -> alloc::string::String {
    match index {
        Some(i) => alloc::format!("events[{i}]: an event must not be null"),
        None => alloc::format!(
            "a batch must hold from 1 to {} events",
            crate::wire::MAX_BATCH_EVENTS
        ),
    }
}
