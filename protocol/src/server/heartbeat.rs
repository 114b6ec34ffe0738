//! Time-driven work: `server_ping`s, the silence check (close 4008), history expiry, and request deadlines, all
//! through [`Hub::handle_timeout`].
//!
//! A native connection's first `server_ping` comes at a random point in `[heartbeat/2, heartbeat]` after open (as
//! Centrifugo does, so a mass reconnect does not make every ping of the server fire at once), then every
//! `heartbeat`. A connection is closed with 4008 once nothing has arrived from it for its silence limit:
//! `heartbeat + heartbeat_timeout` for native connections, [`HubConfig::edge_idle_timeout`] for the others (off by
//! default: they get no `server_ping`, which their clients would not understand).
//!
//! [`HubConfig::edge_idle_timeout`]: super::HubConfig::edge_idle_timeout

use core::time::Duration;

use super::Hub;
use super::conn::{ConnId, DialectKind};
use super::timers::TimerKey;
use crate::time::Timestamp;
use crate::wire::{ChannelName, CloseCode, ServerMessage};

impl Hub {
    /// The deadline of the last [`HubOutput::Timeout`](super::HubOutput::Timeout) came (or any time after): sends
    /// due pings, closes silent connections, expires history, and fails server requests and routed calls whose
    /// time is up (`REQUEST_TIMEOUT`). Harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some((_, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Ping(id) => self.fire_ping(now, id),
                TimerKey::Idle(id) => self.fire_idle(now, id),
                TimerKey::HistoryTtl(name) => self.fire_history_ttl(now, &name),
            }
            self.reap(now);
        }
        self.expire_pending(now);
        self.reap(now);
    }

    /// Something arrived from the peer that the hub does not see (a WebSocket ping or pong frame): it counts
    /// against the silence timeout like any message.
    pub fn handle_activity(&mut self, now: Timestamp, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.last_activity = c.last_activity.max(now);
        }
    }

    /// How long a connection of this dialect may stay silent; `None`: forever.
    fn silence_limit(&self, kind: DialectKind) -> Option<Duration> {
        match kind {
            DialectKind::Native if !self.config.heartbeat.is_zero() => Some(
                self.config
                    .heartbeat
                    .saturating_add(self.config.heartbeat_timeout),
            ),
            DialectKind::Native => None,
            _ => self.config.edge_idle_timeout.filter(|d| !d.is_zero()),
        }
    }

    /// Arms a new connection's first ping (native) and its silence check.
    pub(super) fn arm_heartbeat(&mut self, now: Timestamp, id: ConnId) {
        let Some(kind) = self.conns.get(id).map(|c| c.kind()) else {
            return;
        };
        let heartbeat = self.config.heartbeat;
        let ping_at = (kind == DialectKind::Native && !heartbeat.is_zero())
            .then(|| now + self.rng.duration_between(heartbeat / 2, heartbeat));
        let idle_at = self.silence_limit(kind).map(|limit| now + limit);
        if let Some(c) = self.conns.get_mut(id) {
            c.ping_at = ping_at;
            c.idle_at = idle_at;
        }
        if let Some(at) = ping_at {
            self.timers.insert(at, TimerKey::Ping(id));
        }
        if let Some(at) = idle_at {
            self.timers.insert(at, TimerKey::Idle(id));
        }
    }

    fn fire_ping(&mut self, now: Timestamp, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.ping_at = None;
        if c.closing {
            return;
        }
        let next = now + self.config.heartbeat;
        c.ping_at = Some(next);
        self.timers.insert(next, TimerKey::Ping(id));
        let ping = ServerMessage::ServerPing {
            timestamp: now.as_millis(),
        };
        self.send_native(id, None, ping);
    }

    fn fire_idle(&mut self, now: Timestamp, id: ConnId) {
        let Some(limit) = self
            .conns
            .get(id)
            .and_then(|c| self.silence_limit(c.kind()))
        else {
            return;
        };
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.idle_at = None;
        if c.closing {
            return;
        }
        let deadline = c.last_activity + limit;
        if deadline <= now {
            self.counters.heartbeat_timeouts += 1;
            self.outbox
                .close(id, c, CloseCode::HeartbeatTimeout, "heartbeat timeout");
        } else {
            c.idle_at = Some(deadline);
            self.timers.insert(deadline, TimerKey::Idle(id));
        }
    }

    fn fire_history_ttl(&mut self, now: Timestamp, name: &ChannelName) {
        let ttl = self.config.history_ttl;
        let Some(ch) = self.channels.get_mut(name) else {
            return;
        };
        ch.ttl_at = None;
        ch.history.prune(now, ttl);
        if let Some(at) = ch.history.next_expiry(ttl) {
            ch.ttl_at = Some(at);
            self.timers.insert(at, TimerKey::HistoryTtl(name.clone()));
        }
        self.forget_if_unused(name);
    }
}
