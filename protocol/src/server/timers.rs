//! Time-driven work of the whole hub, through [`Hub::handle_timeout`]: connections' pings, silence checks and
//! token expiries, history expiry in the store, and request deadlines.
//!
//! Every connection keeps its own [`TimerTable`](crate::timer::TimerTable) ([`heartbeat`](super::heartbeat)); the
//! hub files each connection under the minimum of its table in one ordered index, so finding the connections that
//! are due is `O(log n)` and a connection's timers are touched only when they fire. The store keeps its own expiry
//! deadline and the call table its earliest request deadline; the minimum of the three, with its reason
//! ([`HubTimer`]), is the only deadline the driver sees.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::Hub;
use super::conn_table::ConnId;
use super::heartbeat::{ConnTimer, Due};
use crate::time::Timestamp;
use crate::timer::{TimerKind, TimerTable};
use crate::wire::{CloseCode, ServerMessage};

/// Why the hub asked to be woken ([`Hub::last_timeout_reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HubTimer {
    /// A connection's next `server_ping`.
    Heartbeat,
    /// A connection's silence check (close 4008).
    HeartbeatTimeout,
    /// A channel's oldest kept event reaches `history_ttl`.
    HistoryExpiry,
    /// A server request's or routed call's deadline (`REQUEST_TIMEOUT`).
    RequestTimeout,
    /// A connection's `token_expiring` notification.
    TokenExpiryWarning,
    /// A connection's permissions lapse (close 4401).
    TokenExpiry,
    /// The oldest remembered idempotency key's dedupe window ends.
    DedupeExpiry,
}

impl TimerKind for HubTimer {
    const ALL: &'static [Self] = &[
        HubTimer::Heartbeat,
        HubTimer::HeartbeatTimeout,
        HubTimer::HistoryExpiry,
        HubTimer::RequestTimeout,
        HubTimer::TokenExpiryWarning,
        HubTimer::TokenExpiry,
        HubTimer::DedupeExpiry,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl From<ConnTimer> for HubTimer {
    fn from(t: ConnTimer) -> HubTimer {
        match t {
            ConnTimer::Ping => HubTimer::Heartbeat,
            ConnTimer::Idle => HubTimer::HeartbeatTimeout,
            ConnTimer::ExpiryWarning => HubTimer::TokenExpiryWarning,
            ConnTimer::Expiry => HubTimer::TokenExpiry,
        }
    }
}

/// Connections filed under their earliest deadline.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnDeadlines {
    set: BTreeSet<(Timestamp, ConnId)>,
}

impl ConnDeadlines {
    /// Files `id` under `next` (its table's minimum), moving it from where it was filed (`filed`).
    pub(crate) fn refile(
        &mut self,
        id: ConnId,
        filed: &mut Option<Timestamp>,
        next: Option<Timestamp>,
    ) {
        if *filed == next {
            return;
        }
        if let Some(at) = filed.take() {
            self.set.remove(&(at, id));
        }
        if let Some(at) = next {
            self.set.insert((at, id));
            *filed = Some(at);
        }
    }

    /// The connections due at `now`, earliest first, taken out of the index.
    pub(crate) fn take_due(&mut self, now: Timestamp) -> Vec<ConnId> {
        let mut due = Vec::new();
        while self.set.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, id)) = self.set.pop_first() {
                due.push(id);
            }
        }
        due
    }

    pub(crate) fn first(&self) -> Option<(Timestamp, ConnId)> {
        self.set.first().copied()
    }

    #[cfg(any(test, feature = "_internal_test_exports"))]
    pub(crate) fn contains(&self, at: Timestamp, id: ConnId) -> bool {
        self.set.contains(&(at, id))
    }

    #[cfg(any(test, feature = "_internal_test_exports"))]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether `id` is filed at all.
    #[cfg(any(test, feature = "_internal_test_exports"))]
    pub(crate) fn mentions(&self, id: ConnId) -> bool {
        self.set.iter().any(|&(_, c)| c == id)
    }
}

impl Hub {
    /// The deadline of the last [`HubOutput::Timeout`](super::HubOutput::Timeout) came (or any time after): sends
    /// due pings, closes silent connections, expires history, and fails server requests and routed calls whose
    /// time is up (`REQUEST_TIMEOUT`). Harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        for id in self.deadlines.take_due(now) {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            c.indexed_at = None;
            while let Some(due) = self.conns.get_mut(id).and_then(|c| c.poll_timer(now)) {
                match due {
                    Due::Ping if self.conns.get(id).is_some_and(|c| c.kind().is_sse()) => {
                        self.send_keep_alive(id);
                    }
                    Due::Ping => {
                        let ping = ServerMessage::ServerPing {
                            timestamp: now.as_millis(),
                        };
                        self.send_native(id, None, ping);
                    }
                    Due::Silent => {
                        self.counters.heartbeat_timeouts += 1;
                        if let Some(c) = self.conns.get_mut(id) {
                            self.outbox.close(
                                id,
                                c,
                                CloseCode::HeartbeatTimeout,
                                "heartbeat timeout",
                            );
                        }
                    }
                    Due::Expiring => self.warn_expiry(now, id),
                    Due::Expired => {
                        self.counters.token_expiries += 1;
                        if let Some(c) = self.conns.get_mut(id) {
                            self.outbox
                                .close(id, c, CloseCode::TokenExpired, "token expired");
                        }
                    }
                }
            }
            self.refile(id);
            self.reap(now);
        }
        self.store.expire(now);
        self.dedupe.expire(now);
        self.expire_pending(now);
        self.reap(now);
    }

    /// Files `id` in the deadline index under its timers' current minimum.
    pub(super) fn refile(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(id) {
            let next = c.heartbeat.next().map(|(at, _)| at);
            self.deadlines.refile(id, &mut c.indexed_at, next);
        }
    }

    /// The next deadline of the whole hub and why.
    pub(super) fn next_timeout(&self) -> Option<(Timestamp, HubTimer)> {
        let mut table = TimerTable::<HubTimer, 7>::new();
        if let Some((_, id)) = self.deadlines.first()
            && let Some((at, kind)) = self.conns.get(id).and_then(|c| c.heartbeat.next())
        {
            table.set(kind.into(), at);
        }
        if let Some(at) = self.store.next_expiry() {
            table.set(HubTimer::HistoryExpiry, at);
        }
        if let Some(at) = self.outstanding.next_deadline() {
            table.set(HubTimer::RequestTimeout, at);
        }
        if let Some(at) = self.dedupe.next_expiry() {
            table.set(HubTimer::DedupeExpiry, at);
        }
        table.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_refiles_and_takes_in_order() {
        let mut d = ConnDeadlines::default();
        let (a, b) = (ConnId::from_u64(1), ConnId::from_u64(2));
        let t = Timestamp::from_millis;
        let (mut fa, mut fb) = (None, None);
        d.refile(a, &mut fa, Some(t(20)));
        d.refile(b, &mut fb, Some(t(10)));
        assert_eq!(d.first(), Some((t(10), b)));
        d.refile(a, &mut fa, Some(t(5)));
        assert_eq!((d.len(), fa), (2, Some(t(5))));
        assert!(d.contains(t(5), a) && !d.contains(t(20), a));
        assert_eq!(d.take_due(t(9)), [a]);
        assert_eq!(d.take_due(t(100)), [b]);
        d.refile(b, &mut fb, None);
        assert_eq!((d.len(), fb), (0, None));
    }
}
