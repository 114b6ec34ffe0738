//! A request head as the front's tokenizer gives it: method, path, query, version and headers, with the rules
//! read from them (keep-alive, body framing, the bearer token).

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use super::query::parse_query;
use super::read_error::RequestReadError;

/// Most headers a request may carry; more is answered like an over-size head (431).
pub const MAX_HEADERS: usize = 64;

/// A parsed request head (request line and headers; the body is read separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path as sent, still percent-encoded, without the query.
    pub path: String,
    /// The raw query string (after `?`), without decoding; empty when absent.
    pub raw_query: String,
    /// The minor HTTP version: `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// Headers in order, names lower-cased. Values that are not UTF-8 are kept lossily.
    pub headers: Vec<(String, String)>,
}

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes follow the head.
    Length(usize),
}

impl RequestHead {
    /// A head from the request line's parts and the headers (names are lower-cased here). The target must be an
    /// absolute path (`/…`, with an optional `?query`).
    pub fn from_parts(
        method: &str,
        target: &str,
        minor_version: u8,
        headers: impl IntoIterator<Item = (String, String)>,
    ) -> Result<RequestHead, RequestReadError> {
        let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        if !path.starts_with('/') {
            return Err(RequestReadError::BadRequest(
                "request target must be an absolute path".into(),
            ));
        }
        Ok(RequestHead {
            method: method.to_owned(),
            path: path.to_owned(),
            raw_query: raw_query.to_owned(),
            minor_version,
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v))
                .collect(),
        })
    }

    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any value of a comma-separated header holds `token` (case-insensitive), as for
    /// `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The decoded query parameters, in order. Fails on bad percent-encoding.
    pub fn query(&self) -> Result<Vec<(String, String)>, RequestReadError> {
        parse_query(&self.raw_query)
    }

    /// The first value of a query parameter, decoded.
    pub fn query_param(&self, key: &str) -> Result<Option<String>, RequestReadError> {
        Ok(self
            .query()?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    /// Whether the connection stays open after the response: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only
    /// with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        if self.has_token("connection", "close") {
            return false;
        }
        self.minor_version >= 1 || self.has_token("connection", "keep-alive")
    }

    /// How the body is framed. `Transfer-Encoding` (chunked or otherwise) is refused with 411 Length Required:
    /// the API's bodies are small JSON documents that every client sends with a `Content-Length`.
    pub fn body_framing(&self, max_body: usize) -> Result<BodyFraming, RequestReadError> {
        if self.header("transfer-encoding").is_some() {
            return Err(RequestReadError::LengthRequired);
        }
        let mut lengths = self
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v.trim());
        let Some(first) = lengths.next() else {
            return Ok(BodyFraming::None);
        };
        if lengths.any(|other| other != first) {
            return Err(RequestReadError::BadRequest(
                "conflicting Content-Length headers".into(),
            ));
        }
        if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RequestReadError::BadRequest(
                "invalid Content-Length".into(),
            ));
        }
        match first.parse::<usize>() {
            Ok(0) => Ok(BodyFraming::None),
            Ok(n) if n <= max_body => Ok(BodyFraming::Length(n)),
            _ => Err(RequestReadError::BodyTooLarge { max: max_body }),
        }
    }

    /// The bearer token of the request: `Authorization: Bearer <token>`, else the `token` query parameter.
    pub fn bearer_token(&self) -> Result<Option<String>, RequestReadError> {
        if let Some(auth) = self.header("authorization") {
            let auth = auth.trim();
            let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
            if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
                return Ok(Some(rest.trim().to_owned()));
            }
        }
        self.query_param("token")
    }
}

/// A head for tests: `target` with these headers, HTTP/1.1 unless `minor_version` says otherwise.
#[cfg(test)]
pub(crate) fn head(
    method: &str,
    target: &str,
    minor_version: u8,
    headers: &[(&str, &str)],
) -> RequestHead {
    RequestHead::from_parts(
        method,
        target,
        minor_version,
        headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_path_and_query_and_lowercases_names() {
        let h = head(
            "GET",
            "/api/v1/channels/a%2Fb/events?since=3&limit=10",
            1,
            &[("Host", "x"), ("Connection", "keep-alive, Upgrade")],
        );
        assert_eq!(h.path, "/api/v1/channels/a%2Fb/events");
        assert_eq!(h.query_param("since").unwrap().as_deref(), Some("3"));
        assert_eq!(h.query_param("limit").unwrap().as_deref(), Some("10"));
        assert_eq!(h.query_param("nope").unwrap(), None);
        assert!(h.has_token("connection", "upgrade"));
        assert!(h.keep_alive());
        assert_eq!(h.header("HOST"), Some("x"));
        assert_eq!(h.headers[0].0, "host");
        assert!(matches!(
            RequestHead::from_parts("GET", "http://x/", 1, []),
            Err(RequestReadError::BadRequest(_))
        ));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!head("GET", "/", 1, &[("Connection", "close")]).keep_alive());
        assert!(!head("GET", "/", 0, &[]).keep_alive());
        assert!(head("GET", "/", 0, &[("Connection", "Keep-Alive")]).keep_alive());
    }

    #[test]
    fn body_framing() {
        let h = head("POST", "/", 1, &[("Content-Length", "12")]);
        assert_eq!(h.body_framing(100), Ok(BodyFraming::Length(12)));
        assert_eq!(
            h.body_framing(10),
            Err(RequestReadError::BodyTooLarge { max: 10 })
        );
        let h = head(
            "POST",
            "/",
            1,
            &[("Content-Length", "99999999999999999999999")],
        );
        assert_eq!(
            h.body_framing(10),
            Err(RequestReadError::BodyTooLarge { max: 10 })
        );
        let h = head("POST", "/", 1, &[("Content-Length", "-1")]);
        assert!(matches!(
            h.body_framing(10),
            Err(RequestReadError::BadRequest(_))
        ));
        let h = head(
            "POST",
            "/",
            1,
            &[("Content-Length", "1"), ("Content-Length", "2")],
        );
        assert!(matches!(
            h.body_framing(10),
            Err(RequestReadError::BadRequest(_))
        ));
        let h = head("POST", "/", 1, &[("Transfer-Encoding", "chunked")]);
        assert_eq!(h.body_framing(10), Err(RequestReadError::LengthRequired));
        let h = head("GET", "/", 1, &[]);
        assert_eq!(h.body_framing(10), Ok(BodyFraming::None));
    }

    #[test]
    fn bearer_token_from_header_or_query() {
        let h = head("GET", "/?token=q", 1, &[("Authorization", "Bearer  abc ")]);
        assert_eq!(h.bearer_token().unwrap().as_deref(), Some("abc"));
        let h = head("GET", "/?token=q%2B1", 1, &[("Authorization", "Basic xyz")]);
        assert_eq!(h.bearer_token().unwrap().as_deref(), Some("q+1"));
        let h = head("GET", "/", 1, &[]);
        assert_eq!(h.bearer_token().unwrap(), None);
    }
}
