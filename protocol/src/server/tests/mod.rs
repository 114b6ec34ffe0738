//! Tests of the hub through its public API only, with a harness that names connections, drives a virtual clock
//! from deadline to deadline, and records every output: parsed per connection (for the table test) and as a
//! normalised transcript (for the transcript tests: random ids become `#1`, `#2`… and epochs `E`, `E2`… in order of
//! appearance).

mod batch_publish;
mod caller_identity;
mod cluster;
mod durable_publish;
mod forget;
mod idempotent_publish;
mod pattern_subscribe;
mod presence;
mod reserved_channels;
mod sse_streams;
mod state_machine;
mod table;
mod token_refresh;
mod transcripts;

use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Value, json};

use super::{
    ConnId, Dialect, Hub, HubConfig, HubEvent, HubOutput, Intake, Permissions, RequestFailure,
    Trust,
};
use crate::time::Timestamp;
use crate::wire::ChannelName;

/// The simulated start: 2023-11-14T22:13:20Z.
pub(super) const T0_MS: u64 = 1_700_000_000_000;

pub(super) fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).expect("test channel names are valid")
}

/// The epoch of `channel` (of the log it will have, when it has none yet).
pub(super) fn epoch_of(hub: &Hub, channel: &str) -> String {
    hub.epoch(&ch(channel)).to_owned()
}

/// Every connection's [`Intake`], as a driver keeps them: frames go through it into the hub.
#[derive(Default)]
pub(super) struct Intakes(BTreeMap<ConnId, Intake>);

impl Intakes {
    /// Opens a connection and keeps its intake.
    pub(super) fn open(
        &mut self,
        hub: &mut Hub,
        now: Timestamp,
        dialect: Dialect,
        perms: Permissions,
        trust: Trust,
    ) -> ConnId {
        let (conn, intake) = hub.handle_open(now, dialect, perms, trust);
        self.0.insert(conn, intake);
        conn
    }

    /// A text frame arrived on `conn`.
    pub(super) fn text(&mut self, hub: &mut Hub, now: Timestamp, conn: ConnId, text: &str) {
        if let Some(intake) = self.0.get_mut(&conn) {
            let inbound = intake.text(now, text);
            hub.handle_inbound(now, conn, inbound);
        }
    }

    /// A binary frame of `len` bytes arrived on `conn`.
    pub(super) fn binary(&mut self, hub: &mut Hub, now: Timestamp, conn: ConnId, len: usize) {
        if let Some(intake) = self.0.get_mut(&conn) {
            let inbound = intake.binary(now, len);
            hub.handle_inbound(now, conn, inbound);
        }
    }
}

/// A hub and everything it said.
pub(super) struct Harness {
    pub(super) hub: Hub,
    intakes: Intakes,
    pub(super) now: Timestamp,
    names: BTreeMap<String, ConnId>,
    /// Frames per connection, parsed, not yet looked at.
    pub(super) frames: BTreeMap<ConnId, VecDeque<Value>>,
    /// Close code and reason per closed connection.
    pub(super) closes: BTreeMap<ConnId, (u16, String)>,
    /// Events, rendered as JSON, not yet looked at.
    pub(super) events: VecDeque<Value>,
    /// The transcript since the last [`take`](Self::take).
    log: Vec<String>,
    /// Random ids seen so far, numbered in order of appearance.
    ids: BTreeMap<String, usize>,
    /// Epochs seen so far, named `E`, `E2`, `E3`… in order of appearance.
    epochs: BTreeMap<String, usize>,
    /// Connections whose writer never flushes (no `handle_sent`).
    pub(super) stalled: BTreeSet<ConnId>,
    /// Whether `Published` events go into the transcript.
    pub(super) log_published: bool,
    /// Store writes handed out and not yet reported (the test reports them).
    pub(super) writes: VecDeque<crate::server::StoreWrite>,
    pub(super) engine: VecDeque<crate::server::EngineCommand>,
}

impl Harness {
    pub(super) fn new(config: HubConfig) -> Harness {
        let now = Timestamp::from_millis(T0_MS);
        Harness {
            hub: Hub::new(config),
            intakes: Intakes::default(),
            now,
            names: BTreeMap::new(),
            frames: BTreeMap::new(),
            closes: BTreeMap::new(),
            events: VecDeque::new(),
            log: Vec::new(),
            ids: BTreeMap::new(),
            epochs: BTreeMap::new(),
            stalled: BTreeSet::new(),
            log_published: false,
            writes: VecDeque::new(),
            engine: VecDeque::new(),
        }
    }

    /// A harness over a hub that is a node of a cluster; its engine commands are recorded and queued in
    /// [`engine`](Self::engine) for the test to answer.
    pub(super) fn clustered(config: HubConfig) -> Harness {
        let mut h = Harness::new(config.clone());
        h.hub = Hub::clustered(config);
        h
    }

    /// A harness over `store` instead of the memory store.
    pub(super) fn with_store(
        config: HubConfig,
        store: alloc::boxed::Box<dyn crate::server::Store>,
    ) -> Harness {
        let mut h = Harness::new(config.clone());
        h.hub = Hub::with_store(config, store);
        h
    }

    /// Reports the oldest store write done, and drains.
    pub(super) fn written(&mut self) {
        let write = self.writes.pop_front().expect("a store write to report");
        self.record(format!("store wrote batch {}", write.batch));
        self.hub.handle_store_written(self.now, write.batch);
        self.drain();
    }

    /// Reports the oldest store write failed, and drains.
    pub(super) fn write_failed(&mut self) {
        let write = self.writes.pop_front().expect("a store write to report");
        self.record(format!("store failed batch {}", write.batch));
        self.hub.handle_store_failed(self.now, write.batch);
        self.drain();
    }

    pub(super) fn conn(&self, name: &str) -> ConnId {
        *self
            .names
            .get(name)
            .unwrap_or_else(|| panic!("no connection named {name}"))
    }

    fn name_of(&self, id: ConnId) -> String {
        self.names
            .iter()
            .find(|(_, c)| **c == id)
            .map_or_else(|| format!("{id}"), |(n, _)| n.clone())
    }

    pub(super) fn open(&mut self, name: &str, dialect: Dialect) -> ConnId {
        self.open_with(name, dialect, Permissions::allow_all())
    }

    pub(super) fn open_with(&mut self, name: &str, dialect: Dialect, perms: Permissions) -> ConnId {
        self.open_as(name, dialect, perms, Trust::Untrusted)
    }

    /// Opens a connection whose caller earned `trust` (it picks the connection's rate limit).
    pub(super) fn open_as(
        &mut self,
        name: &str,
        dialect: Dialect,
        perms: Permissions,
        trust: Trust,
    ) -> ConnId {
        let id = self
            .intakes
            .open(&mut self.hub, self.now, dialect, perms, trust);
        self.names.insert(name.to_owned(), id);
        self.drain();
        id
    }

    pub(super) fn text(&mut self, name: &str, text: &str) {
        let id = self.conn(name);
        self.intakes.text(&mut self.hub, self.now, id, text);
        self.drain();
    }

    pub(super) fn binary(&mut self, name: &str, len: usize) {
        let id = self.conn(name);
        self.intakes.binary(&mut self.hub, self.now, id, len);
        self.drain();
    }

    pub(super) fn transport_closed(&mut self, name: &str) {
        let id = self.conn(name);
        self.hub.handle_transport_closed(self.now, id);
        self.drain();
    }

    /// Moves the clock forward by `d`, waking the hub at every deadline on the way.
    pub(super) fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            let wake = self.drain();
            if wake > target {
                break;
            }
            self.now = self.now.max(wake);
            self.hub.handle_timeout(self.now);
        }
        self.now = target;
        self.drain();
    }

    pub(super) fn advance_ms(&mut self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    /// Drains every output; returns the deadline.
    pub(super) fn drain(&mut self) -> Timestamp {
        loop {
            match self.hub.poll_output() {
                HubOutput::Transmit { conn, frame } => {
                    if !self.stalled.contains(&conn) {
                        self.hub.handle_sent(conn, frame.len());
                    }
                    let line = format!("{} <- {}", self.name_of(conn), frame);
                    self.record(line);
                    // A Server-Sent Events stream's frames are text blocks (never starting with `{`), kept as
                    // strings.
                    let value: Value = if !frame.starts_with('{') {
                        Value::String(String::from(&*frame))
                    } else {
                        serde_json::from_str(&frame)
                            .unwrap_or_else(|e| panic!("hub sent invalid JSON {frame}: {e}"))
                    };
                    self.frames.entry(conn).or_default().push_back(value);
                }
                HubOutput::Close { conn, code, reason } => {
                    let line = format!("{} closed {} {}", self.name_of(conn), code, reason);
                    self.record(line);
                    let before = self.closes.insert(conn, (code.as_u16(), reason));
                    assert!(before.is_none(), "{conn} closed twice");
                    // What a driver does: the socket goes away, the hub hears of it.
                    self.hub.handle_transport_closed(self.now, conn);
                }
                HubOutput::Event(event) => {
                    let value = self.render_event(&event);
                    if self.log_published || !matches!(event, HubEvent::Published { .. }) {
                        self.record(format!("event {value}"));
                    }
                    self.events.push_back(value);
                }
                HubOutput::Persist(write) => {
                    self.record(format!(
                        "persist batch {} to segment {}{}{}: {} bytes",
                        write.batch,
                        write.segment,
                        if write.create { " (create)" } else { "" },
                        if write.sync { " + sync" } else { "" },
                        write.bytes.len()
                    ));
                    self.writes.push_back(write);
                }
                HubOutput::Snapshot(job) => {
                    self.record(format!("snapshot covering segment {}", job.covers));
                }
                HubOutput::Engine(command) => {
                    let line = match &command {
                        crate::server::EngineCommand::Follow { channel } => {
                            format!("engine follow {channel}")
                        }
                        crate::server::EngineCommand::Unfollow { channel } => {
                            format!("engine unfollow {channel}")
                        }
                        crate::server::EngineCommand::Register { channel } => {
                            format!("engine register {channel}")
                        }
                        crate::server::EngineCommand::Unregister { channel } => {
                            format!("engine unregister {channel}")
                        }
                        crate::server::EngineCommand::Call {
                            call,
                            channel,
                            method,
                            params,
                            caller,
                        } => format!(
                            "engine call {call} {channel} {method} {params} {}",
                            caller.to_value()
                        ),
                        crate::server::EngineCommand::Answer { node, call, data } => format!(
                            "engine answer {node} {call} {}",
                            serde_json::Value::Object(data.clone())
                        ),
                        crate::server::EngineCommand::Publish {
                            ticket,
                            channel,
                            events,
                            retain_last,
                            ..
                        } => format!(
                            "engine publish #{} {channel} {} retain_last={retain_last}",
                            ticket.0,
                            serde_json::to_string(
                                &events.iter().map(|e| &**e).collect::<Vec<&Value>>()
                            )
                            .expect("events are JSON")
                        ),
                    };
                    self.record(line);
                    self.engine.push_back(command);
                }
                HubOutput::Timeout(at) => return at,
            }
        }
    }

    fn render_event(&self, event: &HubEvent) -> Value {
        match event {
            HubEvent::Connected {
                conn,
                app_id,
                dialect,
            } => {
                json!({"event": "connected", "conn": self.name_of(*conn), "app_id": app_id, "dialect": dialect.as_str()})
            }
            HubEvent::Disconnected { conn, app_id } => {
                json!({"event": "disconnected", "conn": self.name_of(*conn), "app_id": app_id})
            }
            HubEvent::CustomRequest {
                conn,
                message_id,
                type_name,
                data,
            } => json!({
                "event": "custom_request", "conn": self.name_of(*conn), "message_id": message_id,
                "type": type_name, "data": data,
            }),
            HubEvent::RequestCompleted { conn, id, outcome } => {
                let outcome = match outcome {
                    Ok(data) => json!({ "ok": data }),
                    Err(RequestFailure::Error { code, message }) => {
                        json!({"error": {"code": code, "message": message}})
                    }
                    Err(RequestFailure::Timeout) => json!("timeout"),
                    Err(RequestFailure::Cancelled) => json!("cancelled"),
                };
                json!({"event": "request_completed", "conn": self.name_of(*conn), "id": id, "outcome": outcome})
            }
            HubEvent::Published {
                channel, offset, ..
            } => {
                json!({"event": "published", "channel": channel, "offset": offset})
            }
            HubEvent::PublishDone { ticket, outcome } => match outcome {
                Ok(offset) => {
                    json!({"event": "publish_done", "ticket": format!("{ticket:?}"), "offset": offset})
                }
                Err(e) => {
                    json!({"event": "publish_done", "ticket": format!("{ticket:?}"), "error": alloc::string::ToString::to_string(e)})
                }
            },
            HubEvent::PublishDuplicate {
                ticket,
                first_offset,
                last_offset,
            } => json!({
                "event": "publish_duplicate", "ticket": format!("{ticket:?}"),
                "first_offset": first_offset, "last_offset": last_offset,
            }),
        }
    }

    fn record(&mut self, line: String) {
        let line = normalise_epochs(&line, &mut self.epochs);
        let line = normalise_sse_ids(&line, &mut self.epochs);
        let line = normalise_uuids(&line, &mut self.ids);
        self.log.push(line);
    }

    /// The transcript since the last call.
    pub(super) fn take(&mut self) -> Vec<String> {
        core::mem::take(&mut self.log)
    }

    /// The next unseen frame sent to `name`.
    pub(super) fn next_frame(&mut self, name: &str) -> Option<Value> {
        let id = self.conn(name);
        self.frames.get_mut(&id).and_then(VecDeque::pop_front)
    }

    /// Asserts the hub is consistent and, for every closed connection, holds nothing of it.
    pub(super) fn assert_clean(&self) {
        if let Err(e) = self.hub.check_invariants() {
            panic!("invariant broken: {e}");
        }
        for &id in self.closes.keys() {
            assert!(!self.hub.holds_anything_of(id), "hub still holds {id}");
        }
    }
}

/// Replaces every UUID in `line` with `#n`, numbering them in order of first appearance.
fn normalise_uuids(line: &str, ids: &mut BTreeMap<String, usize>) -> String {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            let uuid = &line[i..i + 36];
            let next = ids.len() + 1;
            let n = *ids.entry(uuid.to_owned()).or_insert(next);
            out.push_str(&format!("#{n}"));
            i += 36;
        } else {
            let c = line[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Names every `"epoch":"…"` value (escaped in a frame's JSON or not) by order of appearance: `E`, `E2`, `E3`…
/// Every epoch in a Server-Sent Events `id:` line (`epoch:offset` entries separated by `,`) as `E`, `E2`, … in the
/// numbering [`normalise_epochs`] uses.
fn normalise_sse_ids(line: &str, epochs: &mut BTreeMap<String, usize>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("id: ") {
        let start = at + 4;
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find('\n').unwrap_or(rest.len());
        let entries: Vec<String> = rest[..end]
            .split(',')
            .map(|entry| match entry.rsplit_once(':') {
                Some((epoch, offset)) if !epoch.is_empty() => {
                    let next = epochs.len() + 1;
                    let n = *epochs.entry(epoch.to_owned()).or_insert(next);
                    if n == 1 {
                        format!("E:{offset}")
                    } else {
                        format!("E{n}:{offset}")
                    }
                }
                _ => entry.to_owned(),
            })
            .collect();
        out.push_str(&entries.join(","));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn normalise_epochs(line: &str, epochs: &mut BTreeMap<String, usize>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        let found = ["\\\"epoch\\\":\\\"", "\"epoch\":\""]
            .iter()
            .filter_map(|key| rest.find(key).map(|at| (at, *key)))
            .min();
        let Some((at, key)) = found else {
            out.push_str(rest);
            return out;
        };
        let start = at + key.len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(['"', '\\']).unwrap_or(rest.len());
        let next = epochs.len() + 1;
        let n = *epochs.entry(rest[..end].to_owned()).or_insert(next);
        if n == 1 {
            out.push('E');
        } else {
            out.push_str(&format!("E{n}"));
        }
        rest = &rest[end..];
    }
}

fn is_uuid(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &c)| match i {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
    })
}

/// Whether `actual` matches `pattern`: objects match when every key of the pattern matches (extra keys are fine);
/// arrays element by element; the string `"<any>"` matches anything present, `"<uuid>"` any UUID string; anything
/// else must be equal.
pub(super) fn matches(pattern: &Value, actual: &Value) -> bool {
    match (pattern, actual) {
        (Value::String(p), _) if p == "<any>" => true,
        (Value::String(p), Value::String(a)) if p == "<uuid>" => {
            a.len() == 36 && is_uuid(a.as_bytes())
        }
        (Value::Object(p), Value::Object(a)) => p
            .iter()
            .all(|(k, pv)| a.get(k).is_some_and(|av| matches(pv, av))),
        (Value::Array(p), Value::Array(a)) => {
            p.len() == a.len() && p.iter().zip(a).all(|(pv, av)| matches(pv, av))
        }
        _ => pattern == actual,
    }
}

#[test]
fn harness_helpers() {
    let mut ids = BTreeMap::new();
    let a = "8f0c2a4e-1b2c-4d3e-8f9a-0b1c2d3e4f50";
    let b = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        normalise_uuids(&format!("x{a} {b} {a}é"), &mut ids),
        "x#1 #2 #1é"
    );
    assert!(matches(&json!({"a": "<any>"}), &json!({"a": null, "b": 2})));
    assert!(!matches(&json!({"a": "<any>"}), &json!({"b": 2})));
    assert!(matches(&json!({"id": "<uuid>"}), &json!({"id": a})));
    assert!(!matches(&json!({"id": "<uuid>"}), &json!({"id": "x"})));
    assert!(!matches(&json!([1]), &json!([1, 2])));
}
