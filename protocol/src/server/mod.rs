//! The server side: one sans-IO [`Hub`] holding every connection of a server (all three dialects), every channel
//! with its history and retained state, sessions, server requests and routed calls.
//!
//! The hub does no IO and reads no clock: the driver feeds it what happened (`handle_*`), issues commands for the
//! embedding application and the REST routes, and drains [`Hub::poll_output`] for frames to write, connections to
//! close, [`HubEvent`]s, and the next deadline. All randomness comes from [`HubConfig::seed`].
//!
//! # A run loop
//!
//! ```no_run
//! use switchboard_protocol::server::{Dialect, Hub, HubConfig, HubOutput, Permissions};
//! use switchboard_protocol::time::Timestamp;
//! # fn clock() -> Timestamp { Timestamp::ZERO }
//! # fn write(_: switchboard_protocol::server::ConnId, _: &str) {}
//!
//! // 1. One hub for the whole server, behind the driver's lock.
//! let mut hub = Hub::new(HubConfig::default(), clock());
//! // 2. A WebSocket upgrade on /api/ws: register it (this queues the greeting).
//! let conn = hub.handle_open(clock(), Dialect::Native, Permissions::allow_all());
//! // 3. A text frame arrived on that socket.
//! hub.handle_text(clock(), conn, r#"{"type":"ping","message_id":"1"}"#);
//! // 4. Drain: write frames, close sockets, pass events on, and sleep until the deadline.
//! let wake_at = loop {
//!     match hub.poll_output() {
//!         HubOutput::Transmit { conn, frame } => write(conn, &frame), // then hub.handle_sent(conn, frame.len())
//!         HubOutput::Close { .. } => { /* send the close frame, drop the socket */ }
//!         HubOutput::Event(_event) => { /* tell the embedding application */ }
//!         HubOutput::Timeout(at) => break at,
//!     }
//! };
//! // 5. At `wake_at` (or on the next input, whichever is first): `hub.handle_timeout(clock())`, then drain again.
//! # let _ = wake_at;
//! ```
//!
//! # Methods by kind
//!
//! - **Inputs**, one per thing that happened on a socket: [`handle_open`](Hub::handle_open) after the upgrade,
//!   [`handle_text`](Hub::handle_text) / [`handle_binary`](Hub::handle_binary) for each frame,
//!   [`handle_activity`](Hub::handle_activity) for a WebSocket ping or pong, [`handle_sent`](Hub::handle_sent) after
//!   the writer flushed a `Transmit`, [`handle_transport_closed`](Hub::handle_transport_closed) when the socket is
//!   gone (either side), and [`handle_timeout`](Hub::handle_timeout) when the deadline of the last
//!   [`HubOutput::Timeout`] is reached.
//! - **Commands**, for the embedding application and the REST routes: [`publish`](Hub::publish),
//!   [`send_request`](Hub::send_request), [`notify`](Hub::notify), [`register_custom_type`](Hub::register_custom_type)
//!   and [`respond`](Hub::respond), [`close`](Hub::close), [`shutdown`](Hub::shutdown). A command never fails for
//!   want of draining: outputs queue until polled.
//! - **Queries**: [`history`](Hub::history), [`state`](Hub::state), [`stats`](Hub::stats), [`app_id`](Hub::app_id),
//!   [`conn_by_app_id`](Hub::conn_by_app_id), [`connected_apps`](Hub::connected_apps),
//!   [`connection`](Hub::connection), [`app_sessions`](Hub::app_sessions), [`session`](Hub::session), [`subscriber_count`](Hub::subscriber_count),
//!   [`config`](Hub::config), [`epoch`](Hub::epoch).
//! - **Outputs**: [`poll_output`](Hub::poll_output) after every input or command, until it returns
//!   [`HubOutput::Timeout`]; [`last_timeout_reason`](Hub::last_timeout_reason) says which timer set it.
//! - **Diagnostics** (tests, simulation, fuzzing): [`check_invariants`](Hub::check_invariants),
//!   [`holds_anything_of`](Hub::holds_anything_of).
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
mod channel_payload;
mod config;
mod conn;
mod error;
#[cfg(any(test, feature = "_internal_test_exports"))]
#[cfg_attr(docsrs, doc(cfg(feature = "_internal_test_exports")))]
pub mod fuzz;
mod heartbeat;
mod history;
mod inputs;
mod invariants;
mod lifecycle;
mod native;
mod output;
mod permissions;
mod project_stream;
mod publish;
mod rate_limit;
mod recovery;
mod reply;
mod routing;
mod server_requests;
mod sessions;
mod stats;
mod timers;

#[cfg(test)]
mod tests;

pub use config::HubConfig;
pub use conn::{ConnId, ConnectionInfo, Dialect, DialectKind};
pub use error::{HubError, LimitError, MisuseError};
pub use history::HistoryPage;
pub use output::{HubEvent, HubOutput, NotifyTarget, RequestFailure};
pub use permissions::{Action, Permissions, pattern_matches};
pub use sessions::SessionInfo;
pub use stats::{DialectCounts, HubStats};
pub use timers::HubTimer;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde_json::Value;

use crate::calls::CallTable;
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::wire::{ChannelName, MessageId};

use channel::Channel;
use conn::ConnTable;
use output::Outbox;
use routing::Pending;
use sessions::Sessions;
use stats::Counters;
use timers::TimerQueue;

/// A channel's position and retained state ([`Hub::state`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelState {
    /// The channel's epoch.
    pub epoch: String,
    /// The offset of its last event (0 before the first).
    pub offset: u64,
    /// The retained event, if any.
    pub state: Option<Value>,
}

/// Every connection, channel, session, server request and routed call of one server. See the
/// [module docs](self) for the run loop and the methods by kind.
pub struct Hub {
    config: HubConfig,
    /// The epoch of every channel: new for every hub, since history is not persisted.
    epoch: String,
    rng: Rng,
    conns: ConnTable,
    app_ids: BTreeMap<String, ConnId>,
    channels: BTreeMap<ChannelName, Channel>,
    sessions: Sessions,
    /// Server requests and routed calls, by the id of the `server_request` the hub sent.
    outstanding: CallTable<MessageId, Pending>,
    timers: TimerQueue,
    custom_types: BTreeSet<String>,
    outbox: Outbox,
    counters: Counters,
    last_timeout_reason: Option<HubTimer>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("epoch", &self.epoch)
            .field("connections", &self.conns.len())
            .field("channels", &self.channels.len())
            .field("sessions", &self.sessions.by_id.len())
            .field("outstanding", &self.outstanding.len())
            .field("queued_outputs", &self.outbox.queue.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with no connections and no channels. `now` is unused today but keeps the constructor in step with the
    /// other machines (everything that could depend on time takes it).
    pub fn new(config: HubConfig, now: Timestamp) -> Hub {
        let _ = now;
        let mut rng = Rng::from_seed(config.seed);
        let epoch = alloc::format!("{:016x}", rng.next_u64());
        let outbox = Outbox {
            max_queued_bytes: config.max_queued_bytes,
            ..Outbox::default()
        };
        Hub {
            config,
            epoch,
            rng,
            conns: ConnTable::default(),
            app_ids: BTreeMap::new(),
            channels: BTreeMap::new(),
            sessions: Sessions::default(),
            outstanding: CallTable::new(),
            timers: TimerQueue::default(),
            custom_types: BTreeSet::new(),
            outbox,
            counters: Counters::default(),
            last_timeout_reason: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The epoch of every channel of this hub (PROTOCOL §3).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    // ---- outputs ----

    /// The next output. Call after every input and command, until it returns [`HubOutput::Timeout`].
    pub fn poll_output(&mut self) -> HubOutput {
        if let Some(out) = self.outbox.queue.pop_front() {
            return out;
        }
        let timer = self.timers.first();
        let request = self
            .outstanding
            .next_deadline()
            .map(|at| (at, HubTimer::RequestTimeout));
        let next = match (timer, request) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
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
        match self.channels.get(channel) {
            Some(ch) => ch
                .history
                .page(&self.epoch, since, limit, now, self.config.history_ttl),
            None => HistoryPage {
                epoch: self.epoch.clone(),
                events: Vec::new(),
                next_since: None,
            },
        }
    }

    /// `channel`'s epoch, offset and retained state.
    pub fn state(&self, channel: &ChannelName) -> ChannelState {
        let (offset, state) = self
            .channels
            .get(channel)
            .map_or((0, None), |ch| (ch.offset, ch.state.as_deref().cloned()));
        ChannelState {
            epoch: self.epoch.clone(),
            offset,
            state,
        }
    }

    /// The app id of an open connection.
    pub fn app_id(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(conn).map(|c| c.app_id.as_str())
    }

    /// What the registry knows of an open connection.
    pub fn connection(&self, conn: ConnId) -> Option<ConnectionInfo> {
        self.conns.get(conn).map(|c| c.info())
    }

    /// The open connection an app id names.
    pub fn conn_by_app_id(&self, app_id: &str) -> Option<ConnId> {
        self.app_ids.get(app_id).copied()
    }

    /// Every open connection with its app id, in a stable order.
    pub fn connected_apps(&self) -> Vec<(ConnId, String)> {
        self.conns
            .iter()
            .map(|(id, c)| (id, c.app_id.clone()))
            .collect()
    }

    /// The open sessions of a connection, by id.
    pub fn app_sessions(&self, conn: ConnId) -> Vec<String> {
        self.conns
            .get(conn)
            .map(|c| c.sessions.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// One open session.
    pub fn session(&self, session_id: &str) -> Option<&SessionInfo> {
        self.sessions.by_id.get(session_id)
    }

    /// Subscribers of `channel`, all dialects (the project connections route).
    pub fn subscriber_count(&self, channel: &ChannelName) -> usize {
        self.channels
            .get(channel)
            .map_or(0, |ch| ch.subscribers.len())
    }

    /// Registers a client message type: native messages of this `type` become [`HubEvent::CustomRequest`] instead
    /// of `INVALID_MESSAGE_TYPE`. The built-in types cannot be overridden.
    pub fn register_custom_type(&mut self, type_name: &str) {
        self.custom_types.insert(String::from(type_name));
    }
}
