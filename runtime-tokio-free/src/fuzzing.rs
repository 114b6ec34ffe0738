//! The HTTP front's fuzzing entry point (feature `_internal_test_exports`): everything the server does with request bytes before
//! any handler runs — head parsing, body framing, query and token extraction, routing and the WebSocket upgrade
//! check — must never panic, whatever arrives.

use switchboard_protocol::rest::route;

use crate::server::front::head::parse_head;
use crate::server::front::upgrade::check_upgrade;

/// Largest head the fuzzed parser accepts, as the server's default.
const MAX_HEAD: usize = 16 * 1024;

/// Parses `data` as the start of an HTTP/1.1 request and runs every per-request check on the result.
pub fn http_request(data: &[u8]) {
    let Ok(Some((head, used))) = parse_head(data, MAX_HEAD) else {
        return;
    };
    assert!(
        used <= data.len(),
        "the parser claimed more bytes than it was given"
    );
    let _ = head.body_framing(1024 * 1024);
    let _ = head.query();
    let _ = head.query_param("since");
    let _ = head.bearer_token();
    let _ = head.keep_alive();
    if let Ok(r) = route(&head.method, &head.path)
        && r.is_socket()
    {
        let _ = check_upgrade(&head);
    }
}

#[cfg(test)]
mod tests {
    use super::http_request;

    #[test]
    fn samples_and_garbage_do_not_panic() {
        for sample in [
            &b"GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"[..],
            b"POST /api/v1/channels/a%2Fb/events?token=t HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /api/v1/channels/%ZZ/events?since=x&limit=-1 HTTP/1.0\r\n\r\n",
            b"\xff\xff\r\n\r\n",
            b"",
        ] {
            http_request(sample);
        }
    }
}
