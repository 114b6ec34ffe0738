//! Request heads: parsing with `httparse`, header and query access, percent-decoding, body framing.
//!
//! Everything here is sans-IO: [`parse_head`] takes the bytes read so far and says whether a whole head is there.
//! The connection loop (`server::http_conn`) does the reading.

use super::error::RequestError;

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
    pub fn query(&self) -> Result<Vec<(String, String)>, RequestError> {
        parse_query(&self.raw_query)
    }

    /// The first value of a query parameter, decoded.
    pub fn query_param(&self, key: &str) -> Result<Option<String>, RequestError> {
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
    pub fn body_framing(&self, max_body: usize) -> Result<BodyFraming, RequestError> {
        if self.header("transfer-encoding").is_some() {
            return Err(RequestError::LengthRequired);
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
            return Err(RequestError::BadRequest(
                "conflicting Content-Length headers".into(),
            ));
        }
        if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RequestError::BadRequest("invalid Content-Length".into()));
        }
        match first.parse::<usize>() {
            Ok(0) => Ok(BodyFraming::None),
            Ok(n) if n <= max_body => Ok(BodyFraming::Length(n)),
            _ => Err(RequestError::BodyTooLarge { max: max_body }),
        }
    }

    /// The bearer token of the request: `Authorization: Bearer <token>`, else the `token` query parameter.
    pub fn bearer_token(&self) -> Result<Option<String>, RequestError> {
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

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)` means the head is not complete yet; `Ok(Some((head, len)))` gives the head and how many bytes of
/// `buf` it took. A head longer than `max_head` bytes (or with more than [`MAX_HEADERS`] headers) is
/// [`RequestError::HeadTooLarge`]; a malformed one is [`RequestError::BadRequest`].
pub fn parse_head(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(RequestHead, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() > max_head {
                Err(RequestError::HeadTooLarge)
            } else {
                Ok(None)
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            if len > max_head {
                return Err(RequestError::HeadTooLarge);
            }
            let method = req.method.unwrap_or_default().to_owned();
            let target = req.path.unwrap_or_default();
            let (path, raw_query) = match target.split_once('?') {
                Some((p, q)) => (p, q),
                None => (target, ""),
            };
            if !path.starts_with('/') {
                return Err(RequestError::BadRequest(
                    "request target must be an absolute path".into(),
                ));
            }
            let headers = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let head = RequestHead {
                method,
                path: path.to_owned(),
                raw_query: raw_query.to_owned(),
                minor_version: req.version.unwrap_or(1),
                headers,
            };
            Ok(Some((head, len)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(RequestError::HeadTooLarge),
        Err(e) => Err(RequestError::BadRequest(format!("malformed request: {e}"))),
    }
}

/// Decodes `%XX` escapes; with `plus_is_space`, `+` becomes a space (query strings). The result must be UTF-8.
pub fn percent_decode(input: &str, plus_is_space: bool) -> Result<String, RequestError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| RequestError::BadRequest("bad percent-encoding".into()))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| RequestError::BadRequest("percent-encoded text is not UTF-8".into()))
}

/// Splits and decodes a query string (`a=1&b=x%20y`). A key without `=` has an empty value.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, RequestError> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> RequestHead {
        parse_head(raw.as_bytes(), 16 * 1024).unwrap().unwrap().0
    }

    #[test]
    fn parses_a_complete_head_and_reports_its_length() {
        let raw = "GET /api/v1/channels/a%2Fb/events?since=3&limit=10 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\r\nrest";
        let (h, len) = parse_head(raw.as_bytes(), 1024).unwrap().unwrap();
        assert_eq!(&raw[len..], "rest");
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/api/v1/channels/a%2Fb/events");
        assert_eq!(h.query_param("since").unwrap().as_deref(), Some("3"));
        assert_eq!(h.query_param("limit").unwrap().as_deref(), Some("10"));
        assert_eq!(h.query_param("nope").unwrap(), None);
        assert!(h.has_token("connection", "upgrade"));
        assert!(h.keep_alive());
        assert_eq!(h.header("HOST"), Some("x"));
    }

    #[test]
    fn partial_heads_wait_and_oversize_heads_fail() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost:", 1024).unwrap(), None);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(2000));
        assert_eq!(
            parse_head(big.as_bytes(), 1024),
            Err(RequestError::HeadTooLarge)
        );
        let complete_but_big = format!("{big}\r\n");
        assert_eq!(
            parse_head(complete_but_big.as_bytes(), 1024),
            Err(RequestError::HeadTooLarge)
        );
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_head(raw.as_bytes(), 64 * 1024),
            Err(RequestError::HeadTooLarge)
        );
        assert!(matches!(
            parse_head(b"G\x01T / HTTP/1.1\r\n\r\n", 1024),
            Err(RequestError::BadRequest(_))
        ));
        assert!(matches!(
            parse_head(b"GET http://x/ HTTP/1.1\r\n\r\n", 1024),
            Err(RequestError::BadRequest(_))
        ));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn body_framing() {
        let h = head("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(h.body_framing(100), Ok(BodyFraming::Length(12)));
        assert_eq!(
            h.body_framing(10),
            Err(RequestError::BodyTooLarge { max: 10 })
        );
        let h = head("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert_eq!(
            h.body_framing(10),
            Err(RequestError::BodyTooLarge { max: 10 })
        );
        let h = head("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(
            h.body_framing(10),
            Err(RequestError::BadRequest(_))
        ));
        let h = head("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        assert!(matches!(
            h.body_framing(10),
            Err(RequestError::BadRequest(_))
        ));
        let h = head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.body_framing(10), Err(RequestError::LengthRequired));
        let h = head("GET / HTTP/1.1\r\n\r\n");
        assert_eq!(h.body_framing(10), Ok(BodyFraming::None));
    }

    #[test]
    fn percent_decoding_and_queries() {
        assert_eq!(percent_decode("a%2Fb%40c", false).unwrap(), "a/b@c");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert_eq!(percent_decode("a+b", true).unwrap(), "a b");
        assert!(percent_decode("%zz", false).is_err());
        assert!(percent_decode("%4", false).is_err());
        assert!(percent_decode("%ff", false).is_err());
        assert_eq!(
            parse_query("a=1&b&c=x%20y&&").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), String::new()),
                ("c".into(), "x y".into())
            ]
        );
    }

    #[test]
    fn bearer_token_from_header_or_query() {
        let h = head("GET /?token=q HTTP/1.1\r\nAuthorization: Bearer  abc \r\n\r\n");
        assert_eq!(h.bearer_token().unwrap().as_deref(), Some("abc"));
        let h = head("GET /?token=q%2B1 HTTP/1.1\r\nAuthorization: Basic xyz\r\n\r\n");
        assert_eq!(h.bearer_token().unwrap().as_deref(), Some("q+1"));
        let h = head("GET / HTTP/1.1\r\n\r\n");
        assert_eq!(h.bearer_token().unwrap(), None);
    }
}
