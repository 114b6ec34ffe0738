//! The wire: the native envelope and every message of PROTOCOL §2 in both directions, the error and close codes,
//! validated names, and the two edge dialects (§5 project stream, §6 channel payload) as pure translations.
//!
//! Decoders take `&str` and never panic; failures are classified exactly as the contract says
//! ([`DecodeError::code`]): not JSON or not an object → `INVALID_JSON`; a missing or mistyped field →
//! `VALIDATION_ERROR` naming it; an unknown `type` → `INVALID_MESSAGE_TYPE`; a bad channel name →
//! `INVALID_CHANNEL`. The `message_id` is kept whenever it could be read, so the `error` can echo it. Unknown fields
//! are ignored. Encoders produce compact JSON.

mod caller;
mod client_message;
mod codes;
mod decode_error;
mod envelope;
mod idempotency_key;
mod json_len;
mod names;
mod notification_types;
mod pattern;
mod presence;
mod reserved;
mod server_message;

pub mod channel_payload;
pub mod project_stream;
pub mod sse_event;
pub mod sse_event_id;

pub use caller::Caller;
pub use client_message::{
    ClientFrame, ClientMessage, MAX_BATCH_EVENTS, StreamPosition, decode_client,
};
pub use codes::{CloseCode, ErrorCode};
pub use decode_error::{DecodeError, DecodeErrorKind, FieldProblem};
pub use idempotency_key::{IdempotencyKey, MAX_IDEMPOTENCY_KEY_BYTES};
pub use json_len::json_len;
pub use names::{
    ChannelName, MAX_CHANNEL_BYTES, MAX_MESSAGE_ID_BYTES, MessageId, NameError, validate_channel,
};
pub use notification_types::{SUBSCRIPTION_ENDED, TOKEN_EXPIRING};
pub use pattern::{ChannelPattern, PatternSegment, validate_pattern};
pub use presence::{Member, PRESENCE_JOIN, PRESENCE_LEAVE, PRESENCE_MEMBERS_MAX};
pub use reserved::{RESERVED_CHANNELS, is_reserved_channel};
pub use server_message::{
    ConnectedStatus, PROTOCOL_VERSION, PatternChannel, ServerFrame, ServerMessage, decode_server,
    encode_event,
};

#[cfg(test)]
mod tests;
