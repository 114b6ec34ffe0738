//! Counters and gauges for the health, info, connections and metrics routes ([`HubStats`]).

use super::Hub;
use super::dialect::DialectKind;

/// Connections per dialect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialectCounts {
    /// Native connections.
    pub native: usize,
    /// Project-stream connections.
    pub project_stream: usize,
    /// Channel-payload connections.
    pub channel_payload: usize,
    /// Server-Sent Events streams of channel events.
    pub sse: usize,
    /// Server-Sent Events streams in the project-stream dialect.
    pub project_stream_sse: usize,
}

impl DialectCounts {
    /// The count for one dialect.
    pub fn get(&self, kind: DialectKind) -> usize {
        match kind {
            DialectKind::Native => self.native,
            DialectKind::ProjectStream => self.project_stream,
            DialectKind::ChannelPayload => self.channel_payload,
            DialectKind::Sse => self.sse,
            DialectKind::ProjectSse => self.project_stream_sse,
        }
    }

    fn bump(&mut self, kind: DialectKind) {
        match kind {
            DialectKind::Native => self.native += 1,
            DialectKind::ProjectStream => self.project_stream += 1,
            DialectKind::ChannelPayload => self.channel_payload += 1,
            DialectKind::Sse => self.sse += 1,
            DialectKind::ProjectSse => self.project_stream_sse += 1,
        }
    }
}

/// A snapshot of the hub: gauges (what it holds now) and counters (totals since it was made).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Open connections.
    pub connections: usize,
    /// Open connections per dialect.
    pub by_dialect: DialectCounts,
    /// Channels the hub knows (with subscribers, a server, state or events).
    pub channels: usize,
    /// Subscriptions over all connections.
    pub subscriptions: usize,
    /// Channels with a serving connection.
    pub served_channels: usize,
    /// Open sessions.
    pub sessions: usize,
    /// Server requests ([`Hub::send_request`]) waiting for an answer.
    pub pending_requests: usize,
    /// Routed calls waiting for the serving connection's answer.
    pub pending_calls: usize,
    /// Bytes handed out as `Transmit` and not yet reported sent, over all connections.
    pub queued_bytes: usize,
    /// Events kept in history over all channels.
    pub history_events: usize,
    /// Bytes of those events (each its compact JSON's length), over all channels.
    pub history_bytes: usize,
    /// Connections ever opened.
    pub connections_opened: u64,
    /// Frames received (text and binary).
    pub frames_received: u64,
    /// Events published.
    pub published: u64,
    /// Events delivered to subscribers (live and replayed).
    pub delivered: u64,
    /// `error` answers sent (any dialect).
    pub errors_sent: u64,
    /// Messages dropped by the rate limit.
    pub rate_limited: u64,
    /// Connections closed as slow consumers (1013).
    pub slow_consumers: u64,
    /// Connections closed for silence (4008).
    pub heartbeat_timeouts: u64,
    /// Connections closed because their token expired without a `refresh` (4401).
    pub token_expiries: u64,
    /// `refresh` requests accepted.
    pub token_refreshes: u64,
    /// Connections closed for an oversized message (1009).
    pub oversized_messages: u64,
    /// Server requests and routed calls that timed out.
    pub requests_timed_out: u64,
    /// `server_response`s that matched nothing pending (late, duplicate or bogus).
    pub unmatched_responses: u64,
    /// Publishes waiting for the store's write.
    pub pending_publishes: usize,
    /// Publishes refused because the store's write failed (`STORAGE_UNAVAILABLE`).
    pub storage_failures: u64,
    /// Publishes whose idempotency key was seen within the dedupe window: answered, nothing published.
    pub duplicate_publishes: u64,
    /// Idempotency keys remembered (within the dedupe window).
    pub dedupe_keys: usize,
}

/// The counters the hub keeps up to date as it goes (the gauges are computed when asked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) connections_opened: u64,
    pub(crate) frames_received: u64,
    pub(crate) published: u64,
    pub(crate) delivered: u64,
    pub(crate) errors_sent: u64,
    pub(crate) rate_limited: u64,
    pub(crate) heartbeat_timeouts: u64,
    pub(crate) token_expiries: u64,
    pub(crate) token_refreshes: u64,
    pub(crate) oversized_messages: u64,
    pub(crate) requests_timed_out: u64,
    pub(crate) unmatched_responses: u64,
    pub(crate) storage_failures: u64,
    pub(crate) duplicate_publishes: u64,
}

impl Hub {
    /// A snapshot of gauges and counters. `O(connections + channels)`: meant for the health and metrics routes,
    /// not for every message.
    pub fn stats(&self) -> HubStats {
        let mut by_dialect = DialectCounts::default();
        let mut subscriptions = 0;
        let mut queued_bytes = 0usize;
        for (_, conn) in self.conns.iter() {
            by_dialect.bump(conn.kind());
            subscriptions += conn.subscriptions.len();
            queued_bytes = queued_bytes.saturating_add(conn.queued_bytes);
        }
        let (mut pending_requests, mut pending_calls) = (0, 0);
        for (_, _, pending) in self.outstanding.iter() {
            if pending.is_call() {
                pending_calls += 1;
            } else {
                pending_requests += 1;
            }
        }
        let c = &self.counters;
        // On a node of a cluster, "held" is what the node holds: the copies of the channels it follows.
        let (store, waiting) = match self.cluster.as_deref() {
            Some(cluster) => (
                super::store::StoreStats::new(cluster.followed(), cluster.events_held(), 0),
                cluster.pending_publishes(),
            ),
            None => (self.store.stats(), 0),
        };
        // Channels with a log, plus those the hub routes that were never published to.
        let routed_only = self
            .channels
            .keys()
            .filter(|name| match self.cluster.as_deref() {
                Some(cluster) => cluster.mirror(name).is_none(),
                None => !self.store.holds(name),
            })
            .count();
        HubStats {
            connections: self.conns.len(),
            by_dialect,
            channels: store.channels + routed_only,
            subscriptions,
            served_channels: self
                .channels
                .values()
                .filter(|ch| ch.server.is_some())
                .count(),
            sessions: self.sessions.by_id.len(),
            pending_requests,
            pending_calls,
            queued_bytes,
            history_events: store.events,
            history_bytes: store.bytes,
            connections_opened: c.connections_opened,
            frames_received: c.frames_received,
            published: c.published,
            delivered: c.delivered,
            errors_sent: c.errors_sent,
            rate_limited: c.rate_limited,
            slow_consumers: self.outbox.slow_consumers,
            heartbeat_timeouts: c.heartbeat_timeouts,
            token_expiries: c.token_expiries,
            token_refreshes: c.token_refreshes,
            oversized_messages: c.oversized_messages,
            requests_timed_out: c.requests_timed_out,
            unmatched_responses: c.unmatched_responses,
            pending_publishes: self.parked.len() + waiting,
            storage_failures: c.storage_failures,
            duplicate_publishes: c.duplicate_publishes,
            dedupe_keys: self.dedupe_keys(),
        }
    }
}
