//! Transcripts of Server-Sent Events streams (PROTOCOL §8): the opening block, live events with their ids, the
//! replay after a position (no gap, no duplicate), `resync` when the position cannot be replayed, a stream of
//! several channels and its own ids, keep-alives, the slow-consumer close, the project stream, and a refusal.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::json;

use super::transcripts::assert_transcript;
use super::{Harness, ch};
use crate::server::{Dialect, HubConfig, Permissions, SseOpen, SseResume, SseTarget};
use crate::wire::sse_event_id::{SseEventId, SsePosition};

fn quiet() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    }
}

fn stream(channels: &[&str], resume: SseResume) -> Dialect {
    Dialect::Sse(SseOpen {
        target: SseTarget::Channels(channels.iter().map(|c| ch(c)).collect()),
        resume,
    })
}

/// A resume from these channels' positions, each in its channel's epoch.
fn from(h: &Harness, entries: &[(&str, u64)]) -> SseResume {
    SseResume::From(SseEventId(
        entries
            .iter()
            .map(|(channel, offset)| SsePosition {
                epoch: super::epoch_of(&h.hub, channel),
                offset: *offset,
            })
            .collect(),
    ))
}

fn publish(h: &mut Harness, channel: &str, event: serde_json::Value) {
    h.hub
        .publish(h.now, &ch(channel), event, false)
        .expect("publish");
    h.drain();
}

/// The transcript without the hub's connected/disconnected events.
fn frames_only(h: &mut Harness) -> Vec<String> {
    h.take()
        .into_iter()
        .filter(|l| !l.starts_with("event "))
        .collect()
}

#[test]
fn a_fresh_stream_starts_at_the_current_position_and_names_events_by_their_type() {
    let mut h = Harness::new(quiet());
    publish(&mut h, "jobs", json!({"n": 1}));
    h.open("s", stream(&["jobs"], SseResume::Fresh));
    publish(
        &mut h,
        "jobs",
        json!({"event_type": "progress_update", "data": {"pct": 50}}),
    );
    publish(&mut h, "jobs", json!("plain"));
    assert_transcript(
        frames_only(&mut h),
        &[
            "s <- retry: 1000\nid: E:1\n\n",
            "s <- id: E:2\nevent: progress_update\ndata: {\"channel\":\"jobs\",\"offset\":2,\"event\":{\"data\":{\"pct\":50},\"event_type\":\"progress_update\"}}\n\n",
            "s <- id: E:3\nevent: message\ndata: {\"channel\":\"jobs\",\"offset\":3,\"event\":\"plain\"}\n\n",
        ],
    );
    let stats = h.hub.stats();
    assert_eq!((stats.connections, stats.by_dialect.sse), (1, 1));
    h.assert_clean();
}

#[test]
fn a_resumed_stream_gets_exactly_what_it_missed_then_live_events() {
    let mut h = Harness::new(quiet());
    for n in 1..=3 {
        publish(&mut h, "jobs", json!({ "n": n }));
    }
    let resume = from(&h, &[("jobs", 1)]);
    h.open("s", stream(&["jobs"], resume));
    publish(&mut h, "jobs", json!({"n": 4}));
    assert_transcript(
        frames_only(&mut h),
        &[
            "s <- retry: 1000\nid: E:1\n\n",
            "s <- id: E:2\nevent: message\ndata: {\"channel\":\"jobs\",\"offset\":2,\"event\":{\"n\":2}}\n\n",
            "s <- id: E:3\nevent: message\ndata: {\"channel\":\"jobs\",\"offset\":3,\"event\":{\"n\":3}}\n\n",
            "s <- id: E:4\nevent: message\ndata: {\"channel\":\"jobs\",\"offset\":4,\"event\":{\"n\":4}}\n\n",
        ],
    );
    // Caught up: resuming from the last id replays nothing.
    let resume = from(&h, &[("jobs", 4)]);
    h.open("again", stream(&["jobs"], resume));
    assert_transcript(frames_only(&mut h), &["again <- retry: 1000\nid: E:4\n\n"]);
    h.assert_clean();
}

#[test]
fn another_epoch_or_an_unreadable_id_gets_a_resync_at_the_current_position() {
    let mut h = Harness::new(quiet());
    h.hub
        .publish(h.now, &ch("jobs"), json!({"kept": true}), true)
        .expect("publish");
    h.drain();
    let old_epoch = SseResume::From(SseEventId::single("0123456789abcdef", 7));
    h.open("old", stream(&["jobs"], old_epoch));
    h.open("garbled", stream(&["jobs"], SseResume::Unreadable));
    // An id with the wrong number of entries is no position for these channels either.
    let two = from(&h, &[("jobs", 1), ("jobs", 1)]);
    h.open("mismatched", stream(&["jobs"], two));
    let resync = "id: E:1\nevent: resync\ndata: {\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":1,\"state\":{\"kept\":true}}\n\n";
    assert_transcript(
        frames_only(&mut h),
        &[
            "old <- retry: 1000\nid: E:1\n\n",
            &format!("old <- {resync}"),
            "garbled <- retry: 1000\nid: E:1\n\n",
            &format!("garbled <- {resync}"),
            "mismatched <- retry: 1000\nid: E:1\n\n",
            &format!("mismatched <- {resync}"),
        ],
    );
    h.assert_clean();
}

#[test]
fn a_stream_of_several_channels_carries_every_position_in_each_id() {
    let mut h = Harness::new(quiet());
    publish(&mut h, "a", json!(1));
    publish(&mut h, "b", json!(1));
    publish(&mut h, "b", json!(2));
    // Resumes `a` after 1 (nothing missed) and `b` after 1 (one missed).
    let resume = from(&h, &[("a", 1), ("b", 1)]);
    h.open("s", stream(&["a", "b"], resume));
    // A driver that fed it a message anyway gets it refused, and the stream goes on.
    h.text(
        "s",
        "ignored: a stream takes no messages and the driver feeds it none",
    );
    publish(&mut h, "a", json!(2));
    assert_transcript(
        frames_only(&mut h),
        &[
            "s <- retry: 1000\nid: E:1,E2:1\n\n",
            "s <- id: E:1,E2:2\nevent: message\ndata: {\"channel\":\"b\",\"offset\":2,\"event\":2}\n\n",
            "s <- event: error\ndata: {\"code\":\"UNSUPPORTED_FRAME\",\"message\":\"binary frames are not supported: send JSON in text frames\"}\n\n",
            "s <- id: E:2,E2:2\nevent: message\ndata: {\"channel\":\"a\",\"offset\":2,\"event\":2}\n\n",
        ],
    );
    h.assert_clean();
}

#[test]
fn keep_alives_go_out_every_heartbeat_and_silence_never_closes_a_stream() {
    let mut h = Harness::new(HubConfig {
        heartbeat: Duration::from_secs(10),
        heartbeat_timeout: Duration::from_secs(5),
        ..HubConfig::default()
    });
    h.open("s", stream(&["jobs"], SseResume::Fresh));
    h.take();
    h.advance_ms(60_000);
    let lines = h.take();
    assert!(lines.len() >= 5, "{lines:?}");
    assert!(lines.iter().all(|l| l == "s <- :\n\n"), "{lines:?}");
    assert!(h.closes.is_empty());
    h.assert_clean();
}

#[test]
fn a_stream_that_does_not_read_is_closed_as_a_slow_consumer() {
    let mut h = Harness::new(HubConfig {
        max_queued_bytes: 600,
        ..quiet()
    });
    let s = h.open("s", stream(&["jobs"], SseResume::Fresh));
    h.stalled.insert(s);
    for n in 0..10 {
        publish(&mut h, "jobs", json!({ "n": n, "pad": "x".repeat(40) }));
    }
    assert_eq!(h.closes.get(&s).map(|c| c.0), Some(1013));
    h.assert_clean();
}

#[test]
fn a_project_stream_speaks_the_project_stream_messages() {
    let mut h = Harness::new(quiet());
    h.open(
        "p",
        Dialect::Sse(SseOpen {
            target: SseTarget::Project("p1".to_owned()),
            resume: SseResume::Fresh,
        }),
    );
    publish(
        &mut h,
        "projects/p1",
        json!({"event_type": "stage_transition", "timestamp": "t", "data": {"stage": "build"}}),
    );
    publish(&mut h, "other", json!(1));
    assert_transcript(
        frames_only(&mut h),
        &[
            "p <- retry: 1000\nid: E:0\n\n",
            "p <- event: connected\ndata: {\"event_type\":\"connected\",\"project_id\":\"p1\",\"timestamp\":\"2023-11-14T22:13:20.000Z\",\"message\":\"event stream established\"}\n\n",
            "p <- id: E:1\nevent: stage_transition\ndata: {\"event_type\":\"stage_transition\",\"project_id\":\"p1\",\"timestamp\":\"t\",\"offset\":1,\"data\":{\"stage\":\"build\"}}\n\n",
        ],
    );
    assert_eq!(h.hub.stats().by_dialect.project_stream_sse, 1);
    h.assert_clean();
}

#[test]
fn a_channel_the_permissions_do_not_grant_ends_the_stream_with_an_error() {
    let mut h = Harness::new(quiet());
    let only_a = Permissions::from_patterns(vec!["a".into()], vec![], vec![], vec![]);
    let s = h.open_with("s", stream(&["a", "b"], SseResume::Fresh), only_a);
    assert_transcript(
        frames_only(&mut h),
        &[
            "s <- event: error\ndata: {\"code\":\"FORBIDDEN\",\"message\":\"not allowed to subscribe to b\"}\n\n",
            "s closed 1008 stream refused",
        ],
    );
    assert_eq!(h.closes.get(&s).map(|c| c.0), Some(1008));
    h.assert_clean();
}
