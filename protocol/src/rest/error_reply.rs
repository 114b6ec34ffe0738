//! The REST API's error answer (PROTOCOL §7): a status, a machine-readable code, a human message and any extra
//! headers, sent as `{"error":{"code":…,"message":…}}`.

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// An error answer of the server's HTTP front: status, code, message and extra headers (`Allow`, `Retry-After`,
/// `WWW-Authenticate`, `Sec-WebSocket-Version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// The HTTP status.
    pub status: u16,
    /// The `error.code` string, e.g. `NOT_FOUND`.
    pub code: &'static str,
    /// The `error.message` text.
    pub message: String,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
    /// The position of the event that made a batch publish fail (`error.index`), when one did.
    pub index: Option<usize>,
}

impl ErrorReply {
    /// An error with no extra headers.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
            index: None,
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ErrorReply {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(400, "BAD_REQUEST", message)
    }

    /// 400 `INVALID_JSON`: the body is not the JSON object expected.
    pub fn invalid_json(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(400, "INVALID_JSON", message)
    }

    /// 400 `VALIDATION_ERROR`: a field or parameter is missing or of the wrong type.
    pub fn validation(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(400, "VALIDATION_ERROR", message)
    }

    /// 400 `INVALID_CHANNEL`.
    pub fn invalid_channel(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(400, "INVALID_CHANNEL", message)
    }

    /// 401 `UNAUTHORIZED` with `WWW-Authenticate: Bearer`: missing or bad token.
    pub fn unauthorized(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(401, "UNAUTHORIZED", message).with_header("WWW-Authenticate", "Bearer")
    }

    /// 403 `FORBIDDEN`: the token does not allow this.
    pub fn forbidden(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(403, "FORBIDDEN", message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found() -> ErrorReply {
        ErrorReply::new(404, "NOT_FOUND", "no such route")
    }

    /// 405 `METHOD_NOT_ALLOWED` with the `Allow` header.
    pub fn method_not_allowed(allow: &[&str]) -> ErrorReply {
        ErrorReply::new(
            405,
            "METHOD_NOT_ALLOWED",
            "method not allowed on this route",
        )
        .with_header("Allow", allow.join(", "))
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    pub fn payload_too_large(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(413, "PAYLOAD_TOO_LARGE", message)
    }

    /// 429 `RATE_LIMITED` with `Retry-After` in whole seconds (at least 1).
    pub fn rate_limited(retry_after_ms: u64) -> ErrorReply {
        ErrorReply::new(429, "RATE_LIMITED", "too many requests").with_header(
            "Retry-After",
            retry_after_ms.div_ceil(1000).max(1).to_string(),
        )
    }

    /// 429 `TOO_MANY_CONNECTIONS` with `Retry-After: 5`: one address holds too many WebSockets.
    pub fn too_many_connections_from_address() -> ErrorReply {
        ErrorReply::new(
            429,
            "TOO_MANY_CONNECTIONS",
            "too many connections from this address",
        )
        .with_header("Retry-After", "5")
    }

    /// 503 `UNAVAILABLE`: the server is shutting down or full.
    pub fn unavailable(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(503, "UNAVAILABLE", message)
    }

    /// 503 `STORAGE_UNAVAILABLE` with `Retry-After: 1`: the store could not write the event (a full disk, an IO
    /// error), so it was not published; publishing works again once the store can write.
    pub fn storage_unavailable(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(503, "STORAGE_UNAVAILABLE", message).with_header("Retry-After", "1")
    }

    /// 507 `CHANNEL_LIMIT`: publishing would start a channel past `max_channels`. Not 429: the caller is not too
    /// fast, the server is full, and it stays full until idle channels are forgotten.
    pub fn channel_limit(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(507, "CHANNEL_LIMIT", message)
    }

    /// 503 `UNAVAILABLE` with `Retry-After: 5`: the server holds as many WebSockets as it may.
    pub fn too_many_connections() -> ErrorReply {
        ErrorReply::unavailable("the server has too many connections; try again later")
            .with_header("Retry-After", "5")
    }

    /// Names the batch event at fault (`error.index` in the body).
    pub fn at_index(mut self, index: Option<usize>) -> ErrorReply {
        self.index = index;
        self
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({"code": self.code, "message": self.message.to_owned()});
        if let (Some(index), Some(obj)) = (self.index, body.as_object_mut()) {
            obj.insert("index".to_owned(), index.into());
        }
        serde_json::json!({ "error": body })
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl core::error::Error for ErrorReply {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn error_body_shape_and_headers() {
        let e = ErrorReply::method_not_allowed(&["GET", "POST"]);
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {"code": "METHOD_NOT_ALLOWED", "message": "method not allowed on this route"}})
        );
        assert_eq!(e.headers, vec![("Allow", "GET, POST".to_owned())]);
        assert_eq!(
            ErrorReply::rate_limited(1500).headers,
            vec![("Retry-After", "2".to_owned())]
        );
        assert_eq!(
            ErrorReply::rate_limited(0).headers,
            vec![("Retry-After", "1".to_owned())]
        );
        assert_eq!(
            ErrorReply::unauthorized("x").headers,
            vec![("WWW-Authenticate", "Bearer".to_owned())]
        );
        assert_eq!(ErrorReply::too_many_connections().status, 503);
        assert_eq!(ErrorReply::too_many_connections_from_address().status, 429);
    }
}
