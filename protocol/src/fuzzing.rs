//! Entry points for the fuzz targets in `fuzz/` (feature `_internal_test_exports`). Each target is a one-line shim over a function
//! here, so ordinary builds with the feature compile the fuzz logic and it cannot rot.
//!
//! Every function takes raw fuzzer bytes, must never panic on them, and asserts the properties that must hold for
//! any input (a decoded frame re-encodes to text that decodes to the same frame).

use crate::wire::{self, channel_payload, project_stream};

fn text(data: &[u8]) -> Option<&str> {
    core::str::from_utf8(data).ok()
}

/// Native dialect, both directions: decode never panics; whatever decodes round-trips through encode.
pub fn native_decode(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match wire::decode_client(text) {
        Ok(frame) => {
            let again =
                wire::decode_client(&frame.encode()).expect("an encoded client frame decodes");
            assert_eq!(again, frame);
        }
        Err(e) => {
            let _ = (e.code(), e.details());
        }
    }
    if let Ok(frame) = wire::decode_server(text) {
        let again = wire::decode_server(&frame.encode()).expect("an encoded server frame decodes");
        assert_eq!(again, frame);
    }
}

/// Project-stream dialect: requests and server messages.
pub fn project_stream_decode(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match project_stream::decode_project_stream_request(text) {
        Ok(req) => assert_eq!(
            project_stream::decode_project_stream_request(&req.encode()).ok(),
            Some(req)
        ),
        Err(e) => {
            let _ = project_stream::decode_error_message("p", 0, &e).encode();
        }
    }
    if let Ok(msg) = project_stream::decode_project_stream_message(text) {
        assert_eq!(
            project_stream::decode_project_stream_message(&msg.encode()).ok(),
            Some(msg.clone())
        );
        let event = msg.to_event();
        let _ = project_stream::ProjectStreamMessage::from_event(&msg.project_id, 1, &event, 0)
            .encode();
    }
}

/// A Server-Sent Events id (`Last-Event-ID`, `?since=`): decode never panics; whatever decodes round-trips through
/// encode, and an encoded id never holds a line break or NUL (it would end the `id:` line).
pub fn sse_event_id(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(id) = wire::sse_event_id::SseEventId::decode(text) {
        let encoded = id.encode();
        assert!(!encoded.contains(['\n', '\r', '\0']));
        assert_eq!(wire::sse_event_id::SseEventId::decode(&encoded), Ok(id));
    }
}

/// Channel-payload dialect: requests and server messages.
pub fn channel_payload_decode(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match channel_payload::decode_channel_payload_request(text) {
        Ok(req) => assert_eq!(
            channel_payload::decode_channel_payload_request(&req.encode()).ok(),
            Some(req)
        ),
        Err(e) => {
            let _ = channel_payload::ChannelPayloadMessage::from_decode_error(&e, 0).encode();
        }
    }
    if let Ok(msg) = channel_payload::decode_channel_payload_message(text) {
        // NaN and infinities cannot travel in JSON; the encoder writes them as 0.
        let finite = !matches!(&msg, channel_payload::ChannelPayloadMessage::Error { timestamp, .. } if !timestamp.is_finite());
        if finite {
            assert_eq!(
                channel_payload::decode_channel_payload_message(&msg.encode()).ok(),
                Some(msg)
            );
        }
    }
}

/// Authentication: JWT verification and webhook signature checks never panic, and a token the verifier accepts
/// re-signs to a token it accepts with the same claims.
pub fn auth_verify(data: &[u8]) {
    use crate::auth::{Hs256Key, WebhookVerifier};
    let Some((split, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(*split).min(rest.len());
    let (head, body) = rest.split_at(cut);
    let key = Hs256Key::new(b"fuzz-secret-fuzz-secret-fuzz-secret").expect("non-empty secret");
    if let Some(token) = text(head) {
        if let Ok(claims) = key.verify(token, 1_700_000_000) {
            let again = key.sign(&claims);
            assert_eq!(key.verify(&again, 1_700_000_000).ok(), Some(claims));
        }
        let verifier = WebhookVerifier::new(b"whsec").expect("non-empty secret");
        let _ = verifier.verify(token, body, 1_700_000_000);
    }
}

/// The client machine as a sequence of operations: see [`crate::client::fuzz::client_ops`].
pub fn client_ops(data: &[u8]) {
    crate::client::fuzz::client_ops(data);
}

/// The hub as a sequence of operations: see [`crate::server::fuzz::hub_ops`].
pub fn hub_ops(data: &[u8]) {
    crate::server::fuzz::hub_ops(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_accept_samples_and_garbage() {
        let samples: &[&[u8]] = &[
            br#"{"type":"publish","message_id":"m","data":{"channel":"a","event":{"x":1.5e300}}}"#,
            br#"{"type":"event","message_id":"e","server_initiated":true,"data":{"channel":"c","epoch":"e","offset":1,"event":null}}"#,
            br#"{"type":"cancel"}"#,
            br#"{"event_type":"log","project_id":"p","timestamp":"t","data":[1]}"#,
            br#"{"channel":"subscription","payload":{"action":"subscribe","channel":"x"}}"#,
            br#"{"channel":"error","payload":{"message":"m","timestamp":1e400}}"#,
            b"\xff\xfe",
            b"",
        ];
        for s in samples {
            native_decode(s);
            auth_verify(s);
            project_stream_decode(s);
            channel_payload_decode(s);
            sse_event_id(s);
        }
        for s in ["e:1,:2,3", ":1", "a%0A:1", "%", "1,,2"] {
            sse_event_id(s.as_bytes());
        }
    }
}
