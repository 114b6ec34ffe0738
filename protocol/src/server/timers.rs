//! The hub-wide deadline queue: every connection's heartbeat and silence check and every channel's history expiry,
//! as one ordered set of `(deadline, key)`. Its minimum, together with the earliest request deadline, is the only
//! deadline the driver sees ([`HubOutput::Timeout`](super::HubOutput::Timeout)), with its reason ([`HubTimer`]).
//!
//! Each key is armed at most once; its owner (the connection or channel) remembers the deadline it armed, so
//! disarming is an exact `O(log n)` removal. Silence checks and history expiry are armed lazily: they may fire
//! early, find nothing due yet, and re-arm at the real deadline, so the hot paths (every received frame, every
//! publish) never touch the queue.

use alloc::collections::BTreeSet;

use super::conn::ConnId;
use crate::time::Timestamp;
use crate::wire::ChannelName;

/// Why the hub asked to be woken ([`Hub::last_timeout_reason`](super::Hub::last_timeout_reason)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HubTimer {
    /// A connection's next `server_ping`.
    Heartbeat,
    /// A connection's silence check (close 4008).
    HeartbeatTimeout,
    /// A server request's or routed call's deadline (`REQUEST_TIMEOUT`).
    RequestTimeout,
    /// A channel's oldest kept event reaches `history_ttl`.
    HistoryExpiry,
}

/// What a deadline is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    Ping(ConnId),
    Idle(ConnId),
    HistoryTtl(ChannelName),
}

impl TimerKey {
    pub(crate) fn reason(&self) -> HubTimer {
        match self {
            TimerKey::Ping(_) => HubTimer::Heartbeat,
            TimerKey::Idle(_) => HubTimer::HeartbeatTimeout,
            TimerKey::HistoryTtl(_) => HubTimer::HistoryExpiry,
        }
    }

    /// The connection this key belongs to, if any.
    pub(crate) fn conn(&self) -> Option<ConnId> {
        match self {
            TimerKey::Ping(c) | TimerKey::Idle(c) => Some(*c),
            TimerKey::HistoryTtl(_) => None,
        }
    }
}

/// The queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerQueue {
    set: BTreeSet<(Timestamp, TimerKey)>,
}

impl TimerQueue {
    pub(crate) fn insert(&mut self, at: Timestamp, key: TimerKey) {
        self.set.insert((at, key));
    }

    /// Disarms `key` if it was armed at `at` (the owner's remembered deadline).
    pub(crate) fn remove(&mut self, at: Option<Timestamp>, key: TimerKey) {
        if let Some(at) = at {
            self.set.remove(&(at, key));
        }
    }

    /// The earliest deadline and its reason.
    pub(crate) fn first(&self) -> Option<(Timestamp, HubTimer)> {
        self.set.first().map(|(at, key)| (*at, key.reason()))
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, TimerKey)> {
        if self.set.first().is_some_and(|(at, _)| *at <= now) {
            self.set.pop_first()
        } else {
            None
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Timestamp, TimerKey)> + '_ {
        self.set.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_order_only_when_due() {
        let mut q = TimerQueue::default();
        let c = ConnId::from_u64(7);
        let t = Timestamp::from_millis;
        q.insert(t(20), TimerKey::Idle(c));
        q.insert(t(10), TimerKey::Ping(c));
        q.insert(t(10), TimerKey::HistoryTtl(ChannelName::new("a").unwrap()));
        assert_eq!(q.first(), Some((t(10), HubTimer::Heartbeat)));
        assert_eq!(q.pop_due(t(9)), None);
        assert_eq!(q.pop_due(t(10)), Some((t(10), TimerKey::Ping(c))));
        assert_eq!(q.first(), Some((t(10), HubTimer::HistoryExpiry)));
        q.remove(
            Some(t(10)),
            TimerKey::HistoryTtl(ChannelName::new("a").unwrap()),
        );
        q.remove(None, TimerKey::Idle(c));
        assert_eq!(q.len(), 1);
        assert_eq!(TimerKey::Idle(c).conn(), Some(c));
        assert_eq!(q.pop_due(Timestamp::MAX), Some((t(20), TimerKey::Idle(c))));
        assert_eq!(q.first(), None);
    }
}
