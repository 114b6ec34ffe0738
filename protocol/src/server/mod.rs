//! The server side, in two machines and one boundary:
//!
//! - a [`Connection`] per peer, in two halves: its [`Intake`] (size check, rate limit and decoding in
//!   the peer's dialect, needing nothing shared, so the driver runs it wherever the socket is read) and the state the
//!   hub keeps for it (dialect encoding of what only it receives, permissions, heartbeat and silence timers in a
//!   [`TimerTable`](crate::timer::TimerTable), the queued-bytes account, its close);
//! - the [`Hub`], the router: channels and their subscribers, sessions, routed calls and server requests, fan-out.
//!   It is fed typed messages ([`Inbound`]) and typed commands, never JSON;
//! - the [`Store`] boundary, behind which channels' positions, history and retained state live ([`MemoryStore`]
//!   by default).
//!
//! None of them does IO or reads a clock: the driver feeds what happened (`handle_*`), issues commands for the
//! embedding application and the REST routes, and drains [`Hub::poll_output`] for frames to write, connections to
//! close, [`HubEvent`]s, and the next deadline. All randomness comes from [`HubConfig::seed`].
//!
//! # A run loop
//!
//! ```no_run
//! use switchboard_protocol::server::{Dialect, Hub, HubConfig, HubOutput, Permissions, Trust};
//! use switchboard_protocol::time::Timestamp;
//! # fn clock() -> Timestamp { Timestamp::ZERO }
//! # fn write(_: switchboard_protocol::server::ConnId, _: &str) {}
//!
//! // 1. One hub for the whole server, behind the driver's lock.
//! let mut hub = Hub::new(HubConfig::default());
//! // 2. A WebSocket upgrade on /api/ws: register it (this queues the greeting); its intake goes to the reader.
//! let (conn, mut intake) = hub.handle_open(clock(), Dialect::Native, Permissions::allow_all(), Trust::Untrusted);
//! // 3. A text frame arrived on that socket: check and decode it (no lock needed), then hand it to the hub.
//! let inbound = intake.text(clock(), r#"{"type":"ping","message_id":"1"}"#);
//! hub.handle_inbound(clock(), conn, inbound);
//! // 4. Drain: write frames, close sockets, pass events on, and sleep until the deadline.
//! let wake_at = loop {
//!     match hub.poll_output() {
//!         HubOutput::Transmit { conn, frame } => write(conn, &frame), // then hub.handle_sent(conn, frame.len())
//!         HubOutput::Close { .. } => { /* send the close frame, drop the socket */ }
//!         HubOutput::Event(_event) => { /* tell the embedding application */ }
//!         HubOutput::Timeout(at) => break at,
//!         _ => { /* an output this driver does not know yet: ignore it */ }
//!     }
//! };
//! // 5. At `wake_at` (or on the next input, whichever is first): `hub.handle_timeout(clock())`, then drain again.
//! # let _ = wake_at;
//! ```
//!
//! # Methods by kind
//!
//! - **Inputs**, one per thing that happened on a socket: [`handle_open`](Hub::handle_open) after the upgrade,
//!   [`handle_inbound`](Hub::handle_inbound) for each frame (made by the connection's [`Intake`]),
//!   [`handle_activity`](Hub::handle_activity) for a WebSocket ping or pong, [`handle_sent`](Hub::handle_sent) after
//!   the writer flushed a `Transmit`, [`handle_transport_closed`](Hub::handle_transport_closed) when the socket is
//!   gone (either side), and [`handle_timeout`](Hub::handle_timeout) when the deadline of the last
//!   [`HubOutput::Timeout`] is reached.
//! - **Commands**, for the embedding application and the REST routes: [`publish`](Hub::publish) (and, with an
//!   idempotency key, [`publish_keyed`](Hub::publish_keyed) and [`publish_batch_keyed`](Hub::publish_batch_keyed)),
//!   [`send_request`](Hub::send_request), [`notify`](Hub::notify), [`register_custom_type`](Hub::register_custom_type)
//!   and [`respond`](Hub::respond), [`close`](Hub::close), [`shutdown`](Hub::shutdown). A command never fails for
//!   want of draining: outputs queue until polled.
//! - **Queries**: [`history`](Hub::history), [`state`](Hub::state), [`epoch`](Hub::epoch), [`stats`](Hub::stats),
//!   [`connection`](Hub::connection), [`connections`](Hub::connections), [`conn_by_app_id`](Hub::conn_by_app_id),
//!   [`subscriber_count`](Hub::subscriber_count), [`presence`](Hub::presence), [`config`](Hub::config).
//! - **Outputs**: [`poll_output`](Hub::poll_output) after every input or command, until it returns
//!   [`HubOutput::Timeout`]; [`last_timeout_reason`](Hub::last_timeout_reason) says which timer set it.
//! - **Diagnostics**, behind the `_internal_test_exports` feature (tests, the simulation, fuzzing):
//!   `check_invariants`, `holds_anything_of`.
//!
//! # Choices where the contract is silent
//!
//! - **Greetings.** Native: `connected` (PROTOCOL §2.1). Project stream: `connected`, then the replay after `?since=`
//!   when it is recoverable, or a `state` message when it is not (the dialect has no `recovered` flag; the state
//!   tells the dashboard where the channel is). Channel payload: nothing (its clients expect no greeting). A
//!   project-stream open whose project id makes no valid channel name, or whose permissions forbid subscribing to it,
//!   gets an `error` and is closed with 1008.
//! - **Heartbeat.** `server_ping` goes to native connections only, the first at a random point in
//!   `[heartbeat/2, heartbeat]` after open; a native connection silent for `heartbeat + heartbeat_timeout` is closed
//!   with 4008. The other dialects get no `server_ping` (their clients do not know it) and are closed for silence only
//!   when [`HubConfig::edge_idle_timeout`] is set. Every received frame, and every [`Hub::handle_activity`], counts.
//! - **Rate limit.** Every received frame (text or binary, any dialect, answers included) takes a token.
//! - **Subscribing twice** to the same channel is answered like a first subscribe without `since` (`recovered:
//!   null`, no replay): the subscription never lapsed, so nothing was missed.
//! - **A connection reached by a channel and a pattern** (or two patterns) gets each event once; a pattern's replay
//!   past the outbound queue takes the slow-consumer path, and the client resumes from the positions it reached
//!   (PROTOCOL §3.2).
//! - **`serve`** on a channel another connection serves takes it over: the newest server wins; calls already routed
//!   to the previous one still get its answers.
//! - **A routed call whose server disconnects** fails at once with `NO_HANDLER` (details `{reason:
//!   "server_disconnected"}`). A `server_response` error whose code is not in PROTOCOL §2.4 reaches the caller as
//!   `INTERNAL_ERROR` with the original code in `details.code`.
//! - **Project-stream `cancel`** needs the `call` permission (else `FORBIDDEN`, nothing else); it is acknowledged with
//!   `cancel_acknowledged` at once, then routed as a `call` with method `cancel`; if nobody serves the channel, or the
//!   call fails or times out, an `error` follows. A successful answer sends nothing more.
//! - **A replay that would not fit** in the connection's outbound queue (`max_queued_bytes`, keeping 512 bytes for
//!   the answer) is refused with `recovered: false` rather than sent into a 1013 close and an endless
//!   reconnect-and-replay loop; the client catches up with `get_state` or the history route.
//! - **Sessions.** `max_sessions` is per connection. Closing a session of another connection is
//!   `SESSION_NOT_FOUND`, as for an unknown one.
//! - **`get_state`** needs the `subscribe` permission on the channel.
//! - **A channel-payload publish** gets no answer on success (the dialect has none).
//! - **Notifications** go to native connections only; one notification is encoded once, so every recipient sees
//!   the same `message_id`.
//! - **A closed connection** is forgotten as soon as its `Close` is output; the driver's later
//!   `handle_transport_closed` is a no-op. The hub does not log (no IO): an `INTERNAL_ERROR` is visible to the
//!   driver in the frame it transmits and in [`HubStats::errors_sent`].

mod channel;
mod channel_list;
mod channel_payload;
mod cluster;
mod config;
mod conn_table;
mod connection;
mod dedupe;
mod dialect;
mod error;
mod forget;
#[cfg(any(test, feature = "_internal_test_exports"))]
#[cfg_attr(docsrs, doc(cfg(feature = "_internal_test_exports")))]
pub mod fuzz;
mod heartbeat;
mod idempotent;
mod inputs;
mod intake;
#[cfg(any(test, feature = "_internal_test_exports"))]
mod invariants;
mod lifecycle;
mod native;
mod output;
mod pattern_index;
mod pattern_subscribe;
mod permissions;
mod presence;
mod principal;
mod project_stream;
mod publish;
mod publish_answer;
mod publish_batch;
mod publish_outcome;
mod rate_limit;
mod recovery;
mod reply;
mod routing;
mod server_requests;
mod sessions;
mod sse;
mod sse_open;
mod sse_stream;
mod stats;
pub mod store;
mod timers;
mod token_refresh;
mod trust;

#[cfg(test)]
mod tests;

pub use channel_list::ChannelSummary;
pub use cluster::{EngineCommand, EngineFailure, EngineTicket};
pub use config::{
    DEFAULT_DEDUPE_KEYS, DEFAULT_DEDUPE_KEYS_PER_CHANNEL, DEFAULT_MAX_CHANNELS, HubConfig,
};
pub use conn_table::ConnId;
pub use connection::Connection;
pub use dialect::{Dialect, DialectKind};
pub use error::{HubError, LimitError, MisuseError};
pub use intake::{Inbound, Intake};
pub use output::{HubEvent, HubOutput, NotifyTarget, RequestFailure};
pub use permissions::{Action, Permissions, pattern_covers, pattern_matches};
pub use presence::Presence;
pub use principal::Principal;
pub use publish_outcome::{Publish, PublishTicket, StorageError};
pub use sse_stream::{SSE_RETRY_MS, SseOpen, SseResume, SseTarget};
pub use stats::{DialectCounts, HubStats};
pub use store::{
    Appended, ChannelState, DurableConfig, DurableStore, FsyncPolicy, HistoryPage, KeptKey,
    MemoryStore, SnapshotJob, Store, StoreWrite,
};
pub use timers::HubTimer;
pub use token_refresh::RefreshCheck;
pub use trust::{CallerFacts, Trust};

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use core::fmt;

use crate::calls::CallTable;
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::wire::{ChannelName, MessageId};

use channel::Channel;
use conn_table::ConnTable;
use output::Outbox;
use permissions::Action as PermAction;
use routing::Pending;
use sessions::Sessions;
use stats::Counters;
use timers::ConnDeadlines;

/// Every connection, channel, session, server request and routed call of one server, over one [`Store`]. See the
/// [module docs](self) for the run loop and the methods by kind.
pub struct Hub {
    config: HubConfig,
    rng: Rng,
    store: Box<dyn Store>,
    conns: ConnTable,
    app_ids: BTreeMap<alloc::sync::Arc<str>, ConnId>,
    channels: BTreeMap<ChannelName, Channel>,
    /// Pattern subscriptions, by their segments.
    patterns: pattern_index::PatternIndex,
    sessions: Sessions,
    /// Server requests and routed calls, by the id of the `server_request` the hub sent.
    outstanding: CallTable<MessageId, Pending>,
    /// Connections by their earliest timer.
    deadlines: ConnDeadlines,
    custom_types: BTreeSet<String>,
    outbox: Outbox,
    counters: Counters,
    last_timeout_reason: Option<HubTimer>,
    /// Publishes waiting for the store's write, in append order.
    parked: VecDeque<publish::Parked>,
    next_ticket: u64,
    /// Verifies `refresh` tokens; `None`: authentication is off.
    refresh_check: Option<token_refresh::InstalledCheck>,
    /// A node of a cluster: channels live in the engine ([`Hub::clustered`]).
    cluster: Option<Box<cluster::Cluster>>,
    /// Idempotency keys seen within the dedupe window.
    dedupe: dedupe::Dedupe,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("store", &self.store.stats())
            .field("connections", &self.conns.len())
            .field("channels", &self.channels.len())
            .field("sessions", &self.sessions.by_id.len())
            .field("outstanding", &self.outstanding.len())
            .field("queued_outputs", &self.outbox.queue.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with no connections, over a [`MemoryStore`] whose epoch is drawn from [`HubConfig::seed`].
    pub fn new(config: HubConfig) -> Hub {
        let mut rng = Rng::from_seed(config.seed);
        let epoch = alloc::format!("{:016x}", rng.next_u64());
        let store = MemoryStore::new(epoch, config.history_size, config.history_ttl)
            .with_history_bytes(config.history_bytes, config.history_total_bytes);
        Hub::build(config, rng, Box::new(store))
    }

    /// A hub with no connections that is one node of a cluster: channels' offsets, history and retained state live
    /// in an engine the nodes share (Redis), reached through [`HubOutput::Engine`]; see
    /// docs/SCALING.md. The engine keeps `history_size` events per channel for `history_ttl`, and so do the
    /// node's copies of the channels it follows.
    pub fn clustered(config: HubConfig) -> Hub {
        let retention = cluster::Retention {
            size: config.history_size,
            ttl: config.history_ttl,
        };
        let mut hub = Hub::new(config);
        hub.cluster = Some(Box::new(cluster::Cluster::new(retention)));
        hub
    }

    /// A hub with no connections, over `store`.
    pub fn with_store(config: HubConfig, store: Box<dyn Store>) -> Hub {
        let rng = Rng::from_seed(config.seed);
        Hub::build(config, rng, store)
    }

    fn build(config: HubConfig, rng: Rng, mut store: Box<dyn Store>) -> Hub {
        let mut dedupe = dedupe::Dedupe::new(dedupe::Bounds {
            window: config.dedupe_window,
            per_channel: config.dedupe_keys_per_channel,
            total: config.dedupe_keys,
        });
        if dedupe.is_on() {
            dedupe.restore(store.take_restored_keys());
        }
        Hub {
            config,
            rng,
            store,
            conns: ConnTable::default(),
            app_ids: BTreeMap::new(),
            channels: BTreeMap::new(),
            patterns: pattern_index::PatternIndex::default(),
            sessions: Sessions::default(),
            outstanding: CallTable::new(),
            deadlines: ConnDeadlines::default(),
            custom_types: BTreeSet::new(),
            outbox: Outbox::default(),
            counters: Counters::default(),
            last_timeout_reason: None,
            parked: VecDeque::new(),
            next_ticket: 1,
            refresh_check: None,
            cluster: None,
            dedupe,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    // ---- outputs ----

    /// The next output. Call after every input and command, until it returns [`HubOutput::Timeout`].
    pub fn poll_output(&mut self) -> HubOutput {
        if let Some(out) = self.outbox.queue.pop_front() {
            return out;
        }
        if let Some(command) = self.cluster.as_deref_mut().and_then(|c| c.poll_command()) {
            return HubOutput::Engine(command);
        }
        if let Some(write) = self.store.poll_write() {
            return HubOutput::Persist(write);
        }
        if let Some(job) = self.store.poll_snapshot() {
            // The keys live in the hub's table; the snapshot replaces the segments that held their records.
            return HubOutput::Snapshot(job.with_keys(self.dedupe.export()));
        }
        let next = self.next_timeout();
        self.last_timeout_reason = next.map(|(_, why)| why);
        HubOutput::Timeout(next.map_or(Timestamp::MAX, |(at, _)| at))
    }

    /// Which timer set the deadline of the last [`HubOutput::Timeout`]; `None` when it was [`Timestamp::MAX`].
    pub fn last_timeout_reason(&self) -> Option<HubTimer> {
        self.last_timeout_reason
    }

    // ---- queries ----

    /// A page of `channel`'s kept events after `since` (from the oldest kept when `None`), at most `limit`.
    pub fn history(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        since: Option<u64>,
        limit: usize,
    ) -> HistoryPage {
        self.page_of(now, channel, since, limit)
    }

    /// `channel`'s epoch, offset and retained state. On a node of a cluster this knows only the channels the node
    /// follows ([`follows`](Hub::follows)); the engine has the others.
    pub fn state(&self, channel: &ChannelName) -> ChannelState {
        self.state_of(channel)
    }

    /// `channel`'s epoch (PROTOCOL §3).
    pub fn epoch(&self, channel: &ChannelName) -> &str {
        cluster::view::epoch_of(self.cluster.as_deref(), self.store.as_ref(), channel)
    }

    /// On a node of a cluster, whether it holds a copy of `channel` (it follows it for local subscribers); always
    /// true on a single node.
    pub fn follows(&self, channel: &ChannelName) -> bool {
        self.cluster
            .as_deref()
            .is_none_or(|c| c.mirror(channel).is_some())
    }

    /// An open connection.
    pub fn connection(&self, conn: ConnId) -> Option<&Connection> {
        self.conns.get(conn)
    }

    /// Every open connection, in a stable order.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, &Connection)> + '_ {
        self.conns.iter()
    }

    /// The open connection an app id names.
    pub fn conn_by_app_id(&self, app_id: &str) -> Option<ConnId> {
        self.app_ids.get(app_id).copied()
    }

    /// Subscribers of `channel`, all dialects (the project connections route).
    pub fn subscriber_count(&self, channel: &ChannelName) -> usize {
        self.channels
            .get(channel)
            .map_or(0, |ch| ch.subscribers.len())
    }

    /// Every channel under `prefix` with subscribers, and how many (all dialects), in name order (a cluster's
    /// node counts: see docs/SCALING.md).
    pub fn subscriber_counts<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a ChannelName, usize)> + 'a {
        self.channels
            .iter()
            .filter(move |(name, ch)| {
                name.as_str().starts_with(prefix) && !ch.subscribers.is_empty()
            })
            .map(|(name, ch)| (name, ch.subscribers.len()))
    }

    /// Records that the reader `name` (the webhook sender) has every event of `channel` up to `offset`; a
    /// durable store keeps it across restarts.
    pub fn set_cursor(&mut self, name: &str, channel: &ChannelName, offset: u64) {
        self.store.set_cursor(name, channel, offset);
    }

    /// Where the reader `name` is in `channel` ([`set_cursor`](Hub::set_cursor)).
    pub fn cursor(&self, name: &str, channel: &ChannelName) -> Option<u64> {
        self.store.cursor(name, channel)
    }

    /// Every channel the reader `name` has a position in, with the position ([`set_cursor`](Hub::set_cursor)).
    pub fn cursors(&self, name: &str) -> alloc::vec::Vec<(ChannelName, u64)> {
        self.store.cursors(name)
    }

    /// Registers a client message type: native messages of this `type` become [`HubEvent::CustomRequest`] instead
    /// of `INVALID_MESSAGE_TYPE`. The built-in types cannot be overridden.
    pub fn register_custom_type(&mut self, type_name: &str) {
        self.custom_types.insert(String::from(type_name));
    }

    /// Whether `conn`'s permissions allow `action` on `channel`.
    fn allows(&self, conn: ConnId, action: PermAction, channel: &ChannelName) -> bool {
        self.conns
            .get(conn)
            .is_some_and(|c| c.allows(action, channel))
    }
}
