//! The world of one seed: one real [`Hub`], a few real [`ClientMachine`]s, the fake [`Network`] between them, the
//! [`VirtualClock`], the [`Workload`] and the [`Faults`], and the driver that plays every runtime's part.
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
//! The driver's parts live in submodules: `clients` (the client side), `hub` (the hub side), `delivery` (what the
//! network hands over), `actions` (the applications' actions and the faults) and `settle` (the end of a run).
//!
//! After every step the driver checks the connection-level invariants itself and hands every event to the
//! [`Checker`]; the first broken invariant ends the run. When the step budget is spent, the world **settles**: no
//! more actions or faults, the network heals, and after long enough every client must be connected, every request
//! ended, the hub must hold exactly one connection per client, and a last event published on every channel must
//! reach every client subscribed to it.
//!
//! [`Output::Connect`]: switchboard_protocol::client::Output::Connect
//! [`Output::Transmit`]: switchboard_protocol::client::Output::Transmit
//! [`Output::Close`]: switchboard_protocol::client::Output::Close
//! [`HubOutput::Transmit`]: switchboard_protocol::server::HubOutput::Transmit
//! [`HubOutput::Close`]: switchboard_protocol::server::HubOutput::Close

use std::collections::{BTreeMap, BTreeSet};

use switchboard_protocol::client::ClientMachine;
use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::{ConnId, Hub, HubConfig, Intake, PublishTicket};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, MessageId};

use super::clock::{Agenda, VirtualClock, earliest};
use super::faults::Faults;
use super::invariants::{Checker, ClientBook};
use super::network::{LinkId, Network};
use super::report::{Counts, InvariantViolation, SeedReport, Trace};
use super::scenario::Scenario;
use super::workload::{HandlerReply, Workload};
use calls::CallBook;
use keyed::Keys;
use storage::Storage;

mod actions;
mod calls;
mod clients;
mod delivery;
mod hub;
mod keyed;
mod settle;
mod storage;

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
    machine: ClientMachine,
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
        reply: HandlerReply,
    },
    /// The store's write `batch`, started by hub process `process`, is done (or failed).
    StoreWritten { process: u32, batch: u64 },
    /// The snapshot covering segments up to `covers`, started by hub process `process`, is in place (or failed).
    SnapshotWritten {
        process: u32,
        covers: u64,
        fails: bool,
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
    clock: VirtualClock,
    rng: Rng,
    net: Network,
    hub: Hub,
    /// The hub process: bumped at every restart (connections, links and timers of an old process are dead).
    hub_generation: u32,
    /// The log each channel's last published event was in (this hub's), to count channels recreated.
    logs_seen: BTreeMap<ChannelName, u32>,
    /// The durable store's disk, in a durable seed (`None`: the hub runs over the memory store).
    storage: Option<Storage>,
    /// The server application's publishes waiting for the store: ticket → (channel, tag).
    tickets: BTreeMap<PublishTicket, (ChannelName, u64)>,
    /// The server application's keyed publishes, which it retries now and then.
    keys: Keys,
    /// Server-side publishes reported done, (tag, channel, offset), until their `Published` event confirms them.
    done_unconfirmed: Vec<(u64, ChannelName, u64)>,
    /// A `subscribe` with `since` the current hub is handling that must be answered `recovered: true`:
    /// (connection, request id, whether its position predates the last restart).
    expected_recovery: Option<(ConnId, MessageId, bool)>,
    /// (connection, channel) of every `subscribe` the current hub received (a repeat is answered without replay).
    subscribe_frames: BTreeSet<(ConnId, ChannelName)>,
    /// Each channel's offset right after the last restart of a durable hub.
    restored_heads: BTreeMap<ChannelName, u64>,
    hub_deadline: Timestamp,
    /// The current hub's open connections, as the driver sees them.
    hub_conns: BTreeMap<ConnId, LinkId>,
    /// Each open hub connection's intake, as the driver's reader keeps it.
    intakes: BTreeMap<ConnId, Intake>,
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
    /// The calls and server requests that must succeed (`calls.rs`).
    calls: CallBook,
    agenda: Agenda<Task>,
    workload: Workload,
    faults: Faults,
    checker: Checker,
    trace: Trace,
    steps: u64,
    steps_at_this_instant: u64,
    violation: Option<InvariantViolation>,
    counts: Counts,
}

/// Whether a seed runs its hub over the durable store: every other seed, or all of them in a build with the
/// planted unsynced acknowledgement or forgotten keys.
pub fn is_durable(seed: u64) -> bool {
    cfg!(feature = "_internal_planted_unsynced_ack")
        || cfg!(feature = "_internal_planted_forgotten_keys")
        || (seed % 2 == 1 && !cfg!(feature = "_internal_planted_stale_epoch"))
}

/// The hub of one server incarnation: over the memory store, or, in a build with a planted fault, over a store
/// whose recovery loses an event ([`super::planted`]) or whose recreated channels keep their first epoch
/// ([`super::planted_epoch`]).
fn server_hub(config: HubConfig) -> Hub {
    #[cfg(feature = "_internal_planted_fault")]
    return super::planted::hub(config);
    #[cfg(feature = "_internal_planted_stale_epoch")]
    return super::planted_epoch::hub(config);
    #[cfg(not(any(
        feature = "_internal_planted_fault",
        feature = "_internal_planted_stale_epoch"
    )))]
    Hub::new(config)
}

impl World {
    /// Builds the world of `seed`: the hub, the clients (which dial at once) and the opening actions.
    pub fn new(seed: u64, verbose: bool) -> World {
        let mut rng = Rng::from_seed(seed);
        let scenario = Scenario::draw(&mut rng);
        let clock = VirtualClock::default();
        let now = clock.now();
        let net = Network::new(rng.fork(), scenario.net.clone());
        let workload = Workload::draw(rng.fork(), scenario.clients);
        let faults = Faults::draw(rng.fork());
        let hub_config = HubConfig {
            seed: rng.next_u64(),
            ..scenario.hub.clone()
        };
        let storage = is_durable(seed).then(|| Storage::draw(seed, &hub_config));
        let hub = match &storage {
            Some(storage) => {
                let store = storage.first_store(&hub_config);
                Hub::with_store(hub_config, Box::new(store))
            }
            None => server_hub(hub_config),
        };
        let mut world = World {
            seed,
            clock,
            net,
            hub,
            hub_generation: 0,
            storage,
            tickets: BTreeMap::new(),
            keys: Keys::new(seed),
            done_unconfirmed: Vec::new(),
            expected_recovery: None,
            subscribe_frames: BTreeSet::new(),
            restored_heads: BTreeMap::new(),
            hub_deadline: Timestamp::MAX,
            hub_conns: BTreeMap::new(),
            intakes: BTreeMap::new(),
            unread: BTreeMap::new(),
            hub_closed: BTreeSet::new(),
            hub_disconnected: BTreeSet::new(),
            just_closed: Vec::new(),
            listener_up_at: now,
            slots: Vec::new(),
            calls: CallBook::default(),
            agenda: Agenda::default(),
            workload,
            faults,
            checker: Checker::default(),
            trace: Trace::new(verbose),
            steps: 0,
            steps_at_this_instant: 0,
            violation: None,
            counts: Counts::default(),
            logs_seen: BTreeMap::new(),
            scenario,
            rng,
        };
        world.checker.storage_fails = world.storage.is_some();
        world.log(|| format!("scenario: {:?}", world.scenario));
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
            counts: Counts {
                fault_free_requests: self.calls.checked,
                durable_seeds: u64::from(self.storage.is_some()),
                redeliveries_checked: self.checker.redeliveries_checked,
                ..self.counts
            },
        }
    }

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

    /// The truth's number for the log `channel` has now in the hub (for a channel without one: the log it will
    /// have). `None` after a violation (the hub gave an epoch of a hub gone).
    fn log_id(&mut self, channel: &ChannelName) -> Option<u32> {
        let epoch = String::from(self.hub.epoch(channel));
        self.epoch_id(&epoch)
    }

    /// The truth's number for the log of epoch `epoch`.
    fn epoch_id(&mut self, epoch: &str) -> Option<u32> {
        match self.checker.truth.id(epoch) {
            Ok(id) => Some(id),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    /// Counts a channel whose new log (forgotten, then published to again) begins at `offset` 1 of `log`.
    fn count_recreated(&mut self, channel: &ChannelName, log: u32, offset: u64) {
        let before = self.logs_seen.insert(channel.clone(), log);
        if offset == 1 && before.is_some_and(|old| old != log) {
            self.counts.channels_recreated += 1;
        }
    }

    /// Records the first violation; the run stops after this step.
    fn fail(&mut self, what: String) {
        if self.violation.is_none() {
            self.log(|| format!("VIOLATION: {what}"));
            self.violation = Some(InvariantViolation {
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
}
