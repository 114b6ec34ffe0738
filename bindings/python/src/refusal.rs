//! Why a command was refused, in the two kinds the Python side tells apart: the caller's argument (raised as
//! `ValueError` before anything is sent) and a machine that has stopped.

use switchboard_protocol::client::{ClientError, UsageError};

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A bad argument: an invalid channel name, a `null` event, an unusable JSON text, a frame over the size limit.
    Argument(String),
    /// The machine was closed, or gave up.
    Closed,
}

impl From<ClientError> for Refusal {
    fn from(e: ClientError) -> Refusal {
        match e {
            ClientError::Usage(UsageError::Closed) => Refusal::Closed,
            other => Refusal::Argument(other.to_string()),
        }
    }
}

/// Parses a JSON text handed over by the Python side.
pub fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, Refusal> {
    serde_json::from_str(text).map_err(|e| Refusal::Argument(format!("{what} is not JSON: {e}")))
}
