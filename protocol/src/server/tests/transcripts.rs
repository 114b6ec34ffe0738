//! Transcript tests: the exact sequence of outputs for each scenario of the hub. Random ids are numbered (`#1`,
//! `#2`, … in order of appearance) and the epoch is `E`, so a transcript also pins which message answers which.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Map, json};

use super::{Harness, ch};
use crate::server::{
    Dialect, HubConfig, HubError, HubOutput, LimitError, MisuseError, NotifyTarget, Permissions,
    Trust,
};
use crate::wire::{CloseCode, ErrorCode};

/// Compares a transcript. With `SWITCHBOARD_PRINT_TRANSCRIPTS` set, also prints it in the form the tests pin
/// (to review a changed transcript before pinning it); the comparison runs either way.
#[track_caller]
pub(super) fn assert_transcript(got: Vec<String>, want: &[&str]) {
    if std::env::var_os("SWITCHBOARD_PRINT_TRANSCRIPTS").is_some() {
        std::println!("TRANSCRIPT {}", core::panic::Location::caller().line());
        std::print!("{}", pinned_form(&got));
    }
    if got != want {
        panic!("transcript differs; got:\n{}", pinned_form(&got));
    }
}

/// A transcript as the lines of a `&[&str]` literal.
fn pinned_form(got: &[String]) -> String {
    got.iter().map(|line| format!("    {line:?},\n")).collect()
}

fn publish(h: &mut Harness, channel: &str, event: serde_json::Value) -> u64 {
    let offset = h
        .hub
        .publish(h.now, &ch(channel), event, false)
        .expect("publish");
    h.drain();
    match offset {
        crate::server::Publish::Done(offset) => offset,
        crate::server::Publish::Pending(_) | crate::server::Publish::Duplicate { .. } => {
            panic!("the memory store keeps at once, and there is no key")
        }
    }
}

fn subscribe_since(h: &mut Harness, name: &str, id: &str, channel: &str, epoch: &str, offset: u64) {
    h.text(
        name,
        &format!(
            r#"{{"type":"subscribe","message_id":"{id}","data":{{"channel":"{channel}","since":{{"epoch":"{epoch}","offset":{offset}}}}}}}"#
        ),
    );
}

/// The id of the last `server_request` sent to `name`.
fn last_request_id(h: &Harness, name: &str) -> String {
    h.frames[&h.conn(name)]
        .iter()
        .rev()
        .find(|f| f["type"] == "server_request")
        .and_then(|f| f["message_id"].as_str())
        .expect("a server_request was sent")
        .to_owned()
}

fn quiet() -> HubConfig {
    // Heartbeats far away, so they never show up in transcripts that do not test them.
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    }
}

#[test]
fn recovery_recovered_replays_the_gap_before_live_events() {
    let mut h = Harness::new(quiet());
    h.open("a", Dialect::Native);
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"news"}}"#,
    );
    publish(&mut h, "news", json!("e1"));
    h.transport_closed("a");
    publish(&mut h, "news", json!("e2"));
    publish(&mut h, "news", json!("e3"));
    h.take();

    h.open("b", Dialect::Native);
    let epoch = super::epoch_of(&h.hub, "news");
    subscribe_since(&mut h, "b", "s2", "news", &epoch, 1);
    publish(&mut h, "news", json!("e4"));
    assert_transcript(
        h.take(),
        &[
            "event {\"app_id\":\"#4\",\"conn\":\"b\",\"dialect\":\"native\",\"event\":\"connected\"}",
            "b <- {\"type\":\"connected\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"app_id\":\"#4\",\"status\":\"connected\",\"protocol\":1,\"heartbeat_ms\":3600000,\"max_message_bytes\":1048576}}",
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"s2\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":3,\"recovered\":true}}",
            "b <- {\"type\":\"event\",\"message_id\":\"#6\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"event\":\"e2\"}}",
            "b <- {\"type\":\"event\",\"message_id\":\"#7\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":3,\"event\":\"e3\"}}",
            "b <- {\"type\":\"event\",\"message_id\":\"#8\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":4,\"event\":\"e4\"}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn recovery_fails_when_the_epoch_changed() {
    let mut h = Harness::new(quiet());
    publish(&mut h, "news", json!("e1"));
    h.open("b", Dialect::Native);
    h.take();
    subscribe_since(&mut h, "b", "s1", "news", "an-old-epoch", 0);
    publish(&mut h, "news", json!("e2"));
    assert_transcript(
        h.take(),
        &[
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":1,\"recovered\":false}}",
            "b <- {\"type\":\"event\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"event\":\"e2\"}}",
        ],
    );
}

#[test]
fn recovery_fails_when_history_no_longer_covers_the_gap() {
    // By size: only the last 2 events are kept.
    let mut h = Harness::new(HubConfig {
        history_size: 2,
        ..quiet()
    });
    for n in 1..=4 {
        publish(&mut h, "news", json!(n));
    }
    h.open("b", Dialect::Native);
    h.take();
    let epoch = super::epoch_of(&h.hub, "news");
    subscribe_since(&mut h, "b", "s1", "news", &epoch, 1);
    subscribe_since(&mut h, "b", "s2", "other", &epoch, 2);
    // Exactly the kept window still recovers.
    h.text(
        "b",
        r#"{"type":"unsubscribe","message_id":"u1","data":{"channel":"news"}}"#,
    );
    subscribe_since(&mut h, "b", "s3", "news", &epoch, 2);
    assert_transcript(
        h.take(),
        &[
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":4,\"recovered\":false}}",
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"s2\",\"data\":{\"channel\":\"other\",\"epoch\":\"E2\",\"offset\":0,\"recovered\":false}}",
            "b <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u1\",\"data\":{\"channel\":\"news\"}}",
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"s3\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":4,\"recovered\":true}}",
            "b <- {\"type\":\"event\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":3,\"event\":3}}",
            "b <- {\"type\":\"event\",\"message_id\":\"#4\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":4,\"event\":4}}",
        ],
    );

    // By age: events older than history_ttl are gone.
    let mut h = Harness::new(HubConfig {
        history_ttl: Duration::from_secs(10),
        ..quiet()
    });
    publish(&mut h, "news", json!(1));
    h.advance_ms(5_000);
    publish(&mut h, "news", json!(2));
    h.advance_ms(6_000);
    h.open("b", Dialect::Native);
    h.take();
    let epoch = super::epoch_of(&h.hub, "news");
    subscribe_since(&mut h, "b", "s1", "news", &epoch, 0);
    h.text(
        "b",
        r#"{"type":"unsubscribe","message_id":"u1","data":{"channel":"news"}}"#,
    );
    subscribe_since(&mut h, "b", "s2", "news", &epoch, 1);
    assert_transcript(
        h.take(),
        &[
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"recovered\":false}}",
            "b <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u1\",\"data\":{\"channel\":\"news\"}}",
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"s2\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"recovered\":true}}",
            "b <- {\"type\":\"event\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"event\":2}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn an_event_over_the_history_budget_is_delivered_and_answered_but_not_kept() {
    // 12 bytes of history per channel: "abcdefghij" (12 as JSON) fits, a longer event does not.
    let mut h = Harness::new(HubConfig {
        history_bytes: 12,
        ..quiet()
    });
    h.open("a", Dialect::Native);
    h.take();
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"news"}}"#,
    );
    h.text(
        "a",
        r#"{"type":"publish","message_id":"p1","data":{"channel":"news","event":"abcdefghij"}}"#,
    );
    h.text(
        "a",
        r#"{"type":"publish","message_id":"p2","data":{"channel":"news","event":"abcdefghijk"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}}",
            "a <- {\"type\":\"publish_res\",\"message_id\":\"p1\",\"data\":{\"channel\":\"news\",\"offset\":1}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":1,\"event\":\"abcdefghij\"}}",
            "a <- {\"type\":\"publish_res\",\"message_id\":\"p2\",\"data\":{\"channel\":\"news\",\"offset\":2}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#4\",\"server_initiated\":true,\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"event\":\"abcdefghijk\"}}",
        ],
    );
    let epoch = super::epoch_of(&h.hub, "news");
    // Nothing before the big event can be replayed; from it on, everything can. `a` stays subscribed, so the
    // channel (whose history holds nothing now) is not forgotten.
    h.open("b", Dialect::Native);
    h.take();
    for (n, since) in [(1, 0), (2, 1), (3, 2)] {
        subscribe_since(&mut h, "b", &format!("r{n}"), "news", &epoch, since);
        h.text(
            "b",
            &format!(r#"{{"type":"unsubscribe","message_id":"u{n}","data":{{"channel":"news"}}}}"#),
        );
    }
    assert_transcript(
        h.take(),
        &[
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"r1\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"recovered\":false}}",
            "b <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u1\",\"data\":{\"channel\":\"news\"}}",
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"r2\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"recovered\":false}}",
            "b <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u2\",\"data\":{\"channel\":\"news\"}}",
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"r3\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":2,\"recovered\":true}}",
            "b <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u3\",\"data\":{\"channel\":\"news\"}}",
        ],
    );
    // Once `a` leaves too, nothing keeps the channel: it is forgotten, and a subscriber holding its old position
    // is told `recovered: false` in a new epoch, at offset 0.
    h.text(
        "a",
        r#"{"type":"unsubscribe","message_id":"u4","data":{"channel":"news"}}"#,
    );
    subscribe_since(&mut h, "b", "r4", "news", &epoch, 2);
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u4\",\"data\":{\"channel\":\"news\"}}",
            "b <- {\"type\":\"subscribe_res\",\"message_id\":\"r4\",\"data\":{\"channel\":\"news\",\"epoch\":\"E2\",\"offset\":0,\"recovered\":false}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn retained_state() {
    let mut h = Harness::new(quiet());
    h.open("a", Dialect::Native);
    h.text(
        "a",
        r#"{"type":"get_state","message_id":"g0","data":{"channel":"cfg"}}"#,
    );
    h.text(
        "a",
        r#"{"type":"publish","message_id":"p1","data":{"channel":"cfg","event":{"mode":"fast"},"retain":true}}"#,
    );
    h.text(
        "a",
        r#"{"type":"publish","message_id":"p2","data":{"channel":"cfg","event":{"note":"not retained"}}}"#,
    );
    h.text(
        "a",
        r#"{"type":"get_state","message_id":"g1","data":{"channel":"cfg"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "event {\"app_id\":\"#1\",\"conn\":\"a\",\"dialect\":\"native\",\"event\":\"connected\"}",
            "a <- {\"type\":\"connected\",\"message_id\":\"#2\",\"server_initiated\":true,\"data\":{\"app_id\":\"#1\",\"status\":\"connected\",\"protocol\":1,\"heartbeat_ms\":3600000,\"max_message_bytes\":1048576}}",
            "a <- {\"type\":\"get_state_res\",\"message_id\":\"g0\",\"data\":{\"channel\":\"cfg\",\"epoch\":\"E\",\"offset\":0,\"state\":null}}",
            "a <- {\"type\":\"publish_res\",\"message_id\":\"p1\",\"data\":{\"channel\":\"cfg\",\"offset\":1}}",
            "a <- {\"type\":\"publish_res\",\"message_id\":\"p2\",\"data\":{\"channel\":\"cfg\",\"offset\":2}}",
            "a <- {\"type\":\"get_state_res\",\"message_id\":\"g1\",\"data\":{\"channel\":\"cfg\",\"epoch\":\"E\",\"offset\":2,\"state\":{\"mode\":\"fast\"}}}",
        ],
    );

    let state = h.hub.state(&ch("cfg"));
    assert_eq!(
        (state.offset, state.state),
        (2, Some(json!({"mode": "fast"})))
    );
    // The state outlives the history it came from.
    h.advance(Duration::from_secs(301));
    let page = h.hub.history(h.now, &ch("cfg"), None, 10);
    assert!(page.events.is_empty());
    assert_eq!(h.hub.state(&ch("cfg")).state, Some(json!({"mode": "fast"})));
    h.assert_clean();
}

#[test]
fn routed_call_failures() {
    let mut h = Harness::new(HubConfig {
        request_timeout: Duration::from_secs(2),
        ..quiet()
    });
    h.open("caller", Dialect::Native);
    h.open("server", Dialect::Native);
    h.take();

    // NO_HANDLER: nobody serves the channel.
    h.text(
        "caller",
        r#"{"type":"call","message_id":"k1","data":{"channel":"rpc","method":"m"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "caller <- {\"type\":\"error\",\"message_id\":\"k1\",\"data\":{\"code\":\"NO_HANDLER\",\"message\":\"no connection serves rpc\"}}",
        ],
    );

    // REQUEST_TIMEOUT, and the late answer is dropped.
    h.text(
        "server",
        r#"{"type":"serve","message_id":"s1","data":{"channel":"rpc"}}"#,
    );
    h.text(
        "caller",
        r#"{"type":"call","message_id":"k2","data":{"channel":"rpc","method":"m","params":{"x":1}}}"#,
    );
    h.advance_ms(2_000);
    let late = h.hub.stats().unmatched_responses;
    let rid = last_request_id(&h, "server");
    h.text(
        "server",
        &format!(r#"{{"type":"server_response","message_id":"{rid}","data":{{"result":1}}}}"#),
    );
    assert_eq!(h.hub.stats().unmatched_responses, late + 1);
    assert_transcript(
        h.take(),
        &[
            "server <- {\"type\":\"serve_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"rpc\"}}",
            "server <- {\"type\":\"server_request\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"request_type\":\"call\",\"caller\":{\"app_id\":\"#1\"},\"channel\":\"rpc\",\"method\":\"m\",\"params\":{\"x\":1}}}",
            "caller <- {\"type\":\"error\",\"message_id\":\"k2\",\"data\":{\"code\":\"REQUEST_TIMEOUT\",\"message\":\"rpc did not answer m in time\"}}",
        ],
    );

    // The caller disconnects: the answer goes nowhere.
    h.open("caller2", Dialect::Native);
    h.text(
        "caller2",
        r#"{"type":"call","message_id":"k3","data":{"channel":"rpc","method":"m"}}"#,
    );
    h.transport_closed("caller2");
    let rid = last_request_id(&h, "server");
    h.text(
        "server",
        &format!(r#"{{"type":"server_response","message_id":"{rid}","data":{{"result":2}}}}"#),
    );
    assert_eq!(h.hub.stats().pending_calls, 0);
    assert_transcript(
        h.take(),
        &[
            "event {\"app_id\":\"#6\",\"conn\":\"caller2\",\"dialect\":\"native\",\"event\":\"connected\"}",
            "caller2 <- {\"type\":\"connected\",\"message_id\":\"#7\",\"server_initiated\":true,\"data\":{\"app_id\":\"#6\",\"status\":\"connected\",\"protocol\":1,\"heartbeat_ms\":3600000,\"max_message_bytes\":1048576}}",
            "server <- {\"type\":\"server_request\",\"message_id\":\"#8\",\"server_initiated\":true,\"data\":{\"request_type\":\"call\",\"caller\":{\"app_id\":\"#6\"},\"channel\":\"rpc\",\"method\":\"m\",\"params\":null}}",
            "event {\"app_id\":\"#6\",\"conn\":\"caller2\",\"event\":\"disconnected\"}",
        ],
    );

    // The server disconnects: its pending calls fail at once.
    h.text(
        "caller",
        r#"{"type":"call","message_id":"k4","data":{"channel":"rpc","method":"m"}}"#,
    );
    h.text(
        "caller",
        r#"{"type":"call","message_id":"k5","data":{"channel":"rpc","method":"n"}}"#,
    );
    h.transport_closed("server");
    h.text(
        "caller",
        r#"{"type":"call","message_id":"k6","data":{"channel":"rpc","method":"m"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "server <- {\"type\":\"server_request\",\"message_id\":\"#9\",\"server_initiated\":true,\"data\":{\"request_type\":\"call\",\"caller\":{\"app_id\":\"#1\"},\"channel\":\"rpc\",\"method\":\"m\",\"params\":null}}",
            "server <- {\"type\":\"server_request\",\"message_id\":\"#10\",\"server_initiated\":true,\"data\":{\"request_type\":\"call\",\"caller\":{\"app_id\":\"#1\"},\"channel\":\"rpc\",\"method\":\"n\",\"params\":null}}",
            "caller <- {\"type\":\"error\",\"message_id\":\"k5\",\"data\":{\"code\":\"NO_HANDLER\",\"message\":\"the connection serving rpc disconnected\",\"details\":{\"reason\":\"server_disconnected\"}}}",
            "caller <- {\"type\":\"error\",\"message_id\":\"k4\",\"data\":{\"code\":\"NO_HANDLER\",\"message\":\"the connection serving rpc disconnected\",\"details\":{\"reason\":\"server_disconnected\"}}}",
            "event {\"app_id\":\"#3\",\"conn\":\"server\",\"event\":\"disconnected\"}",
            "caller <- {\"type\":\"error\",\"message_id\":\"k6\",\"data\":{\"code\":\"NO_HANDLER\",\"message\":\"no connection serves rpc\"}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn server_request_timeout_and_cancellation() {
    let mut h = Harness::new(quiet());
    h.open("a", Dialect::Native);
    h.take();
    let a = h.conn("a");
    let id = h
        .hub
        .send_request(
            h.now,
            a,
            "confirm",
            Map::new(),
            Some(Duration::from_secs(5)),
        )
        .unwrap();
    h.drain();
    h.advance_ms(4_999);
    assert_eq!(h.hub.stats().pending_requests, 1);
    h.advance_ms(1);
    // Answering after the timeout changes nothing.
    h.text(
        "a",
        &format!(r#"{{"type":"server_response","message_id":"{id}","data":{{"response_type":"confirm"}}}}"#),
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"server_request\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"request_type\":\"confirm\"}}",
            "event {\"conn\":\"a\",\"event\":\"request_completed\",\"id\":\"#3\",\"outcome\":\"timeout\"}",
        ],
    );

    let id2 = h
        .hub
        .send_request(h.now, a, "approve", Map::new(), None)
        .unwrap();
    h.drain();
    assert_ne!(id, id2);
    h.transport_closed("a");
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"server_request\",\"message_id\":\"#4\",\"server_initiated\":true,\"data\":{\"request_type\":\"approve\"}}",
            "event {\"conn\":\"a\",\"event\":\"request_completed\",\"id\":\"#4\",\"outcome\":\"cancelled\"}",
            "event {\"app_id\":\"#1\",\"conn\":\"a\",\"event\":\"disconnected\"}",
        ],
    );

    // Requests to the gone connection, or to a dialect that cannot answer, are refused.
    assert_eq!(
        h.hub.send_request(h.now, a, "x", Map::new(), None),
        Err(HubError::Misuse(MisuseError::UnknownConnection(a)))
    );
    h.open("p", Dialect::ChannelPayload);
    let p = h.conn("p");
    assert!(matches!(
        h.hub.send_request(h.now, p, "x", Map::new(), None),
        Err(HubError::Misuse(MisuseError::NotNative { .. }))
    ));
    h.assert_clean();
}

#[test]
fn slow_consumer_is_closed_and_recovers_on_reconnect() {
    let mut h = Harness::new(HubConfig {
        max_queued_bytes: 1_500,
        ..quiet()
    });
    let a = h.open("a", Dialect::Native);
    h.open("fast", Dialect::Native);
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"feed"}}"#,
    );
    h.text(
        "fast",
        r#"{"type":"subscribe","message_id":"s2","data":{"channel":"feed"}}"#,
    );
    // From now on `a`'s writer never flushes; its greeting and subscribe_res were flushed already.
    h.stalled.insert(a);
    h.take();
    // Each event frame is 202 bytes: seven fit in 1500, the eighth does not.
    for n in 1..=8 {
        publish(
            &mut h,
            "feed",
            json!({"n": n, "pad": "xxxxxxxxxxxxxxxxxxxxx"}),
        );
    }
    let transcript = h.take();
    assert_eq!(
        transcript.iter().filter(|l| l.starts_with("a <- ")).count(),
        7
    );
    assert_eq!(
        transcript
            .iter()
            .filter(|l| l.starts_with("fast <- "))
            .count(),
        8
    );
    let tail: Vec<String> = transcript[transcript.len() - 3..].to_vec();
    assert_transcript(
        tail,
        &[
            "a closed 1013 slow consumer",
            "fast <- {\"type\":\"event\",\"message_id\":\"#12\",\"server_initiated\":true,\"data\":{\"channel\":\"feed\",\"epoch\":\"E\",\"offset\":8,\"event\":{\"n\":8,\"pad\":\"xxxxxxxxxxxxxxxxxxxxx\"}}}",
            "event {\"app_id\":\"#1\",\"conn\":\"a\",\"event\":\"disconnected\"}",
        ],
    );
    assert!(!h.hub.holds_anything_of(a));
    assert_eq!(h.hub.stats().slow_consumers, 1);

    // It reconnects and recovers what it missed, from the last event it processed.
    h.open("a2", Dialect::Native);
    let epoch = super::epoch_of(&h.hub, "feed");
    h.take();
    subscribe_since(&mut h, "a2", "s3", "feed", &epoch, 5);
    assert_transcript(
        h.take(),
        &[
            "a2 <- {\"type\":\"subscribe_res\",\"message_id\":\"s3\",\"data\":{\"channel\":\"feed\",\"epoch\":\"E\",\"offset\":8,\"recovered\":true}}",
            "a2 <- {\"type\":\"event\",\"message_id\":\"#15\",\"server_initiated\":true,\"data\":{\"channel\":\"feed\",\"epoch\":\"E\",\"offset\":6,\"event\":{\"n\":6,\"pad\":\"xxxxxxxxxxxxxxxxxxxxx\"}}}",
            "a2 <- {\"type\":\"event\",\"message_id\":\"#16\",\"server_initiated\":true,\"data\":{\"channel\":\"feed\",\"epoch\":\"E\",\"offset\":7,\"event\":{\"n\":7,\"pad\":\"xxxxxxxxxxxxxxxxxxxxx\"}}}",
            "a2 <- {\"type\":\"event\",\"message_id\":\"#17\",\"server_initiated\":true,\"data\":{\"channel\":\"feed\",\"epoch\":\"E\",\"offset\":8,\"event\":{\"n\":8,\"pad\":\"xxxxxxxxxxxxxxxxxxxxx\"}}}",
        ],
    );

    // A replay that cannot fit in the outbound queue is refused rather than replayed into another 1013.
    h.open("a3", Dialect::Native);
    h.take();
    subscribe_since(&mut h, "a3", "s4", "feed", &epoch, 0);
    assert_transcript(
        h.take(),
        &[
            "a3 <- {\"type\":\"subscribe_res\",\"message_id\":\"s4\",\"data\":{\"channel\":\"feed\",\"epoch\":\"E\",\"offset\":8,\"recovered\":false}}",
        ],
    );
    assert_eq!(h.hub.stats().slow_consumers, 1);
    h.assert_clean();
}

#[test]
fn rate_limit() {
    let mut h = Harness::new(HubConfig {
        rate_per_sec: 2,
        rate_burst: 2,
        ..quiet()
    });
    h.open("a", Dialect::Native);
    h.take();
    for id in ["r1", "r2", "r3"] {
        h.text("a", &format!(r#"{{"type":"ping","message_id":"{id}"}}"#));
    }
    h.text("a", "garbage");
    h.advance_ms(499);
    h.text("a", r#"{"type":"ping","message_id":"r4"}"#);
    h.advance_ms(1);
    h.text("a", r#"{"type":"ping","message_id":"r5"}"#);
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"ping_res\",\"message_id\":\"r1\",\"data\":{\"timestamp\":null,\"server_time\":1700000000000}}",
            "a <- {\"type\":\"ping_res\",\"message_id\":\"r2\",\"data\":{\"timestamp\":null,\"server_time\":1700000000000}}",
            "a <- {\"type\":\"error\",\"message_id\":\"r3\",\"data\":{\"code\":\"RATE_LIMITED\",\"message\":\"too many messages: this one was dropped\",\"details\":{\"retry_after_ms\":500}}}",
            "a <- {\"type\":\"error\",\"message_id\":null,\"data\":{\"code\":\"RATE_LIMITED\",\"message\":\"too many messages: this one was dropped\",\"details\":{\"retry_after_ms\":500}}}",
            "a <- {\"type\":\"error\",\"message_id\":\"r4\",\"data\":{\"code\":\"RATE_LIMITED\",\"message\":\"too many messages: this one was dropped\",\"details\":{\"retry_after_ms\":1}}}",
            "a <- {\"type\":\"ping_res\",\"message_id\":\"r5\",\"data\":{\"timestamp\":null,\"server_time\":1700000000500}}",
        ],
    );
    assert_eq!(h.hub.stats().rate_limited, 3);
}

/// Publishes `n` events on `name` in one instant; the answers it got: (`publish_res`, `RATE_LIMITED`).
fn publish_burst(h: &mut Harness, name: &str, n: usize) -> (usize, usize) {
    for i in 0..n {
        h.text(
            name,
            &format!(r#"{{"type":"publish","message_id":"p{i}","data":{{"channel":"jobs/1","event":{i}}}}}"#),
        );
    }
    let (mut stored, mut limited) = (0, 0);
    while let Some(frame) = h.next_frame(name) {
        match (frame["type"].as_str(), frame["data"]["code"].as_str()) {
            (Some("publish_res"), _) => stored += 1,
            (Some("error"), Some("RATE_LIMITED")) => limited += 1,
            (Some("connected"), _) => {}
            _ => panic!("unexpected answer {frame}"),
        }
    }
    (stored, limited)
}

/// With the default limits, a trusted connection's 2,000 publishes in one instant are all stored, while an
/// untrusted one gets its burst (200) and then `RATE_LIMITED`; both with the same permissions, so the limit
/// comes from the trust alone.
#[test]
fn trusted_connections_get_the_trusted_rate() {
    let mut h = Harness::new(quiet());
    h.open_as(
        "backend",
        Dialect::Native,
        Permissions::allow_all(),
        Trust::Trusted,
    );
    h.open_as(
        "browser",
        Dialect::Native,
        Permissions::allow_all(),
        Trust::Untrusted,
    );
    h.take();
    assert_eq!(publish_burst(&mut h, "backend", 2_000), (2_000, 0));
    assert_eq!(publish_burst(&mut h, "browser", 300), (200, 100));
    assert_eq!(h.hub.stats().rate_limited, 100);
    h.take();
    h.assert_clean();
}

/// A trusted rate, when one is set, is enforced like the untrusted one, with its own burst.
#[test]
fn a_trusted_rate_can_be_set() {
    let mut h = Harness::new(HubConfig {
        rate_per_sec: 1,
        rate_burst: 1,
        trusted_rate_per_sec: 10,
        trusted_rate_burst: 5,
        ..quiet()
    });
    h.open_as(
        "backend",
        Dialect::Native,
        Permissions::allow_all(),
        Trust::Trusted,
    );
    h.take();
    assert_eq!(publish_burst(&mut h, "backend", 8), (5, 3));
    h.advance_ms(100);
    assert_eq!(publish_burst(&mut h, "backend", 2), (1, 1));
    h.take();
}

#[test]
fn heartbeat_close() {
    let mut h = Harness::new(HubConfig {
        heartbeat: Duration::from_secs(10),
        heartbeat_timeout: Duration::from_secs(5),
        edge_idle_timeout: Some(Duration::from_secs(20)),
        ..HubConfig::default()
    });
    h.open("native", Dialect::Native);
    h.open("edge", Dialect::ChannelPayload);
    h.take();
    // The first ping comes somewhere in [5 s, 10 s]; silence closes at 15 s.
    h.advance_ms(14_999);
    let pings = h.take();
    assert_eq!(pings.len(), 1, "{pings:?}");
    assert!(pings[0].starts_with(r#"native <- {"type":"server_ping""#));
    h.advance_ms(1);
    // The edge connection gets no ping, and WebSocket-level activity keeps it alive.
    let edge = h.conn("edge");
    h.hub.handle_activity(h.now, edge);
    h.advance_ms(19_999);
    h.advance_ms(1);
    assert_transcript(
        h.take(),
        &[
            "native closed 4008 heartbeat timeout",
            "event {\"app_id\":\"#1\",\"conn\":\"native\",\"event\":\"disconnected\"}",
            "edge closed 4008 heartbeat timeout",
            "event {\"app_id\":\"#3\",\"conn\":\"edge\",\"event\":\"disconnected\"}",
        ],
    );
    assert_eq!(h.hub.stats().heartbeat_timeouts, 2);
    h.assert_clean();

    // Without edge_idle_timeout, edge connections are never closed for silence.
    let mut h = Harness::new(HubConfig::default());
    h.open(
        "edge",
        Dialect::ProjectStream {
            project_id: "p1".to_owned(),
            since: None,
        },
    );
    h.take();
    h.advance(Duration::from_secs(24 * 3600));
    assert_transcript(h.take(), &[]);
}

#[test]
fn disconnect_cleanup_leaves_nothing() {
    let mut h = Harness::new(quiet());
    let a = h.open("a", Dialect::Native);
    let b = h.open("b", Dialect::Native);
    for text in [
        r#"{"type":"subscribe","message_id":"1","data":{"channel":"x"}}"#,
        r#"{"type":"subscribe","message_id":"2","data":{"channel":"y"}}"#,
        r#"{"type":"serve","message_id":"3","data":{"channel":"a-rpc"}}"#,
        r#"{"type":"create_session","message_id":"4"}"#,
        r#"{"type":"call","message_id":"5","data":{"channel":"b-rpc","method":"m"}}"#,
    ] {
        h.text("a", text);
    }
    h.text(
        "b",
        r#"{"type":"serve","message_id":"6","data":{"channel":"b-rpc"}}"#,
    );
    h.text(
        "a",
        r#"{"type":"call","message_id":"5","data":{"channel":"b-rpc","method":"m"}}"#,
    );
    h.text(
        "b",
        r#"{"type":"call","message_id":"7","data":{"channel":"a-rpc","method":"m"}}"#,
    );
    h.hub
        .send_request(h.now, a, "confirm", Map::new(), None)
        .unwrap();
    h.drain();
    let before = h.hub.stats();
    assert_eq!(
        (
            before.connections,
            before.subscriptions,
            before.sessions,
            before.pending_calls,
            before.pending_requests
        ),
        (2, 2, 1, 2, 1)
    );
    h.take();

    h.transport_closed("a");
    assert_transcript(
        h.take(),
        &[
            "event {\"conn\":\"a\",\"event\":\"request_completed\",\"id\":\"#8\",\"outcome\":\"cancelled\"}",
            "b <- {\"type\":\"error\",\"message_id\":\"7\",\"data\":{\"code\":\"NO_HANDLER\",\"message\":\"the connection serving a-rpc disconnected\",\"details\":{\"reason\":\"server_disconnected\"}}}",
            "event {\"app_id\":\"#1\",\"conn\":\"a\",\"event\":\"disconnected\"}",
        ],
    );
    assert!(!h.hub.holds_anything_of(a));
    let after = h.hub.stats();
    assert_eq!(
        (
            after.connections,
            after.subscriptions,
            after.sessions,
            after.pending_calls,
            after.pending_requests
        ),
        (1, 0, 0, 1, 0),
        "b's call to a failed, a's call to b stays pending for b (its answer will be dropped)"
    );
    assert_eq!(
        (after.channels, after.served_channels),
        (1, 1),
        "only b-rpc, served by b"
    );
    h.hub.handle_transport_closed(h.now, a);
    h.transport_closed("b");
    assert!(!h.hub.holds_anything_of(b));
    let empty = h.hub.stats();
    assert_eq!(
        (
            empty.connections,
            empty.channels,
            empty.pending_calls,
            empty.queued_bytes
        ),
        (0, 0, 0, 0)
    );
    h.assert_clean();
}

#[test]
fn oversized_messages_close_with_1009() {
    let mut h = Harness::new(HubConfig {
        max_message_bytes: 64,
        ..quiet()
    });
    h.open("a", Dialect::Native);
    h.open("c", Dialect::ChannelPayload);
    h.take();
    h.text(
        "a",
        &format!(r#"{{"type":"ping","message_id":"{}"}}"#, "x".repeat(64)),
    );
    h.binary("c", 65);
    assert_transcript(
        h.take(),
        &[
            "a closed 1009 message too big",
            "event {\"app_id\":\"#1\",\"conn\":\"a\",\"event\":\"disconnected\"}",
            "c closed 1009 message too big",
            "event {\"app_id\":\"#3\",\"conn\":\"c\",\"event\":\"disconnected\"}",
        ],
    );
    assert_eq!(
        h.hub.publish(h.now, &ch("x"), json!("y".repeat(64)), false),
        Err(HubError::Limit(LimitError::EventTooLarge {
            bytes: 66,
            max: 64
        }))
    );
    assert_eq!(
        h.hub
            .publish(h.now, &ch("x"), serde_json::Value::Null, false),
        Err(HubError::Misuse(MisuseError::NullEvent))
    );
    h.assert_clean();
}

#[test]
fn notifications_and_shutdown() {
    let mut h = Harness::new(quiet());
    let a = h.open("a", Dialect::Native);
    h.open("b", Dialect::Native);
    h.open("p", Dialect::ChannelPayload);
    h.text("b", r#"{"type":"create_session","message_id":"c1"}"#);
    let session = h
        .hub
        .connection(h.conn("b"))
        .and_then(|c| c.sessions().next())
        .expect("b has a session")
        .to_owned();
    h.take();
    assert_eq!(
        h.hub
            .notify(h.now, NotifyTarget::Session(session), "s", None, None),
        1
    );
    assert_eq!(
        h.hub.notify(
            h.now,
            NotifyTarget::All { exclude: vec![a] },
            "all",
            Some("hi".to_owned()),
            None
        ),
        1,
        "b only: a is excluded and p cannot receive notifications"
    );
    assert_eq!(
        h.hub.notify(
            h.now,
            NotifyTarget::Session("nope".to_owned()),
            "s",
            None,
            None
        ),
        0
    );
    h.drain();
    h.hub.shutdown(h.now);
    h.drain();
    assert_transcript(
        h.take(),
        &[
            "b <- {\"type\":\"notification\",\"message_id\":\"#7\",\"server_initiated\":true,\"data\":{\"notification_type\":\"s\"}}",
            "b <- {\"type\":\"notification\",\"message_id\":\"#8\",\"server_initiated\":true,\"data\":{\"notification_type\":\"all\",\"message\":\"hi\"}}",
            "a closed 1001 server shutting down",
            "b closed 1001 server shutting down",
            "p closed 1001 server shutting down",
            "event {\"app_id\":\"#1\",\"conn\":\"a\",\"event\":\"disconnected\"}",
            "event {\"app_id\":\"#3\",\"conn\":\"b\",\"event\":\"disconnected\"}",
            "event {\"app_id\":\"#5\",\"conn\":\"p\",\"event\":\"disconnected\"}",
        ],
    );
    assert_eq!(h.hub.stats().connections, 0);
    h.assert_clean();
}

#[test]
fn fan_out_encodes_once_per_dialect() {
    let mut h = Harness::new(quiet());
    for (name, dialect) in [
        ("n1", Dialect::Native),
        ("n2", Dialect::Native),
        ("c1", Dialect::ChannelPayload),
        ("c2", Dialect::ChannelPayload),
    ] {
        h.open(name, dialect);
    }
    for (name, n) in [("p1", 1), ("p2", 2)] {
        h.open(
            name,
            Dialect::ProjectStream {
                project_id: "demo".to_owned(),
                since: None,
            },
        );
        let _ = n;
    }
    for n in ["n1", "n2"] {
        h.text(
            n,
            r#"{"type":"subscribe","message_id":"s","data":{"channel":"projects/demo"}}"#,
        );
    }
    for c in ["c1", "c2"] {
        h.text(c, r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"projects/demo"}}"#);
    }
    h.take();
    h.hub
        .publish(
            h.now,
            &ch("projects/demo"),
            json!({"event_type": "log", "data": "hi"}),
            false,
        )
        .unwrap();
    let mut frames: Vec<(String, Arc<str>)> = Vec::new();
    loop {
        match h.hub.poll_output() {
            HubOutput::Transmit { conn, frame } => frames.push((format!("{conn}"), frame)),
            HubOutput::Timeout(_) => break,
            _ => {}
        }
    }
    assert_eq!(frames.len(), 6);
    let distinct: Vec<&Arc<str>> = frames.iter().fold(Vec::new(), |mut acc, (_, f)| {
        if !acc.iter().any(|g| Arc::ptr_eq(g, f)) {
            acc.push(f);
        }
        acc
    });
    assert_eq!(distinct.len(), 3, "one shared encoding per dialect");
    assert_eq!(h.hub.subscriber_count(&ch("projects/demo")), 6);
    assert_eq!(h.hub.stats().delivered, 6);
    let _ = (
        CloseCode::Normal,
        ErrorCode::InternalError,
        Permissions::allow_all(),
    );
}
