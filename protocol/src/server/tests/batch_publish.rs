//! Transcripts of batch publishing (`publish` with `events`): consecutive offsets answered with the first and
//! last, every event fanned out in order, the last retained on request; a bad element refuses the whole batch
//! with its index and stores nothing; over the durable store the answer waits for the last event's write, a batch
//! is one write even under `--fsync always`, and a failed write refuses the batch as one.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Value, json};

use super::transcripts::assert_transcript;
use super::{Harness, ch};
use crate::server::{
    Dialect, DurableConfig, DurableStore, FsyncPolicy, HubConfig, HubError, LimitError,
    MisuseError, Permissions, Publish,
};
use crate::wire::MAX_BATCH_EVENTS;

fn quiet() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    }
}

fn batch_frame(id: &str, channel: &str, events: &Value, retain_last: bool) -> String {
    alloc::format!(
        r#"{{"type":"publish","message_id":"{id}","data":{{"channel":"{channel}","events":{events},"retain_last":{retain_last}}}}}"#
    )
}

/// The offsets of the `event` frames `name` received.
fn delivered(h: &Harness, name: &str) -> Vec<u64> {
    h.frames[&h.conn(name)]
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["data"]["offset"].as_u64().expect("offset"))
        .collect()
}

#[test]
fn a_batch_takes_consecutive_offsets_is_delivered_in_order_and_retains_its_last() {
    let mut h = Harness::new(quiet());
    h.open("pub", Dialect::Native);
    h.open("sub", Dialect::Native);
    h.text(
        "sub",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"jobs"}}"#,
    );
    h.text(
        "pub",
        r#"{"type":"publish","message_id":"p0","data":{"channel":"jobs","event":{"n":0}}}"#,
    );
    h.take();
    h.text(
        "pub",
        &batch_frame("b1", "jobs", &json!([{"n": 1}, {"n": 2}, {"n": 3}]), true),
    );
    h.text(
        "pub",
        r#"{"type":"get_state","message_id":"g","data":{"channel":"jobs"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"b1\",\"data\":{\"channel\":\"jobs\",\"first_offset\":2,\"last_offset\":4}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#6\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":2,\"event\":{\"n\":1}}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#7\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":3,\"event\":{\"n\":2}}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#8\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":4,\"event\":{\"n\":3}}}",
            "pub <- {\"type\":\"get_state_res\",\"message_id\":\"g\",\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":4,\"state\":{\"n\":3}}}",
        ],
    );
    assert_eq!(delivered(&h, "sub"), [1, 2, 3, 4]);
    // Without retain_last nothing of the batch becomes the state.
    h.text("pub", &batch_frame("b2", "jobs", &json!([5, 6]), false));
    assert_eq!(h.hub.state(&ch("jobs")).state, Some(json!({"n": 3})));
    assert_eq!(h.hub.state(&ch("jobs")).offset, 6);
    h.assert_clean();
}

#[test]
fn a_bad_element_refuses_the_whole_batch_naming_its_index() {
    let mut h = Harness::new(quiet());
    h.open("pub", Dialect::Native);
    h.take();
    h.text(
        "pub",
        &batch_frame("b1", "jobs", &json!([1, 2, 3, null, 5]), false),
    );
    h.text("pub", &batch_frame("b2", "jobs", &json!([]), false));
    h.text(
        "pub",
        r#"{"type":"publish","message_id":"b3","data":{"channel":"jobs","event":1,"events":[1]}}"#,
    );
    h.text("pub", &batch_frame("b4", "jobs", &json!({"n": 1}), false));
    assert_transcript(
        h.take(),
        &[
            "pub <- {\"type\":\"error\",\"message_id\":\"b1\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"field `data.events[3]` must not be null\",\"details\":{\"field\":\"data.events[3]\",\"index\":3,\"problem\":\"must not be null\"}}}",
            "pub <- {\"type\":\"error\",\"message_id\":\"b2\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"field `data.events` must hold from 1 to 1000 events\",\"details\":{\"field\":\"data.events\",\"problem\":\"must hold from 1 to 1000 events\"}}}",
            "pub <- {\"type\":\"error\",\"message_id\":\"b3\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"field `data.event` cannot be given with `events`\",\"details\":{\"field\":\"data.event\",\"problem\":\"cannot be given with `events`\"}}}",
            "pub <- {\"type\":\"error\",\"message_id\":\"b4\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"field `data.events` must be an array\",\"details\":{\"field\":\"data.events\",\"problem\":\"must be an array\"}}}",
        ],
    );
    let too_many: Vec<Value> = (0..=MAX_BATCH_EVENTS).map(|n| json!(n)).collect();
    h.text(
        "pub",
        &batch_frame("b5", "jobs", &Value::from(too_many), false),
    );
    let refused = h.frames[&h.conn("pub")].back().expect("answered");
    assert_eq!(refused["data"]["code"], "VALIDATION_ERROR");
    // Nothing of any refused batch was stored.
    assert_eq!(h.hub.state(&ch("jobs")).offset, 0);
    h.assert_clean();
}

#[test]
fn a_batch_needs_publish_permission_on_its_channel() {
    let mut h = Harness::new(quiet());
    let perms = Permissions::from_patterns(
        alloc::vec![String::from("jobs/*")],
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    h.open_with("reader", Dialect::Native, perms);
    h.take();
    h.text("reader", &batch_frame("b", "jobs/1", &json!([1]), false));
    let refused = h.frames[&h.conn("reader")].back().expect("answered");
    assert_eq!(refused["data"]["code"], "FORBIDDEN");
    assert_eq!(h.hub.state(&ch("jobs/1")).offset, 0);
}

#[test]
fn the_app_api_refuses_a_batch_whole_and_names_the_event() {
    let mut h = Harness::new(HubConfig {
        max_message_bytes: 64,
        ..quiet()
    });
    let events = alloc::vec![json!(1), json!("x".repeat(100)), json!(3)];
    let e = h
        .hub
        .publish_batch(h.now, &ch("jobs"), events, false)
        .expect_err("too large");
    assert_eq!(
        e,
        HubError::Limit(LimitError::EventInBatchTooLarge {
            index: 1,
            bytes: 102,
            max: 64
        })
    );
    assert_eq!(e.batch_index(), Some(1));
    assert!(alloc::format!("{e}").starts_with("events[1]: "));
    let e = h
        .hub
        .publish_batch(
            h.now,
            &ch("jobs"),
            alloc::vec![json!(1), Value::Null],
            false,
        )
        .expect_err("null");
    assert_eq!(
        e,
        HubError::Misuse(MisuseError::NullEventInBatch { index: 1 })
    );
    let e = h
        .hub
        .publish_batch(h.now, &ch("jobs"), Vec::new(), false)
        .expect_err("empty");
    assert_eq!(e, HubError::Misuse(MisuseError::EmptyBatch));
    assert_eq!(h.hub.state(&ch("jobs")).offset, 0);
    let done = h
        .hub
        .publish_batch(h.now, &ch("jobs"), alloc::vec![json!(1), json!(2)], true)
        .expect("valid");
    assert_eq!(done, Publish::Done(1));
    assert_eq!(h.hub.state(&ch("jobs")).state, Some(json!(2)));
}

fn durable(fsync: FsyncPolicy) -> Harness {
    let config = quiet();
    let mut store_config = DurableConfig::new(config.history_size, config.history_ttl);
    store_config.fsync = fsync;
    let store = DurableStore::new(store_config, String::from("E"));
    let mut h = Harness::with_store(config, Box::new(store));
    h.drain();
    h.written();
    h
}

#[test]
fn over_the_durable_store_a_batch_is_one_write_even_under_fsync_always_and_answered_after_it() {
    let mut h = durable(FsyncPolicy::Always);
    h.open("pub", Dialect::Native);
    h.open("sub", Dialect::Native);
    h.text(
        "sub",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"jobs"}}"#,
    );
    h.take();
    h.text("pub", &batch_frame("b1", "jobs", &json!([1, 2, 3]), false));
    // Nothing answered, delivered or readable before the write.
    assert_eq!(h.hub.state(&ch("jobs")).offset, 0);
    assert!(delivered(&h, "sub").is_empty());
    h.written();
    assert_transcript(
        h.take(),
        &[
            "persist batch 2 to segment 1 + sync: 135 bytes",
            "store wrote batch 2",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"b1\",\"data\":{\"channel\":\"jobs\",\"first_offset\":1,\"last_offset\":3}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":1,\"event\":1}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#6\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":2,\"event\":2}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#7\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":3,\"event\":3}}",
        ],
    );
    // A single publish after it is still a write of its own.
    h.text(
        "pub",
        r#"{"type":"publish","message_id":"p","data":{"channel":"jobs","event":4}}"#,
    );
    h.text(
        "pub",
        r#"{"type":"publish","message_id":"q","data":{"channel":"jobs","event":5}}"#,
    );
    h.written();
    h.written();
    assert_eq!(delivered(&h, "sub"), [1, 2, 3, 4, 5]);
    h.assert_clean();
}

#[test]
fn over_the_durable_store_a_failed_write_refuses_the_batch_once_and_stores_nothing() {
    let mut h = durable(FsyncPolicy::Always);
    h.open("pub", Dialect::Native);
    h.take();
    h.text("pub", &batch_frame("b1", "jobs", &json!([1, 2, 3]), false));
    let ticket = h
        .hub
        .publish_batch(h.now, &ch("jobs"), alloc::vec![json!(4), json!(5)], false)
        .expect("valid");
    assert!(matches!(ticket, Publish::Pending(_)));
    h.take();
    h.write_failed();
    assert_transcript(
        h.take(),
        &[
            "store failed batch 2",
            "pub <- {\"type\":\"error\",\"message_id\":\"b1\",\"data\":{\"code\":\"STORAGE_UNAVAILABLE\",\"message\":\"the event could not be stored; it was not published\"}}",
            "event {\"error\":\"the event could not be stored; it was not published\",\"event\":\"publish_done\",\"ticket\":\"PublishTicket(1)\"}",
        ],
    );
    assert_eq!(h.hub.state(&ch("jobs")).offset, 0);
    assert_eq!(h.hub.stats().pending_publishes, 0);
}
