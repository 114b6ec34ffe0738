//! Pattern subscriptions (PROTOCOL §3.2): transcripts of a pattern following existing channels and channels made
//! later, one delivery for a connection reached by its channel and its pattern, a resubscribe with a `since` map
//! (replay after each position, whole history for channels made meanwhile, `recovered: false` for a gap history no
//! longer covers), a replay past the outbound queue, bad input, grants, limits, and the refusal on a cluster node.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::json;

use super::transcripts::assert_transcript;
use super::{Harness, ch, epoch_of};
use crate::server::{Dialect, HubConfig, Permissions};

fn quiet() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    }
}

fn publish(h: &mut Harness, channel: &str, event: serde_json::Value) {
    h.hub
        .publish(h.now, &ch(channel), event, false)
        .expect("publish");
    h.drain();
}

fn sub(h: &mut Harness, name: &str, id: &str, pattern: &str) {
    h.text(
        name,
        &format!(r#"{{"type":"subscribe","message_id":"{id}","data":{{"pattern":"{pattern}"}}}}"#),
    );
}

#[test]
fn a_pattern_follows_existing_channels_and_channels_made_later() {
    let mut h = Harness::new(quiet());
    publish(&mut h, "jobs/1", json!("before"));
    h.open("a", Dialect::Native);
    h.take();
    sub(&mut h, "a", "s1", "jobs/*");
    publish(&mut h, "jobs/1", json!("one"));
    publish(&mut h, "jobs/2", json!("new"));
    publish(&mut h, "jobs/2/logs", json!("deeper: not matched"));
    publish(&mut h, "other", json!("not matched"));
    publish(&mut h, "jobs/2", json!("again"));
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"pattern\":\"jobs/*\",\"channels\":[{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":1,\"recovered\":null}]}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":2,\"event\":\"one\"}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#4\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/2\",\"epoch\":\"E2\",\"offset\":1,\"event\":\"new\"}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/2\",\"epoch\":\"E2\",\"offset\":2,\"event\":\"again\"}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn a_connection_reached_by_its_channel_and_its_patterns_gets_each_event_once() {
    let mut h = Harness::new(quiet());
    h.open("a", Dialect::Native);
    h.take();
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"jobs/1"}}"#,
    );
    sub(&mut h, "a", "s2", "jobs/*");
    sub(&mut h, "a", "s3", "jobs/**");
    publish(&mut h, "jobs/1", json!(1));
    h.text(
        "a",
        r#"{"type":"unsubscribe","message_id":"u1","data":{"channel":"jobs/1"}}"#,
    );
    publish(&mut h, "jobs/1", json!(2));
    h.text(
        "a",
        r#"{"type":"unsubscribe","message_id":"u2","data":{"pattern":"jobs/*"}}"#,
    );
    h.text(
        "a",
        r#"{"type":"unsubscribe","message_id":"u3","data":{"pattern":"jobs/**"}}"#,
    );
    publish(&mut h, "jobs/1", json!(3));
    h.text(
        "a",
        r#"{"type":"unsubscribe","message_id":"u4","data":{"pattern":"jobs/**"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}}",
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s2\",\"data\":{\"pattern\":\"jobs/*\",\"channels\":[{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}]}}",
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s3\",\"data\":{\"pattern\":\"jobs/**\",\"channels\":[{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}]}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":1,\"event\":1}}",
            "a <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u1\",\"data\":{\"channel\":\"jobs/1\"}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#4\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":2,\"event\":2}}",
            "a <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u2\",\"data\":{\"pattern\":\"jobs/*\"}}",
            "a <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u3\",\"data\":{\"pattern\":\"jobs/**\"}}",
            "a <- {\"type\":\"error\",\"message_id\":\"u4\",\"data\":{\"code\":\"NOT_SUBSCRIBED\",\"message\":\"not subscribed to jobs/**\"}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn a_resubscribe_with_a_since_map_replays_each_channel_after_its_position() {
    let mut h = Harness::new(HubConfig {
        history_size: 3,
        ..quiet()
    });
    for n in 1..=4 {
        publish(&mut h, "jobs/1", json!(n));
    }
    for n in 1..=5 {
        publish(&mut h, "jobs/2", json!(n));
    }
    // Made while the client was away.
    publish(&mut h, "jobs/3", json!("fresh"));
    let e1 = epoch_of(&h.hub, "jobs/1");
    let e2 = epoch_of(&h.hub, "jobs/2");
    h.open("a", Dialect::Native);
    h.take();
    // jobs/1: after 2, history keeps 2..=4, so 3 and 4 follow. jobs/2: after 1, history keeps 3..=5 only: a gap.
    h.text(
        "a",
        &format!(
            r#"{{"type":"subscribe","message_id":"s1","data":{{"pattern":"jobs/*","since":{{"jobs/1":{{"epoch":"{e1}","offset":2}},"jobs/2":{{"epoch":"{e2}","offset":1}}}}}}}}"#
        ),
    );
    publish(&mut h, "jobs/2", json!(6));
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"pattern\":\"jobs/*\",\"channels\":[{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":4,\"recovered\":true},{\"channel\":\"jobs/2\",\"epoch\":\"E2\",\"offset\":5,\"recovered\":false},{\"channel\":\"jobs/3\",\"epoch\":\"E3\",\"offset\":1,\"recovered\":true}]}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":3,\"event\":3}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#4\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":4,\"event\":4}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/3\",\"epoch\":\"E3\",\"offset\":1,\"event\":\"fresh\"}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#6\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/2\",\"epoch\":\"E2\",\"offset\":6,\"event\":6}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn a_replay_past_the_outbound_queue_closes_as_a_slow_consumer_and_resumes_from_the_positions_reached()
 {
    let mut h = Harness::new(HubConfig {
        max_queued_bytes: 1_200,
        ..quiet()
    });
    for n in 1..=6 {
        publish(
            &mut h,
            "jobs/1",
            json!({"n": n, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}),
        );
    }
    let e1 = epoch_of(&h.hub, "jobs/1");
    h.open("a", Dialect::Native);
    h.take();
    h.text(
        "a",
        &format!(
            r#"{{"type":"subscribe","message_id":"s1","data":{{"pattern":"jobs/*","since":{{"jobs/1":{{"epoch":"{e1}","offset":0}}}}}}}}"#
        ),
    );
    let transcript = h.take();
    let events: Vec<u64> = h.frames[&h.conn("a")]
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["data"]["offset"].as_u64().unwrap())
        .collect();
    assert!(
        transcript
            .iter()
            .any(|l| l == "a closed 1013 slow consumer"),
        "{transcript:?}"
    );
    assert!(!events.is_empty() && events.len() < 6, "{events:?}");
    let reached = *events.last().unwrap();
    // It comes back with the position it reached, and the rest follows.
    h.open("b", Dialect::Native);
    h.take();
    h.text(
        "b",
        &format!(
            r#"{{"type":"subscribe","message_id":"s2","data":{{"pattern":"jobs/*","since":{{"jobs/1":{{"epoch":"{e1}","offset":{reached}}}}}}}}}"#
        ),
    );
    let rest: Vec<u64> = h.frames[&h.conn("b")]
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["data"]["offset"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = (reached + 1..=6).collect();
    assert_eq!(rest, want);
    h.assert_clean();
}

#[test]
fn bad_patterns_and_since_entries_are_refused_with_the_reason() {
    let mut h = Harness::new(quiet());
    h.open("a", Dialect::Native);
    h.take();
    sub(&mut h, "a", "s1", "jobs//x");
    sub(&mut h, "a", "s2", "**/x");
    sub(&mut h, "a", "s3", &"x".repeat(256));
    sub(&mut h, "a", "s4", "jobs*");
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s5","data":{"pattern":"jobs/*","since":{"other/1":{"epoch":"e","offset":1}}}}"#,
    );
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s6","data":{"pattern":"jobs/*","since":{"jobs/1":5}}}"#,
    );
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s7","data":{"pattern":"jobs/*","channel":"jobs/1"}}"#,
    );
    h.text(
        "a",
        r#"{"type":"unsubscribe","message_id":"u1","data":{"pattern":"jobs/*"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"error\",\"message_id\":\"s1\",\"data\":{\"code\":\"INVALID_CHANNEL\",\"message\":\"invalid channel name: has an empty segment\"}}",
            "a <- {\"type\":\"error\",\"message_id\":\"s2\",\"data\":{\"code\":\"INVALID_CHANNEL\",\"message\":\"invalid channel name: has `**` before its last segment\"}}",
            "a <- {\"type\":\"error\",\"message_id\":\"s3\",\"data\":{\"code\":\"INVALID_CHANNEL\",\"message\":\"invalid channel name: longer than 255 bytes\"}}",
            "a <- {\"type\":\"error\",\"message_id\":\"s4\",\"data\":{\"code\":\"INVALID_CHANNEL\",\"message\":\"invalid channel name: has `*` inside a segment (a wildcard is a whole segment)\"}}",
            "a <- {\"type\":\"error\",\"message_id\":\"s5\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"field `data.since.other/1` names a channel the pattern does not match\",\"details\":{\"field\":\"data.since.other/1\",\"problem\":\"names a channel the pattern does not match\"}}}",
            "a <- {\"type\":\"error\",\"message_id\":\"s6\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"field `data.since.jobs/1` must be an object {epoch, offset}\",\"details\":{\"field\":\"data.since.jobs/1\",\"problem\":\"must be an object {epoch, offset}\"}}}",
            "a <- {\"type\":\"error\",\"message_id\":\"s7\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"field `data.channel` cannot be given with `pattern`\",\"details\":{\"field\":\"data.channel\",\"problem\":\"cannot be given with `pattern`\"}}}",
            "a <- {\"type\":\"error\",\"message_id\":\"u1\",\"data\":{\"code\":\"NOT_SUBSCRIBED\",\"message\":\"not subscribed to jobs/*\"}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn grants_must_cover_the_whole_pattern_and_patterns_per_connection_are_limited() {
    let mut h = Harness::new(HubConfig {
        max_patterns: 2,
        ..quiet()
    });
    let perms = Permissions::from_patterns(
        alloc::vec![String::from("jobs/**")],
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    h.open_with("a", Dialect::Native, perms);
    h.take();
    sub(&mut h, "a", "s1", "**");
    sub(&mut h, "a", "s2", "*/1");
    sub(&mut h, "a", "s3", "jobs/*");
    sub(&mut h, "a", "s4", "jobs/*/logs");
    sub(&mut h, "a", "s5", "jobs/**");
    sub(&mut h, "a", "s6", "jobs/*");
    publish(&mut h, "other/1", json!("never seen"));
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"error\",\"message_id\":\"s1\",\"data\":{\"code\":\"FORBIDDEN\",\"message\":\"not allowed to subscribe to every channel ** matches\"}}",
            "a <- {\"type\":\"error\",\"message_id\":\"s2\",\"data\":{\"code\":\"FORBIDDEN\",\"message\":\"not allowed to subscribe to every channel */1 matches\"}}",
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s3\",\"data\":{\"pattern\":\"jobs/*\",\"channels\":[]}}",
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s4\",\"data\":{\"pattern\":\"jobs/*/logs\",\"channels\":[]}}",
            "a <- {\"type\":\"error\",\"message_id\":\"s5\",\"data\":{\"code\":\"TOO_MANY_SUBSCRIPTIONS\",\"message\":\"this connection already has 2 pattern subscriptions\"}}",
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s6\",\"data\":{\"pattern\":\"jobs/*\",\"channels\":[]}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn a_cluster_node_refuses_pattern_subscriptions() {
    let mut h = Harness::clustered(quiet());
    h.open("a", Dialect::Native);
    h.take();
    sub(&mut h, "a", "s1", "jobs/*");
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"error\",\"message_id\":\"s1\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"pattern subscriptions are not available on a cluster node yet\"}}",
        ],
    );
}

#[test]
fn closing_drops_the_patterns() {
    let mut h = Harness::new(quiet());
    let a = h.open("a", Dialect::Native);
    sub(&mut h, "a", "s1", "jobs/*");
    h.transport_closed("a");
    publish(&mut h, "jobs/1", json!(1));
    assert!(!h.hub.holds_anything_of(a));
    h.assert_clean();
}

#[test]
fn the_channel_payload_dialect_subscribes_by_pattern() {
    let mut h = Harness::new(quiet());
    h.open("w", Dialect::ChannelPayload);
    h.take();
    h.text(
        "w",
        r#"{"channel":"subscription","payload":{"action":"subscribe","pattern":"jobs/*"}}"#,
    );
    publish(&mut h, "jobs/7", json!({"n": 1}));
    publish(&mut h, "other", json!({"n": 2}));
    h.text(
        "w",
        r#"{"channel":"subscription","payload":{"action":"subscribe","pattern":"jobs//x"}}"#,
    );
    h.text(
        "w",
        r#"{"channel":"subscription","payload":{"action":"unsubscribe","pattern":"jobs/*"}}"#,
    );
    publish(&mut h, "jobs/7", json!({"n": 3}));
    assert_transcript(
        h.take(),
        &[
            "w <- {\"channel\":\"subscription\",\"payload\":{\"action\":\"subscribed\",\"pattern\":\"jobs/*\"}}",
            "w <- {\"channel\":\"jobs/7\",\"payload\":{\"n\":1}}",
            "w <- {\"channel\":\"error\",\"payload\":{\"type\":\"error\",\"status\":\"error\",\"message\":\"invalid channel name: has an empty segment\",\"error_details\":{\"code\":\"INVALID_CHANNEL\"},\"timestamp\":1700000000.0}}",
            "w <- {\"channel\":\"subscription\",\"payload\":{\"action\":\"unsubscribed\",\"pattern\":\"jobs/*\"}}",
        ],
    );
    h.assert_clean();
}
