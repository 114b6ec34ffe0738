//! Transcripts of a hub that is one node of a cluster: a subscribe (and what the connection sends after it) waits
//! for the channel's load, publishes go to the engine and are answered by its report, events reach subscribers only
//! from the engine's feed, recovery and `get_state` are answered from the node's copy, a resync closes the
//! channel's subscribers with 1013, and the node stops following a channel nobody here subscribes to.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::transcripts::assert_transcript;
use super::{Harness, ch};
use crate::redis::engine::StoredEvent;
use crate::server::{Dialect, EngineCommand, EngineFailure, HubConfig};

fn node() -> Harness {
    Harness::clustered(HubConfig {
        heartbeat: Duration::from_secs(3600),
        history_ttl: Duration::ZERO,
        ..HubConfig::default()
    })
}

fn stored(offset: u64, retained: bool) -> StoredEvent {
    StoredEvent {
        offset,
        published_ms: super::T0_MS,
        retained,
        event: alloc::format!("{{\"n\":{offset}}}").into_bytes(),
    }
}

fn following(h: &mut Harness, channel: &str, epoch: &str, offset: u64, events: Vec<StoredEvent>) {
    let state = events
        .iter()
        .rev()
        .find(|e| e.retained)
        .map(|e| (e.offset, e.event.clone()));
    h.hub.handle_engine_following(
        h.now,
        &ch(channel),
        Some(String::from(epoch)),
        offset,
        state,
        events,
    );
    h.drain();
}

fn deliver(h: &mut Harness, channel: &str, epoch: &str, offset: u64) {
    let event = alloc::format!("{{\"n\":{offset}}}");
    h.hub
        .handle_engine_delivery(h.now, &ch(channel), epoch, offset, false, event.as_bytes());
    h.drain();
}

/// Reports the oldest engine publish as `outcome`.
fn published(h: &mut Harness, outcome: Result<(u64, u64), EngineFailure>) {
    let Some(EngineCommand::Publish { ticket, .. }) = h.engine.pop_front() else {
        panic!("an engine publish to answer");
    };
    h.hub.handle_engine_published(h.now, ticket, outcome);
    h.drain();
}

#[test]
fn a_subscribe_waits_for_the_load_and_events_come_only_from_the_feed() {
    let mut h = node();
    h.open("sub", Dialect::Native);
    h.open("pub", Dialect::Native);
    h.take();
    h.text(
        "sub",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"jobs/1"}}"#,
    );
    // Sent after the subscribe: it waits behind it, so the answers keep their order.
    h.text("sub", r#"{"type":"ping","message_id":"p1","data":{}}"#);
    assert_transcript(h.take(), &["engine follow jobs/1"]);
    h.engine.clear();
    following(
        &mut h,
        "jobs/1",
        "ep1",
        2,
        vec![stored(1, false), stored(2, true)],
    );
    let got = h.take();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        "sub <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":2,\"recovered\":null}}"
    );
    assert!(
        got[1].starts_with("sub <- {\"type\":\"ping_res\",\"message_id\":\"p1\""),
        "{got:?}"
    );
    h.text(
        "pub",
        r#"{"type":"publish","message_id":"m1","data":{"channel":"jobs/1","event":{"n":3}}}"#,
    );
    assert_transcript(
        h.take(),
        &["engine publish #1 jobs/1 [{\"n\":3}] retain_last=false"],
    );
    published(&mut h, Ok((3, 3)));
    assert_transcript(
        h.take(),
        &[
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"m1\",\"data\":{\"channel\":\"jobs/1\",\"offset\":3}}",
        ],
    );
    // Every node delivers from the feed, this one's own publishes too.
    deliver(&mut h, "jobs/1", "ep1", 3);
    assert_transcript(
        h.take(),
        &[
            "sub <- {\"type\":\"event\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":3,\"event\":{\"n\":3}}}",
        ],
    );
    // A second subscriber of a loaded channel recovers from the node's copy at once.
    h.open("late", Dialect::Native);
    h.take();
    h.text(
        "late",
        r#"{"type":"subscribe","message_id":"s2","data":{"channel":"jobs/1","since":{"epoch":"ep1","offset":1}}}"#,
    );
    h.text(
        "late",
        r#"{"type":"get_state","message_id":"g1","data":{"channel":"jobs/1"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "late <- {\"type\":\"subscribe_res\",\"message_id\":\"s2\",\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":3,\"recovered\":true}}",
            "late <- {\"type\":\"event\",\"message_id\":\"#8\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":2,\"event\":{\"n\":2}}}",
            "late <- {\"type\":\"event\",\"message_id\":\"#9\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":3,\"event\":{\"n\":3}}}",
            "late <- {\"type\":\"get_state_res\",\"message_id\":\"g1\",\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":3,\"state\":{\"n\":2}}}",
        ],
    );
    // A position in another epoch is not recovered.
    h.text(
        "late",
        r#"{"type":"unsubscribe","message_id":"u1","data":{"channel":"jobs/1"}}"#,
    );
    h.text(
        "late",
        r#"{"type":"subscribe","message_id":"s3","data":{"channel":"jobs/1","since":{"epoch":"old","offset":1}}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "late <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u1\",\"data\":{\"channel\":\"jobs/1\"}}",
            "late <- {\"type\":\"subscribe_res\",\"message_id\":\"s3\",\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":3,\"recovered\":false}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn a_resync_closes_the_subscribers_and_the_last_one_out_stops_the_follow() {
    let mut h = node();
    h.open("a", Dialect::Native);
    h.open("b", Dialect::Native);
    h.take();
    for (name, id) in [("a", "s1"), ("b", "s2")] {
        h.text(
            name,
            &alloc::format!(
                r#"{{"type":"subscribe","message_id":"{id}","data":{{"channel":"jobs/2"}}}}"#
            ),
        );
    }
    assert_transcript(h.take(), &["engine follow jobs/2"]);
    following(&mut h, "jobs/2", "ep1", 0, Vec::new());
    h.take();
    h.hub
        .handle_engine_resync(h.now, &ch("jobs/2"), Some(String::from("ep2")), 9, None);
    h.drain();
    assert_transcript(
        h.take(),
        &[
            "a closed 1013 events were missed: reconnect to recover",
            "b closed 1013 events were missed: reconnect to recover",
            "event {\"app_id\":\"#1\",\"conn\":\"a\",\"event\":\"disconnected\"}",
            "event {\"app_id\":\"#3\",\"conn\":\"b\",\"event\":\"disconnected\"}",
            "engine unfollow jobs/2",
        ],
    );
    h.assert_clean();
}

#[test]
fn a_publish_the_engine_did_not_take_is_refused_and_a_get_state_alone_follows_only_while_it_waits()
{
    let mut h = node();
    h.open("pub", Dialect::Native);
    h.take();
    h.text(
        "pub",
        r#"{"type":"publish","message_id":"m1","data":{"channel":"jobs/3","events":[{"n":1},{"n":2}],"retain_last":true}}"#,
    );
    assert_transcript(
        h.take(),
        &["engine publish #1 jobs/3 [{\"n\":1},{\"n\":2}] retain_last=true"],
    );
    published(&mut h, Err(EngineFailure::Unavailable));
    let got = h.take();
    assert!(
        got.len() == 1
            && got[0].contains("\"code\":\"STORAGE_UNAVAILABLE\"")
            // A node cannot tell a publish Redis never ran from one whose answer was lost: it says so.
            && got[0].contains("may or may not have been stored")
            && got[0].contains("\"m1\""),
        "{got:?}"
    );
    h.text(
        "pub",
        r#"{"type":"get_state","message_id":"g1","data":{"channel":"jobs/3"}}"#,
    );
    assert_transcript(h.take(), &["engine follow jobs/3"]);
    following(&mut h, "jobs/3", "ep1", 4, vec![stored(4, true)]);
    assert_transcript(
        h.take(),
        &[
            "pub <- {\"type\":\"get_state_res\",\"message_id\":\"g1\",\"data\":{\"channel\":\"jobs/3\",\"epoch\":\"E\",\"offset\":4,\"state\":{\"n\":4}}}",
            "engine unfollow jobs/3",
        ],
    );
    assert!(!h.hub.follows(&ch("jobs/3")));
    h.assert_clean();
}

#[test]
fn calls_cross_nodes_through_the_engine_and_their_answers_come_back() {
    let mut h = node();
    h.open("worker", Dialect::Native);
    h.open("caller", Dialect::Native);
    h.take();
    h.text(
        "worker",
        r#"{"type":"serve","message_id":"v1","data":{"channel":"jobs/1"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "worker <- {\"type\":\"serve_res\",\"message_id\":\"v1\",\"data\":{\"channel\":\"jobs/1\"}}",
            "engine register jobs/1",
        ],
    );
    // Another node's caller: the local worker gets it, and its answer goes back to that node.
    let caller = crate::wire::Caller::new("far-app", Some(String::from("ops")), None);
    h.hub.handle_remote_call(
        h.now,
        String::from("node-b"),
        crate::wire::MessageId::new("c-9").unwrap(),
        &ch("jobs/1"),
        String::from("cancel"),
        serde_json::json!({"force": true}),
        caller,
    );
    h.drain();
    let got = h.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("worker <- {\"type\":\"server_request\",\"message_id\":\"#")
            && got[0].contains("\"caller\":{\"app_id\":\"far-app\",\"sub\":\"ops\"}")
            && got[0].contains("\"params\":{\"force\":true}"),
        "{got:?}"
    );
    let request = core::iter::from_fn(|| h.next_frame("worker"))
        .find(|f| f["type"] == "server_request")
        .expect("the server_request");
    let routed = request["message_id"].as_str().expect("an id").to_string();
    h.text(
        "worker",
        &alloc::format!(
            r#"{{"type":"server_response","message_id":"{routed}","data":{{"result":"stopped"}}}}"#
        ),
    );
    assert_transcript(
        h.take(),
        &["engine answer node-b c-9 {\"result\":\"stopped\"}"],
    );
    // A local caller of a channel no local connection serves: forwarded, answered from the other node.
    h.text(
        "caller",
        r#"{"type":"call","message_id":"k1","data":{"channel":"jobs/2","method":"status","params":{"v":1}}}"#,
    );
    let got = h.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("engine call ")
            && got[0].ends_with(" jobs/2 status {\"v\":1} {\"app_id\":\"#3\"}"),
        "{got:?}"
    );
    let Some(EngineCommand::Call { call, .. }) = h.engine.pop_back() else {
        panic!("a forwarded call");
    };
    let mut data = serde_json::Map::new();
    data.insert(String::from("result"), serde_json::json!({"running": true}));
    h.hub.handle_remote_answer(h.now, &call, data);
    h.drain();
    assert_transcript(
        h.take(),
        &[
            "caller <- {\"type\":\"call_res\",\"message_id\":\"k1\",\"data\":{\"channel\":\"jobs/2\",\"method\":\"status\",\"result\":{\"running\":true}}}",
        ],
    );
    // Nobody serves it anywhere: NO_HANDLER.
    h.text(
        "caller",
        r#"{"type":"call","message_id":"k2","data":{"channel":"jobs/3","method":"status"}}"#,
    );
    h.take();
    let Some(EngineCommand::Call { call, .. }) = h.engine.pop_back() else {
        panic!("a forwarded call");
    };
    h.hub.handle_remote_unreachable(h.now, &call);
    h.drain();
    let got = h.take();
    assert!(
        got.len() == 1 && got[0].contains("\"k2\"") && got[0].contains("\"code\":\"NO_HANDLER\""),
        "{got:?}"
    );
    // A remote call for a channel nobody here serves is answered NO_HANDLER; the worker leaving unregisters.
    h.hub.handle_remote_call(
        h.now,
        String::from("node-b"),
        crate::wire::MessageId::new("c-10").unwrap(),
        &ch("jobs/3"),
        String::from("status"),
        serde_json::Value::Null,
        crate::wire::Caller::new("far-app", None, None),
    );
    h.drain();
    h.transport_closed("worker");
    assert_transcript(
        h.take(),
        &[
            "engine answer node-b c-10 {\"error\":{\"code\":\"NO_HANDLER\",\"message\":\"no connection serves jobs/3\"}}",
            "event {\"app_id\":\"#1\",\"conn\":\"worker\",\"event\":\"disconnected\"}",
            "engine unregister jobs/1",
        ],
    );
    h.assert_clean();
}

fn sse(channels: &[&str], resume: crate::server::SseResume) -> Dialect {
    Dialect::Sse(crate::server::SseOpen {
        target: crate::server::SseTarget::Channels(channels.iter().map(|c| ch(c)).collect()),
        resume,
    })
}

/// A resume id from positions in epoch `ep1`.
fn resume_from(offsets: &[u64]) -> crate::server::SseResume {
    use crate::wire::sse_event_id::{SseEventId, SsePosition};
    crate::server::SseResume::From(SseEventId(
        offsets
            .iter()
            .map(|&offset| SsePosition {
                epoch: String::from("ep1"),
                offset,
            })
            .collect(),
    ))
}

#[test]
fn an_event_stream_opens_once_all_its_channels_are_loaded_and_resumes_from_the_nodes_copy() {
    let mut h = node();
    h.open("s", sse(&["a", "b"], resume_from(&[1, 0])));
    // Both channels load side by side; the stream says nothing until both are in.
    let got: Vec<String> = h
        .take()
        .into_iter()
        .filter(|l| !l.starts_with("event "))
        .collect();
    assert_transcript(got, &["engine follow a", "engine follow b"]);
    h.engine.clear();
    following(
        &mut h,
        "a",
        "ep1",
        2,
        vec![stored(1, false), stored(2, false)],
    );
    // `a` stays followed while the stream waits for `b` (letting it go would make the stream wait for it again).
    assert_transcript(h.take(), &[]);
    assert!(h.engine.is_empty(), "{:?}", h.engine);
    following(&mut h, "b", "ep1", 1, vec![stored(1, false)]);
    assert_transcript(
        h.take(),
        &[
            "s <- retry: 1000\nid: E:1,:0\n\n",
            "s <- id: E:2,:0\nevent: message\ndata: {\"channel\":\"a\",\"offset\":2,\"event\":{\"n\":2}}\n\n",
            "s <- id: E:2,:1\nevent: message\ndata: {\"channel\":\"b\",\"offset\":1,\"event\":{\"n\":1}}\n\n",
        ],
    );
    deliver(&mut h, "b", "ep1", 2);
    assert_transcript(
        h.take(),
        &[
            "s <- id: E:2,:2\nevent: message\ndata: {\"channel\":\"b\",\"offset\":2,\"event\":{\"n\":2}}\n\n",
        ],
    );
    // The stream gone, the node follows neither channel.
    let conn = h.conn("s");
    h.hub.handle_transport_closed(h.now, conn);
    h.drain();
    h.take();
    let mut commands: Vec<String> = h
        .engine
        .drain(..)
        .map(|c| alloc::format!("{c:?}"))
        .collect();
    commands.sort();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(
        commands.iter().all(|c| c.starts_with("Unfollow")),
        "{commands:?}"
    );
    h.assert_clean();
}

#[test]
fn an_event_stream_that_leaves_while_waiting_lets_its_loaded_channels_go() {
    let mut h = node();
    h.open("s", sse(&["a", "b"], crate::server::SseResume::Fresh));
    h.take();
    h.engine.clear();
    following(&mut h, "a", "ep1", 0, vec![]);
    assert!(h.engine.is_empty(), "{:?}", h.engine);
    let conn = h.conn("s");
    h.hub.handle_transport_closed(h.now, conn);
    h.drain();
    h.take();
    // `a` (loaded for the stream) is let go at once; `b` when its load comes back to nobody.
    assert_eq!(
        h.engine
            .drain(..)
            .map(|c| alloc::format!("{c:?}"))
            .collect::<Vec<_>>(),
        ["Unfollow { channel: ChannelName(\"a\") }"]
    );
    following(&mut h, "b", "ep1", 0, vec![]);
    assert_eq!(
        h.engine
            .drain(..)
            .map(|c| alloc::format!("{c:?}"))
            .collect::<Vec<_>>(),
        ["Unfollow { channel: ChannelName(\"b\") }"]
    );
    h.assert_clean();
}
