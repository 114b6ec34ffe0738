//! HTTP errors: what can be wrong with a request ([`RequestError`]) and the JSON error answer ([`ApiError`]),
//! `{"error":{"code":…,"message":…}}` (PROTOCOL §7).

use std::fmt;

/// What is wrong with a request at the HTTP level, found while reading it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Malformed request line, header, encoding or parameter (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The head is over the size limit or has too many headers (431).
    #[error("request head too large")]
    HeadTooLarge,
    /// The body is over the limit (413).
    #[error("request body over {max} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// A body framed other than by `Content-Length` (411).
    #[error("a Content-Length is required")]
    LengthRequired,
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> ApiError {
        match e {
            RequestError::BadRequest(m) => ApiError::bad_request(m),
            RequestError::HeadTooLarge => {
                ApiError::new(431, "HEADERS_TOO_LARGE", "request head over the size limit")
            }
            RequestError::BodyTooLarge { max } => ApiError::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("request body over {max} bytes"),
            ),
            RequestError::LengthRequired => ApiError::new(
                411,
                "LENGTH_REQUIRED",
                "send the body with a Content-Length (chunked bodies are not accepted)",
            ),
        }
    }
}

/// An error answer: status, machine-readable code, human message and extra headers (`Allow`, `Retry-After`,
/// `Sec-WebSocket-Version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The `error.code` string, e.g. `NOT_FOUND`.
    pub code: &'static str,
    /// The `error.message` text.
    pub message: String,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    /// An error with no extra headers.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BAD_REQUEST", message)
    }

    /// 400 `INVALID_JSON`: the body is not the JSON object expected.
    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "INVALID_JSON", message)
    }

    /// 400 `VALIDATION_ERROR`: a field or parameter is missing or of the wrong type.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "VALIDATION_ERROR", message)
    }

    /// 400 `INVALID_CHANNEL`.
    pub fn invalid_channel(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "INVALID_CHANNEL", message)
    }

    /// 401 `UNAUTHORIZED`: missing or bad token.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(401, "UNAUTHORIZED", message).with_header("WWW-Authenticate", "Bearer")
    }

    /// 403 `FORBIDDEN`: the token does not allow this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "FORBIDDEN", message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found() -> ApiError {
        ApiError::new(404, "NOT_FOUND", "no such route")
    }

    /// 405 `METHOD_NOT_ALLOWED` with the `Allow` header.
    pub fn method_not_allowed(allow: &[&str]) -> ApiError {
        ApiError::new(
            405,
            "METHOD_NOT_ALLOWED",
            "method not allowed on this route",
        )
        .with_header("Allow", allow.join(", "))
    }

    /// 429 `RATE_LIMITED` with `Retry-After` in whole seconds (at least 1).
    pub fn rate_limited(retry_after_ms: u64) -> ApiError {
        ApiError::new(429, "RATE_LIMITED", "too many requests").with_header(
            "Retry-After",
            retry_after_ms.div_ceil(1000).max(1).to_string(),
        )
    }

    /// 503 `UNAVAILABLE`: the server is shutting down.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "UNAVAILABLE", message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_map_to_statuses() {
        let cases = [
            (RequestError::BadRequest("x".into()), 400),
            (RequestError::HeadTooLarge, 431),
            (RequestError::BodyTooLarge { max: 1 }, 413),
            (RequestError::LengthRequired, 411),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status, status);
        }
    }

    #[test]
    fn error_body_shape_and_headers() {
        let e = ApiError::method_not_allowed(&["GET", "POST"]);
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {"code": "METHOD_NOT_ALLOWED", "message": "method not allowed on this route"}})
        );
        assert_eq!(e.headers, vec![("Allow", "GET, POST".to_owned())]);
        assert_eq!(
            ApiError::rate_limited(1500).headers,
            vec![("Retry-After", "2".to_owned())]
        );
        assert_eq!(
            ApiError::rate_limited(0).headers,
            vec![("Retry-After", "1".to_owned())]
        );
    }
}
