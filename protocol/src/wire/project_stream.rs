//! The project-stream dialect (PROTOCOL §5), spoken at `/api/v1/ws/projects/{project_id}/stream` by pipeline
//! dashboards: `{event_type, project_id, timestamp, offset?, data?, message?}`. Pure translations to and from the
//! native model.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::decode_error::{DecodeError, DecodeErrorKind, Fields, parse_object};
use super::envelope::to_json;
use super::names::{ChannelName, NameError};
use crate::time::format_iso8601_millis;

/// The channel a project's stream is: `projects/{project_id}`. The id is one path segment: an id holding `/` would
/// name a channel below another project's.
pub fn project_channel(project_id: &str) -> Result<ChannelName, ProjectIdError> {
    if project_id.contains('/') {
        return Err(ProjectIdError::Slash);
    }
    Ok(ChannelName::new(&format!("projects/{project_id}"))?)
}

/// Why a project id names no project channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectIdError {
    /// The id holds a `/`.
    #[error("a project id cannot contain '/'")]
    Slash,
    /// `projects/{id}` is not a valid channel name.
    #[error("projects/{{id}} is not a valid channel name: {0}")]
    Name(#[from] NameError),
}

macro_rules! pipeline_event_types {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)*) => {
        /// The pipeline event types of PROTOCOL §5.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum PipelineEventType {
            $($(#[$doc])* $variant,)*
        }

        impl PipelineEventType {
            /// Every pipeline event type, in the contract's order.
            pub const ALL: &'static [PipelineEventType] = &[$(PipelineEventType::$variant,)*];

            /// The wire string.
            pub const fn as_str(self) -> &'static str {
                match self { $(PipelineEventType::$variant => $wire,)* }
            }

            /// Parses a wire string.
            pub fn from_wire(s: &str) -> Option<Self> {
                match s { $($wire => Some(PipelineEventType::$variant),)* _ => None }
            }
        }
    };
}

pipeline_event_types! {
    /// A stage started or ended.
    StageTransition => "stage_transition",
    /// Progress within a stage.
    ProgressUpdate => "progress_update",
    /// A log line.
    Log => "log",
    /// A decision the pipeline took.
    Decision => "decision",
    /// The pipeline waits for a human.
    ApprovalRequired => "approval_required",
    /// Finished successfully.
    PipelineCompleted => "pipeline_completed",
    /// Finished with a failure.
    PipelineFailed => "pipeline_failed",
    /// An error that did not end the pipeline.
    Error => "error",
}

/// Builds a channel event in the shape this dialect forwards as `event_type`: `{event_type, timestamp?, data}`.
/// Publish it on [`project_channel`] and dashboards see it as a typed pipeline event.
pub fn pipeline_event(
    event_type: PipelineEventType,
    timestamp: Option<String>,
    data: Value,
) -> Value {
    let mut m = Map::new();
    m.insert(
        "event_type".to_owned(),
        Value::String(event_type.as_str().to_owned()),
    );
    if let Some(ts) = timestamp {
        m.insert("timestamp".to_owned(), Value::String(ts));
    }
    m.insert("data".to_owned(), data);
    Value::Object(m)
}

/// A server message of this dialect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectStreamMessage {
    /// `connected`, `pong`, `cancel_acknowledged`, `state`, `error`, a pipeline event type, or `message`.
    pub event_type: String,
    /// The project.
    pub project_id: String,
    /// ISO-8601 UTC with milliseconds.
    pub timestamp: String,
    /// The channel offset, for events and state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Human text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ProjectStreamMessage {
    fn bare(event_type: &str, project_id: &str, unix_ms: u64) -> Self {
        ProjectStreamMessage {
            event_type: event_type.to_owned(),
            project_id: project_id.to_owned(),
            timestamp: format_iso8601_millis(unix_ms),
            offset: None,
            data: None,
            message: None,
        }
    }

    /// The greeting sent on open.
    pub fn connected(project_id: &str, unix_ms: u64) -> Self {
        ProjectStreamMessage {
            message: Some("WebSocket connection established".to_owned()),
            ..Self::bare("connected", project_id, unix_ms)
        }
    }

    /// The answer to `{"type":"ping"}`.
    pub fn pong(project_id: &str, unix_ms: u64) -> Self {
        Self::bare("pong", project_id, unix_ms)
    }

    /// The answer to `{"type":"cancel"}`.
    pub fn cancel_acknowledged(project_id: &str, unix_ms: u64) -> Self {
        let mut data = Map::new();
        data.insert(
            "message".to_owned(),
            Value::String("Cancellation request received".to_owned()),
        );
        ProjectStreamMessage {
            data: Some(Value::Object(data)),
            ..Self::bare("cancel_acknowledged", project_id, unix_ms)
        }
    }

    /// The answer to `{"type":"get_state"}`: the channel's offset and retained state (`null` when none).
    pub fn state(project_id: &str, unix_ms: u64, offset: u64, state: Option<Value>) -> Self {
        ProjectStreamMessage {
            offset: Some(offset),
            data: Some(state.unwrap_or(Value::Null)),
            ..Self::bare("state", project_id, unix_ms)
        }
    }

    /// An error answer: `data: {error, details, recoverable: true}`.
    pub fn error(project_id: &str, unix_ms: u64, error: &str, details: Value) -> Self {
        let mut data = Map::new();
        data.insert("error".to_owned(), Value::String(error.to_owned()));
        data.insert("details".to_owned(), details);
        data.insert("recoverable".to_owned(), Value::Bool(true));
        ProjectStreamMessage {
            data: Some(Value::Object(data)),
            ..Self::bare("error", project_id, unix_ms)
        }
    }

    /// Translates a channel event (native model) for this dialect. An event with a string `event_type` goes out as
    /// that type with its `timestamp` (or now) and `data`; any other event as `message` with the whole event as
    /// `data`.
    pub fn from_event(project_id: &str, offset: u64, event: &Value, unix_ms: u64) -> Self {
        if let Some(obj) = event.as_object()
            && let Some(Value::String(event_type)) = obj.get("event_type")
        {
            let timestamp = match obj.get("timestamp") {
                Some(Value::String(ts)) => ts.clone(),
                _ => format_iso8601_millis(unix_ms),
            };
            return ProjectStreamMessage {
                event_type: event_type.clone(),
                project_id: project_id.to_owned(),
                timestamp,
                offset: Some(offset),
                data: obj.get("data").cloned(),
                message: None,
            };
        }
        ProjectStreamMessage {
            offset: Some(offset),
            data: Some(event.clone()),
            ..Self::bare("message", project_id, unix_ms)
        }
    }

    /// The reverse of [`from_event`](Self::from_event): the channel event this message carries. A `message` gives
    /// back its `data`; a typed event gives `{event_type, timestamp, data?}`.
    pub fn to_event(&self) -> Value {
        if self.event_type == "message" {
            return self.data.clone().unwrap_or(Value::Null);
        }
        let mut m = Map::new();
        m.insert(
            "event_type".to_owned(),
            Value::String(self.event_type.clone()),
        );
        m.insert(
            "timestamp".to_owned(),
            Value::String(self.timestamp.clone()),
        );
        if let Some(data) = &self.data {
            m.insert("data".to_owned(), data.clone());
        }
        Value::Object(m)
    }

    /// The pipeline event type, when it is one.
    pub fn pipeline_event_type(&self) -> Option<PipelineEventType> {
        PipelineEventType::from_wire(&self.event_type)
    }

    /// Compact JSON for the wire.
    pub fn encode(&self) -> String {
        to_json(self)
    }
}

/// Decodes a server message of this dialect (what a dashboard receives).
pub fn decode_project_stream_message(text: &str) -> Result<ProjectStreamMessage, DecodeError> {
    let no_id = None;
    let mut f = Fields::new(parse_object(text)?, "", &no_id);
    Ok(ProjectStreamMessage {
        event_type: f.string("event_type")?,
        project_id: f.string("project_id")?,
        timestamp: f.string("timestamp")?,
        offset: f.opt_u64("offset")?,
        data: f.take("data"),
        message: f.opt_string("message")?,
    })
}

/// A client message of this dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectStreamRequest {
    /// `{"type":"ping"}` → `pong`.
    Ping,
    /// `{"type":"cancel"}` → `cancel_acknowledged`, and a `call` of method `cancel` to whoever serves the channel.
    Cancel,
    /// `{"type":"get_state"}` → `state`.
    GetState,
}

impl ProjectStreamRequest {
    /// The wire `type`.
    pub fn type_name(self) -> &'static str {
        match self {
            ProjectStreamRequest::Ping => "ping",
            ProjectStreamRequest::Cancel => "cancel",
            ProjectStreamRequest::GetState => "get_state",
        }
    }

    /// Compact JSON for the wire.
    pub fn encode(self) -> String {
        format!("{{\"type\":\"{}\"}}", self.type_name())
    }
}

/// Decodes a client message of this dialect. Unknown types are [`DecodeErrorKind::UnknownType`].
pub fn decode_project_stream_request(text: &str) -> Result<ProjectStreamRequest, DecodeError> {
    let no_id = None;
    let mut f = Fields::new(parse_object(text)?, "", &no_id);
    let type_name = f.string("type")?;
    match type_name.as_str() {
        "ping" => Ok(ProjectStreamRequest::Ping),
        "cancel" => Ok(ProjectStreamRequest::Cancel),
        "get_state" => Ok(ProjectStreamRequest::GetState),
        _ => Err(DecodeError {
            message_id: None,
            kind: DecodeErrorKind::UnknownType {
                type_name,
                data: f.map,
            },
        }),
    }
}

/// The `error` answer this dialect sends for a decode failure.
pub fn decode_error_message(
    project_id: &str,
    unix_ms: u64,
    err: &DecodeError,
) -> ProjectStreamMessage {
    let mut details = Map::new();
    details.insert(
        "code".to_owned(),
        Value::String(err.code().as_str().to_owned()),
    );
    if let DecodeErrorKind::Validation { field, .. } = &err.kind {
        details.insert("field".to_owned(), Value::String(field.clone()));
    }
    ProjectStreamMessage::error(
        project_id,
        unix_ms,
        &format!("{err}"),
        Value::Object(details),
    )
}
