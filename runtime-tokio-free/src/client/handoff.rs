//! [`RawCall`] and [`RawRequest`]: the server's asks as the background task hands them to a stream, before the stream
//! pairs each with its [`Responder`](super::Responder). They hold no handle to the task, so the task's commands can
//! carry their sinks without the streams and the commands naming each other.

use serde_json::{Map, Value};
use switchboard_protocol::wire::{Caller, MessageId};

/// A call as the task hands it over; the stream adds the responder.
#[derive(Debug)]
pub(crate) struct RawCall {
    pub(crate) id: MessageId,
    pub(crate) channel: String,
    pub(crate) method: String,
    pub(crate) params: Value,
    pub(crate) caller: Option<Caller>,
}

/// A server request as the task hands it over; the stream adds the responder.
#[derive(Debug)]
pub(crate) struct RawRequest {
    pub(crate) id: MessageId,
    pub(crate) request_type: String,
    pub(crate) data: Map<String, Value>,
}
