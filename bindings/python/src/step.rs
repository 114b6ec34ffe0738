//! One [`Output`] of the machine as the driver receives it: a [`Step`], flattened to a `(kind, text, number)`
//! triple that crosses into Python without any per-variant class.

use switchboard_protocol::client::Output;
use switchboard_protocol::time::Timestamp;

use crate::events::event_json;

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Open a new connection, then report `handle_connected` or `handle_connect_failed`.
    Connect,
    /// Send this text frame on the current connection.
    Transmit(String),
    /// Close the current connection (or abandon the dial in progress); do not report its end.
    Close {
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Tell the application: a JSON object with a `kind` ([`event_json`]).
    Event(String),
    /// Nothing more to do now: call `handle_timeout` at this many microseconds, or never (`None`).
    Timeout(Option<u64>),
}

/// The triple Python sees: `("connect", None, None)`, `("transmit", frame, None)`, `("close", reason, code)`,
/// `("event", json, None)`, `("timeout", None, micros or None)`.
pub type StepTuple = (&'static str, Option<String>, Option<u64>);

impl Step {
    /// The driver's view of one output.
    pub fn from_output(output: Output) -> Step {
        match output {
            Output::Connect => Step::Connect,
            Output::Transmit(frame) => Step::Transmit(frame),
            Output::Close { code, reason } => Step::Close {
                code: code.as_u16(),
                reason: reason.into_owned(),
            },
            Output::Event(event) => Step::Event(event_json(event).to_string()),
            Output::Timeout(at) if at == Timestamp::MAX => Step::Timeout(None),
            Output::Timeout(at) => Step::Timeout(Some(at.as_micros())),
            // An output this version does not know: report it rather than drop it silently.
            other => Step::Event(
                serde_json::json!({"kind": "other", "description": format!("{other:?}")})
                    .to_string(),
            ),
        }
    }

    /// The flat form.
    pub fn into_tuple(self) -> StepTuple {
        match self {
            Step::Connect => ("connect", None, None),
            Step::Transmit(frame) => ("transmit", Some(frame), None),
            Step::Close { code, reason } => ("close", Some(reason), Some(u64::from(code))),
            Step::Event(json) => ("event", Some(json), None),
            Step::Timeout(at) => ("timeout", None, at),
        }
    }
}
