//! The world of one seed: one real [`Hub`], a few real [`Client`]s, the fake [`Network`] between them, the
//! virtual [`Clock`], the [`Workload`] and the [`Faults`], and the driver that plays every runtime's part.
//!
//! # The driver
//!
//! Each step does exactly one thing: the earliest of a machine's deadline (`handle_timeout`), a network event
//! (a dial answering, a packet arriving, a cut being noticed) or an agenda item (the next application action, the
//! next fault, a handler's delayed answer). Then it drains the machine it touched, as a runtime would:
//!
//! - client [`Output::Connect`] → dial; the dial's answer → `handle_connected` (the hub's `handle_open` first) or
//!   `handle_connect_failed`; [`Output::Transmit`] → onto the link; [`Output::Close`] → close the link (or abandon
//!   the dial); a frame arriving → `handle_text`; the hub's close arriving → `handle_disconnected` with its code; a
//!   cut noticed → `handle_disconnected` with 1006.
//! - hub [`HubOutput::Transmit`] → onto the link, and `handle_sent` when the client's end reads it;
//!   [`HubOutput::Close`] → close the link; the client's close or a cut arriving → `handle_transport_closed`.
//!
//! After every step the driver checks the connection-level invariants itself and hands every event to the
//! [`Checker`]; the first broken invariant ends the run. When the step budget is spent, the world **settles**: no
//! more actions or faults, the network heals, and after long enough every client must be connected, every request
//! ended, the hub must hold exactly one connection per client, and a last event published on every channel must
//! reach every client subscribed to it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_protocol::backoff::BackoffConfig;
use switchboard_protocol::client::{
    Client, ClientConfig, ClientError, ClientEvent, ConnectFailure, Output, UsageError,
};
use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::{
    ConnId, Dialect, Hub, HubConfig, HubEvent, HubOutput, NotifyTarget, Permissions,
};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, CloseCode, MessageId, ServerMessage};

use super::clock::{Agenda, Clock, earliest};
use super::faults::{Fault, Faults};
use super::invariants::{Checker, ClientBook, Request};
use super::network::{LinkId, NetConfig, NetEvent, Network, Packet};
use super::report::{Counts, SeedReport, Trace, Violation};
use super::workload::{Action, Reply, Workload};

/// The machines' configurations and the network's, drawn from the seed.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// How many client slots.
    pub clients: usize,
    /// Every client's configuration (each machine gets its own seed).
    pub client: ClientConfig,
    /// The hub's configuration (each hub generation gets its own seed).
    pub hub: HubConfig,
    /// The network's.
    pub net: NetConfig,
}

impl Scenario {
    /// Draws a scenario: short timers so a few thousand steps see many reconnects, heartbeats and timeouts, and
    /// small limits (history, outbound queue, offline queue, rate) in some seeds so their edges are crossed.
    pub fn draw(rng: &mut Rng) -> Scenario {
        let ms = |rng: &mut Rng, lo, hi| Duration::from_millis(rng.range_inclusive(lo, hi));
        let mut client = ClientConfig::with_seed(0);
        client.backoff = BackoffConfig {
            first_delay: ms(rng, 50, 500),
            max_delay: ms(rng, 1_000, 8_000),
            reset_after: ms(rng, 1_000, 10_000),
            ..BackoffConfig::default()
        };
        client.request_timeout = ms(rng, 2_000, 15_000);
        client.connect_timeout = ms(rng, 1_000, 5_000);
        client.heartbeat_timeout = ms(rng, 1_000, 5_000);
        client.ping_interval = rng.chance(0.3).then(|| ms(rng, 1_000, 10_000));
        if rng.chance(0.3) {
            client.max_queued_messages = rng.range_inclusive(1, 16) as usize;
            client.max_queued_bytes = rng.range_inclusive(200, 4_000) as usize;
        }
        let small_outbound = rng.chance(0.5);
        let tight_rate = rng.chance(0.15);
        let hub = HubConfig {
            heartbeat: ms(rng, 2_000, 10_000),
            heartbeat_timeout: ms(rng, 1_000, 5_000),
            history_size: rng.range_inclusive(1, 64) as usize,
            history_ttl: ms(rng, 5_000, 120_000),
            request_timeout: ms(rng, 1_000, 10_000),
            rate_per_sec: if tight_rate { 5 } else { 200 },
            rate_burst: if tight_rate { 10 } else { 400 },
            max_queued_bytes: if small_outbound {
                rng.range_inclusive(2_000, 16_000) as usize
            } else {
                HubConfig::default().max_queued_bytes
            },
            max_sessions: rng.range_inclusive(1, 4) as usize,
            ..HubConfig::default()
        };
        let latency_lo = rng.range_inclusive(0, 50);
        let net = NetConfig {
            latency: (
                Duration::from_millis(latency_lo),
                Duration::from_millis(latency_lo + rng.range_inclusive(0, 100)),
            ),
            jitter: ms(rng, 0, 50),
            dial_time: (Duration::from_millis(1), ms(rng, 1, 300)),
            dial_failure: [0.0, 0.05, 0.3][rng.below_inclusive(2) as usize],
            dial_hang: [0.0, 0.0, 0.05][rng.below_inclusive(2) as usize],
        };
        Scenario {
            clients: rng.range_inclusive(3, 8) as usize,
            client,
            hub,
            net,
        }
    }
}

/// Where a client's transport stands, as the driver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// No connection and no dial.
    Idle,
    /// Dial number `attempt` is out.
    Dialing(u64),
    /// Connected over this link.
    Linked(LinkId),
}

/// One client slot: the machine in it, and what the driver and the checker know of it.
#[derive(Debug)]
struct Slot {
    machine: Client,
    /// Bumped when the slot's client leaves and a new one joins: stale dials and answers are ignored.
    incarnation: u32,
    deadline: Timestamp,
    transport: Transport,
    dials: u64,
    book: ClientBook,
}

/// Something the world itself scheduled.
#[derive(Debug, Clone)]
enum Task {
    /// The next application action.
    Workload,
    /// The next fault.
    Fault,
    /// A client's handler answers a call or server request.
    Respond {
        client: usize,
        incarnation: u32,
        id: MessageId,
        reply: Reply,
    },
}

/// How many steps may pass without the clock moving before the run is declared stuck (a machine asking to be
/// woken again and again at the same instant).
const STUCK_STEPS: u64 = 100_000;

/// The world of one seed.
#[derive(Debug)]
pub struct World {
    seed: u64,
    scenario: Scenario,
    clock: Clock,
    rng: Rng,
    net: Network,
    hub: Hub,
    hub_generation: u32,
    hub_deadline: Timestamp,
    /// The current hub's open connections, as the driver sees them.
    hub_conns: BTreeMap<ConnId, LinkId>,
    /// Bytes handed out per connection and not yet read by the client (the driver's own count).
    unread: BTreeMap<ConnId, usize>,
    /// Connections of the current hub that closed, either way.
    hub_closed: BTreeSet<ConnId>,
    /// Connections the current hub reported `Disconnected`.
    hub_disconnected: BTreeSet<ConnId>,
    /// Connections that closed during this step: checked once the step is done.
    just_closed: Vec<ConnId>,
    /// Dials are refused until then.
    listener_up_at: Timestamp,
    slots: Vec<Slot>,
    agenda: Agenda<Task>,
    workload: Workload,
    faults: Faults,
    checker: Checker,
    trace: Trace,
    steps: u64,
    steps_at_this_instant: u64,
    violation: Option<Violation>,
    counts: Counts,
}

impl World {
    /// Builds the world of `seed`: the hub, the clients (which dial at once) and the opening actions.
    pub fn new(seed: u64, verbose: bool) -> World {
        let mut rng = Rng::from_seed(seed);
        let scenario = Scenario::draw(&mut rng);
        let clock = Clock::default();
        let now = clock.now();
        let net = Network::new(rng.fork(), scenario.net.clone());
        let workload = Workload::draw(rng.fork(), scenario.clients);
        let faults = Faults::draw(rng.fork());
        let hub_config = HubConfig {
            seed: rng.next_u64(),
            ..scenario.hub.clone()
        };
        let hub = Hub::new(hub_config, now);
        let mut world = World {
            seed,
            clock,
            net,
            hub,
            hub_generation: 0,
            hub_deadline: Timestamp::MAX,
            hub_conns: BTreeMap::new(),
            unread: BTreeMap::new(),
            hub_closed: BTreeSet::new(),
            hub_disconnected: BTreeSet::new(),
            just_closed: Vec::new(),
            listener_up_at: now,
            slots: Vec::new(),
            agenda: Agenda::default(),
            workload,
            faults,
            checker: Checker::default(),
            trace: Trace::new(verbose),
            steps: 0,
            steps_at_this_instant: 0,
            violation: None,
            counts: Counts::default(),
            scenario,
            rng,
        };
        world.log(|| format!("scenario: {:?}", world.scenario));
        let epoch = String::from(world.hub.epoch());
        world.check(|c| c.truth.new_epoch(0, &epoch));
        world.drain_hub();
        for slot in 0..world.scenario.clients {
            let machine = world.new_client();
            world.slots.push(Slot {
                machine,
                incarnation: 0,
                deadline: now,
                transport: Transport::Idle,
                dials: 0,
                book: ClientBook::default(),
            });
            world.drain_client(slot);
        }
        for action in world.workload.opening() {
            world.perform(action);
        }
        let gap = world.workload.next_gap();
        world.agenda.schedule(now + gap, Task::Workload);
        let gap = world.faults.next_gap();
        world.agenda.schedule(now + gap, Task::Fault);
        world
    }

    /// Runs `budget` steps, then settles and checks the end state. Stops at the first violation.
    pub fn run(mut self, budget: u64) -> SeedReport {
        while self.steps < budget && self.violation.is_none() {
            self.step();
        }
        if self.violation.is_none() {
            self.settle();
        }
        SeedReport {
            seed: self.seed,
            budget,
            steps: self.steps,
            virtual_time: self.clock.elapsed(),
            violation: self.violation,
            trace_hash: self.trace.hash(),
            counts: self.counts,
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Stepping

    /// When the next thing happens.
    fn next_wake(&self) -> Timestamp {
        earliest(
            [self.net.next_at(), self.agenda.next_at(), self.hub_deadline]
                .into_iter()
                .chain(self.slots.iter().map(|s| s.deadline)),
        )
    }

    /// Jumps to the next wake-up and does the one thing due there.
    fn step(&mut self) {
        let at = self.next_wake();
        if at == Timestamp::MAX {
            return self.fail(String::from(
                "nothing left to happen: every machine and the network are idle",
            ));
        }
        if at > self.clock.now() {
            self.steps_at_this_instant = 0;
        }
        self.clock.advance_to(at);
        let now = self.clock.now();
        self.steps += 1;
        self.steps_at_this_instant += 1;
        if self.steps_at_this_instant > STUCK_STEPS {
            return self.fail(format!(
                "time stands still: {STUCK_STEPS} steps at one instant"
            ));
        }
        self.trace.number(now.as_micros());
        if self.hub_deadline <= now {
            self.trace.number(1);
            self.log(|| String::from("hub timeout"));
            self.hub.handle_timeout(now);
            self.drain_hub();
        } else if let Some(slot) = self.slots.iter().position(|s| s.deadline <= now) {
            self.trace.number(2 + slot as u64);
            self.log(|| format!("client {slot} timeout"));
            self.slots[slot].machine.handle_timeout(now);
            self.drain_client(slot);
        } else if let Some(event) = self.net.pop_due(now) {
            self.on_network(event);
        } else if let Some(task) = self.agenda.pop_due(now) {
            self.on_task(task);
        }
        self.after_step();
    }

    /// The checks after every step that need the whole picture.
    fn after_step(&mut self) {
        if self.violation.is_some() {
            return;
        }
        if let Err(e) = self.hub.check_invariants() {
            return self.fail(format!("hub invariant: {e}"));
        }
        self.check_closed();
        let open = self.hub.stats().connections;
        if open != self.hub_conns.len() {
            return self.fail(format!(
                "the hub counts {open} connections, the driver sees {} open",
                self.hub_conns.len()
            ));
        }
        let config = &self.scenario.client;
        for (i, s) in self.slots.iter().enumerate() {
            let m = &s.machine;
            if m.queued() > config.max_queued_messages || m.queued_bytes() > config.max_queued_bytes
            {
                let what = format!(
                    "client {i}'s offline queue holds {} requests / {} bytes, over its bounds",
                    m.queued(),
                    m.queued_bytes()
                );
                return self.fail(what);
            }
            if !m.is_closed()
                && let Err(e) = self.checker.check_subscriptions(&s.book, m.subscriptions())
            {
                return self.fail(format!("client {i}: {e}"));
            }
        }
        let now = self.clock.now();
        self.check(|c| c.check_deadlines(now));
    }

    /// Every connection closed during this step has left no trace in the hub, which said `Disconnected` for it.
    fn check_closed(&mut self) {
        for conn in std::mem::take(&mut self.just_closed) {
            if self.hub.holds_anything_of(conn) {
                return self.fail(format!(
                    "the hub still holds something of closed connection {conn}"
                ));
            }
            if !self.hub_disconnected.contains(&conn) {
                return self.fail(format!(
                    "connection {conn} closed without a Disconnected event"
                ));
            }
        }
    }

    /// Records the first violation; the run stops after this step.
    fn fail(&mut self, what: String) {
        if self.violation.is_none() {
            self.log(|| format!("VIOLATION: {what}"));
            self.violation = Some(Violation {
                step: self.steps,
                at: self.clock.elapsed(),
                what,
            });
        }
    }

    /// Runs a check of the [`Checker`], recording its failure.
    fn check(&mut self, f: impl FnOnce(&mut Checker) -> Result<(), String>) {
        if let Err(e) = f(&mut self.checker) {
            self.fail(e);
        }
    }

    /// A line of the step-by-step trace (`SIM_TRACE=1`); built only when it is printed.
    fn log(&self, line: impl FnOnce() -> String) {
        if self.trace.verbose {
            eprintln!(
                "[seed {} step {} t={:?}] {}",
                self.seed,
                self.steps,
                self.clock.elapsed(),
                line()
            );
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // The client side of the driver

    /// A new client machine with a seed of its own.
    fn new_client(&mut self) -> Client {
        let mut config = self.scenario.client.clone();
        config.seed = self.rng.next_u64();
        self.counts.clients += 1;
        Client::new(config, self.clock.now())
    }

    /// Drains a client machine, carrying out what it asks.
    fn drain_client(&mut self, slot: usize) {
        let now = self.clock.now();
        loop {
            let output = self.slots[slot].machine.poll_output();
            match output {
                Output::Timeout(at) => {
                    self.slots[slot].deadline = at;
                    return;
                }
                Output::Connect => {
                    self.trace.number(10);
                    self.log(|| format!("client {slot} dials"));
                    let s = &mut self.slots[slot];
                    if s.transport != Transport::Idle {
                        let what = format!("client {slot} asks to connect while {:?}", s.transport);
                        return self.fail(what);
                    }
                    s.dials += 1;
                    s.transport = Transport::Dialing(s.dials);
                    let (incarnation, attempt) = (s.incarnation, s.dials);
                    self.net.dial(now, slot, incarnation, attempt);
                }
                Output::Transmit(frame) => {
                    self.trace.bytes(frame.as_bytes());
                    self.log(|| format!("client {slot} sends {frame}"));
                    match self.slots[slot].transport {
                        Transport::Linked(link) if self.net.link(link).client_open => {
                            self.net.send_to_hub(now, link, frame);
                        }
                        other => {
                            return self.fail(format!(
                                "client {slot} transmits with no open connection ({other:?}): {frame}"
                            ));
                        }
                    }
                }
                Output::Close { code, reason } => {
                    self.trace.number(11);
                    self.log(|| format!("client {slot} closes with {code} {reason}"));
                    match std::mem::replace(&mut self.slots[slot].transport, Transport::Idle) {
                        Transport::Linked(link) => {
                            self.net.close_by_client(now, link, code, &reason)
                        }
                        Transport::Dialing(_) => {}
                        Transport::Idle => {
                            return self.fail(format!(
                                "client {slot} closes a connection it does not have"
                            ));
                        }
                    }
                }
                Output::Event(event) => self.on_client_event(slot, event),
                other => return self.fail(format!("client {slot}: unknown output {other:?}")),
            }
        }
    }

    /// An event of a client machine: check it, and let the application react.
    fn on_client_event(&mut self, slot: usize, event: ClientEvent) {
        self.log(|| format!("client {slot} event {event:?}"));
        {
            let s = &mut self.slots[slot];
            if let Err(e) = self.checker.client_event(&mut s.book, slot, &event) {
                return self.fail(format!("client {slot}: {e}"));
            }
        }
        let now = self.clock.now();
        let incarnation = self.slots[slot].incarnation;
        match event {
            ClientEvent::ChannelEvent { offset, .. } => {
                self.trace.number(offset);
                self.counts.delivered += 1;
            }
            ClientEvent::Resync { .. } => {
                self.trace.number(12);
                self.counts.resyncs += 1;
            }
            ClientEvent::CallRequest { id, params, .. } => {
                if let Some(reply) = self.workload.answer_call(&params) {
                    let task = Task::Respond {
                        client: slot,
                        incarnation,
                        id,
                        reply: reply.clone(),
                    };
                    self.agenda.schedule(now + reply.delay, task);
                }
            }
            ClientEvent::ServerRequest { id, data, .. } => {
                if let Some(reply) = self.workload.answer_request(&data) {
                    let task = Task::Respond {
                        client: slot,
                        incarnation,
                        id,
                        reply: reply.clone(),
                    };
                    self.agenda.schedule(now + reply.delay, task);
                }
            }
            ClientEvent::Response {
                message: ServerMessage::CreateSessionRes { session_id },
                ..
            } => self.workload.apps[slot].sessions.push(session_id),
            _ => {}
        }
    }

    /// The application leaves: close the client for good, and a new one joins in its slot.
    fn replace_client(&mut self, slot: usize) {
        let now = self.clock.now();
        self.counts.departures += 1;
        self.slots[slot].book.closing();
        self.slots[slot].machine.close(now);
        self.drain_client(slot);
        if self.violation.is_some() {
            return;
        }
        let s = &self.slots[slot];
        if s.transport != Transport::Idle {
            let what = format!(
                "client {slot} closed but kept its transport ({:?})",
                s.transport
            );
            return self.fail(what);
        }
        if !s.machine.is_closed() {
            return self.fail(format!("client {slot} is not closed after close()"));
        }
        if let Err(e) = self.checker.retired(&s.book, slot) {
            return self.fail(format!("client {slot}: {e}"));
        }
        let machine = self.new_client();
        let s = &mut self.slots[slot];
        s.machine = machine;
        s.incarnation += 1;
        s.book = ClientBook::default();
        self.workload.apps[slot] = Default::default();
        self.drain_client(slot);
        for action in self.workload.joining(slot) {
            self.perform(action);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // The hub side of the driver

    /// Drains the hub, carrying out what it asks.
    fn drain_hub(&mut self) {
        let now = self.clock.now();
        loop {
            match self.hub.poll_output() {
                HubOutput::Timeout(at) => {
                    self.hub_deadline = at;
                    return;
                }
                HubOutput::Transmit { conn, frame } => {
                    self.trace.bytes(frame.as_bytes());
                    self.log(|| format!("hub sends {conn}: {frame}"));
                    let Some(&link) = self.hub_conns.get(&conn) else {
                        let state = if self.hub_closed.contains(&conn) {
                            "after its close"
                        } else {
                            "never opened"
                        };
                        return self.fail(format!(
                            "the hub transmits to connection {conn} {state}: {frame}"
                        ));
                    };
                    let unread = self.unread.entry(conn).or_default();
                    *unread += frame.len();
                    if *unread > self.hub.config().max_queued_bytes {
                        let what = format!(
                            "connection {conn} has {unread} bytes handed out and unread, over max_queued_bytes",
                        );
                        return self.fail(what);
                    }
                    self.net.send_to_client(now, link, frame);
                }
                HubOutput::Close { conn, code, reason } => {
                    self.trace.number(20 + u64::from(code.as_u16()));
                    self.log(|| format!("hub closes {conn} with {code} {reason}"));
                    let Some(link) = self.hub_conns.remove(&conn) else {
                        return self.fail(format!(
                            "the hub closes connection {conn}, which is not open"
                        ));
                    };
                    match code {
                        CloseCode::TryAgainLater => self.counts.slow_consumers += 1,
                        CloseCode::HeartbeatTimeout => self.counts.heartbeat_timeouts += 1,
                        _ => {}
                    }
                    self.closed(conn);
                    self.net.close_by_hub(now, link, code, &reason);
                }
                HubOutput::Event(event) => self.on_hub_event(event),
            }
        }
    }

    /// The driver's bookkeeping for a connection of the current hub that is gone.
    fn closed(&mut self, conn: ConnId) {
        self.hub_closed.insert(conn);
        self.unread.remove(&conn);
        self.just_closed.push(conn);
    }

    /// An event of the hub: check it, and record the ground truth.
    fn on_hub_event(&mut self, event: HubEvent) {
        self.log(|| format!("hub event {event:?}"));
        let generation = self.hub_generation;
        self.check(|c| c.hub_event(generation, &event));
        match event {
            HubEvent::Connected { .. } => self.counts.connections += 1,
            HubEvent::Disconnected { conn, .. } => {
                if self.hub_conns.contains_key(&conn) {
                    return self.fail(format!(
                        "Disconnected for {conn}, which the driver still sees open"
                    ));
                }
                if !self.hub_disconnected.insert(conn) {
                    self.fail(format!("Disconnected twice for {conn}"));
                }
            }
            HubEvent::Published { channel, offset } => {
                self.counts.published += 1;
                let now = self.clock.now();
                let page = self.hub.history(now, &channel, Some(offset - 1), 1);
                match page.events.first() {
                    Some((o, event)) if *o == offset => {
                        let event = event.clone();
                        self.check(|c| c.truth.published(generation, &channel, offset, &event));
                    }
                    _ => self.fail(format!(
                        "{channel}#{offset} was published but is not in the history: {page:?}"
                    )),
                }
            }
            HubEvent::CustomRequest { type_name, .. } => self.fail(format!(
                "a custom request of type {type_name}, none registered"
            )),
            _ => {}
        }
    }

    /// A connection of the current hub is gone from the transport's side: tell the hub.
    fn transport_closed(&mut self, conn: ConnId) {
        if self.hub_conns.remove(&conn).is_none() {
            return;
        }
        self.closed(conn);
        self.hub.handle_transport_closed(self.clock.now(), conn);
        self.drain_hub();
    }

    // ---------------------------------------------------------------------------------------------------------
    // The network

    fn on_network(&mut self, event: NetEvent) {
        let now = self.clock.now();
        match event {
            NetEvent::DialDone {
                client,
                incarnation,
                attempt,
                result,
            } => {
                self.trace.number(30);
                let s = &self.slots[client];
                if s.incarnation != incarnation || s.transport != Transport::Dialing(attempt) {
                    // An abandoned attempt: the socket is dropped before the hub ever sees it.
                    return;
                }
                let result = match result {
                    Ok(()) if now < self.listener_up_at => {
                        Err(String::from("the server is restarting"))
                    }
                    other => other,
                };
                match result {
                    Err(why) => {
                        self.log(|| format!("client {client}'s dial fails: {why}"));
                        self.slots[client].transport = Transport::Idle;
                        let machine = &mut self.slots[client].machine;
                        machine.handle_connect_failed(now, ConnectFailure::Transient(why));
                    }
                    Ok(()) => {
                        let conn =
                            self.hub
                                .handle_open(now, Dialect::Native, Permissions::allow_all());
                        let link =
                            self.net
                                .open_link(now, client, incarnation, self.hub_generation, conn);
                        self.log(|| {
                            format!("client {client} connects: {link} = hub connection {conn}")
                        });
                        if self.hub_conns.insert(conn, link).is_some()
                            || self.hub_closed.contains(&conn)
                        {
                            return self.fail(format!("the hub reuses connection id {conn}"));
                        }
                        self.slots[client].transport = Transport::Linked(link);
                        self.drain_hub();
                        self.slots[client].machine.handle_connected(now);
                    }
                }
                self.drain_client(client);
            }
            NetEvent::AtHub {
                link,
                conn,
                hub_generation,
                packet,
            } => {
                if hub_generation != self.hub_generation || !self.hub_conns.contains_key(&conn) {
                    return self.fail(format!("{link} delivered to a hub end that is closed"));
                }
                match packet {
                    Packet::Frame(text) => {
                        self.trace.number(31);
                        self.log(|| format!("hub receives {conn}: {text}"));
                        self.hub.handle_text(now, conn, &text);
                        self.drain_hub();
                    }
                    Packet::Close { code, .. } => {
                        self.trace.number(32);
                        self.log(|| format!("hub sees {conn} closed by the client ({code})"));
                        self.transport_closed(conn);
                    }
                }
            }
            NetEvent::AtClient {
                link,
                client,
                incarnation,
                conn,
                hub_generation,
                packet,
            } => {
                let s = &self.slots[client];
                if s.incarnation != incarnation || s.transport != Transport::Linked(link) {
                    return self.fail(format!(
                        "{link} delivered to client {client}, which had left it"
                    ));
                }
                match packet {
                    Packet::Frame(text) => {
                        self.trace.number(33);
                        self.log(|| format!("client {client} receives {text}"));
                        if hub_generation == self.hub_generation
                            && self.hub_conns.contains_key(&conn)
                        {
                            if let Some(unread) = self.unread.get_mut(&conn) {
                                *unread = unread.saturating_sub(text.len());
                            }
                            self.hub.handle_sent(conn, text.len());
                        }
                        self.slots[client].machine.handle_text(now, &text);
                    }
                    Packet::Close { code, reason } => {
                        self.trace.number(34);
                        self.log(|| format!("client {client} sees the hub close: {code} {reason}"));
                        self.slots[client].transport = Transport::Idle;
                        self.slots[client]
                            .machine
                            .handle_disconnected(now, code, &reason);
                    }
                }
                self.drain_client(client);
            }
            NetEvent::CutSeenByClient {
                link,
                client,
                incarnation,
            } => {
                self.trace.number(35);
                let s = &self.slots[client];
                if s.incarnation != incarnation || s.transport != Transport::Linked(link) {
                    return self.fail(format!(
                        "client {client} told of the cut of {link}, which it had left"
                    ));
                }
                self.log(|| format!("client {client} sees {link} reset"));
                self.slots[client].transport = Transport::Idle;
                let machine = &mut self.slots[client].machine;
                machine.handle_disconnected(now, CloseCode::Abnormal, "connection reset");
                self.drain_client(client);
            }
            NetEvent::CutSeenByHub {
                link,
                conn,
                hub_generation,
            } => {
                self.trace.number(36);
                if hub_generation == self.hub_generation {
                    self.log(|| format!("hub sees {link} ({conn}) reset"));
                    self.transport_closed(conn);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Applications and faults

    fn on_task(&mut self, task: Task) {
        let now = self.clock.now();
        match task {
            Task::Workload => {
                let action = self.workload.next_action();
                self.perform(action);
                let gap = self.workload.next_gap();
                self.agenda.schedule(now + gap, Task::Workload);
            }
            Task::Fault => {
                if let Some(fault) = self.faults.next_fault() {
                    self.inject(fault);
                }
                let gap = self.faults.next_gap();
                self.agenda.schedule(now + gap, Task::Fault);
            }
            Task::Respond {
                client,
                incarnation,
                id,
                reply,
            } => {
                self.trace.number(40);
                if self.slots[client].incarnation != incarnation {
                    return;
                }
                self.log(|| format!("client {client} answers {id}: {:?}", reply.answer));
                match self.slots[client].machine.respond(now, &id, reply.answer) {
                    // The connection it came on has closed since: the hub has already given up on it.
                    Ok(()) | Err(ClientError::Usage(UsageError::UnknownServerRequest { .. })) => {}
                    Err(e) => {
                        return self.fail(format!("client {client} could not answer {id}: {e}"));
                    }
                }
                self.drain_client(client);
            }
        }
    }

    /// Carries out one application action and records what it expects.
    fn perform(&mut self, action: Action) {
        let now = self.clock.now();
        self.trace.number(50);
        self.log(|| format!("action {action:?}"));
        let (client, issued) = match action {
            Action::Publish {
                client,
                channel,
                retain,
            } => {
                let (tag, event) = self.workload.event(retain);
                let r = self.slots[client]
                    .machine
                    .publish(now, &channel, event, retain);
                (client, r.map(|id| (id, Request::Publish { channel, tag })))
            }
            Action::Subscribe { client, channel } => {
                let r = self.slots[client].machine.subscribe(now, &channel);
                (client, r.map(|id| (id, Request::Subscribe { channel })))
            }
            Action::Unsubscribe { client, channel } => {
                let r = self.slots[client].machine.unsubscribe(now, &channel);
                (client, r.map(|id| (id, Request::Unsubscribe { channel })))
            }
            Action::GetState { client, channel } => {
                let r = self.slots[client].machine.get_state(now, &channel);
                (client, r.map(|id| (id, Request::GetState { channel })))
            }
            Action::Call { client, channel } => {
                let n = self.workload.number();
                let method = String::from("echo");
                let r = self.slots[client].machine.call(
                    now,
                    &channel,
                    &method,
                    Some(json!({ "n": n })),
                );
                (
                    client,
                    r.map(|id| (id, Request::Call { channel, method, n })),
                )
            }
            Action::Serve { client, channel } => {
                let r = self.slots[client].machine.serve(now, &channel);
                (client, r.map(|id| (id, Request::Serve { channel })))
            }
            Action::Ping { client } => {
                let timestamp = now.as_millis();
                let mut data = Map::new();
                data.insert(String::from("timestamp"), Value::from(timestamp));
                let r = self.slots[client].machine.request(now, "ping", data, None);
                (client, r.map(|id| (id, Request::Ping { timestamp })))
            }
            Action::CreateSession { client } => {
                let r = self.slots[client]
                    .machine
                    .create_session(now, Some(json!({ "slot": client })));
                (client, r.map(|id| (id, Request::CreateSession)))
            }
            Action::CloseSession { client } => {
                let sessions = &mut self.workload.apps[client].sessions;
                let Some(session_id) = sessions.pop() else {
                    return;
                };
                let r = self.slots[client].machine.close_session(now, &session_id);
                (
                    client,
                    r.map(|id| (id, Request::CloseSession { session_id })),
                )
            }
            Action::Replace { client } => return self.replace_client(client),
            Action::HubPublish { channel, retain } => return self.hub_publish(&channel, retain),
            Action::HubRequest => return self.hub_request(),
            Action::HubNotify => {
                let reached = self.hub.notify(
                    now,
                    NotifyTarget::All {
                        exclude: Vec::new(),
                    },
                    "sim_notice",
                    Some(String::from("hello")),
                    None,
                );
                self.drain_hub();
                // Every connection gets it, except those it made slow consumers (closed instead).
                if reached != self.hub_conns.len() {
                    let what = format!(
                        "a notification reached {reached} of {} connections",
                        self.hub_conns.len()
                    );
                    self.fail(what);
                }
                return;
            }
        };
        match issued {
            Ok((id, request)) => {
                self.counts.commands += 1;
                let deadline = now + self.scenario.client.request_timeout;
                let s = &mut self.slots[client];
                if let Err(e) = self
                    .checker
                    .issued(&mut s.book, client, id, request, deadline)
                {
                    return self.fail(format!("client {client}: {e}"));
                }
                self.drain_client(client);
            }
            Err(e) => self.fail(format!("client {client} refused a valid command: {e}")),
        }
    }

    /// The server application publishes; the offset it gets must be the one the truth recorded.
    fn hub_publish(&mut self, channel: &ChannelName, retain: bool) {
        let now = self.clock.now();
        let (tag, event) = self.workload.event(retain);
        match self.hub.publish(now, channel, event, retain) {
            Ok(offset) => {
                self.drain_hub();
                let head = self.checker.truth.head(self.hub_generation, channel);
                if head != offset {
                    self.fail(format!(
                        "hub publish #{tag} got offset {offset}, the truth is at {head}"
                    ));
                }
            }
            Err(e) => self.fail(format!("the hub refused a valid publish: {e}")),
        }
    }

    /// The server application asks a random connected client for a number back.
    fn hub_request(&mut self) {
        if self.hub_conns.is_empty() {
            return;
        }
        let now = self.clock.now();
        let index = self.workload.index(self.hub_conns.len());
        let conn = *self
            .hub_conns
            .keys()
            .nth(index)
            .expect("index within bounds");
        let n = self.workload.number();
        let timeout = self.workload.request_timeout();
        let mut data = Map::new();
        data.insert(String::from("n"), Value::from(n));
        match self.hub.send_request(now, conn, "sim_query", data, timeout) {
            Ok(id) => {
                self.counts.server_requests += 1;
                let deadline = now + timeout.unwrap_or(self.hub.config().request_timeout);
                let generation = self.hub_generation;
                self.check(|c| c.hub_request_sent(generation, id, conn, n, deadline));
                self.drain_hub();
            }
            Err(e) => self.fail(format!(
                "send_request to open connection {conn} refused: {e}"
            )),
        }
    }

    /// Applies a fault.
    fn inject(&mut self, fault: Fault) {
        let now = self.clock.now();
        self.trace.number(60);
        self.log(|| format!("fault {fault:?}"));
        match fault {
            Fault::Cut {
                client_notice,
                hub_notice,
            } => {
                let live = self.net.live_links();
                if !live.is_empty() {
                    let link = live[self.workload.index(live.len())];
                    self.counts.cuts += 1;
                    self.net.cut(now, link, client_notice, hub_notice);
                }
            }
            Fault::Stall { stall } => {
                let live: Vec<LinkId> = self
                    .net
                    .live_links()
                    .into_iter()
                    .filter(|&l| self.net.link(l).client_open && self.net.link(l).hub_open)
                    .collect();
                if !live.is_empty() {
                    let link = live[self.workload.index(live.len())];
                    self.counts.stalls += 1;
                    self.net.stall(link, now + stall);
                }
            }
            Fault::ListenerRestart { down } => {
                self.counts.listener_restarts += 1;
                self.drop_every_link(true);
                self.listener_up_at = now + down;
            }
            Fault::HubRestart { graceful, down } => {
                self.counts.hub_restarts += 1;
                if graceful {
                    self.hub.shutdown(now);
                    self.drain_hub();
                    if !self.hub_conns.is_empty() {
                        let what = format!(
                            "{} connections survived the hub's shutdown",
                            self.hub_conns.len()
                        );
                        return self.fail(what);
                    }
                    if let Err(e) = self.hub.check_invariants() {
                        return self.fail(format!("hub invariant after shutdown: {e}"));
                    }
                    self.check_closed();
                } else {
                    self.checker.hub_crashed(self.hub_generation);
                }
                // Whatever is still in flight to or from the old hub dies with its process.
                self.drop_every_link(false);
                self.hub_generation += 1;
                let config = HubConfig {
                    seed: self.rng.next_u64(),
                    ..self.scenario.hub.clone()
                };
                self.hub = Hub::new(config, now);
                self.hub_conns.clear();
                self.hub_closed.clear();
                self.hub_disconnected.clear();
                self.just_closed.clear();
                self.unread.clear();
                let (generation, epoch) = (self.hub_generation, String::from(self.hub.epoch()));
                self.check(|c| c.truth.new_epoch(generation, &epoch));
                self.listener_up_at = now + down;
                self.drain_hub();
            }
        }
    }

    /// Cuts every live link. Clients hear of it soon (a reset); the hub does too when it survives (`tell_hub`).
    fn drop_every_link(&mut self, tell_hub: bool) {
        let now = self.clock.now();
        for link in self.net.live_links() {
            let client_notice = Some(Duration::from_millis(self.rng.range_inclusive(0, 200)));
            let hub_notice =
                tell_hub.then(|| Duration::from_millis(self.rng.range_inclusive(0, 200)));
            self.net.cut(now, link, client_notice, hub_notice);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // The end

    /// Runs steps until `until` (or a violation), never past it.
    fn run_until(&mut self, until: Timestamp, max_steps: u64) {
        let start = self.steps;
        while self.violation.is_none() && self.next_wake() <= until {
            if self.steps - start > max_steps {
                return self.fail(format!("settling took more than {max_steps} steps"));
            }
            self.step();
        }
        self.clock.advance_to(until);
    }

    /// Stops the applications and the faults, heals the network, waits long enough for every machine to recover,
    /// and checks that they did: everyone connected and caught up, nothing left open.
    fn settle(&mut self) {
        self.log(|| String::from("settling"));
        self.agenda
            .retain(|task| !matches!(task, Task::Workload | Task::Fault));
        let now = self.clock.now();
        self.net.heal(now);
        let c = &self.scenario.client;
        let h = &self.scenario.hub;
        // Long enough for: a dial already out to time out, the longest backoff, a dial, the greeting; silent dead
        // connections to be closed by the hub's heartbeat; every request to time out; and the listener to come back.
        let wait = 2 * (c.connect_timeout + c.backoff.max_delay)
            + h.heartbeat
            + h.heartbeat_timeout
            + c.request_timeout.max(h.request_timeout)
            + Duration::from_secs(5);
        let until = self.listener_up_at.max(now) + wait;
        self.run_until(until, 200_000);
        if self.violation.is_some() {
            return;
        }
        for (i, s) in self.slots.iter().enumerate() {
            if !s.machine.is_connected() {
                let what = format!("client {i} is not connected {wait:?} after the network healed");
                return self.fail(what);
            }
            if s.book.open_requests() > 0 {
                let what = format!(
                    "client {i} still has {} requests open",
                    s.book.open_requests()
                );
                return self.fail(what);
            }
        }
        if self.checker.hub_open_requests() > 0 {
            let what = format!(
                "{} server requests still open",
                self.checker.hub_open_requests()
            );
            return self.fail(what);
        }
        if self.hub_conns.len() != self.slots.len() {
            let what = format!(
                "the hub holds {} connections for {} clients after settling",
                self.hub_conns.len(),
                self.slots.len()
            );
            return self.fail(what);
        }
        // A last event on every channel must reach every client that wants it.
        let mut expected = Vec::new();
        for channel in self.workload.channels.clone() {
            self.hub_publish(&channel, false);
            let offset = self.checker.truth.head(self.hub_generation, &channel);
            for (i, s) in self.slots.iter().enumerate() {
                if s.machine.subscriptions().any(|c| *c == channel) {
                    expected.push((i, channel.clone(), offset));
                }
            }
        }
        let until = self.clock.now() + Duration::from_secs(2);
        self.run_until(until, 100_000);
        for (i, channel, offset) in expected {
            let got = self.slots[i].book.position(&channel);
            if got != Some((self.hub_generation, offset)) {
                let what = format!(
                    "client {i} did not catch up on {channel}: its last event is {got:?}, the hub's is \
                     {offset} (generation {})",
                    self.hub_generation
                );
                return self.fail(what);
            }
        }
    }
}
