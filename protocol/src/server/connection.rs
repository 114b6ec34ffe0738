//! [`Connection`]: one peer as the hub keeps it, and everything that concerns that peer alone.
//!
//! A connection owns its dialect (and so how every answer meant only for it is encoded, [`reply`](super::reply)),
//! its permissions, its heartbeat and silence timers (a [`TimerTable`](crate::timer::TimerTable), in
//! [`heartbeat`](super::heartbeat)), its queued-bytes account (the slow-consumer rule) and its close. The other half of a peer, the [`Intake`] that
//! decodes and rate-limits what it sends, needs no hub at all and lives with whoever reads the socket.
//!
//! It also carries the peer's side of the hub's indexes (subscriptions, served channels, sessions, requests in
//! flight both ways), so closing it can undo exactly what it holds.
//!
//! [`Intake`]: super::Intake

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::Arc;

use super::config::HubConfig;
use super::dialect::{ConnDialect, DialectKind};
use super::heartbeat::{Due, Heartbeat};
use super::permissions::{Action, Permissions};
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::wire::{ChannelName, ChannelPattern, MessageId};

/// A request of this connection that waits for something outside it, keyed by the request's own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InFlight {
    /// A routed `call`; `routed` is the id of the `server_request` sent to the serving connection.
    Call { routed: MessageId },
    /// A message of a type the embedding application registered, waiting for [`Hub::respond`](super::Hub::respond).
    Custom { type_name: String },
}

/// What the queued-bytes account says of one more frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Queue it.
    Queue,
    /// It would take the queue over `max_queued_bytes`: close the connection as a slow consumer.
    SlowConsumer,
    /// The connection is closing; nothing more is sent.
    Closing,
}

/// One open connection, as the hub keeps it. The embedding application reads it through
/// [`Hub::connection`](super::Hub::connection); the hub alone changes it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Shared with the hub's index of app ids: one allocation per connection, not two.
    pub(crate) app_id: Arc<str>,
    pub(crate) dialect: ConnDialect,
    pub(crate) permissions: Permissions,
    pub(crate) connected_at: Timestamp,
    /// The last time anything arrived from the peer.
    pub(crate) last_activity: Timestamp,
    pub(crate) subscriptions: BTreeSet<ChannelName>,
    /// Its pattern subscriptions (filed in the hub's pattern index).
    pub(crate) patterns: BTreeSet<ChannelPattern>,
    /// Channels whose `call`s this connection answers.
    pub(crate) serving: BTreeSet<ChannelName>,
    /// Sessions it created and has not closed.
    pub(crate) sessions: BTreeSet<String>,
    /// Its own requests still waiting (ids it chose).
    pub(crate) in_flight: BTreeMap<MessageId, InFlight>,
    /// `server_request`s sent to it and not yet answered (ids the hub chose).
    pub(crate) outstanding: BTreeSet<MessageId>,
    /// Bytes handed out as `Transmit` and not yet reported by `handle_sent`.
    pub(crate) queued_bytes: usize,
    max_queued_bytes: usize,
    /// A `Close` was output; nothing more is sent, and the connection is cleaned up before the hub returns.
    pub(crate) closing: bool,
    /// `server_ping` and the silence check.
    pub(crate) heartbeat: Heartbeat,
    /// The deadline under which the hub's index files this connection (the table's minimum when last indexed).
    pub(crate) indexed_at: Option<Timestamp>,
}

impl Connection {
    pub(crate) fn new(
        app_id: Arc<str>,
        dialect: ConnDialect,
        permissions: Permissions,
        config: &HubConfig,
        now: Timestamp,
    ) -> Connection {
        let heartbeat = Heartbeat::new(config, dialect.kind());
        Connection {
            app_id,
            dialect,
            permissions,
            connected_at: now,
            last_activity: now,
            subscriptions: BTreeSet::new(),
            patterns: BTreeSet::new(),
            serving: BTreeSet::new(),
            sessions: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            queued_bytes: 0,
            max_queued_bytes: config.max_queued_bytes,
            closing: false,
            heartbeat,
            indexed_at: None,
        }
    }

    /// Arms the heartbeat of a connection just opened.
    pub(crate) fn arm_heartbeat(&mut self, now: Timestamp, rng: &mut Rng) {
        self.heartbeat.arm(now, rng);
    }

    /// Arms (or disarms) the expiry of its permissions, granted at `now`.
    pub(crate) fn arm_expiry(&mut self, now: Timestamp, warning: core::time::Duration) {
        self.heartbeat
            .arm_expiry(now, self.permissions.expires_at(), warning);
    }

    /// Takes the next due timer; `None` when nothing (more) is due at `now`.
    pub(crate) fn poll_timer(&mut self, now: Timestamp) -> Option<Due> {
        self.heartbeat.poll(now, self.last_activity)
    }

    pub(crate) fn kind(&self) -> DialectKind {
        self.dialect.kind()
    }

    /// Whether its permissions allow `action` on `channel`.
    pub(crate) fn allows(&self, action: Action, channel: &ChannelName) -> bool {
        self.permissions.allows(action, channel)
    }

    /// Something arrived from the peer.
    pub(crate) fn touch(&mut self, now: Timestamp) {
        self.last_activity = self.last_activity.max(now);
    }

    /// Accounts for one more frame of `len` bytes, or says why it cannot be queued.
    pub(crate) fn admit(&mut self, len: usize) -> Admit {
        if self.closing {
            return Admit::Closing;
        }
        let queued = self.queued_bytes.saturating_add(len);
        if queued > self.max_queued_bytes {
            return Admit::SlowConsumer;
        }
        self.queued_bytes = queued;
        Admit::Queue
    }

    /// The writer flushed `bytes`.
    pub(crate) fn sent(&mut self, bytes: usize) {
        self.queued_bytes = self.queued_bytes.saturating_sub(bytes);
    }

    /// Marks the connection closing and stops its timers; `false` when it already was.
    pub(crate) fn begin_close(&mut self) -> bool {
        if self.closing {
            return false;
        }
        self.closing = true;
        self.heartbeat.stop();
        true
    }

    // ---- what the embedding application may read ([`Hub::connection`](super::Hub::connection)) ----

    /// Its app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Its dialect.
    pub fn dialect(&self) -> DialectKind {
        self.kind()
    }

    /// When it opened.
    pub fn connected_at(&self) -> Timestamp {
        self.connected_at
    }

    /// When its permissions lapse (it is closed with 4401 then, unless refreshed); `None`: never.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.permissions.expires_at()
    }

    /// When anything last arrived from it.
    pub fn last_activity(&self) -> Timestamp {
        self.last_activity
    }

    /// The channels it is subscribed to, in order.
    pub fn subscriptions(&self) -> impl Iterator<Item = &ChannelName> + '_ {
        self.subscriptions.iter()
    }

    /// The patterns it subscribes to, in order.
    pub fn pattern_subscriptions(&self) -> impl Iterator<Item = &ChannelPattern> + '_ {
        self.patterns.iter()
    }

    /// The channels whose calls it answers, in order.
    pub fn serving(&self) -> impl Iterator<Item = &ChannelName> + '_ {
        self.serving.iter()
    }

    /// Its open sessions, in order.
    pub fn sessions(&self) -> impl Iterator<Item = &str> + '_ {
        self.sessions.iter().map(String::as_str)
    }

    /// Server requests and routed calls waiting for its answer.
    pub fn pending_server_requests(&self) -> usize {
        self.outstanding.len()
    }

    /// Its own requests waiting for an answer (calls and custom requests).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes handed out for it and not yet reported sent.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }
}
