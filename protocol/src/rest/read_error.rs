//! What can be wrong with a request at the HTTP level, found while reading its head and framing its body.

use alloc::format;
use alloc::string::String;

use super::error_reply::ErrorReply;

/// What is wrong with a request at the HTTP level, found while reading it. The peer is at fault in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestReadError {
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

impl From<RequestReadError> for ErrorReply {
    fn from(e: RequestReadError) -> ErrorReply {
        match e {
            RequestReadError::BadRequest(m) => ErrorReply::bad_request(m),
            RequestReadError::HeadTooLarge => {
                ErrorReply::new(431, "HEADERS_TOO_LARGE", "request head over the size limit")
            }
            RequestReadError::BodyTooLarge { max } => ErrorReply::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("request body over {max} bytes"),
            ),
            RequestReadError::LengthRequired => ErrorReply::new(
                411,
                "LENGTH_REQUIRED",
                "send the body with a Content-Length (chunked bodies are not accepted)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_map_to_statuses_and_codes() {
        let cases = [
            (RequestReadError::BadRequest("x".into()), 400, "BAD_REQUEST"),
            (RequestReadError::HeadTooLarge, 431, "HEADERS_TOO_LARGE"),
            (
                RequestReadError::BodyTooLarge { max: 1 },
                413,
                "PAYLOAD_TOO_LARGE",
            ),
            (RequestReadError::LengthRequired, 411, "LENGTH_REQUIRED"),
        ];
        for (e, status, code) in cases {
            let reply = ErrorReply::from(e);
            assert_eq!((reply.status, reply.code), (status, code));
        }
    }
}
