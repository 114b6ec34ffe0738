//! What a request is before it becomes bytes: a typed [`Method`] and [`RequestParts`] (method, origin-form target,
//! headers, body), which the async layer writes out as HTTP/1.1.
//!
//! The helpers here are the ones the other `http` pieces lean on: [`Method::is_idempotent`] for the retry decision,
//! [`RequestParts::cache_key`] for the response cache, and [`encode_path_segment`] / [`RequestParts::push_query`]
//! for building targets such as `/api/v1/channels/{channel}/events?since=…` (PROTOCOL §7: channel names in paths
//! are percent-encoded).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::str::FromStr;

/// An HTTP request method (RFC 9110 §9, plus PATCH from RFC 5789).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`: safe, idempotent, cacheable.
    Get,
    /// `HEAD`: safe, idempotent.
    Head,
    /// `POST`: neither safe nor idempotent.
    Post,
    /// `PUT`: idempotent.
    Put,
    /// `DELETE`: idempotent.
    Delete,
    /// `CONNECT`: neither safe nor idempotent.
    Connect,
    /// `OPTIONS`: safe, idempotent.
    Options,
    /// `TRACE`: safe, idempotent.
    Trace,
    /// `PATCH`: neither safe nor idempotent.
    Patch,
}

impl Method {
    /// Every method, in declaration order.
    pub const ALL: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Connect,
        Method::Options,
        Method::Trace,
        Method::Patch,
    ];

    /// The method's token as it goes on the wire, e.g. `"GET"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
        }
    }

    /// Whether sending the request twice has the same intended effect as sending it once (RFC 9110 §9.2.2): `GET`,
    /// `HEAD`, `PUT`, `DELETE`, `OPTIONS` and `TRACE`. Only these are resent after a transport error or a timeout,
    /// when the server may or may not have acted on the first copy.
    pub const fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }

    /// Whether the method is read-only (RFC 9110 §9.2.1): `GET`, `HEAD`, `OPTIONS` and `TRACE`. A request with any
    /// other method is a write, which invalidates cached responses for its target ([`RequestParts::invalidates`]).
    pub const fn is_safe(self) -> bool {
        matches!(
            self,
            Method::Get | Method::Head | Method::Options | Method::Trace
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`Method::from_str`] met a token that is not one of the nine methods (methods are case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown HTTP method {0:?}")]
#[non_exhaustive]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;

    /// Parses the exact (upper-case) token, as RFC 9110 §9.1 says methods are case-sensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMethod(String::from(s)))
    }
}

/// A request ready to be written: method, origin-form target (path and optional query), headers and body.
///
/// - **Build**: [`new`](Self::new), then [`with_query`](Self::with_query) / [`push_query`](Self::push_query),
///   [`with_header`](Self::with_header), [`with_body`](Self::with_body).
/// - **Read**: [`path`](Self::path), [`query`](Self::query), [`header`](Self::header).
/// - **Feed the other machines**: [`is_idempotent`](Self::is_idempotent) for
///   [`RetryState`](super::RetryState), [`cache_key`](Self::cache_key) and [`invalidates`](Self::invalidates)
///   for [`ResponseCache`](super::ResponseCache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestParts {
    /// The method.
    pub method: Method,
    /// Origin-form request target: `/path` or `/path?query`, already percent-encoded.
    pub target: String,
    /// Header fields in the order they go out. Names are compared case-insensitively by [`header`](Self::header).
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

impl RequestParts {
    /// A request for `target` (an origin-form path such as `/health`, optionally with a query) with no headers and
    /// no body. The target is taken as is: encode dynamic segments with [`encode_path_segment`].
    pub fn new(method: Method, target: impl Into<String>) -> Self {
        RequestParts {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// [`push_query`](Self::push_query), builder style.
    pub fn with_query(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.push_query(key, value);
        self
    }

    /// Appends `key=value` to the query, starting it with `?` or continuing it with `&`. Both are percent-encoded
    /// ([`encode_path_segment`] rules), so any text is safe to pass.
    pub fn push_query(&mut self, key: &str, value: impl fmt::Display) {
        let sep = if self.target.contains('?') { '&' } else { '?' };
        self.target.push(sep);
        push_encoded(&mut self.target, key);
        self.target.push('=');
        let mut encoder = Encoder(&mut self.target);
        write!(encoder, "{value}").expect("writing to a String cannot fail");
    }

    /// Adds a header field, builder style.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body and its `content-type`, builder style (an existing `content-type` is replaced).
    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
        self.headers
            .push((String::from("content-type"), String::from(content_type)));
        self.body = body.into();
        self
    }

    /// The value of the first header field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target's path: everything before the first `?` (or `#`).
    pub fn path(&self) -> &str {
        split_target(&self.target).0
    }

    /// The target's query, without the `?`, if it has one.
    pub fn query(&self) -> Option<&str> {
        split_target(&self.target).1
    }

    /// Whether the request may be resent after a transport error or timeout ([`Method::is_idempotent`]).
    pub fn is_idempotent(&self) -> bool {
        self.method.is_idempotent()
    }

    /// The [`ResponseCache`](super::ResponseCache) key of a `GET`: [`cache_key`]`(GET, target)`. `None` for every
    /// other method, whose responses are not cached.
    pub fn cache_key(&self) -> Option<String> {
        (self.method == Method::Get).then(|| cache_key(self.method, &self.target))
    }

    /// The path a write invalidates in the cache
    /// ([`ResponseCache::invalidate_write`](super::ResponseCache::invalidate_write)): the request's path for every
    /// method that is not [safe](Method::is_safe), `None` for reads.
    pub fn invalidates(&self) -> Option<&str> {
        (!self.method.is_safe()).then(|| self.path())
    }
}

/// The cache key of a request: `"{METHOD} {target}"`, e.g. `"GET /api/info"`. The target is used exactly as sent,
/// so two spellings of one URL (a different query order, a different percent-encoding) are two keys.
pub fn cache_key(method: Method, target: &str) -> String {
    let mut key = String::with_capacity(method.as_str().len() + 1 + target.len());
    key.push_str(method.as_str());
    key.push(' ');
    key.push_str(target);
    key
}

/// Percent-encodes `segment` for use as one path segment or one query key or value: every byte except the
/// RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX` (upper-case hex), so `/`, `?`, `&`, `=`,
/// `%`, spaces and non-ASCII bytes can never change the shape of the target.
///
/// ```
/// use switchboard_protocol::http_client::encode_path_segment;
/// assert_eq!(encode_path_segment("room/1:chat@eu"), "room%2F1%3Achat%40eu");
/// ```
pub fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    push_encoded(&mut out, segment);
    out
}

fn push_encoded(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

/// A [`fmt::Write`] that percent-encodes what is written into the wrapped string.
struct Encoder<'a>(&'a mut String);

impl fmt::Write for Encoder<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_encoded(self.0, s);
        Ok(())
    }
}

/// Splits an origin-form or absolute target into (path, query). The fragment, if any, is dropped. For an absolute
/// URL (`scheme://authority/path?q`) the path starts at the first `/` after the authority (`/` when there is none).
pub(crate) fn split_target(target: &str) -> (&str, Option<&str>) {
    let without_fragment = target.split_once('#').map_or(target, |(t, _)| t);
    let (before_query, query) = match without_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (without_fragment, None),
    };
    let path = match before_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => before_query,
    };
    (path, query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn methods_round_trip_and_classify() {
        for m in Method::ALL {
            assert_eq!(m.as_str().parse::<Method>(), Ok(m));
            assert_eq!(m.to_string(), m.as_str());
        }
        let idempotent: Vec<Method> = Method::ALL
            .into_iter()
            .filter(|m| m.is_idempotent())
            .collect();
        assert_eq!(
            idempotent,
            [
                Method::Get,
                Method::Head,
                Method::Put,
                Method::Delete,
                Method::Options,
                Method::Trace
            ]
        );
        let safe: Vec<Method> = Method::ALL.into_iter().filter(|m| m.is_safe()).collect();
        assert_eq!(
            safe,
            [Method::Get, Method::Head, Method::Options, Method::Trace]
        );
        assert_eq!(
            "get".parse::<Method>(),
            Err(UnknownMethod("get".to_string()))
        );
        assert!("".parse::<Method>().is_err());
    }

    #[test]
    fn targets_are_built_encoded() {
        let channel = encode_path_segment("projects/42 ü");
        assert_eq!(channel, "projects%2F42%20%C3%BC");
        let req = RequestParts::new(
            Method::Get,
            alloc::format!("/api/v1/channels/{channel}/events"),
        )
        .with_query("since", 17)
        .with_query("limit", 1000)
        .with_query("a&b", "c=d?");
        assert_eq!(
            req.target,
            "/api/v1/channels/projects%2F42%20%C3%BC/events?since=17&limit=1000&a%26b=c%3Dd%3F"
        );
        assert_eq!(req.path(), "/api/v1/channels/projects%2F42%20%C3%BC/events");
        assert_eq!(req.query(), Some("since=17&limit=1000&a%26b=c%3Dd%3F"));
        assert_eq!(encode_path_segment("AZaz09-._~"), "AZaz09-._~");
    }

    #[test]
    fn headers_and_body() {
        let req = RequestParts::new(Method::Post, "/api/v1/channels/a/events")
            .with_header("Content-Type", "text/plain")
            .with_header("Authorization", "Bearer k")
            .with_body("application/json", br#"{"event":1}"#.to_vec());
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("AUTHORIZATION"), Some("Bearer k"));
        assert_eq!(req.header("x-missing"), None);
        assert_eq!(req.headers.len(), 2);
        assert_eq!(req.body, br#"{"event":1}"#);
    }

    #[test]
    fn cache_key_and_invalidation_follow_the_method() {
        let get = RequestParts::new(Method::Get, "/api/info?x=1");
        assert_eq!(get.cache_key().as_deref(), Some("GET /api/info?x=1"));
        assert_eq!(get.invalidates(), None);
        assert!(get.is_idempotent());

        let head = RequestParts::new(Method::Head, "/api/info");
        assert_eq!(head.cache_key(), None);
        assert_eq!(head.invalidates(), None);

        let post = RequestParts::new(Method::Post, "/api/v1/channels/a/events?x=1");
        assert_eq!(post.cache_key(), None);
        assert_eq!(post.invalidates(), Some("/api/v1/channels/a/events"));
        assert!(!post.is_idempotent());

        let delete = RequestParts::new(Method::Delete, "/items/4");
        assert_eq!(delete.invalidates(), Some("/items/4"));
        assert!(delete.is_idempotent());
    }

    #[test]
    fn split_target_handles_every_shape() {
        assert_eq!(split_target("/a/b"), ("/a/b", None));
        assert_eq!(split_target("/a/b?"), ("/a/b", Some("")));
        assert_eq!(split_target("/a?x=1#frag"), ("/a", Some("x=1")));
        assert_eq!(split_target("/a#f?x"), ("/a", None));
        assert_eq!(
            split_target("https://h.example:8080/a/b?q=1"),
            ("/a/b", Some("q=1"))
        );
        assert_eq!(split_target("http://h.example"), ("/", None));
        assert_eq!(split_target("http://h.example?q"), ("/", Some("q")));
        assert_eq!(split_target(""), ("", None));
    }
}
