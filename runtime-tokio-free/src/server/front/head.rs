//! Request heads from bytes: `httparse` tokenizes, [`RequestHead::from_parts`] (in the protocol crate) takes the
//! pieces. The front's only byte-level parsing; every rule read from a head lives with the head's type.

use switchboard_protocol::rest::{MAX_HEADERS, RequestHead, RequestReadError};

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)` means the head is not complete yet; `Ok(Some((head, len)))` gives the head and how many bytes of
/// `buf` it took. A head longer than `max_head` bytes (or with more than [`MAX_HEADERS`] headers) is
/// [`RequestReadError::HeadTooLarge`]; a malformed one is [`RequestReadError::BadRequest`].
pub fn parse_head(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(RequestHead, usize)>, RequestReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() > max_head {
                Err(RequestReadError::HeadTooLarge)
            } else {
                Ok(None)
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            if len > max_head {
                return Err(RequestReadError::HeadTooLarge);
            }
            let headers = req.headers.iter().map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            });
            let head = RequestHead::from_parts(
                req.method.unwrap_or_default(),
                req.path.unwrap_or_default(),
                req.version.unwrap_or(1),
                headers,
            )?;
            Ok(Some((head, len)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(RequestReadError::HeadTooLarge),
        Err(e) => Err(RequestReadError::BadRequest(format!(
            "malformed request: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_complete_head_and_reports_its_length() {
        let raw = "GET /api/v1/channels/a%2Fb/events?since=3&limit=10 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\r\nrest";
        let (h, len) = parse_head(raw.as_bytes(), 1024).unwrap().unwrap();
        assert_eq!(&raw[len..], "rest");
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/api/v1/channels/a%2Fb/events");
        assert_eq!(h.query_param("since").unwrap().as_deref(), Some("3"));
        assert_eq!(h.query_param("limit").unwrap().as_deref(), Some("10"));
        assert!(h.has_token("connection", "upgrade"));
        assert!(h.keep_alive());
        assert_eq!(h.header("HOST"), Some("x"));
        let h10 = parse_head(b"GET / HTTP/1.0\r\n\r\n", 1024)
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(h10.minor_version, 0);
        assert!(!h10.keep_alive());
        let auth = "GET /?token=q HTTP/1.1\r\nAuthorization: Bearer  abc \r\n\r\n";
        let h = parse_head(auth.as_bytes(), 1024).unwrap().unwrap().0;
        assert_eq!(h.bearer_token().unwrap().as_deref(), Some("abc"));
    }

    #[test]
    fn partial_heads_wait_and_oversize_heads_fail() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost:", 1024).unwrap(), None);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(2000));
        assert_eq!(
            parse_head(big.as_bytes(), 1024),
            Err(RequestReadError::HeadTooLarge)
        );
        let complete_but_big = format!("{big}\r\n");
        assert_eq!(
            parse_head(complete_but_big.as_bytes(), 1024),
            Err(RequestReadError::HeadTooLarge)
        );
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_head(raw.as_bytes(), 64 * 1024),
            Err(RequestReadError::HeadTooLarge)
        );
        assert!(matches!(
            parse_head(b"G\x01T / HTTP/1.1\r\n\r\n", 1024),
            Err(RequestReadError::BadRequest(_))
        ));
        assert!(matches!(
            parse_head(b"GET http://x/ HTTP/1.1\r\n\r\n", 1024),
            Err(RequestReadError::BadRequest(_))
        ));
    }
}
