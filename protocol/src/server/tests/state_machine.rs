//! A proptest-state-machine test of the hub: random connects (all three dialects), disconnects, reconnects with
//! recovery, subscribes, publishes, serves, calls, server requests, stalled writers, silent clients and time.
//!
//! Each simulated client checks what it receives as it goes:
//! - events of a channel arrive with consecutive offsets from where its subscription started (so strictly
//!   increasing, no gap, no duplicate), and each carries the offset it was published at;
//! - a reconnect with `since` gets `recovered: true` exactly when the model says every missed event is still kept,
//!   and then every missed event exactly once, before live ones;
//! - every answer matches a request it made.
//!
//! After every step: the hub's invariants hold, every live client with a flushing writer has seen everything
//! published on its channels, and every disconnected connection has left no trace. At the end every server request
//! and every call has ended exactly once.

use super::{Intakes, epoch_of};
use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::{Map, Value, json};

use super::T0_MS;
use crate::server::recovery::ANSWER_ROOM;
use crate::server::{
    ConnId, Dialect, DialectKind, Hub, HubConfig, HubError, HubEvent, HubOutput, MisuseError,
    Permissions,
};
use crate::time::Timestamp;
use crate::wire::project_stream::ProjectStreamMessage;
use crate::wire::{MessageId, encode_event};

const CHANNELS: [&str; 3] = ["c0", "c1", "projects/p"];
const PROJECT: usize = 2;
const HISTORY_SIZE: usize = 8;
const HISTORY_TTL: Duration = Duration::from_secs(60);
const MAX_QUEUED_BYTES: usize = 1_200;

/// The length of one replayed event frame: every part of it is fixed by its inputs (ids are always 36 bytes,
/// timestamps 24).
fn replay_frame_len(kind: DialectKind, ch: usize, offset: u64, epoch: &str) -> usize {
    let event = json!({"seq": offset});
    match kind {
        DialectKind::Native => {
            let id = MessageId::new("x".repeat(36)).expect("valid id");
            encode_event(&id, &super::ch(CHANNELS[ch]), epoch, offset, &event).len()
        }
        _ => ProjectStreamMessage::from_event("p", offset, &event, T0_MS)
            .encode()
            .len(),
    }
}

fn config() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(10),
        heartbeat_timeout: Duration::from_secs(5),
        history_size: HISTORY_SIZE,
        history_ttl: HISTORY_TTL,
        request_timeout: Duration::from_secs(7),
        max_queued_bytes: MAX_QUEUED_BYTES,
        seed: 7,
        ..HubConfig::default()
    }
}

/// The reference: how many events each channel has had. Every publish goes through a transition, so this is the
/// offset the hub must give the next one.
#[derive(Debug, Clone, Default)]
struct Model {
    published: [u64; 3],
}

#[derive(Debug, Clone)]
enum T {
    /// 0..=3 native, 4 channel payload, 5 project stream.
    Connect(u8),
    Disconnect(u8),
    Subscribe(u8, u8),
    Unsubscribe(u8, u8),
    /// A channel, and optionally the client that publishes (else the server itself).
    Publish(u8, Option<u8>),
    Serve(u8, u8),
    Call(u8, u8),
    /// A client with server requests to answer answers its oldest.
    Answer(u8),
    SendRequest(u8),
    /// A client that lost its connection comes back and resumes where it was.
    Reconnect(u8),
    /// The client's writer stops flushing.
    Stall(u8),
    Unstall(u8),
    /// The client stops answering pings.
    Mute(u8),
    AdvanceMs(u32),
}

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = T;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<T> {
        let any = any::<u8>;
        let ch = || 0u8..3;
        prop_oneof![
            3 => (0u8..6).prop_map(T::Connect),
            1 => any().prop_map(T::Disconnect),
            4 => (any(), ch()).prop_map(|(c, h)| T::Subscribe(c, h)),
            1 => (any(), ch()).prop_map(|(c, h)| T::Unsubscribe(c, h)),
            8 => (ch(), proptest::option::of(any())).prop_map(|(h, c)| T::Publish(h, c)),
            2 => (any(), ch()).prop_map(|(c, h)| T::Serve(c, h)),
            3 => (any(), ch()).prop_map(|(c, h)| T::Call(c, h)),
            3 => any().prop_map(T::Answer),
            1 => any().prop_map(T::SendRequest),
            2 => any().prop_map(T::Reconnect),
            2 => any().prop_map(T::Stall),
            1 => any().prop_map(T::Unstall),
            1 => any().prop_map(T::Mute),
            3 => (0u32..40_000).prop_map(T::AdvanceMs),
        ]
        .boxed()
    }

    fn apply(mut state: Model, t: &T) -> Model {
        if let T::Publish(ch, _) = t {
            state.published[usize::from(*ch)] += 1;
        }
        state
    }
}

/// A pending native subscribe.
#[derive(Debug)]
struct Sub {
    channel: usize,
    since: Option<u64>,
    expect_recovered: Option<bool>,
    already: bool,
    /// The channel's offset when the subscribe was sent (the answer may be read later, by a stalled client).
    offset: u64,
}

#[derive(Debug)]
struct Client {
    kind: DialectKind,
    /// The channels the hub has it subscribed to once it has read everything sent so far (the hub acts at once;
    /// the client may read later).
    intent: BTreeSet<usize>,
    /// Subscribed channels → the offset of the next event.
    expecting: BTreeMap<usize, u64>,
    /// Native subscribes awaiting their answer, by message id.
    subscribing: BTreeMap<String, Sub>,
    /// Channel-payload subscribes awaiting `subscribed`: channel → its offset when asked and whether it was
    /// subscribed already, per subscribe sent.
    payload_subscribing: BTreeMap<usize, VecDeque<(u64, bool)>>,
    /// Native publishes awaiting `publish_res`: id → the offset it must get.
    publishing: BTreeMap<String, u64>,
    /// Server requests received and not answered: id, and whether it is a routed call.
    requests: VecDeque<(String, bool)>,
    /// A project-stream open whose recovery failed owes a `state` message.
    owes_state: bool,
    unflushed: Vec<Arc<str>>,
    stalled: bool,
    muted: bool,
}

impl Client {
    fn new(kind: DialectKind) -> Client {
        Client {
            kind,
            intent: BTreeSet::new(),
            expecting: BTreeMap::new(),
            subscribing: BTreeMap::new(),
            payload_subscribing: BTreeMap::new(),
            publishing: BTreeMap::new(),
            requests: VecDeque::new(),
            owes_state: false,
            unflushed: Vec::new(),
            stalled: false,
            muted: false,
        }
    }
}

/// A client whose connection was lost, with the last offset it saw on each channel.
#[derive(Debug)]
struct Lost {
    kind: DialectKind,
    positions: BTreeMap<usize, u64>,
}

struct Sut {
    hub: Hub,
    intakes: Intakes,
    now: Timestamp,
    clients: BTreeMap<ConnId, Client>,
    everyone: Vec<ConnId>,
    gone: BTreeSet<ConnId>,
    lost: Vec<Lost>,
    /// `send_request` ids not yet completed.
    open_requests: BTreeMap<String, ConnId>,
    /// Calls not yet answered: (caller, its message id).
    open_calls: BTreeSet<(ConnId, String)>,
    /// When each event of each channel was published (index = offset - 1).
    publish_times: [Vec<Timestamp>; 3],
    next_id: u64,
    /// Texts to send once the current drain is over (pongs).
    replies: Vec<(ConnId, String)>,
}

fn channel_index(name: &str) -> usize {
    CHANNELS
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("unknown channel {name}"))
}

impl Sut {
    fn new() -> Sut {
        let now = Timestamp::from_millis(T0_MS);
        Sut {
            hub: keeping_hub(config()),
            intakes: Intakes::default(),
            now,
            clients: BTreeMap::new(),
            everyone: Vec::new(),
            gone: BTreeSet::new(),
            lost: Vec::new(),
            open_requests: BTreeMap::new(),
            open_calls: BTreeSet::new(),
            publish_times: [Vec::new(), Vec::new(), Vec::new()],
            next_id: 0,
            replies: Vec::new(),
        }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("m{}", self.next_id)
    }

    fn pick(&self, sel: u8) -> Option<ConnId> {
        let live: Vec<ConnId> = self.clients.keys().copied().collect();
        (!live.is_empty()).then(|| live[usize::from(sel) % live.len()])
    }

    fn current(&self, ch: usize) -> u64 {
        self.publish_times[ch].len() as u64
    }

    /// PROTOCOL §3, from the model's own record of what was published when.
    fn expect_recovered(&self, kind: DialectKind, ch: usize, since: u64) -> bool {
        let current = self.current(ch);
        if since > current {
            return false;
        }
        if since == current {
            return true;
        }
        if current - since > HISTORY_SIZE as u64 {
            return false;
        }
        if self.publish_times[ch][since as usize] + HISTORY_TTL <= self.now {
            return false;
        }
        // The replay must fit in a fresh connection's outbound queue, with room for the answer. A native client
        // flushed its greeting before subscribing; a project stream subscribes with its greeting still queued.
        let queued = match kind {
            DialectKind::ProjectStream => {
                ProjectStreamMessage::connected("p", T0_MS).encode().len()
            }
            _ => 0,
        };
        let replay: usize = (since + 1..=current)
            .map(|offset| replay_frame_len(kind, ch, offset, &epoch_of(&self.hub, CHANNELS[ch])))
            .sum();
        queued + replay + ANSWER_ROOM <= MAX_QUEUED_BYTES
    }

    fn text(&mut self, conn: ConnId, text: &str) {
        self.intakes.text(&mut self.hub, self.now, conn, text);
        self.drain();
    }

    fn open(&mut self, kind: DialectKind, project_since: Option<u64>) -> ConnId {
        let dialect = match kind {
            DialectKind::Native => Dialect::Native,
            DialectKind::ChannelPayload => Dialect::ChannelPayload,
            DialectKind::ProjectStream => Dialect::ProjectStream {
                project_id: "p".to_owned(),
                since: project_since,
            },

            DialectKind::Sse | DialectKind::ProjectSse => {
                unreachable!("the model opens no streams")
            }
        };
        // The project stream subscribes inside `handle_open`: its expectations are set before, and the client is
        // registered before anything is drained.
        let mut client = Client::new(kind);
        if kind == DialectKind::ProjectStream {
            let current = self.current(PROJECT);
            let start = match project_since {
                Some(since) if self.expect_recovered(kind, PROJECT, since) => since + 1,
                Some(_) => {
                    client.owes_state = true;
                    current + 1
                }
                None => current + 1,
            };
            client.expecting.insert(PROJECT, start);
            client.intent.insert(PROJECT);
        }
        let conn = self.intakes.open(
            &mut self.hub,
            self.now,
            dialect,
            Permissions::allow_all(),
            crate::server::Trust::Untrusted,
        );
        self.clients.insert(conn, client);
        self.everyone.push(conn);
        self.drain();
        conn
    }

    fn subscribe(&mut self, conn: ConnId, ch: usize, since: Option<u64>) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        let kind = c.kind;
        if kind == DialectKind::ProjectStream {
            return;
        }
        let already = !c.intent.insert(ch);
        match kind {
            DialectKind::Native => {
                let id = self.id();
                let expect_recovered = match (since, already) {
                    (_, true) | (None, _) => None,
                    (Some(s), false) => Some(self.expect_recovered(kind, ch, s)),
                };
                let since_json = since.map_or(String::new(), |s| {
                    format!(
                        r#","since":{{"epoch":"{}","offset":{s}}}"#,
                        &epoch_of(&self.hub, CHANNELS[ch])
                    )
                });
                let sub = Sub {
                    channel: ch,
                    since,
                    expect_recovered,
                    already,
                    offset: self.current(ch),
                };
                if let Some(c) = self.clients.get_mut(&conn) {
                    c.subscribing.insert(id.clone(), sub);
                }
                let text = format!(
                    r#"{{"type":"subscribe","message_id":"{id}","data":{{"channel":"{}"{since_json}}}}}"#,
                    CHANNELS[ch]
                );
                self.text(conn, &text);
            }
            DialectKind::ChannelPayload => {
                let current = self.current(ch);
                if let Some(c) = self.clients.get_mut(&conn) {
                    c.payload_subscribing
                        .entry(ch)
                        .or_default()
                        .push_back((current, already));
                }
                let text = format!(
                    r#"{{"channel":"subscription","payload":{{"action":"subscribe","channel":"{}"}}}}"#,
                    CHANNELS[ch]
                );
                self.text(conn, &text);
            }
            DialectKind::ProjectStream => {}
            DialectKind::Sse | DialectKind::ProjectSse => {
                unreachable!("the model opens no streams")
            }
        }
    }

    /// Drains every output, handing frames to the clients, until nothing is left to do.
    fn drain(&mut self) {
        loop {
            loop {
                match self.hub.poll_output() {
                    HubOutput::Transmit { conn, frame } => self.transmit(conn, frame),
                    HubOutput::Close { conn, .. } => {
                        let client = self
                            .clients
                            .get_mut(&conn)
                            .unwrap_or_else(|| panic!("close of unknown {conn}"));
                        client.unflushed.clear();
                        self.hub.handle_transport_closed(self.now, conn);
                    }
                    HubOutput::Event(event) => self.event(event),
                    HubOutput::Persist(write) => {
                        self.hub.handle_store_written(self.now, write.batch)
                    }
                    HubOutput::Snapshot(job) => {
                        self.hub.handle_snapshot_written(self.now, job.covers, 0)
                    }
                    HubOutput::Engine(_) => unreachable!("a single node gives no engine commands"),
                    HubOutput::Timeout(_) => break,
                }
            }
            let replies = core::mem::take(&mut self.replies);
            if replies.is_empty() {
                break;
            }
            for (conn, text) in replies {
                if self.clients.contains_key(&conn) {
                    self.intakes.text(&mut self.hub, self.now, conn, &text);
                }
            }
        }
        for &conn in &self.gone {
            assert!(!self.hub.holds_anything_of(conn), "hub still holds {conn}");
        }
    }

    fn transmit(&mut self, conn: ConnId, frame: Arc<str>) {
        let client = self
            .clients
            .get_mut(&conn)
            .unwrap_or_else(|| panic!("frame for closed or unknown connection {conn}: {frame}"));
        if client.stalled {
            client.unflushed.push(frame);
            return;
        }
        self.hub.handle_sent(conn, frame.len());
        self.receive(conn, &frame);
    }

    /// The client processes one frame.
    fn receive(&mut self, conn: ConnId, frame: &str) {
        let v: Value = serde_json::from_str(frame).expect("the hub sends JSON");
        let now_ms = self.now.as_millis();
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        match client.kind {
            DialectKind::Native => {
                let id = v["message_id"].as_str().unwrap_or_default().to_owned();
                let data = &v["data"];
                match v["type"].as_str().unwrap_or_default() {
                    "connected" | "serve_res" => {}
                    "subscribe_res" => {
                        let sub = client
                            .subscribing
                            .remove(&id)
                            .expect("subscribe_res answers a subscribe");
                        let recovered = data["recovered"].as_bool();
                        assert_eq!(recovered, sub.expect_recovered, "recovered for {v}");
                        let offset = data["offset"].as_u64().expect("offset");
                        assert_eq!(offset, sub.offset);
                        if !sub.already {
                            let start = match (recovered, sub.since) {
                                (Some(true), Some(since)) => since + 1,
                                _ => offset + 1,
                            };
                            client.expecting.insert(sub.channel, start);
                        }
                    }
                    "unsubscribe_res" => {
                        let ch = channel_index(data["channel"].as_str().unwrap_or_default());
                        assert!(client.expecting.remove(&ch).is_some());
                    }
                    "event" => {
                        let ch = channel_index(data["channel"].as_str().unwrap_or_default());
                        let offset = data["offset"].as_u64().expect("offset");
                        check_event(client, ch, offset, &data["event"], &v);
                    }
                    "publish_res" => {
                        let want = client
                            .publishing
                            .remove(&id)
                            .expect("publish_res answers a publish");
                        assert_eq!(data["offset"].as_u64(), Some(want));
                    }
                    "server_request" => {
                        let is_call = data["request_type"] == "call";
                        client.requests.push_back((id, is_call));
                    }
                    "call_res" => {
                        assert!(
                            self.open_calls.remove(&(conn, id)),
                            "call_res twice or unasked: {v}"
                        );
                    }
                    "error" => {
                        let code = data["code"].as_str().unwrap_or_default();
                        assert!(
                            matches!(code, "NO_HANDLER" | "REQUEST_TIMEOUT"),
                            "unexpected error {v}"
                        );
                        assert!(
                            self.open_calls.remove(&(conn, id)),
                            "call ended twice or unasked: {v}"
                        );
                    }
                    "server_ping" => {
                        if !client.muted {
                            let ts = data["timestamp"].as_u64().unwrap_or_default();
                            let pong = format!(
                                r#"{{"type":"server_pong","message_id":"pong","data":{{"timestamp":{now_ms},"server_timestamp":{ts}}}}}"#
                            );
                            self.replies.push((conn, pong));
                        }
                    }
                    other => panic!("unexpected {other}: {v}"),
                }
            }
            DialectKind::ChannelPayload => {
                let channel = v["channel"].as_str().unwrap_or_default();
                let payload = &v["payload"];
                match channel {
                    "subscription" => {
                        let ch = channel_index(payload["channel"].as_str().unwrap_or_default());
                        match payload["action"].as_str().unwrap_or_default() {
                            "subscribed" => {
                                let asked = client.payload_subscribing.entry(ch).or_default();
                                let (at, already) =
                                    asked.pop_front().expect("subscribed answers a subscribe");
                                if asked.is_empty() {
                                    client.payload_subscribing.remove(&ch);
                                }
                                if !already {
                                    assert!(client.expecting.insert(ch, at + 1).is_none());
                                }
                            }
                            "unsubscribed" => {
                                assert!(client.expecting.remove(&ch).is_some());
                            }
                            other => panic!("unexpected action {other}"),
                        }
                    }
                    "error" => panic!("unexpected error {v}"),
                    name => {
                        let ch = channel_index(name);
                        let seq = payload["seq"].as_u64().expect("events carry their offset");
                        check_event(client, ch, seq, payload, &v);
                    }
                }
            }
            DialectKind::ProjectStream => match v["event_type"].as_str().unwrap_or_default() {
                "connected" => {}
                "state" => {
                    assert!(client.owes_state, "unasked state {v}");
                    client.owes_state = false;
                    assert_eq!(
                        v["offset"].as_u64(),
                        Some(self.publish_times[PROJECT].len() as u64)
                    );
                }
                "message" => {
                    let offset = v["offset"].as_u64().expect("offset");
                    check_event(client, PROJECT, offset, &v["data"], &v);
                }
                other => panic!("unexpected {other}: {v}"),
            },
            DialectKind::Sse | DialectKind::ProjectSse => {
                unreachable!("the model opens no streams")
            }
        }
    }

    fn event(&mut self, event: HubEvent) {
        match event {
            HubEvent::Connected { .. } | HubEvent::Published { .. } => {}
            HubEvent::Disconnected { conn, .. } => {
                let client = self
                    .clients
                    .remove(&conn)
                    .unwrap_or_else(|| panic!("{conn} disconnected twice"));
                // Its calls end with it: the answers are dropped.
                self.open_calls.retain(|(caller, _)| *caller != conn);
                let positions: BTreeMap<usize, u64> = client
                    .expecting
                    .iter()
                    .map(|(&ch, &next)| (ch, next - 1))
                    .collect();
                if !positions.is_empty() {
                    self.lost.push(Lost {
                        kind: client.kind,
                        positions,
                    });
                    if self.lost.len() > 6 {
                        self.lost.remove(0);
                    }
                }
                self.gone.insert(conn);
            }
            HubEvent::RequestCompleted { id, conn, .. } => {
                let target = self
                    .open_requests
                    .remove(id.as_str())
                    .unwrap_or_else(|| panic!("request {id} ended twice or was never sent"));
                assert_eq!(target, conn);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            self.drain();
            let HubOutput::Timeout(wake) = self.hub.poll_output() else {
                unreachable!("drained");
            };
            if wake > target {
                break;
            }
            self.now = self.now.max(wake);
            self.hub.handle_timeout(self.now);
        }
        self.now = target;
        self.drain();
    }

    fn publish(&mut self, ch: usize, offset: u64, by: Option<u8>) {
        self.publish_times[ch].push(self.now);
        let event = json!({"seq": offset});
        let publisher = by
            .and_then(|sel| self.pick(sel))
            .filter(|c| self.clients[c].kind != DialectKind::ProjectStream);
        match publisher {
            Some(conn) if self.clients[&conn].kind == DialectKind::Native => {
                let id = self.id();
                if let Some(c) = self.clients.get_mut(&conn) {
                    c.publishing.insert(id.clone(), offset);
                }
                let text = format!(
                    r#"{{"type":"publish","message_id":"{id}","data":{{"channel":"{}","event":{event}}}}}"#,
                    CHANNELS[ch]
                );
                self.text(conn, &text);
            }
            Some(conn) => {
                let text = format!(r#"{{"channel":"{}","payload":{event}}}"#, CHANNELS[ch]);
                self.text(conn, &text);
            }
            None => {
                let got = self
                    .hub
                    .publish(self.now, &super::ch(CHANNELS[ch]), event, false)
                    .expect("publish");
                let crate::server::Publish::Done(got) = got else {
                    panic!("the memory store keeps at once")
                };
                assert_eq!(got, offset);
                self.drain();
            }
        }
    }
}

/// One event for a client: it must be subscribed, and the offset must be the next one, carrying its own offset.
fn check_event(client: &mut Client, ch: usize, offset: u64, event: &Value, frame: &Value) {
    let next = client
        .expecting
        .get_mut(&ch)
        .unwrap_or_else(|| panic!("event on a channel not subscribed: {frame}"));
    assert_eq!(offset, *next, "offsets must be consecutive: {frame}");
    assert_eq!(
        event["seq"].as_u64(),
        Some(offset),
        "the event published at this offset: {frame}"
    );
    *next += 1;
}

struct HubTest;

impl StateMachineTest for HubTest {
    type SystemUnderTest = Sut;
    type Reference = Model;

    fn init_test(_: &Model) -> Sut {
        Sut::new()
    }

    fn apply(mut sut: Sut, model: &Model, t: T) -> Sut {
        match t {
            T::Connect(d) => {
                let kind = match d {
                    0..=3 => DialectKind::Native,
                    4 => DialectKind::ChannelPayload,
                    _ => DialectKind::ProjectStream,
                };
                sut.open(kind, None);
            }
            T::Disconnect(sel) => {
                if let Some(conn) = sut.pick(sel) {
                    sut.hub.handle_transport_closed(sut.now, conn);
                    sut.drain();
                }
            }
            T::Subscribe(sel, ch) => {
                if let Some(conn) = sut.pick(sel) {
                    sut.subscribe(conn, usize::from(ch), None);
                }
            }
            T::Unsubscribe(sel, ch) => {
                let Some(conn) = sut.pick(sel) else {
                    return sut;
                };
                let ch = usize::from(ch);
                let Some(client) = sut.clients.get_mut(&conn) else {
                    return sut;
                };
                // Only what it is subscribed to: NOT_SUBSCRIBED is the table test's business.
                if client.kind == DialectKind::ProjectStream || !client.intent.remove(&ch) {
                    return sut;
                }
                let text = match sut.clients[&conn].kind {
                    DialectKind::Native => format!(
                        r#"{{"type":"unsubscribe","message_id":"{}","data":{{"channel":"{}"}}}}"#,
                        sut.id(),
                        CHANNELS[ch]
                    ),
                    DialectKind::ChannelPayload => format!(
                        r#"{{"channel":"subscription","payload":{{"action":"unsubscribe","channel":"{}"}}}}"#,
                        CHANNELS[ch]
                    ),
                    DialectKind::ProjectStream => return sut,
                    DialectKind::Sse | DialectKind::ProjectSse => {
                        unreachable!("the model opens no streams")
                    }
                };
                sut.text(conn, &text);
            }
            T::Publish(ch, by) => {
                let ch = usize::from(ch);
                sut.publish(ch, model.published[ch], by);
            }
            T::Serve(sel, ch) => {
                if let Some(conn) = sut.pick(sel)
                    && sut.clients[&conn].kind == DialectKind::Native
                {
                    let text = format!(
                        r#"{{"type":"serve","message_id":"{}","data":{{"channel":"{}"}}}}"#,
                        sut.id(),
                        CHANNELS[usize::from(ch)]
                    );
                    sut.text(conn, &text);
                }
            }
            T::Call(sel, ch) => {
                if let Some(conn) = sut.pick(sel)
                    && sut.clients[&conn].kind == DialectKind::Native
                {
                    let id = sut.id();
                    sut.open_calls.insert((conn, id.clone()));
                    let text = format!(
                        r#"{{"type":"call","message_id":"{id}","data":{{"channel":"{}","method":"m"}}}}"#,
                        CHANNELS[usize::from(ch)]
                    );
                    sut.text(conn, &text);
                }
            }
            T::Answer(sel) => {
                let asked: Vec<ConnId> = sut
                    .clients
                    .iter()
                    .filter(|(_, c)| !c.requests.is_empty())
                    .map(|(&id, _)| id)
                    .collect();
                if let Some(&conn) = asked.get(usize::from(sel) % asked.len().max(1))
                    && let Some((id, is_call)) = sut
                        .clients
                        .get_mut(&conn)
                        .and_then(|c| c.requests.pop_front())
                {
                    let data = if is_call {
                        r#"{"result":1}"#
                    } else {
                        r#"{"response_type":"confirm"}"#
                    };
                    let text = format!(
                        r#"{{"type":"server_response","message_id":"{id}","data":{data}}}"#
                    );
                    sut.text(conn, &text);
                }
            }
            T::SendRequest(sel) => {
                if let Some(conn) = sut.pick(sel) {
                    let result = sut
                        .hub
                        .send_request(sut.now, conn, "confirm", Map::new(), None);
                    match (sut.clients[&conn].kind, result) {
                        (DialectKind::Native, Ok(id)) => {
                            sut.open_requests.insert(id.into_string(), conn);
                        }
                        (_, Err(HubError::Misuse(MisuseError::NotNative { .. }))) => {}
                        (kind, other) => panic!("send_request to {kind}: {other:?}"),
                    }
                    sut.drain();
                }
            }
            T::Reconnect(sel) => {
                if sut.lost.is_empty() {
                    return sut;
                }
                let lost = sut.lost.remove(usize::from(sel) % sut.lost.len());
                let since = lost.positions.get(&PROJECT).copied();
                let conn = sut.open(lost.kind, since);
                for (&ch, &pos) in &lost.positions {
                    match lost.kind {
                        DialectKind::Native => sut.subscribe(conn, ch, Some(pos)),
                        DialectKind::ChannelPayload => sut.subscribe(conn, ch, None),
                        DialectKind::ProjectStream => {}
                        DialectKind::Sse | DialectKind::ProjectSse => {
                            unreachable!("the model opens no streams")
                        }
                    }
                }
                if let Some(c) = sut.clients.get(&conn) {
                    assert!(!c.owes_state, "project stream owed a state message");
                }
            }
            T::Stall(sel) => {
                if let Some(conn) = sut.pick(sel)
                    && let Some(c) = sut.clients.get_mut(&conn)
                {
                    c.stalled = true;
                }
            }
            T::Unstall(sel) => {
                if let Some(conn) = sut.pick(sel)
                    && let Some(c) = sut.clients.get_mut(&conn)
                {
                    c.stalled = false;
                    let frames = core::mem::take(&mut c.unflushed);
                    for frame in frames {
                        sut.hub.handle_sent(conn, frame.len());
                        sut.receive(conn, &frame);
                    }
                    let replies = core::mem::take(&mut sut.replies);
                    for (conn, text) in replies {
                        sut.text(conn, &text);
                    }
                    sut.drain();
                }
            }
            T::Mute(sel) => {
                if let Some(conn) = sut.pick(sel)
                    && let Some(c) = sut.clients.get_mut(&conn)
                {
                    c.muted = true;
                }
            }
            T::AdvanceMs(ms) => sut.advance(Duration::from_millis(u64::from(ms))),
        }
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        if let Err(e) = sut.hub.check_invariants() {
            panic!("hub invariant: {e}");
        }
        for (conn, c) in &sut.clients {
            if c.stalled {
                continue;
            }
            assert!(
                c.subscribing.is_empty()
                    && c.publishing.is_empty()
                    && c.payload_subscribing.is_empty()
            );
            assert!(!c.owes_state);
            // A client whose writer flushes has seen everything published on its channels.
            for (&ch, &next) in &c.expecting {
                assert_eq!(
                    next,
                    model.published[ch] + 1,
                    "{conn} is behind on {}",
                    CHANNELS[ch]
                );
            }
        }
        for &conn in &sut.gone {
            assert!(!sut.hub.holds_anything_of(conn));
        }
        let stats = sut.hub.stats();
        assert_eq!(stats.connections, sut.clients.len());
        assert_eq!(stats.pending_requests, sut.open_requests.len());
    }

    fn teardown(mut sut: Sut, _: Model) {
        let live: Vec<ConnId> = sut.clients.keys().copied().collect();
        for conn in live {
            sut.hub.handle_transport_closed(sut.now, conn);
            sut.drain();
        }
        assert!(
            sut.open_requests.is_empty(),
            "server requests never ended: {:?}",
            sut.open_requests
        );
        assert!(
            sut.open_calls.is_empty(),
            "calls never ended: {:?}",
            sut.open_calls
        );
        for &conn in &sut.everyone {
            assert!(!sut.hub.holds_anything_of(conn), "hub still holds {conn}");
        }
        let stats = sut.hub.stats();
        assert_eq!(
            (
                stats.connections,
                stats.subscriptions,
                stats.sessions,
                stats.pending_requests,
                stats.pending_calls
            ),
            (0, 0, 0, 0, 0)
        );
        if let Err(e) = sut.hub.check_invariants() {
            panic!("hub invariant: {e}");
        }
    }
}

prop_state_machine! {
    // 256 cases unless PROPTEST_CASES says otherwise.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn hub_state_machine(sequential 1..100 => HubTest);
}

/// A hub whose store never forgets a channel: the model counts every channel's offsets from the hub's start, and an
/// idle channel forgotten (its next event at offset 1 of a new epoch) is not what it models. Forgetting has
/// transcripts of its own (`forget.rs`).
fn keeping_hub(config: HubConfig) -> Hub {
    let epoch = format!(
        "{:016x}",
        crate::rng::Rng::from_seed(config.seed).next_u64()
    );
    let store = crate::server::MemoryStore::new(epoch, config.history_size, config.history_ttl)
        .with_history_bytes(config.history_bytes, config.history_total_bytes);
    Hub::with_store(config, alloc::boxed::Box::new(KeepsEveryChannel(store)))
}

/// The memory store, holding every channel it is asked about and never releasing one.
#[derive(Debug)]
struct KeepsEveryChannel(crate::server::MemoryStore);

impl crate::server::Store for KeepsEveryChannel {
    fn append(
        &mut self,
        now: Timestamp,
        channel: &crate::wire::ChannelName,
        event: Arc<Value>,
        bytes: usize,
        retain: bool,
    ) -> crate::server::Appended {
        self.0.hold(channel);
        self.0.append(now, channel, event, bytes, retain)
    }

    fn key_next(
        &mut self,
        now: Timestamp,
        channel: &crate::wire::ChannelName,
        key: &crate::wire::IdempotencyKey,
        count: u64,
    ) {
        self.0.key_next(now, channel, key, count)
    }

    fn take_restored_keys(&mut self) -> alloc::vec::Vec<crate::server::KeptKey> {
        self.0.take_restored_keys()
    }

    fn set_cursor(&mut self, name: &str, channel: &crate::wire::ChannelName, offset: u64) {
        self.0.set_cursor(name, channel, offset);
    }

    fn cursor(&self, name: &str, channel: &crate::wire::ChannelName) -> Option<u64> {
        self.0.cursor(name, channel)
    }

    fn epoch(&self, channel: &crate::wire::ChannelName) -> &str {
        self.0.epoch(channel)
    }

    fn offset(&self, channel: &crate::wire::ChannelName) -> u64 {
        self.0.offset(channel)
    }

    fn channels_with_prefix(&self, prefix: &str) -> alloc::vec::Vec<crate::wire::ChannelName> {
        self.0.channels_with_prefix(prefix)
    }

    fn state(&self, channel: &crate::wire::ChannelName) -> crate::server::ChannelState {
        self.0.state(channel)
    }

    fn replay(
        &self,
        now: Timestamp,
        channel: &crate::wire::ChannelName,
        after: &crate::wire::StreamPosition,
    ) -> Option<Vec<(u64, Arc<Value>)>> {
        self.0.replay(now, channel, after)
    }

    fn page(
        &self,
        now: Timestamp,
        channel: &crate::wire::ChannelName,
        since: Option<u64>,
        limit: usize,
    ) -> crate::server::HistoryPage {
        self.0.page(now, channel, since, limit)
    }

    fn hold(&mut self, channel: &crate::wire::ChannelName) {
        self.0.hold(channel);
    }

    fn next_expiry(&self) -> Option<Timestamp> {
        self.0.next_expiry()
    }

    fn expire(&mut self, now: Timestamp) {
        self.0.expire(now);
    }

    fn holds(&self, channel: &crate::wire::ChannelName) -> bool {
        self.0.holds(channel)
    }

    fn stats(&self) -> crate::server::store::StoreStats {
        self.0.stats()
    }

    fn check(&self) -> Result<(), String> {
        self.0.check()
    }
}
