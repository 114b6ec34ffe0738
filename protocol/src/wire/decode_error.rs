//! Why a frame could not be decoded, classified exactly as PROTOCOL §2.4 says, and the field readers that produce
//! those classes.
//!
//! Decoding is two-phase: the text is parsed as JSON (failure or a non-object is [`DecodeErrorKind::InvalidJson`]);
//! then fields are taken out of the object one by one, and the first missing or mistyped one is reported by name
//! ([`DecodeErrorKind::Validation`]). The `message_id` is read first, so every later error can echo it.

use alloc::borrow::ToOwned;
use alloc::string::String;
use serde_json::{Map, Value};

use super::codes::ErrorCode;
use super::names::{ChannelName, MessageId, NameError};
use super::pattern::ChannelPattern;

/// A frame that could not be decoded, with the request's `message_id` when one could be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}")]
pub struct DecodeError {
    /// The `message_id` of the offending frame, when it was readable; an `error` reply echoes it.
    pub message_id: Option<MessageId>,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// What was wrong with a frame. Each kind maps to one [`ErrorCode`] ([`DecodeError::code`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Not JSON, or JSON but not an object.
    #[error("the frame is not a JSON object")]
    InvalidJson,
    /// A field is missing or of the wrong type.
    #[error("field `{field}` {problem}")]
    Validation {
        /// The field's name (dotted for nested fields, e.g. `data.channel`).
        field: String,
        /// What is wrong with it.
        problem: FieldProblem,
    },
    /// The `type` is not one this side knows. The data is kept so an embedding application can handle types it
    /// registered itself.
    #[error("unknown message type `{type_name}`")]
    UnknownType {
        /// The `type` as sent.
        type_name: String,
        /// The `data` object as sent (`{}` when absent).
        data: Map<String, Value>,
    },
    /// A channel field holds a string that is not a valid channel name.
    #[error("invalid channel name: {reason}")]
    InvalidChannel {
        /// Why the name is invalid.
        reason: NameError,
    },
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// Absent (or `null` where a value is required).
    #[error("is required")]
    Missing,
    /// Present with the wrong JSON type.
    #[error("must be {expected}")]
    WrongType {
        /// The JSON type wanted.
        expected: &'static str,
    },
    /// The right type but an unacceptable value.
    #[error("is invalid: {0}")]
    Invalid(NameError),
    /// A number outside the accepted range.
    #[error("is out of range")]
    OutOfRange,
    /// `null` where a value is required (an element of an array, where `null` cannot mean absent).
    #[error("must not be null")]
    Null,
    /// Present together with another field that excludes it.
    #[error("cannot be given with `{with}`")]
    Conflicts {
        /// The other field.
        with: &'static str,
    },
    /// A `since` entry of a pattern subscribe names a channel the pattern does not match.
    #[error("names a channel the pattern does not match")]
    OutsidePattern,
    /// A batch's event array is empty or longer than [`MAX_BATCH_EVENTS`](super::MAX_BATCH_EVENTS).
    #[error("must hold from 1 to {} events", super::MAX_BATCH_EVENTS)]
    BatchLength,
}

impl DecodeError {
    /// The error code the contract assigns to this failure.
    pub fn code(&self) -> ErrorCode {
        match self.kind {
            DecodeErrorKind::InvalidJson => ErrorCode::InvalidJson,
            DecodeErrorKind::Validation { .. } => ErrorCode::ValidationError,
            DecodeErrorKind::UnknownType { .. } => ErrorCode::InvalidMessageType,
            DecodeErrorKind::InvalidChannel { .. } => ErrorCode::InvalidChannel,
        }
    }

    /// The `details` to send with the `error`: `{"field": …, "problem": …}` for validation errors (with `index`
    /// when the field is an array element, e.g. `data.events[3]`), `null` otherwise.
    pub fn details(&self) -> Value {
        match &self.kind {
            DecodeErrorKind::Validation { field, problem } => {
                let mut m = Map::new();
                m.insert("field".to_owned(), Value::String(field.clone()));
                m.insert(
                    "problem".to_owned(),
                    Value::String(alloc::format!("{problem}")),
                );
                if let Some(index) = element_index(field) {
                    m.insert("index".to_owned(), Value::from(index));
                }
                Value::Object(m)
            }
            _ => Value::Null,
        }
    }

    pub(crate) fn invalid_json() -> DecodeError {
        DecodeError {
            message_id: None,
            kind: DecodeErrorKind::InvalidJson,
        }
    }
}

/// The index a field name ending in `[n]` names.
fn element_index(field: &str) -> Option<u64> {
    let inner = field.strip_suffix(']')?;
    let open = inner.rfind('[')?;
    inner.get(open + 1..)?.parse().ok()
}

/// Reads typed fields out of a JSON object, naming the first bad one. `prefix` is prepended to field names
/// (`"data."` for fields inside the envelope's `data`).
pub(crate) struct Fields<'a> {
    pub(crate) map: Map<String, Value>,
    pub(crate) prefix: &'static str,
    pub(crate) message_id: &'a Option<MessageId>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(
        map: Map<String, Value>,
        prefix: &'static str,
        message_id: &'a Option<MessageId>,
    ) -> Self {
        Fields {
            map,
            prefix,
            message_id,
        }
    }

    pub(crate) fn error(&self, field: &str, problem: FieldProblem) -> DecodeError {
        let mut name = String::with_capacity(self.prefix.len() + field.len());
        name.push_str(self.prefix);
        name.push_str(field);
        DecodeError {
            message_id: self.message_id.clone(),
            kind: DecodeErrorKind::Validation {
                field: name,
                problem,
            },
        }
    }

    /// Removes a field; `null` counts as absent.
    pub(crate) fn take(&mut self, field: &str) -> Option<Value> {
        match self.map.remove(field) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    pub(crate) fn required(&mut self, field: &str) -> Result<Value, DecodeError> {
        self.take(field)
            .ok_or_else(|| self.error(field, FieldProblem::Missing))
    }

    pub(crate) fn opt_string(&mut self, field: &str) -> Result<Option<String>, DecodeError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(
                field,
                FieldProblem::WrongType {
                    expected: "a string",
                },
            )),
        }
    }

    pub(crate) fn string(&mut self, field: &str) -> Result<String, DecodeError> {
        self.opt_string(field)?
            .ok_or_else(|| self.error(field, FieldProblem::Missing))
    }

    pub(crate) fn opt_u64(&mut self, field: &str) -> Result<Option<u64>, DecodeError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.error(field, FieldProblem::OutOfRange)),
            Some(_) => Err(self.error(
                field,
                FieldProblem::WrongType {
                    expected: "a non-negative integer",
                },
            )),
        }
    }

    pub(crate) fn u64(&mut self, field: &str) -> Result<u64, DecodeError> {
        self.opt_u64(field)?
            .ok_or_else(|| self.error(field, FieldProblem::Missing))
    }

    pub(crate) fn opt_bool(&mut self, field: &str) -> Result<Option<bool>, DecodeError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.error(
                field,
                FieldProblem::WrongType {
                    expected: "a boolean",
                },
            )),
        }
    }

    pub(crate) fn opt_object(
        &mut self,
        field: &str,
    ) -> Result<Option<Map<String, Value>>, DecodeError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(self.error(
                field,
                FieldProblem::WrongType {
                    expected: "an object",
                },
            )),
        }
    }

    pub(crate) fn object(&mut self, field: &str) -> Result<Map<String, Value>, DecodeError> {
        self.opt_object(field)?
            .ok_or_else(|| self.error(field, FieldProblem::Missing))
    }

    /// A channel pattern: missing or not a string is a validation error; a bad pattern is `INVALID_CHANNEL`.
    pub(crate) fn pattern(&mut self, field: &str) -> Result<ChannelPattern, DecodeError> {
        let s = self.string(field)?;
        ChannelPattern::new(&s).map_err(|reason| DecodeError {
            message_id: self.message_id.clone(),
            kind: DecodeErrorKind::InvalidChannel { reason },
        })
    }

    /// A channel: missing or not a string is a validation error; a bad name is `INVALID_CHANNEL`.
    pub(crate) fn channel(&mut self, field: &str) -> Result<ChannelName, DecodeError> {
        let s = self.string(field)?;
        ChannelName::new(&s).map_err(|reason| DecodeError {
            message_id: self.message_id.clone(),
            kind: DecodeErrorKind::InvalidChannel { reason },
        })
    }
}

/// Parses text into a JSON object, or [`DecodeErrorKind::InvalidJson`].
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, DecodeError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DecodeError::invalid_json()),
    }
}
