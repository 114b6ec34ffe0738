//! Error classes for REST calls: [`ApiError`], built from a failed response with [`ApiError::from_response`] or
//! from a failed attempt with [`ApiError::transport`] / [`ApiError::Timeout`].
//!
//! | class | statuses |
//! |---|---|
//! | [`Authentication`](ApiError::Authentication) | 401 |
//! | [`Forbidden`](ApiError::Forbidden) | 403 |
//! | [`NotFound`](ApiError::NotFound) | 404 |
//! | [`Validation`](ApiError::Validation) | 400, 422 |
//! | [`RateLimited`](ApiError::RateLimited) | 429, with its `Retry-After` |
//! | [`Server`](ApiError::Server) | 500 to 599 |
//! | [`Other`](ApiError::Other) | any other status (405, 409, 413, 3xx…) |
//! | [`Transport`](ApiError::Transport), [`Timeout`](ApiError::Timeout) | no response |
//!
//! The body is kept as received, and read for a code, a message and details in the shapes APIs commonly use, first
//! match wins:
//!
//! 1. `{"error": {"code", "message", "details"?}}`: Switchboard (PROTOCOL §7) and many others;
//! 2. `{"error": "<code>", "error_description"?: "…"}`: OAuth 2 (RFC 6749 §5.2);
//! 3. `{"detail": "…"}` or `{"detail": [...]}`: Django REST framework, FastAPI (whose 422 lists the bad fields);
//! 4. `{"message": "…", "code"?, "errors"?}`: GitHub, Express and friends;
//! 5. anything else that is not empty: its text (lossy UTF-8, trimmed, at most [`MAX_MESSAGE_BYTES`]) is the
//!    message.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde_json::Value;

use super::retry_after::RetryAfter;

/// The longest message taken from a body that is not JSON (an HTML error page, say), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// A failed response: its status, its body as received, and what could be read from the body.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ErrorResponse {
    /// The status code.
    pub status: u16,
    /// A machine-readable error code from the body (`"RATE_LIMITED"`, `"invalid_token"`…), if any.
    pub code: Option<String>,
    /// A human-readable message from the body, if any.
    pub message: Option<String>,
    /// Structured details from the body (`error.details`, a FastAPI `detail` list, GitHub's `errors`), if any.
    pub details: Option<Value>,
    /// The body exactly as received.
    pub body: Vec<u8>,
}

impl ErrorResponse {
    /// Reads `body` (see the [module docs](self) for the shapes understood).
    pub fn parse(status: u16, body: &[u8]) -> Self {
        let (code, message, details) = read_body(body);
        ErrorResponse {
            status,
            code,
            message,
            details,
            body: body.to_vec(),
        }
    }
}

impl fmt::Display for ErrorResponse {
    /// `404 NOT_FOUND: no such channel`, leaving out what is missing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// Why a REST call failed (see the [module docs](self) for the classes).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 401: missing, expired or invalid credentials.
    #[error("authentication failed ({0})")]
    Authentication(ErrorResponse),
    /// 403: the credentials do not allow this.
    #[error("forbidden ({0})")]
    Forbidden(ErrorResponse),
    /// 404: no such resource.
    #[error("not found ({0})")]
    NotFound(ErrorResponse),
    /// 400 or 422: the request was refused as invalid; [`ErrorResponse::details`] often says which field.
    #[error("invalid request ({0})")]
    Validation(ErrorResponse),
    /// 429: too many requests.
    #[error("rate limited ({response})")]
    RateLimited {
        /// The response.
        response: ErrorResponse,
        /// When to try again, from its `Retry-After` header.
        retry_after: Option<RetryAfter>,
    },
    /// 5xx: the server failed.
    #[error("server error ({0})")]
    Server(ErrorResponse),
    /// Any other non-success status.
    #[error("unexpected response ({0})")]
    Other(ErrorResponse),
    /// No response: the connection failed (the text is the transport's own description).
    #[error("transport error: {0}")]
    Transport(String),
    /// No response within the timeout.
    #[error("request timed out")]
    Timeout,
}

impl ApiError {
    /// Classifies a failed response. `retry_after` is its parsed `Retry-After` header, kept for 429 only (a 503's is
    /// for the retry machine). Call it for non-2xx responses; a 2xx given here is [`ApiError::Other`].
    pub fn from_response(status: u16, body: &[u8], retry_after: Option<RetryAfter>) -> Self {
        let response = ErrorResponse::parse(status, body);
        match status {
            401 => ApiError::Authentication(response),
            403 => ApiError::Forbidden(response),
            404 => ApiError::NotFound(response),
            400 | 422 => ApiError::Validation(response),
            429 => ApiError::RateLimited {
                response,
                retry_after,
            },
            500..=599 => ApiError::Server(response),
            _ => ApiError::Other(response),
        }
    }

    /// A transport failure, described by the transport.
    pub fn transport(description: impl fmt::Display) -> Self {
        ApiError::Transport(description.to_string())
    }

    /// The response, for the classes that have one.
    pub fn response(&self) -> Option<&ErrorResponse> {
        match self {
            ApiError::Authentication(r)
            | ApiError::Forbidden(r)
            | ApiError::NotFound(r)
            | ApiError::Validation(r)
            | ApiError::Server(r)
            | ApiError::Other(r)
            | ApiError::RateLimited { response: r, .. } => Some(r),
            ApiError::Transport(_) | ApiError::Timeout => None,
        }
    }

    /// The status code, `None` for transport errors and timeouts.
    pub fn status(&self) -> Option<u16> {
        self.response().map(|r| r.status)
    }

    /// The body as received, `None` without a response.
    pub fn body(&self) -> Option<&[u8]> {
        self.response().map(|r| r.body.as_slice())
    }

    /// The error code read from the body.
    pub fn code(&self) -> Option<&str> {
        self.response().and_then(|r| r.code.as_deref())
    }

    /// The message read from the body.
    pub fn message(&self) -> Option<&str> {
        self.response().and_then(|r| r.message.as_deref())
    }

    /// The `Retry-After` of a 429.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the failure is transient, so the same request may succeed later: rate limiting, 500, 502, 503, 504,
    /// transport errors and timeouts (the default [`RetryPolicy::retry_on`](super::RetryPolicy::retry_on) plus the
    /// failures without a response). Whether resending is *safe* is another question, answered by the method
    /// ([`RetryState`](super::RetryState) asks both).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::RateLimited { .. } | ApiError::Transport(_) | ApiError::Timeout => true,
            ApiError::Server(r) => matches!(r.status, 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

type BodyFields = (Option<String>, Option<String>, Option<Value>);

fn read_body(body: &[u8]) -> BodyFields {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) else {
        return (None, plain_text(body), None);
    };
    match obj.remove("error") {
        // 1. {"error": {"code", "message", "details"}}
        Some(Value::Object(mut err)) => {
            return (
                err.remove("code").and_then(text),
                err.remove("message").and_then(text),
                err.remove("details").filter(|d| !d.is_null()),
            );
        }
        // 2. OAuth: {"error": "<code>", "error_description": "…"}
        Some(Value::String(code)) => {
            return (
                Some(code),
                obj.remove("error_description").and_then(text),
                None,
            );
        }
        _ => {}
    }
    // 3. {"detail": "…"} or {"detail": [...]}
    match obj.remove("detail") {
        Some(Value::String(message)) => return (None, Some(message), None),
        Some(detail @ (Value::Array(_) | Value::Object(_))) => {
            return (None, first_msg(&detail), Some(detail));
        }
        _ => {}
    }
    // 4. {"message": "…", "code"?, "errors"?}
    if let Some(message) = obj.remove("message").and_then(text) {
        let code = obj.remove("code").and_then(text);
        let details = obj.remove("errors").filter(|d| !d.is_null());
        return (code, Some(message), details);
    }
    (None, None, None)
}

/// A JSON value as text: strings as they are, numbers and booleans printed; `null`, arrays, objects: none.
fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `msg` of the first entry of a FastAPI-style validation list (or of a single object).
fn first_msg(detail: &Value) -> Option<String> {
    let first = match detail {
        Value::Array(items) => items.first()?,
        other => other,
    };
    first.get("msg").and_then(Value::as_str).map(String::from)
}

fn plain_text(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    let mut end = trimmed.len().min(MAX_MESSAGE_BYTES);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    Some(String::from(&trimmed[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use core::time::Duration;
    use serde_json::json;

    const SWITCHBOARD_BODY: &[u8] =
        br#"{"error":{"code":"NOT_FOUND","message":"no such channel"}}"#;

    #[test]
    fn every_class_by_status() {
        let cases: &[(u16, &str)] = &[
            (400, "Validation"),
            (401, "Authentication"),
            (403, "Forbidden"),
            (404, "NotFound"),
            (405, "Other"),
            (409, "Other"),
            (413, "Other"),
            (422, "Validation"),
            (429, "RateLimited"),
            (500, "Server"),
            (501, "Server"),
            (503, "Server"),
            (599, "Server"),
            (301, "Other"),
            (200, "Other"),
            (600, "Other"),
        ];
        for &(status, class) in cases {
            let e = ApiError::from_response(status, SWITCHBOARD_BODY, None);
            let got = format!("{e:?}");
            assert!(got.starts_with(class), "{status}: {got}");
            assert_eq!(e.status(), Some(status));
            assert_eq!(e.body(), Some(SWITCHBOARD_BODY));
            assert_eq!(e.code(), Some("NOT_FOUND"));
            assert_eq!(e.message(), Some("no such channel"));
        }
        let t = ApiError::transport("connection reset");
        assert_eq!(t, ApiError::Transport("connection reset".into()));
        assert_eq!(
            (t.status(), t.body(), t.code(), t.message()),
            (None, None, None, None)
        );
        assert_eq!(ApiError::Timeout.response(), None);
    }

    #[test]
    fn retryable_classes() {
        let retryable = |status| ApiError::from_response(status, b"", None).is_retryable();
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 409, 413, 422, 501, 505, 301] {
            assert!(!retryable(s), "{s}");
        }
        assert!(ApiError::Timeout.is_retryable());
        assert!(ApiError::transport("refused").is_retryable());
    }

    #[test]
    fn rate_limited_keeps_retry_after() {
        let ra = RetryAfter::Delay(Duration::from_secs(3));
        let e = ApiError::from_response(
            429,
            br#"{"error":{"code":"RATE_LIMITED","message":"slow down","details":{"retry_after_ms":3000}}}"#,
            Some(ra),
        );
        assert_eq!(e.retry_after(), Some(ra));
        assert_eq!(e.code(), Some("RATE_LIMITED"));
        assert_eq!(
            e.response().unwrap().details,
            Some(json!({"retry_after_ms": 3000}))
        );
        assert_eq!(e.to_string(), "rate limited (429 RATE_LIMITED: slow down)");
        // Other classes drop it.
        assert_eq!(
            ApiError::from_response(503, b"", Some(ra)).retry_after(),
            None
        );
    }

    #[test]
    fn body_shapes() {
        let read = |body: &str| {
            let r = ErrorResponse::parse(400, body.as_bytes());
            (r.code, r.message, r.details)
        };
        let s = |x: &str| Some(String::from(x));
        // 1. Switchboard, with details; a numeric code is printed.
        assert_eq!(
            read(
                r#"{"error":{"code":"VALIDATION_ERROR","message":"bad","details":{"field":"limit"}}}"#
            ),
            (
                s("VALIDATION_ERROR"),
                s("bad"),
                Some(json!({"field": "limit"}))
            )
        );
        assert_eq!(
            read(r#"{"error":{"code":42,"details":null}}"#),
            (s("42"), None, None)
        );
        // 2. OAuth.
        assert_eq!(
            read(r#"{"error":"invalid_token","error_description":"expired"}"#),
            (s("invalid_token"), s("expired"), None)
        );
        assert_eq!(
            read(r#"{"error":"invalid_grant"}"#),
            (s("invalid_grant"), None, None)
        );
        // 3. detail, as text and as a FastAPI list.
        assert_eq!(
            read(r#"{"detail":"Not authenticated"}"#),
            (None, s("Not authenticated"), None)
        );
        let fastapi = json!([{
            "loc": ["body", "limit"],
            "msg": "ensure this value is less than or equal to 1000",
            "type": "value_error"
        }]);
        assert_eq!(
            read(&format!(r#"{{"detail":{fastapi}}}"#)),
            (
                None,
                s("ensure this value is less than or equal to 1000"),
                Some(fastapi)
            )
        );
        assert_eq!(read(r#"{"detail":[]}"#), (None, None, Some(json!([]))));
        // 4. message, with code and errors.
        assert_eq!(
            read(r#"{"message":"Validation Failed","errors":[{"field":"name"}],"code":"invalid"}"#),
            (
                s("invalid"),
                s("Validation Failed"),
                Some(json!([{"field": "name"}]))
            )
        );
        // 5. Not JSON / unknown JSON / empty.
        assert_eq!(read("  Bad Gateway\n"), (None, s("Bad Gateway"), None));
        assert_eq!(read(r#"{"status":"not_ready"}"#), (None, None, None));
        assert_eq!(read("[1,2]"), (None, s("[1,2]"), None));
        assert_eq!(read(""), (None, None, None));
        assert_eq!(read(" \n"), (None, None, None));
        // The first shape wins: an error object beats a top-level message.
        assert_eq!(
            read(r#"{"message":"outer","error":{"code":"C","message":"inner"}}"#),
            (s("C"), s("inner"), None)
        );
    }

    #[test]
    fn plain_text_is_capped_on_a_char_boundary() {
        let long = "é".repeat(400); // 800 bytes
        let r = ErrorResponse::parse(502, long.as_bytes());
        let msg = r.message.unwrap();
        assert_eq!(msg.len(), MAX_MESSAGE_BYTES);
        assert!(msg.chars().all(|c| c == 'é'));
        assert_eq!(r.body.len(), 800);
        // Invalid UTF-8 is replaced, not refused.
        let r = ErrorResponse::parse(500, b"oops \xff");
        assert_eq!(r.message.as_deref(), Some("oops \u{fffd}"));
    }

    #[test]
    fn display() {
        let e = ApiError::from_response(404, SWITCHBOARD_BODY, None);
        assert_eq!(e.to_string(), "not found (404 NOT_FOUND: no such channel)");
        assert_eq!(
            ApiError::from_response(503, b"", None).to_string(),
            "server error (503)"
        );
        assert_eq!(ApiError::Timeout.to_string(), "request timed out");
        assert_eq!(
            ApiError::transport("reset").to_string(),
            "transport error: reset"
        );
    }

    proptest::proptest! {
        /// Any bytes: classification never panics and keeps the body.
        #[test]
        fn never_panics(status: u16, body: Vec<u8>) {
            let e = ApiError::from_response(status, &body, None);
            proptest::prop_assert_eq!(e.body(), Some(body.as_slice()));
            proptest::prop_assert_eq!(e.status(), Some(status));
        }
    }
}
