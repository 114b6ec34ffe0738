//! Messages a client sends in the native dialect (PROTOCOL §2.2): typed, with their decoder and encoder.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;
use serde_json::{Map, Value};

use super::decode_error::{DecodeError, DecodeErrorKind, FieldProblem, Fields};
use super::envelope::{EnvelopeOut, read_envelope, to_json};
use super::idempotency_key::IdempotencyKey;
use super::names::{ChannelName, MessageId};
use super::pattern::ChannelPattern;
use alloc::collections::BTreeMap;

/// Most events one batch `publish` (native `events`, or the REST body's `events`) carries.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// A position in a channel's history: the last event seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct StreamPosition {
    /// The channel's epoch; a different epoch means the history started afresh.
    pub epoch: String,
    /// The offset of the last event seen (0 before the first event).
    pub offset: u64,
}

/// A client message with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    /// The request's id; its response carries the same id.
    pub message_id: MessageId,
    /// The message.
    pub message: ClientMessage,
}

/// Every client message of the contract. The `data` fields are the variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ClientMessage {
    /// `ping`: answered by `ping_res` echoing `timestamp`.
    Ping {
        /// Anything the client wants echoed.
        #[serde(skip_serializing_if = "Option::is_none")]
        timestamp: Option<Value>,
    },
    /// `create_session`.
    CreateSession {
        /// Free-form metadata kept with the session.
        #[serde(skip_serializing_if = "Option::is_none")]
        metadata: Option<Value>,
    },
    /// `close_session`.
    CloseSession {
        /// The session to close.
        session_id: String,
    },
    /// `subscribe`, optionally recovering from a position.
    Subscribe {
        /// The channel.
        channel: ChannelName,
        /// Recover every event after this position.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<StreamPosition>,
        /// Also receive `join`/`leave` notifications for the channel's members.
        #[serde(skip_serializing_if = "is_false")]
        presence: bool,
    },
    /// `unsubscribe`.
    Unsubscribe {
        /// The channel.
        channel: ChannelName,
    },
    /// `subscribe` with `pattern`: every channel that matches, existing or made later (PROTOCOL §3.2).
    SubscribePattern {
        /// The pattern.
        pattern: ChannelPattern,
        /// The positions the client holds, per channel (each matches the pattern): on a resubscribe, replay what
        /// follows each, and the whole kept history of matching channels not named.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<BTreeMap<ChannelName, StreamPosition>>,
    },
    /// `unsubscribe` with `pattern`.
    UnsubscribePattern {
        /// The pattern.
        pattern: ChannelPattern,
    },
    /// `publish`.
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The event: any JSON value but `null`.
        event: Value,
        /// Make the event the channel's retained state.
        #[serde(skip_serializing_if = "is_false")]
        retain: bool,
        /// Makes a retry the same publish: a key seen on the channel within the dedupe window is answered with the
        /// original offset and `duplicate: true`, and publishes nothing.
        #[serde(skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<IdempotencyKey>,
    },
    /// `publish` with `events`: several events on one channel, stored at consecutive offsets, all or none.
    PublishBatch {
        /// The channel.
        channel: ChannelName,
        /// The events, in order: 1 to [`MAX_BATCH_EVENTS`], none `null`.
        events: Vec<Value>,
        /// Make the last event the channel's retained state.
        #[serde(skip_serializing_if = "is_false")]
        retain_last: bool,
        /// One key for the whole batch, as for a single `publish`.
        #[serde(skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<IdempotencyKey>,
    },
    /// `get_state`.
    GetState {
        /// The channel.
        channel: ChannelName,
    },
    /// `presence`: who subscribes to or serves the channel, and whether anyone serves it.
    Presence {
        /// The channel.
        channel: ChannelName,
    },
    /// `serve`: this connection answers `call`s on the channel.
    Serve {
        /// The channel.
        channel: ChannelName,
    },
    /// `call`: routed to the connection serving the channel.
    Call {
        /// The channel.
        channel: ChannelName,
        /// The method name.
        method: String,
        /// The method's parameters.
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<Value>,
    },
    /// `server_response`: the answer to a `server_request` (same `message_id`). Not itself answered.
    ServerResponse {
        /// `{response_type, …}` or `{response_type, error}`; for routed calls `{result}` or `{error: {code, message}}`.
        #[serde(flatten)]
        data: Map<String, Value>,
    },
    /// `server_pong`: the answer to a `server_ping`. Not itself answered.
    ServerPong {
        /// The client's clock, unix milliseconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        timestamp: Option<u64>,
        /// The `timestamp` of the `server_ping` being answered.
        #[serde(skip_serializing_if = "Option::is_none")]
        server_timestamp: Option<u64>,
    },
    /// `refresh`: a fresh token for the open connection. On success its grants and expiry replace the
    /// connection's (`refresh_res`); otherwise `FORBIDDEN` and nothing changes.
    Refresh {
        /// The new token, checked as at the handshake.
        token: String,
    },
    /// A type the embedding application registered on the server. Never produced by [`decode_client`], which
    /// reports unknown types as [`DecodeErrorKind::UnknownType`] (with the data) instead.
    Custom {
        /// The `type`.
        #[serde(skip)]
        type_name: String,
        /// The `data` object.
        #[serde(flatten)]
        data: Map<String, Value>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ClientMessage {
    /// The wire `type`.
    pub fn type_name(&self) -> &str {
        match self {
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::CreateSession { .. } => "create_session",
            ClientMessage::CloseSession { .. } => "close_session",
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } | ClientMessage::UnsubscribePattern { .. } => {
                "unsubscribe"
            }
            ClientMessage::SubscribePattern { .. } => "subscribe",
            ClientMessage::Publish { .. } | ClientMessage::PublishBatch { .. } => "publish",
            ClientMessage::GetState { .. } => "get_state",
            ClientMessage::Presence { .. } => "presence",
            ClientMessage::Serve { .. } => "serve",
            ClientMessage::Call { .. } => "call",
            ClientMessage::ServerResponse { .. } => "server_response",
            ClientMessage::ServerPong { .. } => "server_pong",
            ClientMessage::Refresh { .. } => "refresh",
            ClientMessage::Custom { type_name, .. } => type_name,
        }
    }

    /// Whether the server answers this message (`server_response` and `server_pong` are answers themselves).
    pub fn expects_response(&self) -> bool {
        !matches!(
            self,
            ClientMessage::ServerResponse { .. } | ClientMessage::ServerPong { .. }
        )
    }

    /// The channel the message names, if any.
    pub fn channel(&self) -> Option<&ChannelName> {
        match self {
            ClientMessage::Subscribe { channel, .. }
            | ClientMessage::Unsubscribe { channel }
            | ClientMessage::Publish { channel, .. }
            | ClientMessage::PublishBatch { channel, .. }
            | ClientMessage::GetState { channel }
            | ClientMessage::Presence { channel }
            | ClientMessage::Serve { channel }
            | ClientMessage::Call { channel, .. } => Some(channel),
            _ => None,
        }
    }
}

impl ClientFrame {
    /// Compact JSON for the wire.
    pub fn encode(&self) -> String {
        to_json(&EnvelopeOut {
            type_name: self.message.type_name(),
            message_id: Some(&self.message_id),
            server_initiated: false,
            data: &self.message,
        })
    }
}

/// A `subscribe` with `pattern`: no `channel` or `presence` beside it; every `since` entry names a channel the
/// pattern matches (else `VALIDATION_ERROR` naming the entry) and holds `{epoch, offset}`.
fn read_pattern_subscribe(
    d: &mut Fields<'_>,
    known_id: &Option<MessageId>,
) -> Result<ClientMessage, DecodeError> {
    let pattern = d.pattern("pattern")?;
    for other in ["channel", "presence"] {
        if d.take(other).is_some() {
            return Err(d.error(other, FieldProblem::Conflicts { with: "pattern" }));
        }
    }
    let since = match d.opt_object("since")? {
        None => None,
        Some(obj) => {
            let mut positions = BTreeMap::new();
            for (key, value) in obj {
                let field = alloc::format!("since.{key}");
                let channel = ChannelName::new(&key)
                    .map_err(|reason| d.error(&field, FieldProblem::Invalid(reason)))?;
                if !pattern.matches(&channel) {
                    return Err(d.error(&field, FieldProblem::OutsidePattern));
                }
                let wrong = || FieldProblem::WrongType {
                    expected: "an object {epoch, offset}",
                };
                let Value::Object(pos) = value else {
                    return Err(d.error(&field, wrong()));
                };
                let mut p = Fields::new(pos, "data.since[].", known_id);
                let position = StreamPosition {
                    epoch: p.string("epoch").map_err(|_| d.error(&field, wrong()))?,
                    offset: p.u64("offset").map_err(|_| d.error(&field, wrong()))?,
                };
                positions.insert(channel, position);
            }
            Some(positions)
        }
    };
    Ok(ClientMessage::SubscribePattern { pattern, since })
}

/// Decodes a native client frame, classifying failures as PROTOCOL §2.4 says (see [`DecodeError::code`]).
pub fn decode_client(text: &str) -> Result<ClientFrame, DecodeError> {
    let env = read_envelope(text, false)?;
    let message = read_message(env.type_name, env.data, &env.message_id)?;
    // Only now is a missing or malformed id an error: type and data problems take precedence so they can be
    // reported even by clients that forget ids, but a valid message still needs one to be answered.
    match env.message_id {
        Some(message_id) => Ok(ClientFrame {
            message_id,
            message,
        }),
        None => Err(missing_id(text)),
    }
}

/// The typed message for a `type` and its `data`.
fn read_message(
    type_name: String,
    data: Map<String, Value>,
    known_id: &Option<MessageId>,
) -> Result<ClientMessage, DecodeError> {
    let mut d = Fields::new(data, "data.", known_id);
    Ok(match type_name.as_str() {
        "ping" => ClientMessage::Ping {
            timestamp: d.take("timestamp"),
        },
        "create_session" => ClientMessage::CreateSession {
            metadata: d.take("metadata"),
        },
        "close_session" => ClientMessage::CloseSession {
            session_id: d.string("session_id")?,
        },
        "subscribe" if d.map.contains_key("pattern") => read_pattern_subscribe(&mut d, known_id)?,
        "unsubscribe" if d.map.contains_key("pattern") => ClientMessage::UnsubscribePattern {
            pattern: d.pattern("pattern")?,
        },
        "subscribe" => {
            let channel = d.channel("channel")?;
            let since = match d.opt_object("since")? {
                None => None,
                Some(obj) => {
                    let mut s = Fields::new(obj, "data.since.", known_id);
                    Some(StreamPosition {
                        epoch: s.string("epoch")?,
                        offset: s.u64("offset")?,
                    })
                }
            };
            let presence = d.opt_bool("presence")?.unwrap_or(false);
            ClientMessage::Subscribe {
                channel,
                since,
                presence,
            }
        }
        "unsubscribe" => ClientMessage::Unsubscribe {
            channel: d.channel("channel")?,
        },
        "publish" => {
            let channel = d.channel("channel")?;
            if let Some(events) = d.take("events") {
                return read_batch(&mut d, channel, events);
            }
            let event = d.required("event")?;
            let retain = d.opt_bool("retain")?.unwrap_or(false);
            let idempotency_key = read_key(&mut d)?;
            ClientMessage::Publish {
                channel,
                event,
                retain,
                idempotency_key,
            }
        }
        "get_state" => ClientMessage::GetState {
            channel: d.channel("channel")?,
        },
        "presence" => ClientMessage::Presence {
            channel: d.channel("channel")?,
        },
        "serve" => ClientMessage::Serve {
            channel: d.channel("channel")?,
        },
        "call" => {
            let channel = d.channel("channel")?;
            let method = d.string("method")?;
            ClientMessage::Call {
                channel,
                method,
                params: d.take("params"),
            }
        }
        "server_response" => ClientMessage::ServerResponse { data: d.map },
        "refresh" => ClientMessage::Refresh {
            token: d.string("token")?,
        },
        "server_pong" => ClientMessage::ServerPong {
            timestamp: d.opt_u64("timestamp")?,
            server_timestamp: d.opt_u64("server_timestamp")?,
        },
        _ => {
            return Err(DecodeError {
                message_id: known_id.clone(),
                kind: DecodeErrorKind::UnknownType {
                    type_name,
                    data: d.map,
                },
            });
        }
    })
}

/// The rest of a `publish` that has `events`: an array of 1 to [`MAX_BATCH_EVENTS`] events, none `null`, and no
/// `event` beside it (which of the two was meant would be a guess).
fn read_batch(
    d: &mut Fields<'_>,
    channel: ChannelName,
    events: Value,
) -> Result<ClientMessage, DecodeError> {
    if d.take("event").is_some() {
        return Err(d.error("event", FieldProblem::Conflicts { with: "events" }));
    }
    let Value::Array(events) = events else {
        return Err(d.error(
            "events",
            FieldProblem::WrongType {
                expected: "an array",
            },
        ));
    };
    if events.is_empty() || events.len() > MAX_BATCH_EVENTS {
        return Err(d.error("events", FieldProblem::BatchLength));
    }
    if let Some(index) = events.iter().position(Value::is_null) {
        return Err(d.error(&alloc::format!("events[{index}]"), FieldProblem::Null));
    }
    let retain_last = d.opt_bool("retain_last")?.unwrap_or(false);
    let idempotency_key = read_key(d)?;
    Ok(ClientMessage::PublishBatch {
        channel,
        events,
        retain_last,
        idempotency_key,
    })
}

/// A `publish`'s optional `idempotency_key`: a string of 1 to 128 bytes without control characters.
fn read_key(d: &mut Fields<'_>) -> Result<Option<IdempotencyKey>, DecodeError> {
    let Some(key) = d.opt_string("idempotency_key")? else {
        return Ok(None);
    };
    IdempotencyKey::new(key)
        .map(Some)
        .map_err(|e| d.error("idempotency_key", FieldProblem::Invalid(e)))
}

/// Re-reads the envelope strictly to name the exact `message_id` problem.
fn missing_id(text: &str) -> DecodeError {
    match read_envelope(text, true) {
        Err(e) => e,
        // Unreachable in practice (the lax read found no id); report it as missing.
        Ok(_) => {
            let no_id = None;
            Fields::new(Map::new(), "", &no_id)
                .error("message_id", super::decode_error::FieldProblem::Missing)
        }
    }
}
