//! What can go wrong: [`ConnectError`] when a [`Client`](super::Client) cannot even be set up, [`RequestError`] when
//! one request ends without its answer.

use serde_json::Value;
use switchboard_protocol::client::{ClientError, FailReason};
use switchboard_protocol::wire::ErrorCode;

/// [`Client::connect`](super::Client::connect) refused the URL or the options. Nothing was started. Network
/// failures are not reported here: the client retries them in the background (see
/// [`state_changes`](super::Client::state_changes)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a `ws://host[:port]/path` URL.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL asks for something this client cannot do yet: `wss://` (TLS is a later addition).
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// The token cannot be sent as an HTTP header value (e.g. it contains a line break).
    #[error("the token cannot be sent in an Authorization header")]
    InvalidToken,
}

/// Why a request ended without its answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No answer within the request's timeout (counted from the call, offline time included).
    #[error("the request timed out")]
    TimedOut,
    /// The request was on the wire when the connection dropped. It is not re-sent: it may not be idempotent.
    #[error("the connection dropped before the answer came")]
    Disconnected,
    /// The request was made while offline and the offline queue was full.
    #[error("the offline queue is full")]
    QueueFull,
    /// The client was closed (or gave up reconnecting) before the answer came, or before the request was made.
    #[error("the client is closed")]
    Closed,
    /// The server answered with an `error` (PROTOCOL §2.4).
    #[error("server error {}: {message}", code.as_str())]
    Server {
        /// The code.
        code: ErrorCode,
        /// Human text.
        message: String,
        /// Details (e.g. `retry_after_ms` for `RATE_LIMITED`).
        details: Option<Value>,
    },
    /// The request was refused before it was sent: a bad channel name, a reserved type, a message over the size
    /// limit.
    #[error(transparent)]
    Refused(#[from] ClientError),
    /// The server answered with a message of a type this request does not expect.
    #[error("unexpected answer of type {type_name:?}")]
    UnexpectedResponse {
        /// The answer's `type`.
        type_name: String,
    },
}

impl RequestError {
    /// The server's error code, when the server answered with an `error`.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RequestError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<FailReason> for RequestError {
    fn from(reason: FailReason) -> Self {
        match reason {
            FailReason::TimedOut => RequestError::TimedOut,
            FailReason::Disconnected => RequestError::Disconnected,
            FailReason::QueueFull => RequestError::QueueFull,
            FailReason::Error {
                code,
                message,
                details,
            } => RequestError::Server {
                code,
                message,
                details,
            },
            // Closed, and reasons a later protocol version adds: the request is over for good.
            _ => RequestError::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_reasons_map_one_to_one() {
        assert_eq!(
            RequestError::from(FailReason::TimedOut),
            RequestError::TimedOut
        );
        assert_eq!(
            RequestError::from(FailReason::Disconnected),
            RequestError::Disconnected
        );
        assert_eq!(
            RequestError::from(FailReason::QueueFull),
            RequestError::QueueFull
        );
        assert_eq!(RequestError::from(FailReason::Closed), RequestError::Closed);
        let server = RequestError::from(FailReason::Error {
            code: ErrorCode::NoHandler,
            message: "nobody".into(),
            details: None,
        });
        assert_eq!(server.code(), Some(ErrorCode::NoHandler));
        assert_eq!(server.to_string(), "server error NO_HANDLER: nobody");
        assert_eq!(RequestError::Closed.code(), None);
    }
}
