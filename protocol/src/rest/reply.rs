//! An HTTP/1.1 response of the server's front: status, headers and body, serialised with a `Content-Length`.

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use super::error_reply::ErrorReply;

/// A response ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers other than `Content-Length` and `Connection`, which [`Reply::to_bytes`] writes itself.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON response.
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A JSON response whose body is already written.
    pub fn json_text(status: u16, body: String) -> Reply {
        Reply::text(status, "application/json", body)
    }

    /// A plain-text response with the given content type.
    pub fn text(status: u16, content_type: &str, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into_bytes(),
        }
    }

    /// The JSON error answer for `error`, with its extra headers.
    pub fn error(error: &ErrorReply) -> Reply {
        let mut r = Reply::json(error.status, &error.body());
        for (name, value) in &error.headers {
            r.headers.push(((*name).to_owned(), value.clone()));
        }
        r
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The response as bytes on the wire. `keep_alive` chooses the `Connection` header.
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        self.encode(keep_alive, true)
    }

    /// The response to a `HEAD` request: the same head (with the body's `Content-Length`), no body.
    pub fn head_bytes(&self, keep_alive: bool) -> Vec<u8> {
        self.encode(keep_alive, false)
    }

    fn encode(&self, keep_alive: bool, with_body: bool) -> Vec<u8> {
        let mut head = String::with_capacity(128);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        head.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        let mut out = head.into_bytes();
        if with_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase for the statuses this server sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_length_and_connection() {
        let r = Reply::json(201, &serde_json::json!({"a": 1}));
        let text = String::from_utf8(r.to_bytes(true)).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n{\"a\":1}"
        );
        let head = String::from_utf8(r.head_bytes(true)).unwrap();
        assert!(head.ends_with("Content-Length: 7\r\nConnection: keep-alive\r\n\r\n"));
        let text =
            String::from_utf8(Reply::error(&ErrorReply::not_found()).to_bytes(false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(
            text.ends_with("{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no such route\"}}")
        );
    }

    #[test]
    fn error_headers_are_kept() {
        let r = Reply::error(&ErrorReply::method_not_allowed(&["GET"]));
        assert_eq!(r.header("allow"), Some("GET"));
        assert_eq!(r.status, 405);
    }
}
