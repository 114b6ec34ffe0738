//! The seam between the SDK and the network: the [`HttpTransport`] trait, the [`Response`] it returns and the
//! [`TransportError`] it fails with.
//!
//! A transport sends **one** request and returns **one** complete response (or fails), within a timeout. It knows
//! nothing of retries, rate limits, caching or JSON: [`ApiClient`](super::ApiClient) does those, once, for every
//! transport. Two transports exist: [`H1Transport`](super::H1Transport), HTTP/1.1 from `ureq-proto` over
//! [`Runtime::connect`](crate::Runtime::connect), and (behind the async-std adapter's `surf` feature) one that sends
//! through a `surf::Client`.

use std::fmt::Debug;
use std::io;
use std::time::Duration;

use switchboard_protocol::http_client::{Outcome, RequestParts};

use super::endpoint::Endpoint;
use crate::runtime::BoxFuture;

/// Sends one HTTP request and reads its whole response.
///
/// Implementations must: write `request` (its `target` is origin-form and already includes the endpoint's base
/// path) to `endpoint`; give up with [`TransportError::Timeout`] once `timeout` has passed since the call, whatever
/// stage the exchange is in; return any status as a [`Response`] (a 404 or a 503 is a response, not an error); and
/// be safe to call from many tasks at once.
pub trait HttpTransport: Debug + Send + Sync + 'static {
    /// Sends `request` to `endpoint` and returns its response, or fails (see the trait docs).
    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        request: &'a RequestParts,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Response, TransportError>>;
}

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields in the order received; names as received (compare them case-insensitively, or use
    /// [`header`](Self::header)).
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a transport produced no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The host name did not resolve.
    #[error("could not resolve {host}: {source}")]
    Resolve {
        /// `host:port` as looked up.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// No TCP (or TLS) connection could be opened.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// What was dialled.
        addr: String,
        /// The last dial's error.
        #[source]
        source: io::Error,
    },
    /// The connection failed while the request was being written or the response read (reset, closed early).
    #[error("connection failed: {0}")]
    Io(#[source] io::Error),
    /// The TLS handshake was refused by TLS itself: an untrusted or mismatched certificate, no common protocol.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The peer's bytes are not valid HTTP/1.1.
    #[error("invalid HTTP response: {0}")]
    Protocol(String),
    /// The response's head or body is longer than the transport accepts.
    #[error("response {what} larger than the {limit}-byte limit")]
    TooLarge {
        /// `"head"` or `"body"`.
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request cannot be written (a header that is not valid HTTP, a method the transport lacks).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The transport does not support this (e.g. `https` on a build without TLS).
    #[error("unsupported by this transport: {0}")]
    Unsupported(String),
    /// No complete response within the timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
}

impl TransportError {
    /// Whether the same request might succeed if sent again: resolve, connect and I/O failures and timeouts. A
    /// malformed or oversized response, a refused TLS handshake, an invalid request and an unsupported feature would
    /// fail the same way, so
    /// the client gives up on them at once.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportError::Resolve { .. }
                | TransportError::Connect { .. }
                | TransportError::Io(_)
                | TransportError::Timeout(_)
        )
    }

    /// What the retry machine is told about this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            TransportError::Timeout(_) => Outcome::Timeout,
            _ => Outcome::TransportError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_and_first_wins() {
        let r = Response {
            status: 204,
            headers: vec![
                ("Retry-After".into(), "3".into()),
                ("retry-after".into(), "9".into()),
            ],
            body: Vec::new(),
        };
        assert_eq!(r.header("RETRY-AFTER"), Some("3"));
        assert_eq!(r.header("x"), None);
        assert!(r.is_success());
    }

    #[test]
    fn retryable_failures_and_their_outcomes() {
        let io = || io::Error::from(io::ErrorKind::ConnectionReset);
        let timeout = TransportError::Timeout(Duration::from_secs(1));
        assert!(timeout.is_retryable());
        assert_eq!(timeout.outcome(), Outcome::Timeout);
        assert!(TransportError::Io(io()).is_retryable());
        assert_eq!(TransportError::Io(io()).outcome(), Outcome::TransportError);
        for e in [
            TransportError::Protocol("x".into()),
            TransportError::TooLarge {
                what: "body",
                limit: 1,
            },
            TransportError::InvalidRequest("x".into()),
            TransportError::Unsupported("https".into()),
            TransportError::Tls("unknown issuer".into()),
        ] {
            assert!(!e.is_retryable(), "{e}");
        }
    }
}
