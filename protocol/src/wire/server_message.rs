//! Messages a server sends in the native dialect (PROTOCOL §2.1–2.4): typed, with their decoder and encoder.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;
use serde_json::{Map, Value};

use super::codes::ErrorCode;
use super::decode_error::{DecodeError, Fields};
use super::envelope::{EnvelopeOut, read_envelope, to_json};
use super::names::{ChannelName, MessageId};
use super::pattern::ChannelPattern;
use super::presence::Member;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// A server message with its id. Responses carry their request's id; what the server starts carries a fresh UUID;
/// an `error` about a frame without a readable id carries none (`null` on the wire).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFrame {
    /// The id.
    pub message_id: Option<MessageId>,
    /// The message.
    pub message: ServerMessage,
}

/// Every server message of the contract. The `data` fields are the variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ServerMessage {
    /// `connected`, sent at once on open.
    Connected {
        /// Names this connection in the server's registry until it closes.
        app_id: String,
        /// Always `"connected"`.
        status: ConnectedStatus,
        /// The protocol version.
        protocol: u32,
        /// The server's heartbeat interval.
        heartbeat_ms: u64,
        /// The largest message the server accepts.
        max_message_bytes: u64,
    },
    /// `ping_res`.
    PingRes {
        /// The request's `timestamp`, echoed (`null` when it had none).
        timestamp: Option<Value>,
        /// The server's clock, unix milliseconds.
        server_time: u64,
    },
    /// `create_session_res`.
    CreateSessionRes {
        /// The new session.
        session_id: String,
    },
    /// `close_session_res`.
    CloseSessionRes {
        /// The closed session.
        session_id: String,
    },
    /// `subscribe_res`.
    SubscribeRes {
        /// The channel.
        channel: ChannelName,
        /// The channel's epoch.
        epoch: String,
        /// The channel's current offset (events after it are live).
        offset: u64,
        /// `Some(true)`: the events after `since` follow; `Some(false)`: they could not be recovered;
        /// `None` (`null`): no `since` was given.
        recovered: Option<bool>,
    },
    /// `unsubscribe_res`.
    UnsubscribeRes {
        /// The channel.
        channel: ChannelName,
    },
    /// `subscribe_res` answering a `subscribe` with `pattern` (PROTOCOL §3.2): every matching channel the server
    /// has, each with its position and recovery outcome. Replayed events follow it, channel by channel.
    SubscribePatternRes {
        /// The pattern.
        pattern: ChannelPattern,
        /// The matching channels, in name order.
        channels: Vec<PatternChannel>,
    },
    /// `unsubscribe_res` answering an `unsubscribe` with `pattern`.
    UnsubscribePatternRes {
        /// The pattern.
        pattern: ChannelPattern,
    },
    /// `publish_res`.
    PublishRes {
        /// The channel.
        channel: ChannelName,
        /// The published event's offset.
        offset: u64,
        /// The publish's `idempotency_key` was seen on the channel within the dedupe window: nothing was published
        /// and `offset` is the original publish's.
        #[serde(skip_serializing_if = "is_false")]
        duplicate: bool,
    },
    /// `publish_res` answering a batch `publish`: the offsets of its first and last events (they are consecutive).
    PublishBatchRes {
        /// The channel.
        channel: ChannelName,
        /// The first event's offset.
        first_offset: u64,
        /// The last event's offset.
        last_offset: u64,
        /// As for a single publish: the offsets are the original batch's, and nothing was published.
        #[serde(skip_serializing_if = "is_false")]
        duplicate: bool,
    },
    /// `get_state_res`.
    GetStateRes {
        /// The channel.
        channel: ChannelName,
        /// The channel's epoch.
        epoch: String,
        /// The channel's current offset.
        offset: u64,
        /// The retained event, `null` when none.
        state: Value,
    },
    /// `presence_res`.
    PresenceRes {
        /// The channel.
        channel: ChannelName,
        /// How many connections subscribe to or serve the channel.
        count: u64,
        /// Whether a connection serves the channel (a routed `call` would reach it).
        serving: bool,
        /// The members, at most [`PRESENCE_MEMBERS_MAX`](super::PRESENCE_MEMBERS_MAX), in a stable order.
        members: Vec<Member>,
    },
    /// `serve_res`.
    ServeRes {
        /// The channel.
        channel: ChannelName,
    },
    /// `call_res`.
    CallRes {
        /// The channel.
        channel: ChannelName,
        /// The method.
        method: String,
        /// What the serving connection answered.
        result: Value,
    },
    /// `refresh_res`: the token was accepted; the connection now has its grants.
    RefreshRes {
        /// How long until the connection is closed for expiry (the token's `exp` plus the leeway) unless refreshed
        /// again; `None` (`null`): never.
        expires_in_ms: Option<u64>,
    },
    /// `event`: one channel event.
    Event {
        /// The channel.
        channel: ChannelName,
        /// The channel's epoch.
        epoch: String,
        /// The event's offset; strictly increasing per channel.
        offset: u64,
        /// The event.
        event: Value,
    },
    /// `notification`.
    Notification {
        /// What kind of notification.
        notification_type: String,
        /// Human text.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Anything else.
        #[serde(skip_serializing_if = "Option::is_none")]
        additional_data: Option<Value>,
    },
    /// `server_request`: answer with `server_response` and the same id.
    ServerRequest {
        /// What is asked.
        request_type: String,
        /// The rest of `data`.
        #[serde(flatten)]
        data: Map<String, Value>,
    },
    /// `server_ping`: answer with `server_pong`.
    ServerPing {
        /// The server's clock, unix milliseconds.
        timestamp: u64,
    },
    /// `error`.
    Error {
        /// The code. A code this version does not know decodes as [`ErrorCode::InternalError`] with the original
        /// string in `details.code`.
        code: ErrorCode,
        /// Human text.
        message: String,
        /// Machine-readable details (e.g. the field, or `retry_after_ms`).
        #[serde(skip_serializing_if = "Option::is_none")]
        details: Option<Value>,
    },
    /// Any other type: responses to application-registered types (`<type>_res`) and, when decoding, types this
    /// version does not know (kept for forward compatibility).
    Custom {
        /// The `type`.
        #[serde(skip)]
        type_name: String,
        /// The `data` object.
        #[serde(flatten)]
        data: Map<String, Value>,
    },
}

/// One channel of a [`ServerMessage::SubscribePatternRes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PatternChannel {
    /// The channel.
    pub channel: ChannelName,
    /// Its epoch.
    pub epoch: String,
    /// Its offset: live events start after it.
    pub offset: u64,
    /// As a single `subscribe_res`'s: `true`, the events after the client's position (from the start, for a
    /// channel the `since` map did not name) follow; `false`, they could not be; `null`, no `since` was given.
    pub recovered: Option<bool>,
}

/// The constant `status` of a `connected` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectedStatus {
    /// `"connected"`.
    #[default]
    Connected,
}

impl ServerMessage {
    /// The wire `type`.
    pub fn type_name(&self) -> &str {
        match self {
            ServerMessage::Connected { .. } => "connected",
            ServerMessage::PingRes { .. } => "ping_res",
            ServerMessage::CreateSessionRes { .. } => "create_session_res",
            ServerMessage::CloseSessionRes { .. } => "close_session_res",
            ServerMessage::SubscribeRes { .. } | ServerMessage::SubscribePatternRes { .. } => {
                "subscribe_res"
            }
            ServerMessage::UnsubscribeRes { .. } | ServerMessage::UnsubscribePatternRes { .. } => {
                "unsubscribe_res"
            }
            ServerMessage::PublishRes { .. } | ServerMessage::PublishBatchRes { .. } => {
                "publish_res"
            }
            ServerMessage::GetStateRes { .. } => "get_state_res",
            ServerMessage::PresenceRes { .. } => "presence_res",
            ServerMessage::ServeRes { .. } => "serve_res",
            ServerMessage::CallRes { .. } => "call_res",
            ServerMessage::RefreshRes { .. } => "refresh_res",
            ServerMessage::Event { .. } => "event",
            ServerMessage::Notification { .. } => "notification",
            ServerMessage::ServerRequest { .. } => "server_request",
            ServerMessage::ServerPing { .. } => "server_ping",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Custom { type_name, .. } => type_name,
        }
    }

    /// Whether the server starts this message (`server_initiated: true` on the wire) rather than answering.
    pub fn is_server_initiated(&self) -> bool {
        matches!(
            self,
            ServerMessage::Connected { .. }
                | ServerMessage::Event { .. }
                | ServerMessage::Notification { .. }
                | ServerMessage::ServerRequest { .. }
                | ServerMessage::ServerPing { .. }
        )
    }

    /// An `error` message.
    pub fn error(
        code: ErrorCode,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> ServerMessage {
        ServerMessage::Error {
            code,
            message: message.into(),
            details,
        }
    }
}

impl ServerFrame {
    /// Compact JSON for the wire.
    pub fn encode(&self) -> String {
        to_json(&EnvelopeOut {
            type_name: self.message.type_name(),
            message_id: self.message_id.as_ref(),
            server_initiated: self.message.is_server_initiated(),
            data: &self.message,
        })
    }
}

/// Encodes an `event` frame from borrowed parts, without cloning the event. The hub calls this once per publish
/// and shares the text with every subscriber.
pub fn encode_event(
    message_id: &MessageId,
    channel: &ChannelName,
    epoch: &str,
    offset: u64,
    event: &Value,
) -> String {
    #[derive(Serialize)]
    struct EventData<'a> {
        channel: &'a ChannelName,
        epoch: &'a str,
        offset: u64,
        event: &'a Value,
    }
    to_json(&EnvelopeOut {
        type_name: "event",
        message_id: Some(message_id),
        server_initiated: true,
        data: &EventData {
            channel,
            epoch,
            offset,
            event,
        },
    })
}

/// Decodes a native server frame (what a client receives). Unknown types decode as [`ServerMessage::Custom`];
/// known types with missing or mistyped fields are validation errors.
pub fn decode_server(text: &str) -> Result<ServerFrame, DecodeError> {
    let env = read_envelope(text, false)?;
    let id = env.message_id;
    let mut d = Fields::new(env.data, "data.", &id);
    let message = match env.type_name.as_str() {
        "connected" => {
            let app_id = d.string("app_id")?;
            let protocol = d.u64("protocol")?;
            let protocol = u32::try_from(protocol)
                .map_err(|_| d.error("protocol", super::decode_error::FieldProblem::OutOfRange))?;
            ServerMessage::Connected {
                app_id,
                status: ConnectedStatus::Connected,
                protocol,
                heartbeat_ms: d.u64("heartbeat_ms")?,
                max_message_bytes: d.u64("max_message_bytes")?,
            }
        }
        "ping_res" => ServerMessage::PingRes {
            timestamp: d.take("timestamp"),
            server_time: d.u64("server_time")?,
        },
        "create_session_res" => ServerMessage::CreateSessionRes {
            session_id: d.string("session_id")?,
        },
        "close_session_res" => ServerMessage::CloseSessionRes {
            session_id: d.string("session_id")?,
        },
        "subscribe_res" if d.map.contains_key("pattern") => ServerMessage::SubscribePatternRes {
            pattern: d.pattern("pattern")?,
            channels: match d.take("channels") {
                Some(Value::Array(items)) => items
                    .into_iter()
                    .filter_map(|v| serde_json::from_value(v).ok())
                    .collect(),
                _ => Vec::new(),
            },
        },
        "unsubscribe_res" if d.map.contains_key("pattern") => {
            ServerMessage::UnsubscribePatternRes {
                pattern: d.pattern("pattern")?,
            }
        }
        "subscribe_res" => ServerMessage::SubscribeRes {
            channel: d.channel("channel")?,
            epoch: d.string("epoch")?,
            offset: d.u64("offset")?,
            recovered: d.opt_bool("recovered")?,
        },
        "unsubscribe_res" => ServerMessage::UnsubscribeRes {
            channel: d.channel("channel")?,
        },
        "publish_res" => {
            let channel = d.channel("channel")?;
            match d.opt_u64("first_offset")? {
                Some(first_offset) => ServerMessage::PublishBatchRes {
                    channel,
                    first_offset,
                    last_offset: d.u64("last_offset")?,
                    duplicate: d.opt_bool("duplicate")?.unwrap_or(false),
                },
                None => ServerMessage::PublishRes {
                    channel,
                    offset: d.u64("offset")?,
                    duplicate: d.opt_bool("duplicate")?.unwrap_or(false),
                },
            }
        }
        "get_state_res" => ServerMessage::GetStateRes {
            channel: d.channel("channel")?,
            epoch: d.string("epoch")?,
            offset: d.u64("offset")?,
            state: d.take("state").unwrap_or(Value::Null),
        },
        "presence_res" => ServerMessage::PresenceRes {
            channel: d.channel("channel")?,
            count: d.u64("count")?,
            serving: d.opt_bool("serving")?.unwrap_or(false),
            members: match d.take("members") {
                Some(Value::Array(items)) => items.iter().filter_map(Member::from_value).collect(),
                _ => Vec::new(),
            },
        },
        "serve_res" => ServerMessage::ServeRes {
            channel: d.channel("channel")?,
        },
        "call_res" => ServerMessage::CallRes {
            channel: d.channel("channel")?,
            method: d.string("method")?,
            result: d.take("result").unwrap_or(Value::Null),
        },
        "refresh_res" => ServerMessage::RefreshRes {
            expires_in_ms: d.opt_u64("expires_in_ms")?,
        },
        "event" => ServerMessage::Event {
            channel: d.channel("channel")?,
            epoch: d.string("epoch")?,
            offset: d.u64("offset")?,
            event: d.take("event").unwrap_or(Value::Null),
        },
        "notification" => ServerMessage::Notification {
            notification_type: d.string("notification_type")?,
            message: d.opt_string("message")?,
            additional_data: d.take("additional_data"),
        },
        "server_request" => ServerMessage::ServerRequest {
            request_type: d.string("request_type")?,
            data: d.map,
        },
        "server_ping" => ServerMessage::ServerPing {
            timestamp: d.u64("timestamp")?,
        },
        "error" => {
            let code_text = d.string("code")?;
            let message = d.opt_string("message")?.unwrap_or_default();
            let mut details = d.take("details");
            let code = match super::codes::ErrorCode::from_wire(&code_text) {
                Some(code) => code,
                None => {
                    let mut m = Map::new();
                    m.insert(String::from("code"), Value::String(code_text));
                    if let Some(original) = details.take() {
                        m.insert(String::from("details"), original);
                    }
                    details = Some(Value::Object(m));
                    ErrorCode::InternalError
                }
            };
            ServerMessage::Error {
                code,
                message,
                details,
            }
        }
        _ => ServerMessage::Custom {
            type_name: env.type_name,
            data: d.map,
        },
    };
    Ok(ServerFrame {
        message_id: id,
        message,
    })
}

fn is_false(b: &bool) -> bool {
    !*b
}
