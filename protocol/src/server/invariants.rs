//! Self-checks for tests, the simulation and fuzzing (behind the `_internal_test_exports` feature): the hub's indexes agree with each other, and a closed
//! connection has left no trace. Both walk everything, so call them between steps of a test, not in production.

use alloc::format;
use alloc::string::String;

use super::Hub;
use super::conn_table::ConnId;
use super::connection::InFlight;
use super::routing::Pending;

impl Hub {
    /// Whether anything in the hub still refers to `conn`: the registry, an app id, a channel's subscribers or
    /// server, a session, a pending request or call (as target or caller), a timer, or a pending clean-up. Outputs
    /// already queued for the driver do not count.
    pub fn holds_anything_of(&self, conn: ConnId) -> bool {
        self.conns.contains(conn)
            || self.app_ids.values().any(|&c| c == conn)
            || self
                .channels
                .values()
                .any(|ch| ch.subscribers.contains_key(&conn) || ch.server == Some(conn))
            || self.sessions.by_id.values().any(|s| s.conn == conn)
            || self.outstanding.iter().any(|(_, _, p)| match p {
                Pending::Request { target } => *target == conn,
                Pending::Call { target, caller, .. } => {
                    *target == conn || caller.as_ref().is_some_and(|c| c.conn == conn)
                }
                Pending::Forwarded { caller, .. } => {
                    caller.as_ref().is_some_and(|c| c.conn == conn)
                }
                Pending::Remote { target, .. } => *target == conn,
            })
            || self.deadlines.mentions(conn)
            || self.patterns.mentions(conn)
            || self.outbox.doomed.iter().any(|&(c, _)| c == conn)
    }

    /// Checks that every index of the hub agrees with every other; the first disagreement found is the error.
    pub fn check_invariants(&self) -> Result<(), String> {
        if !self.outbox.doomed.is_empty() {
            return Err(format!(
                "{} closed connections not cleaned up",
                self.outbox.doomed.len()
            ));
        }
        if self.parked.len() != self.store.pending_appends() {
            return Err(format!(
                "{} publishes parked, {} appends pending in the store",
                self.parked.len(),
                self.store.pending_appends()
            ));
        }
        if self.app_ids.len() != self.conns.len() {
            return Err(format!(
                "{} app ids for {} connections",
                self.app_ids.len(),
                self.conns.len()
            ));
        }
        let patterns: usize = self.conns.iter().map(|(_, c)| c.patterns.len()).sum();
        if patterns != self.patterns.len() {
            return Err(format!(
                "{patterns} pattern subscriptions on connections, {} in the index",
                self.patterns.len()
            ));
        }
        let mut filed = 0;
        for (id, c) in self.conns.iter() {
            if c.patterns.len() > self.config.max_patterns {
                return Err(format!("{id}: over max_patterns"));
            }
            for p in &c.patterns {
                if !self.patterns.contains(p, id) {
                    return Err(format!("{id}: pattern {p} not in the index"));
                }
            }
            if self.app_ids.get(&c.app_id) != Some(&id) {
                return Err(format!("{id}: app id {} not registered", c.app_id));
            }
            if c.closing {
                return Err(format!("{id}: closing but still registered"));
            }
            if c.queued_bytes > self.config.max_queued_bytes {
                return Err(format!(
                    "{id}: {} bytes queued, over the limit",
                    c.queued_bytes
                ));
            }
            if c.subscriptions.len() > self.config.max_subscriptions {
                return Err(format!("{id}: over max_subscriptions"));
            }
            if c.sessions.len() > self.config.max_sessions {
                return Err(format!("{id}: over max_sessions"));
            }
            for name in &c.subscriptions {
                let kind = self
                    .channels
                    .get(name)
                    .and_then(|ch| ch.subscribers.get(&id));
                if kind != Some(&c.kind()) {
                    return Err(format!("{id}: subscribed to {name}, channel disagrees"));
                }
            }
            for name in &c.serving {
                if self.channels.get(name).and_then(|ch| ch.server) != Some(id) {
                    return Err(format!("{id}: serves {name}, channel disagrees"));
                }
            }
            for s in &c.sessions {
                if self.sessions.by_id.get(s).map(|s| s.conn) != Some(id) {
                    return Err(format!("{id}: session {s} not owned"));
                }
            }
            for (request_id, in_flight) in &c.in_flight {
                if let InFlight::Call { routed } = in_flight {
                    let ok = matches!(
                        self.outstanding.get(routed).and_then(Pending::caller),
                        Some(caller) if caller.conn == id && &caller.request_id == request_id
                    );
                    if !ok {
                        return Err(format!("{id}: call {request_id} has no pending entry"));
                    }
                }
            }
            for routed in &c.outstanding {
                if self.outstanding.get(routed).and_then(Pending::target) != Some(id) {
                    return Err(format!("{id}: outstanding {routed} not pending to it"));
                }
            }
            let next = c.heartbeat.next().map(|(at, _)| at);
            if c.indexed_at != next {
                return Err(format!(
                    "{id}: filed at {:?}, next timer at {next:?}",
                    c.indexed_at
                ));
            }
            if let Some(at) = next {
                filed += 1;
                if !self.deadlines.contains(at, id) {
                    return Err(format!("{id}: timer at {at} not in the index"));
                }
            }
        }
        for (routed, _, pending) in self.outstanding.iter() {
            if let Some(target) = pending.target()
                && !self
                    .conns
                    .get(target)
                    .is_some_and(|c| c.outstanding.contains(routed))
            {
                return Err(format!(
                    "pending {routed}: target {target} does not know it"
                ));
            }
            if let Some(caller) = pending.caller() {
                let known = self
                    .conns
                    .get(caller.conn)
                    .and_then(|c| c.in_flight.get(&caller.request_id));
                if !matches!(known, Some(InFlight::Call { routed: r }) if r == routed) {
                    return Err(format!(
                        "pending {routed}: caller {} does not know it",
                        caller.conn
                    ));
                }
            }
        }
        for (sid, s) in &self.sessions.by_id {
            if !self
                .conns
                .get(s.conn)
                .is_some_and(|c| c.sessions.contains(sid))
            {
                return Err(format!("session {sid}: owner {} does not know it", s.conn));
            }
        }
        for (name, ch) in &self.channels {
            if ch.is_unused() {
                return Err(format!("{name}: unused channel kept"));
            }
            // A routed channel's log is held (the stores this crate has forget only what nobody holds).
            if !self.store.holds(name) {
                return Err(format!("{name}: routed, but the store holds no log of it"));
            }
            let mut counts = [0usize; super::DialectKind::COUNT];
            for (&id, &kind) in &ch.subscribers {
                counts[kind.index()] += 1;
                if !self
                    .conns
                    .get(id)
                    .is_some_and(|c| c.subscriptions.contains(name))
                {
                    return Err(format!("{name}: subscriber {id} does not know it"));
                }
            }
            if let Some(w) = ch.watchers.iter().find(|w| !ch.subscribers.contains_key(w)) {
                return Err(format!("{name}: presence watcher {w} is no subscriber"));
            }
            if counts != ch.by_dialect {
                return Err(format!(
                    "{name}: dialect counts {:?} vs {counts:?}",
                    ch.by_dialect
                ));
            }
            if let Some(server) = ch.server
                && !self
                    .conns
                    .get(server)
                    .is_some_and(|c| c.serving.contains(name))
            {
                return Err(format!("{name}: server {server} does not know it"));
            }
        }
        if self.deadlines.len() != filed {
            return Err(format!(
                "{} connections in the deadline index, {filed} with timers",
                self.deadlines.len()
            ));
        }
        self.store.check()
    }
}
