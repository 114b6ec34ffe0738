//! The channel-payload dialect (PROTOCOL §6), spoken at `/ws` by assistants and chat frontends:
//! `{channel, payload}`. Pure translations to and from the native model, and the assistant-update helpers.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use serde::Serialize;
use serde_json::{Map, Value};

use super::decode_error::{DecodeError, DecodeErrorKind, FieldProblem, Fields, parse_object};
use super::envelope::to_json;
use super::names::ChannelName;
use super::pattern::ChannelPattern;
pub use super::reserved::{ERROR_CHANNEL, SUBSCRIPTION_CHANNEL};

/// A client message of this dialect.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChannelPayloadRequest {
    /// `{"channel":"subscription","payload":{"action":"subscribe","channel":X}}`.
    Subscribe {
        /// X.
        channel: ChannelName,
    },
    /// `{"channel":"subscription","payload":{"action":"unsubscribe","channel":X}}`.
    Unsubscribe {
        /// X.
        channel: ChannelName,
    },
    /// `{"channel":"subscription","payload":{"action":"subscribe","pattern":P}}`: every channel P matches
    /// (PROTOCOL §3.2), without recovery (the dialect has no positions).
    SubscribePattern {
        /// P.
        pattern: ChannelPattern,
    },
    /// `{"channel":"subscription","payload":{"action":"unsubscribe","pattern":P}}`.
    UnsubscribePattern {
        /// P.
        pattern: ChannelPattern,
    },
    /// `{"channel":X,"payload":{…}}`: publish the payload as an event on X.
    Publish {
        /// X.
        channel: ChannelName,
        /// The event.
        payload: Value,
    },
}

impl ChannelPayloadRequest {
    /// Compact JSON for the wire.
    pub fn encode(&self) -> String {
        match self {
            ChannelPayloadRequest::Subscribe { channel } => control("subscribe", channel).encode(),
            ChannelPayloadRequest::Unsubscribe { channel } => {
                control("unsubscribe", channel).encode()
            }
            ChannelPayloadRequest::SubscribePattern { pattern } => {
                control_pattern("subscribe", pattern)
            }
            ChannelPayloadRequest::UnsubscribePattern { pattern } => {
                control_pattern("unsubscribe", pattern)
            }
            ChannelPayloadRequest::Publish { channel, payload } => to_json(&Frame {
                channel: channel.as_str(),
                payload,
            }),
        }
    }
}

/// Decodes a client message of this dialect. A publish to the reserved `error` channel is reported like an unknown
/// type, an unknown `action` as a validation error, and subscribing to a reserved channel as an invalid channel
/// name.
pub fn decode_channel_payload_request(text: &str) -> Result<ChannelPayloadRequest, DecodeError> {
    let no_id = None;
    let mut f = Fields::new(parse_object(text)?, "", &no_id);
    let channel_text = f.string("channel")?;
    if channel_text == SUBSCRIPTION_CHANNEL {
        let mut p = Fields::new(f.object("payload")?, "payload.", &no_id);
        let action = p.string("action")?;
        if p.map.contains_key("pattern") {
            let pattern = p.pattern("pattern")?;
            return match action.as_str() {
                "subscribe" => Ok(ChannelPayloadRequest::SubscribePattern { pattern }),
                "unsubscribe" => Ok(ChannelPayloadRequest::UnsubscribePattern { pattern }),
                _ => Err(p.error(
                    "action",
                    FieldProblem::WrongType {
                        expected: "\"subscribe\" or \"unsubscribe\"",
                    },
                )),
            };
        }
        let channel = p.channel("channel")?;
        return match action.as_str() {
            "subscribe" => Ok(ChannelPayloadRequest::Subscribe { channel }),
            "unsubscribe" => Ok(ChannelPayloadRequest::Unsubscribe { channel }),
            _ => Err(p.error(
                "action",
                FieldProblem::WrongType {
                    expected: "\"subscribe\" or \"unsubscribe\"",
                },
            )),
        };
    }
    if channel_text == ERROR_CHANNEL {
        return Err(DecodeError {
            message_id: None,
            kind: DecodeErrorKind::UnknownType {
                type_name: channel_text,
                data: f.map,
            },
        });
    }
    let channel = ChannelName::new(&channel_text).map_err(|reason| DecodeError {
        message_id: None,
        kind: DecodeErrorKind::InvalidChannel { reason },
    })?;
    let payload = f.required("payload")?;
    Ok(ChannelPayloadRequest::Publish { channel, payload })
}

/// A server message of this dialect.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChannelPayloadMessage {
    /// `{"channel":"subscription","payload":{"action":"subscribed","channel":X}}`.
    Subscribed {
        /// X.
        channel: ChannelName,
    },
    /// `{"channel":"subscription","payload":{"action":"unsubscribed","channel":X}}`.
    Unsubscribed {
        /// X.
        channel: ChannelName,
    },
    /// `{"channel":"subscription","payload":{"action":"subscribed","pattern":P}}`.
    SubscribedPattern {
        /// P.
        pattern: ChannelPattern,
    },
    /// `{"channel":"subscription","payload":{"action":"unsubscribed","pattern":P}}`.
    UnsubscribedPattern {
        /// P.
        pattern: ChannelPattern,
    },
    /// `{"channel":X,"payload":<event>}`: an event delivered to subscribers of X.
    Delivery {
        /// X.
        channel: ChannelName,
        /// The event.
        payload: Value,
    },
    /// `{"channel":"error","payload":{"type":"error","status":"error","message":…,"error_details":…,"timestamp":…}}`.
    Error {
        /// Human text.
        message: String,
        /// Machine-readable details.
        error_details: Value,
        /// Unix seconds.
        timestamp: f64,
    },
}

#[derive(Serialize)]
struct Frame<'a, P: Serialize> {
    channel: &'a str,
    payload: &'a P,
}

struct Control<'a> {
    action: &'a str,
    channel: &'a ChannelName,
}

/// `{"channel":"subscription","payload":{"action":A,"pattern":P}}`.
fn control_pattern(action: &str, pattern: &ChannelPattern) -> String {
    #[derive(Serialize)]
    struct Payload<'a> {
        action: &'a str,
        pattern: &'a ChannelPattern,
    }
    to_json(&Frame {
        channel: SUBSCRIPTION_CHANNEL,
        payload: &Payload { action, pattern },
    })
}

fn control<'a>(action: &'a str, channel: &'a ChannelName) -> Control<'a> {
    Control { action, channel }
}

impl Control<'_> {
    fn encode(&self) -> String {
        #[derive(Serialize)]
        struct Payload<'a> {
            action: &'a str,
            channel: &'a ChannelName,
        }
        to_json(&Frame {
            channel: SUBSCRIPTION_CHANNEL,
            payload: &Payload {
                action: self.action,
                channel: self.channel,
            },
        })
    }
}

impl ChannelPayloadMessage {
    /// Compact JSON for the wire.
    pub fn encode(&self) -> String {
        match self {
            ChannelPayloadMessage::Subscribed { channel } => {
                control("subscribed", channel).encode()
            }
            ChannelPayloadMessage::Unsubscribed { channel } => {
                control("unsubscribed", channel).encode()
            }
            ChannelPayloadMessage::SubscribedPattern { pattern } => {
                control_pattern("subscribed", pattern)
            }
            ChannelPayloadMessage::UnsubscribedPattern { pattern } => {
                control_pattern("unsubscribed", pattern)
            }
            ChannelPayloadMessage::Delivery { channel, payload } => {
                encode_delivery(channel, payload)
            }
            ChannelPayloadMessage::Error {
                message,
                error_details,
                timestamp,
            } => {
                #[derive(Serialize)]
                struct ErrorPayload<'a> {
                    #[serde(rename = "type")]
                    type_name: &'a str,
                    status: &'a str,
                    message: &'a str,
                    error_details: &'a Value,
                    timestamp: f64,
                }
                let timestamp = if timestamp.is_finite() {
                    *timestamp
                } else {
                    0.0
                };
                to_json(&Frame {
                    channel: ERROR_CHANNEL,
                    payload: &ErrorPayload {
                        type_name: "error",
                        status: "error",
                        message,
                        error_details,
                        timestamp,
                    },
                })
            }
        }
    }

    /// The `error` message for a decode failure.
    pub fn from_decode_error(err: &DecodeError, unix_ms: u64) -> Self {
        let mut details = Map::new();
        details.insert(
            "code".to_owned(),
            Value::String(err.code().as_str().to_owned()),
        );
        if let DecodeErrorKind::Validation { field, .. } = &err.kind {
            details.insert("field".to_owned(), Value::String(field.clone()));
        }
        ChannelPayloadMessage::Error {
            message: format!("{err}"),
            error_details: Value::Object(details),
            timestamp: crate::time::unix_seconds_f64(unix_ms),
        }
    }
}

/// Encodes a delivery from borrowed parts; the hub calls this once per publish and shares the text.
pub fn encode_delivery(channel: &ChannelName, payload: &Value) -> String {
    to_json(&Frame {
        channel: channel.as_str(),
        payload,
    })
}

/// Decodes a server message of this dialect (what a chat frontend receives).
pub fn decode_channel_payload_message(text: &str) -> Result<ChannelPayloadMessage, DecodeError> {
    let no_id = None;
    let mut f = Fields::new(parse_object(text)?, "", &no_id);
    let channel_text = f.string("channel")?;
    match channel_text.as_str() {
        SUBSCRIPTION_CHANNEL => {
            let mut p = Fields::new(f.object("payload")?, "payload.", &no_id);
            let action = p.string("action")?;
            if p.map.contains_key("pattern") {
                let pattern = p.pattern("pattern")?;
                return match action.as_str() {
                    "subscribed" => Ok(ChannelPayloadMessage::SubscribedPattern { pattern }),
                    "unsubscribed" => Ok(ChannelPayloadMessage::UnsubscribedPattern { pattern }),
                    _ => Err(p.error(
                        "action",
                        FieldProblem::WrongType {
                            expected: "\"subscribed\" or \"unsubscribed\"",
                        },
                    )),
                };
            }
            let channel = p.channel("channel")?;
            match action.as_str() {
                "subscribed" => Ok(ChannelPayloadMessage::Subscribed { channel }),
                "unsubscribed" => Ok(ChannelPayloadMessage::Unsubscribed { channel }),
                _ => Err(p.error(
                    "action",
                    FieldProblem::WrongType {
                        expected: "\"subscribed\" or \"unsubscribed\"",
                    },
                )),
            }
        }
        ERROR_CHANNEL => {
            let mut p = Fields::new(f.object("payload")?, "payload.", &no_id);
            let message = p.opt_string("message")?.unwrap_or_default();
            let error_details = p.take("error_details").unwrap_or(Value::Null);
            let timestamp = match p.take("timestamp") {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                None => 0.0,
                Some(_) => {
                    return Err(p.error(
                        "timestamp",
                        FieldProblem::WrongType {
                            expected: "a number",
                        },
                    ));
                }
            };
            Ok(ChannelPayloadMessage::Error {
                message,
                error_details,
                timestamp,
            })
        }
        _ => {
            let channel = ChannelName::new(&channel_text).map_err(|reason| DecodeError {
                message_id: None,
                kind: DecodeErrorKind::InvalidChannel { reason },
            })?;
            Ok(ChannelPayloadMessage::Delivery {
                channel,
                payload: f.take("payload").unwrap_or(Value::Null),
            })
        }
    }
}

/// The statuses of an assistant's reply as it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AssistantStatus {
    /// The reply began.
    Started,
    /// The assistant is thinking or calling tools.
    Processing,
    /// The assistant is writing its answer.
    Responding,
    /// Work continues (a generic heartbeat of progress).
    InProgress,
    /// The reply is complete.
    Completed,
    /// The reply failed.
    Error,
}

impl AssistantStatus {
    /// Every status.
    pub const ALL: &'static [AssistantStatus] = &[
        AssistantStatus::Started,
        AssistantStatus::Processing,
        AssistantStatus::Responding,
        AssistantStatus::InProgress,
        AssistantStatus::Completed,
        AssistantStatus::Error,
    ];

    /// The wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            AssistantStatus::Started => "started",
            AssistantStatus::Processing => "processing",
            AssistantStatus::Responding => "responding",
            AssistantStatus::InProgress => "in_progress",
            AssistantStatus::Completed => "completed",
            AssistantStatus::Error => "error",
        }
    }

    /// Parses a wire string.
    pub fn from_wire(s: &str) -> Option<Self> {
        AssistantStatus::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
    }

    /// Whether no further update follows.
    pub fn is_terminal(self) -> bool {
        matches!(self, AssistantStatus::Completed | AssistantStatus::Error)
    }
}

/// An assistant update as a channel payload: `{"type":"assistant_update","status":…,"message"?:…,"data"?:…}`.
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantUpdate {
    /// Where the reply is.
    pub status: AssistantStatus,
    /// Human text (e.g. the partial reply).
    pub message: Option<String>,
    /// Anything else.
    pub data: Option<Value>,
}

impl AssistantUpdate {
    /// The payload to publish.
    pub fn to_payload(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "type".to_owned(),
            Value::String("assistant_update".to_owned()),
        );
        m.insert(
            "status".to_owned(),
            Value::String(self.status.as_str().to_owned()),
        );
        if let Some(message) = &self.message {
            m.insert("message".to_owned(), Value::String(message.clone()));
        }
        if let Some(data) = &self.data {
            m.insert("data".to_owned(), data.clone());
        }
        Value::Object(m)
    }

    /// Reads an assistant update out of a payload; `None` when it is not one.
    pub fn from_payload(payload: &Value) -> Option<AssistantUpdate> {
        let obj = payload.as_object()?;
        if obj.get("type")?.as_str()? != "assistant_update" {
            return None;
        }
        let status = AssistantStatus::from_wire(obj.get("status")?.as_str()?)?;
        let message = match obj.get("message") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return None,
        };
        let data = obj.get("data").filter(|v| !v.is_null()).cloned();
        Some(AssistantUpdate {
            status,
            message,
            data,
        })
    }
}
