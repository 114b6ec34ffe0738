//! The connection registry: [`ConnId`], the [`Dialect`] a peer speaks, and each connection's state (app id,
//! permissions, subscriptions, served channels, sessions, requests in flight both ways, rate bucket, queued bytes,
//! heartbeat deadlines).
//!
//! Connections live in a generational slab: a [`ConnId`] is a slot index plus the slot's generation, so a lookup is
//! one array access, and an id of a closed connection never finds the slot's next tenant.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::permissions::Permissions;
use super::rate_limit::TokenBucket;
use crate::time::Timestamp;
use crate::wire::{ChannelName, MessageId};

/// Names one connection for as long as it is open. Never reused for another connection of the same hub.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId(u64);

impl ConnId {
    fn new(index: u32, generation: u32) -> ConnId {
        ConnId((u64::from(index) << 32) | u64::from(generation))
    }

    fn index(self) -> usize {
        (self.0 >> 32) as usize
    }

    fn generation(self) -> u32 {
        self.0 as u32
    }

    /// The id as a number (for logs and maps in the driver).
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The id a number came from ([`as_u64`](Self::as_u64)).
    pub const fn from_u64(raw: u64) -> ConnId {
        ConnId(raw)
    }
}

impl fmt::Display for ConnId {
    /// `slot.generation`, e.g. `3.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index(), self.generation())
    }
}

/// What a connection speaks, with what its endpoint carried (PROTOCOL §5–§6). The driver picks it from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialect {
    /// `/api/ws`: the full protocol.
    Native,
    /// `/api/v1/ws/projects/{project_id}/stream`: subscribed to `projects/{project_id}` on open, resuming after
    /// `since` (the `?since=` query) in the current epoch.
    ProjectStream {
        /// From the path.
        project_id: String,
        /// From `?since=`.
        since: Option<u64>,
    },
    /// `/ws`: `{channel, payload}`.
    ChannelPayload,
}

impl Dialect {
    /// The dialect without its parameters.
    pub fn kind(&self) -> DialectKind {
        match self {
            Dialect::Native => DialectKind::Native,
            Dialect::ProjectStream { .. } => DialectKind::ProjectStream,
            Dialect::ChannelPayload => DialectKind::ChannelPayload,
        }
    }
}

/// A [`Dialect`] without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DialectKind {
    /// The native dialect.
    Native,
    /// The project-stream dialect.
    ProjectStream,
    /// The channel-payload dialect.
    ChannelPayload,
}

impl DialectKind {
    /// Every dialect.
    pub const ALL: [DialectKind; 3] = [
        DialectKind::Native,
        DialectKind::ProjectStream,
        DialectKind::ChannelPayload,
    ];

    /// `"native"`, `"project_stream"` or `"channel_payload"` (the keys of the connections route's `by_dialect`).
    pub const fn as_str(self) -> &'static str {
        match self {
            DialectKind::Native => "native",
            DialectKind::ProjectStream => "project_stream",
            DialectKind::ChannelPayload => "channel_payload",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DialectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the registry knows of one open connection ([`Hub::connection`](super::Hub::connection)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Its app id.
    pub app_id: String,
    /// Its dialect.
    pub dialect: DialectKind,
    /// When it opened.
    pub connected_at: Timestamp,
    /// When anything last arrived from it.
    pub last_activity: Timestamp,
    /// The channels it is subscribed to.
    pub subscriptions: Vec<ChannelName>,
    /// The channels whose calls it answers.
    pub serving: Vec<ChannelName>,
    /// Its open sessions.
    pub sessions: Vec<String>,
    /// Server requests and routed calls waiting for its answer.
    pub pending_server_requests: usize,
    /// Its own requests waiting for an answer (calls and custom requests).
    pub in_flight: usize,
    /// Bytes handed out for it and not yet reported sent.
    pub queued_bytes: usize,
}

/// A connection's dialect as the hub keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnDialect {
    Native,
    /// `channel` is `None` only for a connection refused at open (bad project id), which is closed at once.
    ProjectStream {
        project_id: String,
        channel: Option<ChannelName>,
    },
    ChannelPayload,
}

impl ConnDialect {
    pub(crate) fn kind(&self) -> DialectKind {
        match self {
            ConnDialect::Native => DialectKind::Native,
            ConnDialect::ProjectStream { .. } => DialectKind::ProjectStream,
            ConnDialect::ChannelPayload => DialectKind::ChannelPayload,
        }
    }
}

/// A request of this connection that waits for something outside it, keyed by the request's own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InFlight {
    /// A routed `call`; `routed` is the id of the `server_request` sent to the serving connection.
    Call { routed: MessageId },
    /// A message of a type the embedding application registered, waiting for [`Hub::respond`](super::Hub::respond).
    Custom { type_name: String },
}

/// One open connection.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub(crate) app_id: String,
    pub(crate) dialect: ConnDialect,
    pub(crate) permissions: Permissions,
    pub(crate) connected_at: Timestamp,
    /// The last time anything arrived from the peer.
    pub(crate) last_activity: Timestamp,
    pub(crate) subscriptions: BTreeSet<ChannelName>,
    /// Channels whose `call`s this connection answers.
    pub(crate) serving: BTreeSet<ChannelName>,
    /// Sessions it created and has not closed.
    pub(crate) sessions: BTreeSet<String>,
    /// Its own requests still waiting (ids it chose).
    pub(crate) in_flight: BTreeMap<MessageId, InFlight>,
    /// `server_request`s sent to it and not yet answered (ids the hub chose).
    pub(crate) outstanding: BTreeSet<MessageId>,
    pub(crate) bucket: TokenBucket,
    /// Bytes handed out as `Transmit` and not yet reported by `handle_sent`.
    pub(crate) queued_bytes: usize,
    /// A `Close` was output; nothing more is sent, and the connection is cleaned up before the hub returns.
    pub(crate) closing: bool,
    /// The armed `server_ping` timer.
    pub(crate) ping_at: Option<Timestamp>,
    /// The armed silence check.
    pub(crate) idle_at: Option<Timestamp>,
}

impl Conn {
    pub(crate) fn new(
        app_id: String,
        dialect: ConnDialect,
        permissions: Permissions,
        bucket: TokenBucket,
        now: Timestamp,
    ) -> Conn {
        Conn {
            app_id,
            dialect,
            permissions,
            connected_at: now,
            last_activity: now,
            subscriptions: BTreeSet::new(),
            serving: BTreeSet::new(),
            sessions: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            bucket,
            queued_bytes: 0,
            closing: false,
            ping_at: None,
            idle_at: None,
        }
    }

    pub(crate) fn kind(&self) -> DialectKind {
        self.dialect.kind()
    }

    pub(crate) fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            app_id: self.app_id.clone(),
            dialect: self.kind(),
            connected_at: self.connected_at,
            last_activity: self.last_activity,
            subscriptions: self.subscriptions.iter().cloned().collect(),
            serving: self.serving.iter().cloned().collect(),
            sessions: self.sessions.iter().cloned().collect(),
            pending_server_requests: self.outstanding.len(),
            in_flight: self.in_flight.len(),
            queued_bytes: self.queued_bytes,
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// The slab of open connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnTable {
    slots: Vec<Slot>,
    /// Empty slots, reused last-freed first.
    free: Vec<u32>,
    len: usize,
}

impl ConnTable {
    /// Stores a connection and names it.
    pub(crate) fn insert(&mut self, conn: Conn) -> ConnId {
        self.len += 1;
        if let Some(index) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(index as usize)
        {
            slot.conn = Some(conn);
            return ConnId::new(index, slot.generation);
        }
        let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            generation: 0,
            conn: Some(conn),
        });
        ConnId::new(index, 0)
    }

    /// Removes a connection; its slot's next tenant gets a new generation.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Conn> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        let conn = slot.conn.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index() as u32);
        self.len -= 1;
        Some(conn)
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        let slot = self.slots.get(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.conn.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.conn.as_mut()
    }

    /// Whether `id` names an open connection.
    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every open connection, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.conn
                .as_ref()
                .map(|conn| (ConnId::new(index as u32, slot.generation), conn))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(name: &str) -> Conn {
        Conn::new(
            String::from(name),
            ConnDialect::Native,
            Permissions::allow_all(),
            TokenBucket::new(1, 1, Timestamp::ZERO),
            Timestamp::ZERO,
        )
    }

    #[test]
    fn ids_are_never_reused() {
        let mut t = ConnTable::default();
        let a = t.insert(conn("a"));
        let b = t.insert(conn("b"));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(a).map(|c| c.app_id), Some(String::from("a")));
        assert!(t.remove(a).is_none(), "removing twice finds nothing");
        let c = t.insert(conn("c"));
        assert_ne!(a, c, "same slot, new generation");
        assert!(
            t.get(a).is_none(),
            "a stale id does not find the new tenant"
        );
        assert_eq!(t.get(c).map(|c| c.app_id.as_str()), Some("c"));
        assert_eq!(t.iter().map(|(id, _)| id).collect::<Vec<_>>(), [c, b]);
        assert_eq!(alloc::format!("{a} {c}"), "0.0 0.1");
        assert_eq!(ConnId::from_u64(c.as_u64()), c);
        assert!(t.contains(b) && !t.contains(a));
        assert_eq!(t.len(), 2);
    }
}
