//! The WebSocket opening handshake, server side (RFC 6455 §4.2): checking the upgrade request and writing the
//! `101 Switching Protocols` answer. Failures are HTTP 400 answers sent before any upgrade.

use async_tungstenite::tungstenite::handshake::derive_accept_key;

use switchboard_protocol::rest::{ErrorReply, RequestHead};

/// Checks an upgrade request and returns the `Sec-WebSocket-Accept` value.
///
/// Needs HTTP/1.1 or later, `Upgrade: websocket`, a `Connection` header with the `upgrade` token,
/// `Sec-WebSocket-Version: 13` (else 400 with `Sec-WebSocket-Version: 13`, as the RFC asks) and a
/// `Sec-WebSocket-Key` that is the base64 of 16 bytes. The method and path were checked by the router.
pub fn check_upgrade(head: &RequestHead) -> Result<String, ErrorReply> {
    if head.minor_version < 1 {
        return Err(ErrorReply::bad_request("WebSocket upgrades need HTTP/1.1"));
    }
    if !head.has_token("upgrade", "websocket") {
        return Err(ErrorReply::bad_request(
            "this endpoint needs a WebSocket upgrade (Upgrade: websocket)",
        ));
    }
    if !head.has_token("connection", "upgrade") {
        return Err(ErrorReply::bad_request(
            "a WebSocket upgrade needs Connection: Upgrade",
        ));
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(
            ErrorReply::bad_request("unsupported Sec-WebSocket-Version; 13 is supported")
                .with_header("Sec-WebSocket-Version", "13"),
        );
    }
    let key = head
        .header("sec-websocket-key")
        .map(str::trim)
        .unwrap_or("");
    if !is_valid_key(key) {
        return Err(ErrorReply::bad_request(
            "Sec-WebSocket-Key must be the base64 of 16 bytes",
        ));
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// Whether `key` is the base64 encoding of exactly 16 bytes: 22 alphabet characters, the last of which carries
/// only two bits of data (`A`, `Q`, `g` or `w`), then `==`.
pub fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b[22..] == *b"=="
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        && matches!(b[21], b'A' | b'Q' | b'g' | b'w')
}

/// The `101 Switching Protocols` answer for an accept key.
pub fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::head::parse_head;
    use super::*;

    fn head(extra: &str) -> RequestHead {
        let raw = format!("GET /api/ws HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        parse_head(raw.as_bytes(), 16 * 1024).unwrap().unwrap().0
    }

    const GOOD: &str = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    #[test]
    fn accepts_the_rfc_example() {
        assert_eq!(
            check_upgrade(&head(GOOD)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let text = String::from_utf8(switching_protocols("abc")).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.ends_with("Sec-WebSocket-Accept: abc\r\n\r\n"));
    }

    #[test]
    fn refuses_bad_versions_keys_and_headers() {
        let bad_version = GOOD.replace("Version: 13", "Version: 8");
        let e = check_upgrade(&head(&bad_version)).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.headers, vec![("Sec-WebSocket-Version", "13".to_owned())]);
        let no_version = GOOD.replace("Sec-WebSocket-Version: 13\r\n", "");
        assert_eq!(check_upgrade(&head(&no_version)).unwrap_err().status, 400);
        for key in [
            "short==",
            "dGhlIHNhbXBsZSBub25jZR==",
            "dGhlIHNhbXBsZSBub25j!Q==",
            "",
        ] {
            let bad = GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", key);
            assert_eq!(check_upgrade(&head(&bad)).unwrap_err().status, 400, "{key}");
        }
        let no_upgrade = GOOD.replace("Upgrade: websocket\r\n", "");
        assert_eq!(check_upgrade(&head(&no_upgrade)).unwrap_err().status, 400);
        let no_conn = GOOD.replace("keep-alive, Upgrade", "keep-alive");
        assert_eq!(check_upgrade(&head(&no_conn)).unwrap_err().status, 400);
    }

    #[test]
    fn key_validation_is_exact() {
        assert!(is_valid_key("AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(is_valid_key("/////////////////////w=="));
        assert!(!is_valid_key("AAAAAAAAAAAAAAAAAAAAAB=="));
        assert!(!is_valid_key("AAAAAAAAAAAAAAAAAAAAAAA="));
        assert!(!is_valid_key("AAAAAAAAAAAAAAAAAAAAAAAA"));
    }
}
