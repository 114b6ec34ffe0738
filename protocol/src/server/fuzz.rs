//! The hub's fuzzing entry point: [`hub_ops`] reads arbitrary bytes as a sequence of operations (opens in every
//! dialect, frames that are valid, nearly valid or garbage, binary frames, closes, time, flushes, publishes, server
//! requests, notifications, answers) and checks after each one that the hub is consistent and that closed
//! connections left nothing behind. The only failure is a panic. A cargo-fuzz target is a one-line shim over it;
//! the crate's own tests run it on random inputs.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Map, Value};

use super::{
    ConnId, Dialect, Hub, HubConfig, HubEvent, HubOutput, Intake, NotifyTarget, Permissions,
};
use crate::time::Timestamp;
use crate::wire::{ChannelName, CloseCode, ErrorCode};

/// Frames the fuzzer starts from; `{c}` is a channel, `{i}` an id, `{r}` the last server request's id.
const TEMPLATES: &[&str] = &[
    r#"{"type":"subscribe","message_id":"{i}","data":{"channel":"{c}"}}"#,
    r#"{"type":"subscribe","message_id":"{i}","data":{"channel":"{c}","since":{"epoch":"{e}","offset":1}}}"#,
    r#"{"type":"unsubscribe","message_id":"{i}","data":{"channel":"{c}"}}"#,
    r#"{"type":"subscribe","message_id":"{i}","data":{"channel":"{c}","presence":true}}"#,
    r#"{"type":"presence","message_id":"{i}","data":{"channel":"{c}"}}"#,
    r#"{"type":"publish","message_id":"{i}","data":{"channel":"{c}","event":{"x":1},"retain":true}}"#,
    r#"{"type":"get_state","message_id":"{i}","data":{"channel":"{c}"}}"#,
    r#"{"type":"serve","message_id":"{i}","data":{"channel":"{c}"}}"#,
    r#"{"type":"call","message_id":"{i}","data":{"channel":"{c}","method":"m"}}"#,
    r#"{"type":"server_response","message_id":"{r}","data":{"result":1}}"#,
    r#"{"type":"server_response","message_id":"{r}","data":{"error":{"code":"NOPE","message":"x"}}}"#,
    r#"{"type":"create_session","message_id":"{i}"}"#,
    r#"{"type":"close_session","message_id":"{i}","data":{"session_id":"{r}"}}"#,
    r#"{"type":"ping","message_id":"{i}","data":{"timestamp":[1]}}"#,
    r#"{"type":"server_pong","message_id":"{i}"}"#,
    r#"{"type":"custom","message_id":"{i}","data":{}}"#,
    r#"{"type":"ping"}"#,
    r#"{"type":"cancel"}"#,
    r#"{"type":"get_state"}"#,
    r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"{c}"}}"#,
    r#"{"channel":"subscription","payload":{"action":"unsubscribe","channel":"{c}"}}"#,
    r#"{"channel":"{c}","payload":{"y":2}}"#,
    r#"{"type":"refresh","message_id":"{i}","data":{"token":"{c}"}}"#,
    r#"{"type":"publish","message_id":"{i}","data":{"channel":"{c}","event":1,"idempotency_key":"k1"}}"#,
    r#"{"type":"publish","message_id":"{i}","data":{"channel":"{c}","events":[1,2],"idempotency_key":"k2"}}"#,
];

const CHANNELS: &[&str] = &[
    "a",
    "projects/p",
    "b/c",
    "a",
    "projects/p",
    "bad channel",
    "",
];

/// A text frame through `conn`'s intake into the hub.
fn feed_text(
    hub: &mut Hub,
    intakes: &mut BTreeMap<ConnId, Intake>,
    now: Timestamp,
    conn: ConnId,
    text: &str,
) {
    if let Some(intake) = intakes.get_mut(&conn) {
        let inbound = intake.text(now, text);
        hub.handle_inbound(now, conn, inbound);
    }
}

/// The epoch of a channel named in a template (empty for a name the wire refuses).
fn epoch_of(hub: &Hub, channel: &str) -> String {
    ChannelName::new(channel)
        .map(|name| String::from(hub.epoch(&name)))
        .unwrap_or_default()
}

/// Runs `data` as operations against a fresh hub. Panics if the hub panics or breaks an invariant.
pub fn hub_ops(data: &[u8]) {
    let config = HubConfig {
        heartbeat: Duration::from_secs(5),
        heartbeat_timeout: Duration::from_secs(5),
        edge_idle_timeout: Some(Duration::from_secs(5)),
        max_message_bytes: 512,
        history_size: 4,
        history_ttl: Duration::from_secs(10),
        // Small enough that events are trimmed by bytes, per channel and over all, and some are never kept.
        history_bytes: 96,
        history_total_bytes: 256,
        request_timeout: Duration::from_secs(3),
        rate_per_sec: 5,
        rate_burst: 10,
        trusted_rate_per_sec: 20,
        trusted_rate_burst: 20,
        max_subscriptions: 2,
        max_patterns: 2,
        max_queued_bytes: 2048,
        max_sessions: 2,
        token_expiry_warning: Duration::from_secs(2),
        // Small enough that publishes to new channels are refused, and idle channels are forgotten to make room.
        max_channels: 3,
        // Small enough that presence answers leave members out.
        max_presence_members: 2,
        // Small enough that keys are pushed out by the caps and by the window.
        dedupe_window: Duration::from_secs(4),
        dedupe_keys_per_channel: 2,
        dedupe_keys: 3,
        seed: 1,
    };
    let mut now = Timestamp::from_millis(1_700_000_000_000);
    let mut hub = Hub::new(config);
    let mut intakes: BTreeMap<ConnId, Intake> = BTreeMap::new();
    hub.register_custom_type("custom");
    // Refresh tokens are channel names: `a` narrows to subscribing `a` for 3 s more, `projects/p` allows everything
    // for good, `b/c` allows nothing for 1 s more; anything else is refused.
    hub.set_refresh_check(alloc::boxed::Box::new(
        |now: Timestamp, token: &str| match token {
            "a" => Some(
                Permissions::from_patterns(
                    alloc::vec![String::from("a")],
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                )
                .with_expiry(now + Duration::from_secs(3)),
            ),
            "projects/p" => Some(Permissions::allow_all()),
            "b/c" => Some(Permissions::deny_all().with_expiry(now + Duration::from_secs(1))),
            _ => None,
        },
    ));
    let mut conns: Vec<ConnId> = Vec::new();
    let mut closed: Vec<ConnId> = Vec::new();
    let mut last_request = String::from("none");
    let mut customs: Vec<(ConnId, crate::wire::MessageId)> = Vec::new();
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut id = 0u32;
    while let Some(op) = next() {
        let pick = |b: Option<u8>, conns: &[ConnId]| -> Option<ConnId> {
            let b = usize::from(b.unwrap_or(0));
            (!conns.is_empty()).then(|| conns[b % conns.len()])
        };
        match op % 16 {
            0 | 1 => {
                let dialect = match next().unwrap_or(0) % 8 {
                    0..=2 => Dialect::Native,
                    3 => Dialect::ChannelPayload,
                    4 => Dialect::ProjectStream {
                        project_id: String::from("p"),
                        since: next().map(u64::from),
                    },
                    5 => Dialect::ProjectStream {
                        project_id: String::from("bad id"),
                        since: None,
                    },
                    kind => {
                        // An event stream of one or two channels (or the project's), resuming from a position
                        // that may be current, stale, in another epoch, the wrong length, or unreadable.
                        let b = next().unwrap_or(0);
                        let epoch = ChannelName::new("a")
                            .map(|a| String::from(hub.epoch(&a)))
                            .unwrap_or_default();
                        let entry =
                            |offset: u8, other: bool| crate::wire::sse_event_id::SsePosition {
                                epoch: if other {
                                    String::from("0ther")
                                } else {
                                    epoch.clone()
                                },
                                offset: u64::from(offset % 8),
                            };
                        let target = if kind == 6 {
                            let first =
                                ChannelName::new(["a", "b/c", "projects/p"][usize::from(b % 3)]);
                            let second =
                                ChannelName::new(["projects/p", "a"][usize::from(b / 3 % 2)]);
                            let mut channels: Vec<ChannelName> = first.into_iter().collect();
                            if b & 0x40 != 0
                                && let Ok(second) = second
                                && !channels.contains(&second)
                            {
                                channels.push(second);
                            }
                            super::SseTarget::Channels(channels)
                        } else {
                            super::SseTarget::Project(String::from(if b & 1 == 0 {
                                "p"
                            } else {
                                "bad id"
                            }))
                        };
                        let r = next().unwrap_or(0);
                        let resume = match r % 4 {
                            0 => super::SseResume::Fresh,
                            1 => super::SseResume::Unreadable,
                            _ => super::SseResume::From(crate::wire::sse_event_id::SseEventId(
                                (0..1 + usize::from(r >> 7))
                                    .map(|i| entry(r.wrapping_add(i as u8), r & 0x20 != 0))
                                    .collect(),
                            )),
                        };
                        Dialect::Sse(super::SseOpen { target, resume })
                    }
                };
                let grants = next().unwrap_or(0);
                let permissions = match grants % 8 {
                    0 => Permissions::deny_all(),
                    4 => Permissions::allow_all()
                        .with_expiry(now + Duration::from_millis(u64::from(grants) * 20)),
                    _ => Permissions::allow_all(),
                };
                // The same byte picks the trust, so existing inputs keep their meaning.
                let trust = if grants % 2 == 1 {
                    super::Trust::Trusted
                } else {
                    super::Trust::Untrusted
                };
                let (conn, intake) = hub.handle_open(now, dialect, permissions, trust);
                intakes.insert(conn, intake);
                conns.push(conn);
            }
            2..=7 => {
                let Some(conn) = pick(next(), &conns) else {
                    continue;
                };
                let template = TEMPLATES[usize::from(next().unwrap_or(0)) % TEMPLATES.len()];
                let channel = CHANNELS[usize::from(next().unwrap_or(0)) % CHANNELS.len()];
                id += 1;
                let mut text = template
                    .replace("{c}", channel)
                    .replace("{i}", &format!("{}", id % 7))
                    .replace("{r}", &last_request)
                    .replace("{e}", &epoch_of(&hub, channel));
                // Sometimes mangle it: cut it short or splice a byte in.
                if op % 16 == 7 {
                    let at = usize::from(next().unwrap_or(0)) % (text.len() + 1);
                    let cut = text.char_indices().map(|(i, _)| i).find(|&i| i >= at);
                    text.truncate(cut.unwrap_or(text.len()));
                    if let Some(b) = next() {
                        text.push(char::from(b));
                    }
                }
                feed_text(&mut hub, &mut intakes, now, conn, &text);
            }
            8 => {
                let Some(conn) = pick(next(), &conns) else {
                    continue;
                };
                let len = usize::from(next().unwrap_or(0)) * 4;
                let raw: Vec<u8> = (0..len.min(64)).filter_map(|_| next()).collect();
                feed_text(
                    &mut hub,
                    &mut intakes,
                    now,
                    conn,
                    &String::from_utf8_lossy(&raw),
                );
            }
            9 => {
                if let Some(conn) = pick(next(), &conns) {
                    let len = usize::from(next().unwrap_or(0) % 160) * 4;
                    if let Some(intake) = intakes.get_mut(&conn) {
                        let inbound = intake.binary(now, len);
                        hub.handle_inbound(now, conn, inbound);
                    }
                }
            }
            10 => {
                if let Some(conn) = pick(next(), &conns) {
                    hub.handle_transport_closed(now, conn);
                }
            }
            11 => {
                now += Duration::from_millis(u64::from(next().unwrap_or(0)) * 10);
                hub.handle_timeout(now);
            }
            12 => {
                if let Some(conn) = pick(next(), &conns) {
                    hub.handle_sent(conn, usize::from(next().unwrap_or(0)) * 16);
                    hub.handle_activity(now, conn);
                }
            }
            13 => {
                let channel = CHANNELS[usize::from(next().unwrap_or(0)) % 3];
                let event = match next().unwrap_or(0) % 3 {
                    0 => Value::Null,
                    1 => Value::String("x".repeat(600)),
                    _ => Value::from(id),
                };
                let key = match next().unwrap_or(0) % 4 {
                    0 => None,
                    k => crate::wire::IdempotencyKey::new(alloc::format!("k{k}")).ok(),
                };
                if let Ok(channel) = ChannelName::new(channel) {
                    let _ = hub.publish_keyed(now, &channel, event, op % 2 == 0, key);
                    let _ = hub.history(now, &channel, next().map(u64::from), 3);
                }
            }
            14 => {
                if let Some(conn) = pick(next(), &conns) {
                    let timeout = next().map(|b| Duration::from_millis(u64::from(b) * 20));
                    let _ = hub.send_request(now, conn, "q", Map::new(), timeout);
                }
            }
            _ if next().unwrap_or(0) % 2 == 0 => {
                let target = match next().unwrap_or(0) % 3 {
                    0 => pick(next(), &conns).map(NotifyTarget::App),
                    1 => Some(NotifyTarget::Session(last_request.clone())),
                    _ => Some(NotifyTarget::All {
                        exclude: conns.iter().copied().take(1).collect(),
                    }),
                };
                if let Some(target) = target {
                    hub.notify(now, target, "n", None, None);
                }
            }
            _ => match next().unwrap_or(0) % 16 {
                0..=7 => {
                    if let Some((conn, request)) = customs.pop() {
                        let result = if id.is_multiple_of(2) {
                            Ok(Map::new())
                        } else {
                            Err((ErrorCode::InternalError, String::from("x")))
                        };
                        hub.respond(now, conn, &request, "custom", result);
                    }
                }
                8..=14 => {
                    if let Some(conn) = pick(next(), &conns) {
                        hub.close(now, conn, CloseCode::Normal, "bye");
                    }
                }
                _ => hub.shutdown(now),
            },
        }
        // Drain like a driver: remember what the next operations can refer to.
        loop {
            match hub.poll_output() {
                HubOutput::Transmit { frame, .. } => {
                    if (frame.contains("\"server_request\"") || frame.contains("session_id"))
                        && let Some(found) = frame
                            .split('"')
                            .find(|part| part.len() == 36 && part.chars().nth(8) == Some('-'))
                    {
                        last_request = String::from(found);
                    }
                }
                HubOutput::Close { conn, .. } => hub.handle_transport_closed(now, conn),
                HubOutput::Persist(write) => hub.handle_store_written(now, write.batch),
                HubOutput::Snapshot(job) => hub.handle_snapshot_written(now, job.covers, 0),
                // The fuzzed hub is a single node: it gives no engine commands.
                HubOutput::Engine(_) => {}
                HubOutput::Event(HubEvent::Disconnected { conn, .. }) => {
                    conns.retain(|&c| c != conn);
                    customs.retain(|&(c, _)| c != conn);
                    closed.push(conn);
                }
                HubOutput::Event(HubEvent::CustomRequest {
                    conn, message_id, ..
                }) => customs.push((conn, message_id)),
                HubOutput::Event(_) => {}
                HubOutput::Timeout(_) => break,
            }
        }
        if let Err(e) = hub.check_invariants() {
            panic!("hub invariant broken: {e}");
        }
        for &conn in &closed {
            assert!(!hub.holds_anything_of(conn), "hub still holds {conn}");
        }
        assert_eq!(hub.stats().connections, conns.len());
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::{any, proptest};

    proptest! {
        /// Random operation sequences never panic the hub or break its invariants.
        #[test]
        fn random_operations_keep_the_hub_consistent(data in vec(any::<u8>(), 0..1500)) {
            super::hub_ops(&data);
        }
    }

    /// Long runs from fixed seeds: more operations per run than the proptest cases.
    #[test]
    fn long_seeded_runs() {
        for seed in 0..4 {
            let mut data = alloc::vec![0u8; 10_000];
            crate::rng::Rng::from_seed(seed).fill_bytes(&mut data);
            super::hub_ops(&data);
        }
    }
}
