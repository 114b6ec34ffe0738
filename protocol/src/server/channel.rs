//! A channel as the hub keeps it: its subscribers (with their dialect, so a publish knows which frames to encode),
//! its offset and history ring, its retained state and the connection that serves its calls.
//!
//! A channel exists while anything refers to it or anything was ever published on it. One that never had an event
//! (offset 0) is forgotten once it has no subscriber, no server and no state: nothing is lost, and a later subscribe
//! starts it again at offset 0 in the same epoch. A channel with events keeps its offset for the life of the hub, so
//! offsets never go back within an epoch.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use serde_json::Value;

use super::conn::{ConnId, DialectKind};
use super::history::History;
use crate::time::Timestamp;

/// One channel.
#[derive(Debug, Clone, Default)]
pub(crate) struct Channel {
    /// Subscribers and the dialect each speaks.
    pub(crate) subscribers: BTreeMap<ConnId, DialectKind>,
    /// Subscribers per dialect, indexed by [`DialectKind::index`].
    pub(crate) by_dialect: [usize; 3],
    /// The offset of the last event (0 before the first).
    pub(crate) offset: u64,
    pub(crate) history: History,
    /// The retained event (`publish` with `retain: true`), shared with the history ring.
    pub(crate) state: Option<Arc<Value>>,
    /// The connection that answers `call`s.
    pub(crate) server: Option<ConnId>,
    /// The armed history-expiry timer.
    pub(crate) ttl_at: Option<Timestamp>,
}

impl Channel {
    /// Adds a subscriber; `false` when it already was one.
    pub(crate) fn subscribe(&mut self, conn: ConnId, kind: DialectKind) -> bool {
        if self.subscribers.insert(conn, kind).is_some() {
            return false;
        }
        self.by_dialect[kind.index()] += 1;
        true
    }

    /// Removes a subscriber; `false` when it was not one.
    pub(crate) fn unsubscribe(&mut self, conn: ConnId) -> bool {
        match self.subscribers.remove(&conn) {
            Some(kind) => {
                self.by_dialect[kind.index()] -= 1;
                true
            }
            None => false,
        }
    }

    /// Subscribers speaking `kind`.
    pub(crate) fn subscribers_of(&self, kind: DialectKind) -> usize {
        self.by_dialect[kind.index()]
    }

    /// Whether the hub may forget this channel without losing anything.
    pub(crate) fn is_forgettable(&self) -> bool {
        self.offset == 0
            && self.subscribers.is_empty()
            && self.server.is_none()
            && self.state.is_none()
            && self.ttl_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_subscribers() {
        let mut ch = Channel::default();
        let a = ConnId::from_u64(1);
        let b = ConnId::from_u64(2);
        assert!(ch.is_forgettable());
        assert!(ch.subscribe(a, DialectKind::Native));
        assert!(!ch.subscribe(a, DialectKind::Native));
        assert!(ch.subscribe(b, DialectKind::ChannelPayload));
        assert_eq!(ch.by_dialect, [1, 0, 1]);
        assert!(!ch.is_forgettable());
        assert!(ch.unsubscribe(a));
        assert!(!ch.unsubscribe(a));
        assert_eq!(ch.subscribers_of(DialectKind::Native), 0);
        assert!(ch.unsubscribe(b));
        assert!(ch.is_forgettable());
        ch.offset = 1;
        assert!(
            !ch.is_forgettable(),
            "a channel with events keeps its offset"
        );
    }
}
