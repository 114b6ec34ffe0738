//! Transcripts of idempotent publishing (`idempotency_key`): a key seen on the channel within the window publishes
//! nothing and is answered with the original offsets and `duplicate: true`; a key whose original is still being
//! written (or published by the engine) waits for it and is answered from it; a failed original forgets its key;
//! the window, the caps and the channel's epoch end a key; bad keys are `VALIDATION_ERROR`s naming the field.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Value, json};

use super::transcripts::assert_transcript;
use super::{Harness, ch};
use crate::server::{
    Dialect, DurableConfig, DurableStore, EngineCommand, HubConfig, HubOutput, HubTimer, Publish,
};
use crate::wire::IdempotencyKey;

fn quiet() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    }
}

fn durable() -> Harness {
    let config = quiet();
    let store = DurableStore::new(
        DurableConfig::new(config.history_size, config.history_ttl),
        String::from("E"),
    );
    let mut h = Harness::with_store(config, Box::new(store));
    h.drain();
    h.written();
    h
}

fn keyed(id: &str, channel: &str, n: u64, key: &str) -> String {
    alloc::format!(
        r#"{{"type":"publish","message_id":"{id}","data":{{"channel":"{channel}","event":{{"n":{n}}},"idempotency_key":"{key}"}}}}"#
    )
}

fn keyed_batch(id: &str, channel: &str, events: &Value, key: &str) -> String {
    alloc::format!(
        r#"{{"type":"publish","message_id":"{id}","data":{{"channel":"{channel}","events":{events},"idempotency_key":"{key}"}}}}"#
    )
}

fn key(k: &str) -> Option<IdempotencyKey> {
    Some(IdempotencyKey::new(k).unwrap())
}

/// The offsets of the `event` frames `name` received.
fn delivered(h: &Harness, name: &str) -> Vec<u64> {
    h.frames[&h.conn(name)]
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["data"]["offset"].as_u64().expect("offset"))
        .collect()
}

fn subscribed(config: HubConfig) -> Harness {
    let mut h = Harness::new(config);
    h.open("pub", Dialect::Native);
    h.open("sub", Dialect::Native);
    h.text(
        "sub",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"jobs"}}"#,
    );
    h.take();
    h
}

#[test]
fn a_key_seen_within_the_window_publishes_nothing_and_answers_the_original_offset() {
    let mut h = subscribed(quiet());
    h.text("pub", &keyed("p1", "jobs", 1, "k-1"));
    h.text("pub", &keyed("p2", "jobs", 2, "k-1"));
    // Keys are per channel: the same key elsewhere is another publish.
    h.text("pub", &keyed("p3", "other", 3, "k-1"));
    assert_transcript(
        h.take(),
        &[
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p1\",\"data\":{\"channel\":\"jobs\",\"offset\":1}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":1,\"event\":{\"n\":1}}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p2\",\"data\":{\"channel\":\"jobs\",\"offset\":1,\"duplicate\":true}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p3\",\"data\":{\"channel\":\"other\",\"offset\":1}}",
        ],
    );
    assert_eq!(delivered(&h, "sub"), [1]);
    assert_eq!(h.hub.stats().duplicate_publishes, 1);
    assert_eq!(h.hub.stats().dedupe_keys, 2);
    h.assert_clean();
}

#[test]
fn the_window_ends_a_key_on_the_timer_path() {
    let mut h = subscribed(HubConfig {
        dedupe_window: Duration::from_secs(60),
        ..quiet()
    });
    h.text("pub", &keyed("p1", "jobs", 1, "k"));
    h.take();
    h.advance(Duration::from_secs(59));
    h.text("pub", &keyed("p2", "jobs", 2, "k"));
    assert_eq!(h.hub.stats().dedupe_keys, 1);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.hub.stats().dedupe_keys, 0, "forgotten by the timer");
    h.text("pub", &keyed("p3", "jobs", 3, "k"));
    assert_transcript(
        h.take(),
        &[
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p2\",\"data\":{\"channel\":\"jobs\",\"offset\":1,\"duplicate\":true}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p3\",\"data\":{\"channel\":\"jobs\",\"offset\":2}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#6\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":2,\"event\":{\"n\":3}}}",
        ],
    );
    assert_eq!(delivered(&h, "sub"), [1, 2]);
}

#[test]
fn the_next_deadline_names_the_dedupe_window() {
    let mut h = Harness::new(HubConfig {
        heartbeat: Duration::ZERO,
        history_ttl: Duration::from_secs(600),
        dedupe_window: Duration::from_secs(60),
        ..HubConfig::default()
    });
    h.hub
        .publish_keyed(h.now, &ch("jobs"), json!(1), false, key("k"))
        .expect("valid");
    let at = loop {
        if let HubOutput::Timeout(at) = h.hub.poll_output() {
            break at;
        }
    };
    assert_eq!(at, h.now + Duration::from_secs(60));
    assert_eq!(h.hub.last_timeout_reason(), Some(HubTimer::DedupeExpiry));
}

#[test]
fn a_batch_has_one_key_and_a_duplicate_gets_the_original_first_and_last() {
    let mut h = subscribed(quiet());
    h.text(
        "pub",
        &keyed_batch(
            "b1",
            "jobs",
            &json!([{"n": 1}, {"n": 2}, {"n": 3}]),
            "batch-1",
        ),
    );
    // The retry, even with other events, and a single publish with the batch's key: duplicates.
    h.text(
        "pub",
        &keyed_batch("b2", "jobs", &json!([{"n": 1}]), "batch-1"),
    );
    h.text("pub", &keyed("p3", "jobs", 9, "batch-1"));
    assert_transcript(
        h.take(),
        &[
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"b1\",\"data\":{\"channel\":\"jobs\",\"first_offset\":1,\"last_offset\":3}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":1,\"event\":{\"n\":1}}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#6\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":2,\"event\":{\"n\":2}}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#7\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":3,\"event\":{\"n\":3}}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"b2\",\"data\":{\"channel\":\"jobs\",\"first_offset\":1,\"last_offset\":3,\"duplicate\":true}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p3\",\"data\":{\"channel\":\"jobs\",\"offset\":1,\"duplicate\":true}}",
        ],
    );
    assert_eq!(delivered(&h, "sub"), [1, 2, 3]);
    h.assert_clean();
}

#[test]
fn the_command_api_answers_a_duplicate_with_the_original_offsets() {
    let mut h = Harness::new(quiet());
    let c = ch("jobs");
    let first = h
        .hub
        .publish_batch_keyed(h.now, &c, alloc::vec![json!(1), json!(2)], false, key("k"))
        .expect("valid");
    assert_eq!(first, Publish::Done(1));
    let again = h.hub.publish_keyed(h.now, &c, json!(3), false, key("k"));
    assert_eq!(
        again,
        Ok(Publish::Duplicate {
            first_offset: 1,
            last_offset: 2
        })
    );
    let unkeyed = h.hub.publish_keyed(h.now, &c, json!(3), false, None);
    assert_eq!(unkeyed, Ok(Publish::Done(3)));
}

#[test]
fn a_duplicate_of_a_publish_being_written_waits_for_it_and_is_answered_from_it() {
    let mut h = durable();
    h.open("pub", Dialect::Native);
    h.open("sub", Dialect::Native);
    h.text(
        "sub",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"jobs"}}"#,
    );
    h.take();
    h.text("pub", &keyed("p1", "jobs", 1, "k"));
    h.text("pub", &keyed("p2", "jobs", 1, "k"));
    let ticket = h
        .hub
        .publish_keyed(h.now, &ch("jobs"), json!(1), false, key("k"))
        .expect("valid");
    assert!(matches!(ticket, Publish::Pending(_)));
    h.take();
    h.written();
    assert_transcript(
        h.take(),
        &[
            "store wrote batch 2",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p1\",\"data\":{\"channel\":\"jobs\",\"offset\":1}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p2\",\"data\":{\"channel\":\"jobs\",\"offset\":1,\"duplicate\":true}}",
            "event {\"event\":\"publish_duplicate\",\"first_offset\":1,\"last_offset\":1,\"ticket\":\"PublishTicket(1)\"}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":1,\"event\":{\"n\":1}}}",
        ],
    );
    assert_eq!(delivered(&h, "sub"), [1]);
    h.assert_clean();
}

#[test]
fn a_failed_original_forgets_its_key_so_the_retry_publishes() {
    let mut h = durable();
    h.open("pub", Dialect::Native);
    h.text("pub", &keyed("p1", "jobs", 1, "k"));
    h.text("pub", &keyed("p2", "jobs", 1, "k"));
    h.take();
    h.write_failed();
    assert_transcript(
        h.take(),
        &[
            "store failed batch 2",
            "pub <- {\"type\":\"error\",\"message_id\":\"p1\",\"data\":{\"code\":\"STORAGE_UNAVAILABLE\",\"message\":\"the event could not be stored; it was not published\"}}",
            "pub <- {\"type\":\"error\",\"message_id\":\"p2\",\"data\":{\"code\":\"STORAGE_UNAVAILABLE\",\"message\":\"the event could not be stored; it was not published\"}}",
        ],
    );
    h.text("pub", &keyed("p3", "jobs", 1, "k"));
    h.written();
    h.text("pub", &keyed("p4", "jobs", 1, "k"));
    assert_transcript(
        h.take(),
        &[
            "persist batch 3 to segment 1 + sync: 122 bytes",
            "store wrote batch 3",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p3\",\"data\":{\"channel\":\"jobs\",\"offset\":1}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p4\",\"data\":{\"channel\":\"jobs\",\"offset\":1,\"duplicate\":true}}",
        ],
    );
}

#[test]
fn a_key_from_an_earlier_epoch_of_the_channel_publishes_anew() {
    let mut h = Harness::new(HubConfig {
        history_ttl: Duration::from_secs(10),
        dedupe_window: Duration::from_secs(600),
        ..quiet()
    });
    h.open("pub", Dialect::Native);
    h.text("pub", &keyed("p1", "jobs", 1, "k"));
    let before = super::epoch_of(&h.hub, "jobs");
    // Nobody holds the channel: once its history expires it is forgotten, and its next event starts a new epoch.
    h.advance(Duration::from_secs(11));
    h.text("pub", &keyed("p2", "jobs", 2, "k"));
    assert_ne!(super::epoch_of(&h.hub, "jobs"), before);
    let answers: Vec<Value> = h.frames[&h.conn("pub")]
        .iter()
        .filter(|f| f["type"] == "publish_res")
        .map(|f| f["data"].clone())
        .collect();
    assert_eq!(
        answers,
        [
            json!({"channel": "jobs", "offset": 1}),
            json!({"channel": "jobs", "offset": 1})
        ]
    );
    assert_eq!(h.hub.stats().duplicate_publishes, 0);
}

#[test]
fn the_caps_forget_the_oldest_keys_and_a_zero_window_ignores_keys() {
    let mut h = subscribed(HubConfig {
        dedupe_keys_per_channel: 2,
        dedupe_keys: 3,
        ..quiet()
    });
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        h.text("pub", &keyed(&alloc::format!("p{i}"), "jobs", 0, k));
    }
    assert_eq!(h.hub.stats().dedupe_keys, 2);
    h.text("pub", &keyed("q1", "jobs", 0, "a"));
    h.text("pub", &keyed("q2", "jobs", 0, "c"));
    assert_eq!(
        delivered(&h, "sub"),
        [1, 2, 3, 4],
        "a was pushed out, c was not"
    );

    let mut off = subscribed(HubConfig {
        dedupe_window: Duration::ZERO,
        ..quiet()
    });
    off.text("pub", &keyed("p1", "jobs", 0, "k"));
    off.text("pub", &keyed("p2", "jobs", 0, "k"));
    assert_eq!(delivered(&off, "sub"), [1, 2]);
    assert_eq!(off.hub.stats().dedupe_keys, 0);
}

#[test]
fn bad_keys_are_validation_errors_naming_the_field() {
    let mut h = Harness::new(quiet());
    h.open("pub", Dialect::Native);
    let long = "k".repeat(129);
    for (id, k) in [
        ("e1", json!("")),
        ("e2", json!(long)),
        ("e3", json!(7)),
        ("e4", json!("a\u{1}b")),
    ] {
        h.text(
            "pub",
            &alloc::format!(
                r#"{{"type":"publish","message_id":"{id}","data":{{"channel":"jobs","event":1,"idempotency_key":{k}}}}}"#
            ),
        );
    }
    h.text(
        "pub",
        r#"{"type":"publish","message_id":"e5","data":{"channel":"jobs","events":[1],"idempotency_key":""}}"#,
    );
    let errors: Vec<(Value, Value, Value)> = h.frames[&h.conn("pub")]
        .iter()
        .filter(|f| f["type"] == "error")
        .map(|f| {
            let d = &f["data"];
            (
                f["message_id"].clone(),
                d["code"].clone(),
                d["details"]["field"].clone(),
            )
        })
        .collect();
    let field = json!("data.idempotency_key");
    let want: Vec<(Value, Value, Value)> = ["e1", "e2", "e3", "e4", "e5"]
        .iter()
        .map(|id| (json!(id), json!("VALIDATION_ERROR"), field.clone()))
        .collect();
    assert_eq!(errors, want);
    assert_eq!(h.hub.state(&ch("jobs")).offset, 0);
}

#[test]
fn on_a_cluster_node_a_duplicate_waits_for_the_engine_and_then_needs_no_engine() {
    let mut h = Harness::clustered(HubConfig {
        history_ttl: Duration::ZERO,
        ..quiet()
    });
    h.open("pub", Dialect::Native);
    h.take();
    h.text("pub", &keyed("p1", "jobs", 1, "k"));
    h.text("pub", &keyed("p2", "jobs", 1, "k"));
    assert_transcript(
        h.take(),
        &["engine publish #1 jobs [{\"n\":1}] retain_last=false"],
    );
    let Some(EngineCommand::Publish { ticket, .. }) = h.engine.pop_front() else {
        panic!("an engine publish");
    };
    h.hub.handle_engine_published(h.now, ticket, Ok((7, 7)));
    h.drain();
    h.text("pub", &keyed("p3", "jobs", 1, "k"));
    assert_transcript(
        h.take(),
        &[
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p1\",\"data\":{\"channel\":\"jobs\",\"offset\":7}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p2\",\"data\":{\"channel\":\"jobs\",\"offset\":7,\"duplicate\":true}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p3\",\"data\":{\"channel\":\"jobs\",\"offset\":7,\"duplicate\":true}}",
        ],
    );
    assert!(h.engine.is_empty());
}

#[test]
fn on_a_cluster_node_a_key_another_node_published_is_a_duplicate_from_the_engine() {
    let mut h = Harness::clustered(HubConfig {
        history_ttl: Duration::ZERO,
        ..quiet()
    });
    h.open("pub", Dialect::Native);
    h.take();
    h.text("pub", &keyed("p1", "jobs", 1, "k"));
    let Some(EngineCommand::Publish {
        ticket,
        idempotency_key,
        dedupe_window,
        ..
    }) = h.engine.pop_front()
    else {
        panic!("an engine publish");
    };
    assert_eq!(
        (idempotency_key, dedupe_window),
        (key("k"), Duration::from_secs(300))
    );
    // The key was set by another node: the engine published nothing and names the original's range.
    h.hub.handle_engine_duplicate(h.now, ticket, 3, 4);
    h.drain();
    h.text("pub", &keyed("p2", "jobs", 1, "k"));
    assert_transcript(
        h.take(),
        &[
            "engine publish #1 jobs [{\"n\":1}] retain_last=false",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p1\",\"data\":{\"channel\":\"jobs\",\"offset\":3,\"duplicate\":true}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p2\",\"data\":{\"channel\":\"jobs\",\"offset\":3,\"duplicate\":true}}",
        ],
    );
    assert!(h.engine.is_empty(), "the node remembers the key too");
}
