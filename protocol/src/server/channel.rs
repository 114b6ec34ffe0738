//! A channel as the hub routes it: its subscribers (with their dialect, so a publish knows which frames to encode)
//! and the connection that serves its calls. Its events, offset and retained state are the
//! [store](super::store)'s.
//!
//! The hub keeps an entry while a connection subscribes to or serves the channel, and forgets it as soon as none
//! does: the store's log, if any, is not touched by that.

use alloc::collections::{BTreeMap, BTreeSet};

use super::conn_table::ConnId;
use super::dialect::DialectKind;

/// One channel's routing entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Channel {
    /// Subscribers and the dialect each speaks.
    pub(crate) subscribers: BTreeMap<ConnId, DialectKind>,
    /// Subscribers per dialect, indexed by [`DialectKind::index`].
    pub(crate) by_dialect: [usize; DialectKind::COUNT],
    /// The connection that answers `call`s.
    pub(crate) server: Option<ConnId>,
    /// Subscribers that asked for `join`/`leave` notifications (`subscribe` with `presence: true`); empty means
    /// presence costs this channel nothing.
    pub(crate) watchers: BTreeSet<ConnId>,
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
        self.watchers.remove(&conn);
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

    /// Whether nobody subscribes to or serves it, so the hub may forget it.
    pub(crate) fn is_unused(&self) -> bool {
        self.subscribers.is_empty() && self.server.is_none()
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
        assert!(ch.is_unused());
        assert!(ch.subscribe(a, DialectKind::Native));
        assert!(!ch.subscribe(a, DialectKind::Native));
        assert!(ch.subscribe(b, DialectKind::ChannelPayload));
        assert_eq!(ch.by_dialect, [1, 0, 1, 0, 0]);
        assert!(!ch.is_unused());
        assert!(ch.unsubscribe(a));
        assert!(!ch.unsubscribe(a));
        assert_eq!(ch.subscribers_of(DialectKind::Native), 0);
        assert!(ch.unsubscribe(b));
        assert!(ch.is_unused());
        ch.server = Some(a);
        assert!(!ch.is_unused(), "a served channel is kept");
    }
}
