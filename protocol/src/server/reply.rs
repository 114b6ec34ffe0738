//! Speaking to one connection in its own dialect: single frames, and errors in the shape each dialect uses (native
//! `error`, project-stream `event_type: "error"`, channel-payload `channel: "error"`), all carrying the native
//! error code. The [`Connection`] encodes what only it receives; the hub queues it through the connection's
//! queued-bytes account.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::sync::Arc;
use serde_json::{Map, Value};

use super::Hub;
use super::conn_table::ConnId;
use super::connection::Connection;
use super::dialect::ConnDialect;
use crate::time::{Timestamp, unix_seconds_f64};
use crate::wire::channel_payload::ChannelPayloadMessage;
use crate::wire::project_stream::{ProjectStreamMessage, decode_error_message};
use crate::wire::{DecodeError, ErrorCode, MessageId, ServerFrame, ServerMessage};

/// Why a request is refused: the `error` to answer it with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Refusal {
        self.details = Some(details);
        self
    }
}

impl Hub {
    /// Queues the `error` for a refused request.
    pub(super) fn send_refusal(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        message_id: Option<MessageId>,
        refusal: Refusal,
    ) {
        self.send_error(
            now,
            conn,
            message_id,
            refusal.code,
            &refusal.message,
            refusal.details,
        );
    }

    /// Queues one frame for `conn`. `false` when nothing was queued (unknown, closing, or just closed as a slow
    /// consumer).
    pub(super) fn send_frame(&mut self, conn: ConnId, frame: Arc<str>) -> bool {
        match self.conns.get_mut(conn) {
            Some(c) => self.outbox.transmit(conn, c, frame),
            None => false,
        }
    }

    /// Queues one native message; server-initiated messages get a fresh id.
    pub(super) fn send_native(
        &mut self,
        conn: ConnId,
        message_id: Option<MessageId>,
        message: ServerMessage,
    ) -> bool {
        let message_id = match message_id {
            Some(id) => Some(id),
            None if message.is_server_initiated() => Some(MessageId::random(&mut self.rng)),
            None => None,
        };
        let text = ServerFrame {
            message_id,
            message,
        }
        .encode();
        self.send_frame(conn, Arc::from(text))
    }

    /// Queues an error for `conn` in its dialect. `message_id` is the offending request's id (native only).
    /// `details`, when an object, is merged with `{code}` for the edge dialects.
    pub(super) fn send_error(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        message_id: Option<MessageId>,
        code: ErrorCode,
        message: &str,
        details: Option<Value>,
    ) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let text = c.error_frame(now, message_id, code, message, details);
        self.counters.errors_sent += 1;
        self.send_frame(conn, Arc::from(text));
    }

    /// Queues the answer to a frame that could not be decoded, in `conn`'s dialect.
    pub(super) fn send_decode_error(&mut self, now: Timestamp, conn: ConnId, err: &DecodeError) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let text = c.decode_error_frame(now, err);
        self.counters.errors_sent += 1;
        self.send_frame(conn, Arc::from(text));
    }
}

impl Connection {
    /// An `error` in this connection's dialect. `message_id` is the offending request's id (native only).
    /// `details`, when an object, is merged with `{code}` for the edge dialects.
    pub(crate) fn error_frame(
        &self,
        now: Timestamp,
        message_id: Option<MessageId>,
        code: ErrorCode,
        message: &str,
        details: Option<Value>,
    ) -> String {
        match &self.dialect {
            ConnDialect::Native => ServerFrame {
                message_id,
                message: ServerMessage::error(code, message, details),
            }
            .encode(),
            ConnDialect::ProjectStream { project_id, .. } => ProjectStreamMessage::error(
                project_id,
                now.as_millis(),
                message,
                edge_details(code, details),
            )
            .encode(),
            ConnDialect::ChannelPayload => ChannelPayloadMessage::Error {
                message: message.to_owned(),
                error_details: edge_details(code, details),
                timestamp: unix_seconds_f64(now.as_millis()),
            }
            .encode(),
            ConnDialect::Sse(_) => super::sse::error_block(code, message, details),
        }
    }

    /// The answer to a frame that could not be decoded, in this connection's dialect.
    pub(crate) fn decode_error_frame(&self, now: Timestamp, err: &DecodeError) -> String {
        match &self.dialect {
            ConnDialect::Native => {
                let details = Some(err.details()).filter(|d| !d.is_null());
                ServerFrame {
                    message_id: err.message_id.clone(),
                    message: ServerMessage::error(err.code(), alloc::format!("{err}"), details),
                }
                .encode()
            }
            ConnDialect::ProjectStream { project_id, .. } => {
                decode_error_message(project_id, now.as_millis(), err).encode()
            }
            ConnDialect::ChannelPayload => {
                ChannelPayloadMessage::from_decode_error(err, now.as_millis()).encode()
            }
            ConnDialect::Sse(_) => {
                super::sse::error_block(err.code(), &alloc::format!("{err}"), None)
            }
        }
    }
}

/// `{code, …details}` for the edge dialects' error payloads: the details' fields when it is an object (a `code`
/// among them renamed `original_code`), else `{code, details}`.
fn edge_details(code: ErrorCode, details: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert(
        String::from("code"),
        Value::String(code.as_str().to_owned()),
    );
    match details {
        Some(Value::Object(extra)) => {
            for (k, v) in extra {
                // A `code` in the details (a server's own error code) must not hide the contract's code.
                let k = if k == "code" {
                    String::from("original_code")
                } else {
                    k
                };
                m.insert(k, v);
            }
        }
        Some(other) => {
            m.insert(String::from("details"), other);
        }
        None => {}
    }
    Value::Object(m)
}
