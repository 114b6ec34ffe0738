//! Forgetting idle channels: transcripts of a channel forgotten once nothing keeps it (no subscriber or server, no
//! history left, no retained state), its name reused in a new epoch, a position in the old epoch answered
//! `recovered: false`; a channel subscribed to before its first publish keeping the epoch its subscriber was told;
//! and `max_channels`.

use alloc::format;
use core::time::Duration;
use serde_json::json;

use super::transcripts::assert_transcript;
use super::{Harness, ch, epoch_of};
use crate::server::{Dialect, HubConfig, HubError, LimitError, Publish};

const TTL: Duration = Duration::from_secs(10);

fn config() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        history_ttl: TTL,
        ..HubConfig::default()
    }
}

fn publish(h: &mut Harness, channel: &str, event: serde_json::Value, retain: bool) -> u64 {
    let done = h.hub.publish(h.now, &ch(channel), event, retain);
    h.drain();
    match done {
        Ok(Publish::Done(offset)) => offset,
        other => panic!("publish: {other:?}"),
    }
}

#[test]
fn a_channel_whose_history_expired_is_forgotten_and_its_name_starts_a_new_epoch() {
    let mut h = Harness::new(config());
    assert_eq!(publish(&mut h, "news", json!(1), false), 1);
    assert_eq!(publish(&mut h, "news", json!(2), false), 2);
    let old = epoch_of(&h.hub, "news");
    assert_eq!(h.hub.stats().channels, 1);
    h.advance(TTL + Duration::from_secs(1));
    assert_eq!(h.hub.stats().channels, 0, "nothing keeps it: forgotten");
    assert_eq!(h.hub.state(&ch("news")).offset, 0);
    assert_eq!(publish(&mut h, "news", json!(3), false), 1, "a new log");
    assert_ne!(epoch_of(&h.hub, "news"), old, "in a new epoch");
    // A subscriber that saw offset 2 of the old log must not take offset 1 of the new one for its next event.
    h.open("a", Dialect::Native);
    h.take();
    h.text(
        "a",
        &format!(
            r#"{{"type":"subscribe","message_id":"s1","data":{{"channel":"news","since":{{"epoch":"{old}","offset":2}}}}}}"#
        ),
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"news\",\"epoch\":\"E\",\"offset\":1,\"recovered\":false}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn a_channel_subscribed_before_its_first_publish_keeps_its_epoch_and_is_forgotten_when_left() {
    let mut h = Harness::new(config());
    h.open("a", Dialect::Native);
    h.take();
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"jobs"}}"#,
    );
    // Another channel's log is made meanwhile, and the store's expiry runs: the held channel keeps its epoch.
    publish(&mut h, "other", json!(0), false);
    h.advance(TTL * 3);
    publish(&mut h, "jobs", json!(1), false);
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}}",
            "a <- {\"type\":\"event\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"channel\":\"jobs\",\"epoch\":\"E\",\"offset\":1,\"event\":1}}",
        ],
    );
    // History gone and the subscriber leaves: forgotten at once.
    h.advance(TTL * 2);
    assert_eq!(h.hub.stats().channels, 1, "held by its subscriber");
    h.text(
        "a",
        r#"{"type":"unsubscribe","message_id":"u1","data":{"channel":"jobs"}}"#,
    );
    assert_eq!(h.hub.stats().channels, 0);
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s2","data":{"channel":"jobs"}}"#,
    );
    // A new log, in a new epoch (`E2`).
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u1\",\"data\":{\"channel\":\"jobs\"}}",
            "a <- {\"type\":\"subscribe_res\",\"message_id\":\"s2\",\"data\":{\"channel\":\"jobs\",\"epoch\":\"E2\",\"offset\":0,\"recovered\":null}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn retained_state_keeps_a_channel() {
    let mut h = Harness::new(config());
    publish(&mut h, "kept", json!({"v": 1}), true);
    publish(&mut h, "gone", json!({"v": 1}), false);
    let epoch = epoch_of(&h.hub, "kept");
    h.advance(TTL * 2);
    assert_eq!(h.hub.stats().channels, 1);
    let state = h.hub.state(&ch("kept"));
    assert_eq!(
        (state.epoch, state.offset, state.state),
        (epoch, 1, Some(json!({"v": 1})))
    );
    assert_eq!(publish(&mut h, "kept", json!({"v": 2}), false), 2);
    h.assert_clean();
}

#[test]
fn past_max_channels_a_new_channel_is_refused_until_an_idle_one_is_forgotten() {
    let mut h = Harness::new(HubConfig {
        max_channels: 2,
        ..config()
    });
    publish(&mut h, "a", json!(1), false);
    publish(&mut h, "b", json!(1), true);
    assert_eq!(
        publish(&mut h, "a", json!(2), false),
        2,
        "a channel with events"
    );
    assert_eq!(
        h.hub.publish(h.now, &ch("c"), json!(1), false),
        Err(HubError::Limit(LimitError::ChannelLimit { max: 2 }))
    );
    assert_eq!(
        h.hub
            .publish_batch(h.now, &ch("c"), alloc::vec![json!(1)], false),
        Err(HubError::Limit(LimitError::ChannelLimit { max: 2 }))
    );
    // Subscribing holds a channel but gives it no events: it does not count.
    h.open("s", Dialect::Native);
    h.take();
    h.text(
        "s",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"d"}}"#,
    );
    h.text(
        "s",
        r#"{"type":"publish","message_id":"p1","data":{"channel":"d","event":1}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "s <- {\"type\":\"subscribe_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"d\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}}",
            "s <- {\"type\":\"error\",\"message_id\":\"p1\",\"data\":{\"code\":\"CHANNEL_LIMIT\",\"message\":\"the server holds 2 channels with events, its limit: publishing to a new channel is refused\"}}",
        ],
    );
    // `a` expires and is forgotten; `b` keeps its retained state.
    h.advance(TTL * 2);
    assert_eq!(publish(&mut h, "c", json!(1), false), 1);
    h.assert_clean();
}
