//! The reserved channel names (`subscription`, `error`) are refused for publish and subscribe in every dialect that
//! can name a channel, so no event ever travels on them and a `/ws` client never receives a published event that
//! looks like a subscribe answer or a server error. The project stream cannot name one: its only channel is
//! `projects/{id}`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::Harness;
use super::transcripts::assert_transcript;
use crate::server::{Dialect, HubConfig};
use crate::wire::{ChannelName, NameError, RESERVED_CHANNELS};

const REFUSAL: &str = "invalid channel name: is reserved: `subscription` and `error` carry the /ws dialect's control messages";

fn native_refusal(id: &str) -> String {
    format!(
        r#"n <- {{"type":"error","message_id":"{id}","data":{{"code":"INVALID_CHANNEL","message":"{REFUSAL}"}}}}"#
    )
}

fn payload_error(code: &str, message: &str) -> String {
    format!(
        r#"c <- {{"channel":"error","payload":{{"type":"error","status":"error","message":"{message}","error_details":{{"code":"{code}"}},"timestamp":1700000000.0}}}}"#
    )
}

fn native_attempts(name: &str) -> [String; 2] {
    [
        format!(r#"{{"type":"subscribe","message_id":"s","data":{{"channel":"{name}"}}}}"#),
        format!(
            r#"{{"type":"publish","message_id":"p","data":{{"channel":"{name}","event":{{"x":1}}}}}}"#
        ),
    ]
}

#[test]
fn native_subscribe_and_publish_to_a_reserved_name_are_invalid_channel() {
    let mut h = Harness::new(HubConfig::default());
    h.open("n", Dialect::Native);
    h.take();
    for name in RESERVED_CHANNELS {
        for attempt in native_attempts(name) {
            h.text("n", &attempt);
        }
    }
    let want = [
        native_refusal("s"),
        native_refusal("p"),
        native_refusal("s"),
        native_refusal("p"),
    ];
    assert_transcript(h.take(), &want.each_ref().map(String::as_str));
    h.assert_clean();
}

#[test]
fn channel_payload_subscribe_to_a_reserved_name_is_invalid_channel() {
    let mut h = Harness::new(HubConfig::default());
    h.open("c", Dialect::ChannelPayload);
    h.take();
    let mut attempts: Vec<String> = Vec::new();
    for name in RESERVED_CHANNELS {
        attempts.push(format!(
            r#"{{"channel":"subscription","payload":{{"action":"subscribe","channel":"{name}"}}}}"#
        ));
        attempts.push(format!(
            r#"{{"channel":"subscription","payload":{{"action":"unsubscribe","channel":"{name}"}}}}"#
        ));
    }
    // Publishing on `error` keeps its own answer (an unknown message); on `subscription` it is a control message.
    attempts.push(r#"{"channel":"error","payload":{"x":1}}"#.into());
    for attempt in &attempts {
        h.text("c", attempt);
    }
    let refused = payload_error("INVALID_CHANNEL", REFUSAL);
    let want = [
        refused.clone(),
        refused.clone(),
        refused.clone(),
        refused,
        payload_error("INVALID_MESSAGE_TYPE", "unknown message type `error`"),
    ];
    assert_transcript(h.take(), &want.each_ref().map(String::as_str));
    h.assert_clean();
}

#[test]
fn no_channel_name_value_can_hold_a_reserved_name() {
    // The app API's publish takes a `ChannelName`, so a reserved name is refused before it reaches the hub.
    for name in RESERVED_CHANNELS {
        assert_eq!(ChannelName::new(name), Err(NameError::Reserved));
    }
}
