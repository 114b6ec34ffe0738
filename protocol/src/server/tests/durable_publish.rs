//! Transcripts of publishing over the durable store: nothing is answered or delivered before the driver reports
//! the write, group commit puts what queued behind a write into the next one, and a failed write refuses its
//! publishes (and those queued behind it) with `STORAGE_UNAVAILABLE` and gives their offsets again.

use alloc::boxed::Box;
use alloc::string::String;
use core::time::Duration;
use serde_json::json;

use super::transcripts::assert_transcript;
use super::{Harness, ch};
use crate::server::{Dialect, DurableConfig, DurableStore, HubConfig, Publish};

fn durable() -> Harness {
    let config = HubConfig {
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    };
    let store = DurableStore::new(
        DurableConfig::new(config.history_size, config.history_ttl),
        String::from("E"),
    );
    let mut h = Harness::with_store(config, Box::new(store));
    // The store's first write creates its segment.
    h.drain();
    h.written();
    h
}

fn publish_frame(id: &str, channel: &str, n: u64) -> String {
    alloc::format!(
        r#"{{"type":"publish","message_id":"{id}","data":{{"channel":"{channel}","event":{{"n":{n}}}}}}}"#
    )
}

#[test]
fn a_publish_is_answered_and_delivered_only_after_its_write() {
    let mut h = durable();
    h.open("pub", Dialect::Native);
    h.open("sub", Dialect::Native);
    h.text(
        "sub",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"jobs/1"}}"#,
    );
    h.take();
    h.text("pub", &publish_frame("p1", "jobs/1", 1));
    // Queued behind nothing: written at once, alone; no answer, no delivery, not readable yet.
    assert_eq!(h.hub.state(&ch("jobs/1")).offset, 0);
    h.text("pub", &publish_frame("p2", "jobs/1", 2));
    h.text("pub", &publish_frame("p3", "jobs/1", 3));
    assert_transcript(h.take(), &["persist batch 2 to segment 1 + sync: 75 bytes"]);
    // The first write is done: p1 is answered and delivered; p2 and p3 queued behind it go in one write.
    h.written();
    h.written();
    assert_transcript(
        h.take(),
        &[
            "store wrote batch 2",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p1\",\"data\":{\"channel\":\"jobs/1\",\"offset\":1}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#5\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":1,\"event\":{\"n\":1}}}",
            "persist batch 3 to segment 1 + sync: 86 bytes",
            "store wrote batch 3",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p2\",\"data\":{\"channel\":\"jobs/1\",\"offset\":2}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#6\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":2,\"event\":{\"n\":2}}}",
            "pub <- {\"type\":\"publish_res\",\"message_id\":\"p3\",\"data\":{\"channel\":\"jobs/1\",\"offset\":3}}",
            "sub <- {\"type\":\"event\",\"message_id\":\"#7\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs/1\",\"epoch\":\"E\",\"offset\":3,\"event\":{\"n\":3}}}",
        ],
    );
    assert_eq!(h.hub.state(&ch("jobs/1")).offset, 3);
    h.assert_clean();
}

#[test]
fn a_subscriber_that_arrives_while_a_write_is_in_flight_misses_nothing_and_sees_nothing_twice() {
    let mut h = durable();
    h.open("pub", Dialect::Native);
    h.text("pub", &publish_frame("p1", "jobs/1", 1));
    h.written();
    h.text("pub", &publish_frame("p2", "jobs/1", 2));
    h.open("late", Dialect::Native);
    let epoch = super::epoch_of(&h.hub, "jobs/1");
    // It asks from offset 0: the replay holds the written event only, the pending one comes live.
    h.text(
        "late",
        &alloc::format!(
            r#"{{"type":"subscribe","message_id":"s","data":{{"channel":"jobs/1","since":{{"epoch":"{epoch}","offset":0}}}}}}"#
        ),
    );
    h.take();
    h.written();
    let late: alloc::vec::Vec<u64> = h.frames[&h.conn("late")]
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["data"]["offset"].as_u64().expect("offset"))
        .collect();
    assert_eq!(late, [1, 2]);
    let res = h.frames[&h.conn("late")]
        .iter()
        .find(|f| f["type"] == "subscribe_res")
        .expect("answered")
        .clone();
    assert_eq!(
        (res["data"]["offset"].as_u64(), &res["data"]["recovered"]),
        (Some(1), &json!(true))
    );
}

#[test]
fn a_failed_write_refuses_its_publishes_and_those_behind_it_then_publishing_recovers() {
    let mut h = durable();
    h.open("pub", Dialect::Native);
    h.open("edge", Dialect::ChannelPayload);
    h.text("pub", &publish_frame("p1", "jobs/1", 1));
    h.text("pub", &publish_frame("p2", "jobs/1", 2));
    h.text(
        "edge",
        r#"{"action":"publish","channel":"jobs/1","payload":{"n":3}}"#,
    );
    let ticket = h
        .hub
        .publish(h.now, &ch("jobs/1"), json!({"n": 4}), false)
        .expect("valid");
    assert!(matches!(ticket, Publish::Pending(_)));
    h.take();
    h.write_failed();
    assert_transcript(
        h.take(),
        &[
            "store failed batch 2",
            "pub <- {\"type\":\"error\",\"message_id\":\"p1\",\"data\":{\"code\":\"STORAGE_UNAVAILABLE\",\"message\":\"the event could not be stored; it was not published\"}}",
            "pub <- {\"type\":\"error\",\"message_id\":\"p2\",\"data\":{\"code\":\"STORAGE_UNAVAILABLE\",\"message\":\"the event could not be stored; it was not published\"}}",
            "edge <- {\"channel\":\"error\",\"payload\":{\"type\":\"error\",\"status\":\"error\",\"message\":\"the event could not be stored; it was not published\",\"error_details\":{\"code\":\"STORAGE_UNAVAILABLE\"},\"timestamp\":1700000000.0}}",
            "event {\"error\":\"the event could not be stored; it was not published\",\"event\":\"publish_done\",\"ticket\":\"PublishTicket(1)\"}",
        ],
    );
    assert_eq!(h.hub.stats().storage_failures, 4);
    // Space came back: the next publish gets offset 1 again (nobody ever saw the refused ones).
    h.text("pub", &publish_frame("p5", "jobs/1", 5));
    h.written();
    let last = h.frames[&h.conn("pub")].back().expect("answered").clone();
    assert_eq!(last["data"]["offset"], 1);
    assert_eq!(h.hub.stats().pending_publishes, 0);
}
