//! The state-machine property test: random interleavings of application commands, a scripted fake server (which
//! answers correctly, sometimes loses an answer, replays duplicates, restarts with new epochs), disconnects, failed
//! dials, junk and jumps of a virtual clock, run against a small reference model.
//!
//! After every step it checks that
//! - every request id ends at most once, and (at teardown, after `close`) exactly once;
//! - per channel and epoch, delivered offsets strictly increase, and are gap-free except right after a `Resync` or
//!   a fresh subscription (recovery really recovers);
//! - events come only for channels whose `subscribe` was the last of the pair to go out, and the machine's own
//!   subscription set says the same;
//! - the offline queue stays within its bounds; the machine dials only without a transport and transmits only on
//!   one; the closed flag matches the model; and nothing panics.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::vec;
use proptest::prelude::{BoxedStrategy, Just, Strategy, prop_oneof};
use proptest::sample::select;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use super::*;

const CHANNELS: [&str; 3] = ["a", "b", "c"];
/// Events the fake server keeps per channel: small, so long offline spells cannot be recovered.
const HISTORY: usize = 4;
const MAX_QUEUED_MESSAGES: usize = 6;
const MAX_QUEUED_BYTES: usize = 4096;

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    Subscribe(usize),
    Unsubscribe(usize),
    Serve(usize),
    /// A custom `echo` request; `big` ones (1.5 KB) press the queue's byte bound.
    Request {
        big: bool,
        timeout_ms: Option<u64>,
    },
    Publish(usize),
    Call(usize),
    Close,
    /// Complete an outstanding `Connect`: the server greets at once.
    DialOk,
    DialFail,
    /// The server handles up to `n` frames from the client; with `drop_first`, the first answer is lost.
    ServerProcess {
        n: usize,
        drop_first: bool,
    },
    /// Up to `n` frames reach the client.
    ClientReceive(usize),
    /// The network settles: an outstanding dial succeeds, and both sides handle everything in flight, back and
    /// forth, until nothing is left.
    Flush,
    /// Another client publishes.
    ServerPublish(usize),
    /// The server repeats the channel's last events (duplicates).
    ServerReplay(usize),
    ServerPing,
    /// The server restarts: every channel gets a new epoch and no history; the connection closes with 1001.
    ServerRestart,
    Disconnect(u16),
    Junk,
    /// The virtual clock moves forward, firing every deadline on the way.
    Advance(u64),
}

/// The reference model: what follows from the steps alone, whatever the timing.
#[derive(Debug, Clone, Default)]
struct Model {
    closed: bool,
    /// Requests the application issued successfully.
    issued: usize,
    /// The server's epoch generation.
    epoch: u32,
}

struct ModelMachine;

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_state: &Model) -> BoxedStrategy<Step> {
        let channel = || 0..CHANNELS.len();
        prop_oneof![
            24 => channel().prop_map(Step::Subscribe),
            6 => channel().prop_map(Step::Unsubscribe),
            9 => channel().prop_map(Step::Serve),
            24 => (proptest::bool::weighted(0.25), proptest::option::of(select(vec![0u64, 50, 2_000, 20_000])))
                .prop_map(|(big, timeout_ms)| Step::Request { big, timeout_ms }),
            18 => channel().prop_map(Step::Publish),
            12 => channel().prop_map(Step::Call),
            1 => Just(Step::Close),
            36 => Just(Step::DialOk),
            6 => Just(Step::DialFail),
            36 => (1..6usize, proptest::bool::weighted(0.15))
                .prop_map(|(n, drop_first)| Step::ServerProcess { n, drop_first }),
            36 => (1..8usize).prop_map(Step::ClientReceive),
            48 => Just(Step::Flush),
            36 => channel().prop_map(Step::ServerPublish),
            12 => channel().prop_map(Step::ServerReplay),
            9 => Just(Step::ServerPing),
            3 => Just(Step::ServerRestart),
            4 => select(vec![1000u16, 1001, 1006, 1011, 1013, 4008]).prop_map(Step::Disconnect),
            6 => Just(Step::Junk),
            30 => select(vec![1u64, 100, 1_000, 1_000, 2_000, 2_000, 10_000, 40_000]).prop_map(Step::Advance),
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        match step {
            Step::Subscribe(_)
            | Step::Unsubscribe(_)
            | Step::Serve(_)
            | Step::Request { .. }
            | Step::Publish(_)
            | Step::Call(_)
                if !state.closed =>
            {
                state.issued += 1;
            }
            Step::Close => state.closed = true,
            Step::ServerRestart => state.epoch += 1,
            _ => {}
        }
        state
    }
}

/// A channel on the fake server.
#[derive(Debug, Default)]
struct FakeChannel {
    offset: u64,
    history: VecDeque<(u64, Value)>,
}

/// The server side of the current connection.
#[derive(Debug, Default)]
struct Conn {
    subscribed: BTreeSet<usize>,
    served: BTreeSet<usize>,
    /// Routed calls awaiting this client's `server_response`: server request id → (caller's id, channel, method).
    routed: BTreeMap<MessageId, (MessageId, usize, String)>,
    /// Application requests sent on this connection.
    sent: BTreeSet<MessageId>,
    to_server: VecDeque<String>,
    to_client: VecDeque<String>,
}

/// The system under test with its world: the client, the fake server and network, and the checker's memory.
struct World {
    client: ClientMachine,
    now: Timestamp,
    deadline: Timestamp,
    epoch: u32,
    channels: [FakeChannel; 3],
    next_server_id: u64,
    dialing: bool,
    conn: Option<Conn>,
    /// Every id a command returned, and how many times it has ended.
    issued: BTreeMap<MessageId, u32>,
    /// Per channel: whether the last `subscribe`/`unsubscribe` that went out was a subscribe.
    listening: [bool; 3],
    /// Per channel: the last delivered (epoch, offset), and whether the next event may skip offsets.
    delivered: [Option<(String, u64)>; 3],
    gap_ok: [bool; 3],
    /// Requests whose answer the client saw end in a timeout: a later `error` for them is a late answer.
    timed_out: BTreeSet<MessageId>,
    /// Application ids that went on the wire: none may go twice (requests are never re-sent).
    transmitted: BTreeSet<MessageId>,
    /// Application ids in flight on a connection that has gone: each must end within the step.
    must_end: BTreeSet<MessageId>,
}

fn channel_index(name: &str) -> usize {
    CHANNELS
        .iter()
        .position(|c| *c == name)
        .expect("only known channels")
}

impl World {
    fn new() -> World {
        let mut config = ClientConfig::with_seed(11);
        config.max_queued_messages = MAX_QUEUED_MESSAGES;
        config.max_queued_bytes = MAX_QUEUED_BYTES;
        // Short delays, so runs spend their steps connected rather than waiting out 30 s caps.
        config.backoff.max_delay = Duration::from_secs(2);
        let now = t(0);
        let mut world = World {
            client: ClientMachine::new(config, now),
            now,
            deadline: now,
            epoch: 0,
            channels: Default::default(),
            next_server_id: 0,
            dialing: false,
            conn: None,
            issued: BTreeMap::new(),
            listening: [false; 3],
            delivered: Default::default(),
            gap_ok: [false; 3],
            timed_out: BTreeSet::new(),
            transmitted: BTreeSet::new(),
            must_end: BTreeSet::new(),
        };
        world.pump();
        world
    }

    fn server_id(&mut self) -> MessageId {
        self.next_server_id += 1;
        mid(&format!("s-{}", self.next_server_id))
    }

    fn epoch_name(&self) -> String {
        format!("e{}", self.epoch)
    }

    /// Drains the client, carrying out each output, answering calls at once, until it waits.
    fn pump(&mut self) {
        loop {
            let mut calls = vec![];
            loop {
                match self.client.poll_output() {
                    Output::Connect => {
                        assert!(
                            !self.dialing && self.conn.is_none(),
                            "dialed with a transport"
                        );
                        self.dialing = true;
                    }
                    Output::Transmit(text) => {
                        let frame = decode(&text);
                        if let ClientMessage::Subscribe { channel, since, .. } = &frame.message {
                            let i = channel_index(channel);
                            assert!(
                                since.is_some()
                                    || !self.listening[i]
                                    || self.delivered[i].is_none(),
                                "{channel} resubscribed without since, losing its position"
                            );
                            self.listening[i] = true;
                        }
                        if let ClientMessage::Unsubscribe { channel } = &frame.message {
                            // A later subscription starts afresh: no continuity is owed across it.
                            let i = channel_index(channel);
                            self.listening[i] = false;
                            self.delivered[i] = None;
                        }
                        let conn = self.conn.as_mut().expect("transmitted without a transport");
                        if self.issued.contains_key(&frame.message_id) {
                            assert!(
                                self.transmitted.insert(frame.message_id.clone()),
                                "{} was sent twice",
                                frame.message_id
                            );
                            conn.sent.insert(frame.message_id);
                        }
                        conn.to_server.push_back(text);
                    }
                    Output::Close { .. } => {
                        assert!(self.dialing || self.conn.is_some(), "closed nothing");
                        self.dialing = false;
                        self.forget_conn();
                    }
                    Output::Event(event) => {
                        if let Some(id) = self.check_event(event) {
                            calls.push(id);
                        }
                    }
                    Output::Timeout(at) => {
                        assert!(
                            at >= self.now,
                            "a deadline in the past: {at} < {}",
                            self.now
                        );
                        self.deadline = at;
                        break;
                    }
                }
            }
            if calls.is_empty() {
                return;
            }
            for (id, params) in calls {
                self.client
                    .respond(self.now, &id, Ok(params))
                    .expect("a call of the open connection can be answered");
            }
        }
    }

    /// Checks one event; returns a call to answer.
    fn check_event(&mut self, event: ClientEvent) -> Option<(MessageId, Value)> {
        match event {
            ClientEvent::Response { id, .. } => self.end(&id),
            ClientEvent::RequestFailed { id, reason } => {
                if reason == FailReason::TimedOut {
                    self.timed_out.insert(id.clone());
                }
                self.end(&id);
            }
            ClientEvent::ChannelEvent {
                channel,
                epoch,
                offset,
                ..
            } => {
                let i = channel_index(&channel);
                assert!(
                    self.listening[i],
                    "event on {channel}, which is not subscribed"
                );
                assert_eq!(epoch, self.epoch_name(), "an event of an old epoch");
                assert!(
                    offset <= self.channels[i].offset,
                    "an event the server never had"
                );
                if let Some((last_epoch, last)) = &self.delivered[i] {
                    if *last_epoch == epoch {
                        assert!(offset > *last, "{channel}: {offset} after {last}");
                        assert!(
                            self.gap_ok[i] || offset == last + 1,
                            "{channel}: gap from {last} to {offset} without a resync"
                        );
                    } else {
                        assert!(self.gap_ok[i], "{channel}: new epoch without a resync");
                    }
                }
                self.delivered[i] = Some((epoch, offset));
                self.gap_ok[i] = false;
            }
            ClientEvent::Resync { channel } => self.gap_ok[channel_index(&channel)] = true,
            ClientEvent::CallRequest { id, params, .. } => return Some((id, params)),
            ClientEvent::ServerError { id, code, .. } => {
                // The fake server only sends errors answering requests: this one must be late.
                let id = id.expect("the fake server names the request");
                assert!(self.timed_out.contains(&id), "unexpected {code} for {id}");
            }
            ClientEvent::ProtocolViolation { violation } => {
                assert!(
                    matches!(violation, Violation::Undecodable(_)),
                    "{violation:?}"
                );
            }
            ClientEvent::Connected { .. } => assert!(self.conn.is_some()),
            ClientEvent::Disconnected { .. } | ClientEvent::Reconnecting { .. } => {}
            other => panic!("the fake server never causes {other:?}"),
        }
        None
    }

    fn end(&mut self, id: &MessageId) {
        let ended = self
            .issued
            .get_mut(id)
            .expect("an id the application was given");
        *ended += 1;
        assert_eq!(*ended, 1, "{id} ended twice");
    }

    fn issue(&mut self, model: &Model, result: Result<MessageId, ClientError>) {
        if model.closed {
            assert_eq!(result, Err(ClientError::Usage(UsageError::Closed)));
        } else {
            let id = result.expect("valid commands are accepted");
            assert!(self.issued.insert(id, 0).is_none(), "an id was reused");
        }
    }

    /// One frame reaches the client. A `subscribe_res` without recovery starts the subscription afresh at the
    /// server's offset: the next event may skip what was published between an earlier subscription and this one.
    fn deliver(&mut self, text: &str) {
        if let Ok(ServerFrame {
            message:
                ServerMessage::SubscribeRes {
                    channel,
                    recovered: None,
                    ..
                },
            ..
        }) = crate::wire::decode_server(text)
        {
            self.gap_ok[channel_index(&channel)] = true;
        }
        self.client.handle_text(self.now, text);
        self.pump();
    }

    /// Completes an outstanding dial; the server greets at once.
    fn dial_ok(&mut self) {
        if self.dialing {
            self.dialing = false;
            let mut conn = Conn::default();
            conn.to_client.push_back(greeting("app"));
            self.conn = Some(conn);
            self.client.handle_connected(self.now);
        }
    }

    /// The connection is gone, with whatever was on the wire.
    fn drop_conn(&mut self, code: u16) {
        if self.conn.is_some() {
            self.forget_conn();
            self.client
                .handle_disconnected(self.now, CloseCode::from_u16(code), "");
        }
    }

    /// Every request that went out on the connection and has not ended must end by the end of this step (with
    /// `Disconnected`, or `TimedOut` at the same instant).
    fn forget_conn(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.must_end.extend(conn.sent);
        }
    }

    fn publish_on_server(&mut self, i: usize, event: Value) -> u64 {
        let epoch = self.epoch_name();
        let channel = &mut self.channels[i];
        channel.offset += 1;
        let offset = channel.offset;
        channel.history.push_back((offset, event.clone()));
        if channel.history.len() > HISTORY {
            channel.history.pop_front();
        }
        let id = self.server_id();
        if let Some(conn) = self.conn.as_mut()
            && conn.subscribed.contains(&i)
        {
            conn.to_client.push_back(server(
                Some(&id),
                ServerMessage::Event {
                    channel: ch(CHANNELS[i]),
                    epoch,
                    offset,
                    event,
                },
            ));
        }
        offset
    }

    /// The fake server's answer to one client frame, pushed to the client unless `lose` (the answer is lost on the
    /// way; the server's side effects still happen). Returns whether it produced an answer.
    fn serve_frame(&mut self, text: &str, lose: bool) -> bool {
        let frame = decode(text);
        let id = frame.message_id.clone();
        let epoch = self.epoch_name();
        let mut answers: Vec<String> = vec![];
        let answer = |message| server(Some(&id), message);
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        match frame.message {
            ClientMessage::Subscribe { channel, since, .. } => {
                let i = channel_index(&channel);
                let fake = &self.channels[i];
                let oldest_kept = fake.history.front().map_or(fake.offset + 1, |(o, _)| *o);
                let recovered = since.as_ref().map(|since| {
                    since.epoch == epoch
                        && since.offset <= fake.offset
                        && since.offset + 1 >= oldest_kept
                });
                conn.subscribed.insert(i);
                answers.push(answer(ServerMessage::SubscribeRes {
                    channel,
                    epoch: epoch.clone(),
                    offset: fake.offset,
                    recovered,
                }));
                if let (Some(true), Some(since)) = (recovered, since) {
                    for (offset, event) in fake.history.iter().filter(|(o, _)| *o > since.offset) {
                        answers.push(event_frame(i, &epoch, *offset, event.clone()));
                    }
                }
            }
            ClientMessage::Unsubscribe { channel } => {
                let i = channel_index(&channel);
                answers.push(if conn.subscribed.remove(&i) {
                    answer(ServerMessage::UnsubscribeRes { channel })
                } else {
                    answer(ServerMessage::error(
                        ErrorCode::NotSubscribed,
                        "not subscribed",
                        None,
                    ))
                });
            }
            ClientMessage::Serve { channel } => {
                conn.served.insert(channel_index(&channel));
                answers.push(answer(ServerMessage::ServeRes { channel }));
            }
            ClientMessage::Call {
                channel,
                method,
                params,
            } => {
                let i = channel_index(&channel);
                if conn.served.contains(&i) {
                    self.next_server_id += 1;
                    let routed = mid(&format!("s-{}", self.next_server_id));
                    let data = obj(json!({
                        "channel": CHANNELS[i], "method": method, "params": params, "caller": "app",
                    }));
                    conn.to_client.push_back(server(
                        Some(&routed),
                        ServerMessage::ServerRequest {
                            request_type: "call".into(),
                            data,
                        },
                    ));
                    conn.routed.insert(routed, (id.clone(), i, method));
                } else {
                    answers.push(answer(ServerMessage::error(
                        ErrorCode::NoHandler,
                        "nobody serves",
                        None,
                    )));
                }
            }
            ClientMessage::ServerResponse { mut data } => {
                if let Some((caller, i, method)) = conn.routed.remove(&id) {
                    let result = data.remove("result").unwrap_or(Value::Null);
                    answers.push(server(
                        Some(&caller),
                        ServerMessage::CallRes {
                            channel: ch(CHANNELS[i]),
                            method,
                            result,
                        },
                    ));
                }
            }
            ClientMessage::ServerPong { .. } => {}
            ClientMessage::Publish { channel, event, .. } => {
                let i = channel_index(&channel);
                let offset = self.publish_on_server(i, event);
                answers.push(answer(ServerMessage::PublishRes {
                    channel,
                    offset,
                    duplicate: false,
                }));
            }
            ClientMessage::Custom { type_name, data } => {
                answers.push(answer(ServerMessage::Custom {
                    type_name: format!("{type_name}_res"),
                    data,
                }));
            }
            other => panic!("the client sent {other:?}"),
        }
        let answered = !answers.is_empty();
        if let Some(conn) = self.conn.as_mut() {
            // The answer itself is what gets lost; events that follow it still arrive.
            conn.to_client
                .extend(answers.into_iter().skip(usize::from(lose)));
        }
        answered
    }

    fn step(&mut self, model: &Model, step: Step) {
        let now = self.now;
        match step {
            Step::Subscribe(i) => {
                let r = self.client.subscribe(now, CHANNELS[i]);
                self.issue(model, r);
            }
            Step::Unsubscribe(i) => {
                let r = self.client.unsubscribe(now, CHANNELS[i]);
                self.issue(model, r);
            }
            Step::Serve(i) => {
                let r = self.client.serve(now, CHANNELS[i]);
                self.issue(model, r);
            }
            Step::Request { big, timeout_ms } => {
                let pad = if big {
                    "x".repeat(1_500)
                } else {
                    String::new()
                };
                let r = self.client.request(
                    now,
                    "echo",
                    obj(json!({ "pad": pad })),
                    timeout_ms.map(ms),
                );
                self.issue(model, r);
            }
            Step::Publish(i) => {
                let r = self
                    .client
                    .publish(now, CHANNELS[i], json!({ "by": "me" }), false);
                self.issue(model, r);
            }
            Step::Call(i) => {
                let r = self.client.call(now, CHANNELS[i], "echo", Some(json!([i])));
                self.issue(model, r);
            }
            Step::Close => self.client.close(now),
            Step::DialOk => self.dial_ok(),
            Step::DialFail => {
                if self.dialing {
                    self.dialing = false;
                    self.client
                        .handle_connect_failed(now, ConnectFailure::Transient("refused".into()));
                }
            }
            Step::ServerProcess { n, drop_first } => {
                let mut lose = drop_first;
                for _ in 0..n {
                    let Some(text) = self.conn.as_mut().and_then(|c| c.to_server.pop_front())
                    else {
                        break;
                    };
                    if self.serve_frame(&text, lose) {
                        lose = false;
                    }
                }
            }
            Step::ClientReceive(n) => {
                for _ in 0..n {
                    let Some(text) = self.conn.as_mut().and_then(|c| c.to_client.pop_front())
                    else {
                        break;
                    };
                    self.deliver(&text);
                }
            }
            Step::Flush => {
                self.dial_ok();
                self.pump();
                for _ in 0..16 {
                    let Some(conn) = self.conn.as_mut() else {
                        break;
                    };
                    if conn.to_server.is_empty() && conn.to_client.is_empty() {
                        break;
                    }
                    let to_server = core::mem::take(&mut conn.to_server);
                    for text in to_server {
                        self.serve_frame(&text, false);
                    }
                    while let Some(text) = self.conn.as_mut().and_then(|c| c.to_client.pop_front())
                    {
                        self.deliver(&text);
                    }
                }
            }
            Step::ServerPublish(i) => {
                self.publish_on_server(i, json!({ "by": "other" }));
            }
            Step::ServerReplay(i) => {
                let epoch = self.epoch_name();
                let frames: Vec<String> = self.channels[i]
                    .history
                    .iter()
                    .rev()
                    .take(3)
                    .rev()
                    .map(|(offset, event)| event_frame(i, &epoch, *offset, event.clone()))
                    .collect();
                if let Some(conn) = self.conn.as_mut()
                    && conn.subscribed.contains(&i)
                {
                    conn.to_client.extend(frames);
                }
            }
            Step::ServerPing => {
                let id = self.server_id();
                if let Some(conn) = self.conn.as_mut() {
                    let ping = ServerMessage::ServerPing {
                        timestamp: now.as_millis(),
                    };
                    conn.to_client.push_back(server(Some(&id), ping));
                }
            }
            Step::ServerRestart => {
                self.epoch += 1;
                self.channels = Default::default();
                self.drop_conn(1001);
            }
            Step::Disconnect(code) => self.drop_conn(code),
            Step::Junk => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.to_client.push_back("{\"type\": 7".into());
                }
            }
            Step::Advance(by) => {
                let target = now + ms(by);
                let mut guard = 0;
                while self.deadline <= target {
                    self.now = self.now.max(self.deadline);
                    self.client.handle_timeout(self.now);
                    self.pump();
                    guard += 1;
                    assert!(
                        guard < 1_000,
                        "the machine keeps asking for the same instant"
                    );
                }
                self.now = target;
            }
        }
        self.pump();
        for id in core::mem::take(&mut self.must_end) {
            assert_eq!(
                self.issued[&id], 1,
                "{id} was in flight on a lost connection and did not end"
            );
        }
    }

    fn check(&self, model: &Model) {
        assert_eq!(self.client.is_closed(), model.closed);
        assert_eq!(self.issued.len(), model.issued);
        assert_eq!(self.epoch, model.epoch);
        assert!(self.client.queued() <= MAX_QUEUED_MESSAGES);
        assert!(self.client.queued_bytes() <= MAX_QUEUED_BYTES);
        assert!(!self.client.is_connected() || self.conn.is_some());
        let wanted: Vec<&str> = self.client.subscriptions().map(|c| c.as_str()).collect();
        let listening: Vec<&str> = (0..3)
            .filter(|&i| self.listening[i])
            .map(|i| CHANNELS[i])
            .collect();
        assert_eq!(wanted, listening, "the machine's subscriptions");
    }
}

fn event_frame(i: usize, epoch: &str, offset: u64, event: Value) -> String {
    server(
        Some(&mid(&format!("replay-{offset}"))),
        ServerMessage::Event {
            channel: ch(CHANNELS[i]),
            epoch: epoch.into(),
            offset,
            event,
        },
    )
}

struct ClientTest;

impl StateMachineTest for ClientTest {
    type SystemUnderTest = World;
    type Reference = ModelMachine;

    fn init_test(_model: &Model) -> World {
        World::new()
    }

    fn apply(mut world: World, model: &Model, step: Step) -> World {
        world.step(model, step);
        world
    }

    fn check_invariants(world: &World, model: &Model) {
        world.check(model);
    }

    /// Closing ends every request that has not ended: now each must have ended exactly once.
    fn teardown(mut world: World, _model: Model) {
        world.client.close(world.now);
        world.pump();
        assert_eq!(world.client.pending_requests(), 0);
        for (id, ended) in &world.issued {
            assert_eq!(*ended, 1, "{id} ended {ended} times");
        }
    }
}

prop_state_machine! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 1024,
        max_shrink_iters: 4096,
        .. proptest::test_runner::Config::default()
    })]

    #[test]
    fn client_against_a_fake_server(sequential 1..120 => ClientTest);
}
