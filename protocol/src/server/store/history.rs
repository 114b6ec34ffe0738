//! A channel's history ring in the [memory store](super::MemoryStore): the last `history_size` events, none older than
//! `history_ttl`, at most `history_bytes` of them (PROTOCOL §3).
//!
//! Entries have consecutive offsets, so the entry for offset `o` sits at index `o - first_offset` and every lookup
//! is `O(1)`. Each event is stored once, as an `Arc<Value>` shared with the retained state and never copied per
//! subscriber. An entry inserted at `at` is expired from `at + ttl` on; reads skip expired entries even before
//! [`History::prune`] has dropped them, so a lazily pruned ring answers exactly like an eagerly pruned one.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::Value;

use crate::time::Timestamp;

/// One kept event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The event's offset in its channel.
    pub(crate) offset: u64,
    /// When it was published (its TTL runs from here).
    pub(crate) at: Timestamp,
    /// The event, shared with the retained state.
    pub(crate) event: Arc<Value>,
    /// The length of the event's compact JSON encoding: what it counts against the byte budgets.
    pub(crate) bytes: usize,
    /// The store-wide append number: which of two channels' events is older (by publish order, not clock).
    pub(crate) seq: u64,
}

/// The ring.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct History {
    entries: VecDeque<Entry>,
    /// The sum of the entries' `bytes`.
    bytes: usize,
}

impl History {
    /// Appends an entry (offsets must follow on from the last one) and drops the oldest beyond `limit`.
    ///
    /// Insert times never go backwards (a driver whose clock does is clamped), so expired entries are always a
    /// prefix of the ring.
    pub(crate) fn push(&mut self, mut entry: Entry, limit: usize) {
        if let Some(last) = self.entries.back() {
            entry.at = entry.at.max(last.at);
        }
        debug_assert!(
            self.entries
                .back()
                .is_none_or(|last| last.offset + 1 == entry.offset),
            "history offsets must be consecutive"
        );
        self.bytes = self.bytes.saturating_add(entry.bytes);
        self.entries.push_back(entry);
        while self.entries.len() > limit {
            self.pop_front();
        }
    }

    /// Drops the oldest entries until the ring holds at most `limit` bytes (all of them when the newest alone is
    /// larger: the ring stays a run of consecutive offsets ending at the newest event).
    pub(crate) fn fit(&mut self, limit: usize) {
        while self.bytes > limit {
            self.pop_front();
        }
    }

    /// Drops the oldest entry.
    pub(crate) fn pop_front(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.bytes;
        Some(entry)
    }

    /// Drops every expired entry from the front. Entries are in publish order, so the front is the oldest.
    pub(crate) fn prune(&mut self, now: Timestamp, ttl: Duration) {
        while self.entries.front().is_some_and(|e| expired(e, now, ttl)) {
            self.pop_front();
        }
    }

    /// Drops every entry with an offset up to and including `through`.
    pub(crate) fn trim_through(&mut self, through: u64) {
        while self.entries.front().is_some_and(|e| e.offset <= through) {
            self.pop_front();
        }
    }

    /// Bytes of the stored entries (expired ones included until pruned).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The store-wide append number of the oldest stored entry.
    pub(crate) fn first_seq(&self) -> Option<u64> {
        self.entries.front().map(|e| e.seq)
    }

    /// The offset of the oldest stored entry.
    pub(crate) fn first_offset(&self) -> Option<u64> {
        self.entries.front().map(|e| e.offset)
    }

    /// When the oldest entry expires; `None` when the ring is empty.
    pub(crate) fn next_expiry(&self, ttl: Duration) -> Option<Timestamp> {
        self.entries.front().map(|e| e.at + ttl)
    }

    /// How many entries are stored (expired ones included until pruned).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every stored entry, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter()
    }

    /// The unexpired entries with offset greater than `after`, oldest first.
    pub(crate) fn after(
        &self,
        after: u64,
        now: Timestamp,
        ttl: Duration,
    ) -> impl Iterator<Item = &Entry> + '_ {
        let skip = match self.entries.front() {
            Some(first) if after >= first.offset => {
                usize::try_from(after - first.offset + 1).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        self.entries
            .iter()
            .skip(skip)
            .filter(move |e| !expired(e, now, ttl))
    }

    /// Whether every event with an offset in `after+1 ..= current` is still kept and unexpired: the condition for
    /// `recovered: true` (PROTOCOL §3). Vacuously true when `after == current`.
    pub(crate) fn covers(&self, after: u64, current: u64, now: Timestamp, ttl: Duration) -> bool {
        if after >= current {
            return after == current;
        }
        // The oldest unexpired entry must be at or before `after + 1`, and the ring ends at `current`.
        let mut unexpired = self.entries.iter().filter(|e| !expired(e, now, ttl));
        match (unexpired.next(), self.entries.back()) {
            (Some(first), Some(last)) => first.offset <= after + 1 && last.offset == current,
            _ => false,
        }
    }

    /// A page of at most `limit` unexpired events after `since` (all kept events when `None`). The events are the
    /// ring's own, shared: a page costs a pointer per event, whatever the events' size.
    pub(crate) fn page(
        &self,
        epoch: &str,
        since: Option<u64>,
        limit: usize,
        now: Timestamp,
        ttl: Duration,
    ) -> super::HistoryPage {
        let mut matching = self.after(since.unwrap_or(0), now, ttl).peekable();
        let start = matching
            .peek()
            .map(|e| e.offset.saturating_sub(1))
            .unwrap_or(0);
        let mut events = Vec::new();
        let mut last = since.unwrap_or(start);
        while events.len() < limit {
            let Some(e) = matching.next() else { break };
            last = e.offset;
            events.push((e.offset, Arc::clone(&e.event)));
        }
        super::HistoryPage {
            epoch: alloc::string::String::from(epoch),
            events,
            next_since: matching.peek().map(|_| last),
        }
    }
}

fn expired(entry: &Entry, now: Timestamp, ttl: Duration) -> bool {
    entry.at + ttl <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use serde_json::json;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    /// A ring holding offsets `from..=to`, offset `o` published at `o` seconds.
    fn ring(from: u64, to: u64, limit: usize) -> History {
        let mut h = History::default();
        for offset in from..=to {
            h.push(
                Entry {
                    offset,
                    at: ms(offset * 1000),
                    event: Arc::new(json!(offset)),
                    bytes: 10,
                    seq: offset,
                },
                limit,
            );
        }
        h
    }

    const TTL: Duration = Duration::from_secs(100);

    #[test]
    fn size_limit_drops_the_oldest() {
        let h = ring(1, 10, 3);
        let kept: Vec<u64> = h.iter().map(|e| e.offset).collect();
        assert_eq!(kept, vec![8, 9, 10]);
        assert!(ring(1, 3, 0).is_empty());
    }

    #[test]
    fn byte_budget_drops_the_oldest_and_counts_exactly() {
        let mut h = ring(1, 10, 100);
        assert_eq!(h.bytes(), 100);
        h.fit(35);
        assert_eq!(
            h.iter().map(|e| e.offset).collect::<Vec<_>>(),
            vec![8, 9, 10]
        );
        assert_eq!(h.bytes(), 30);
        h.trim_through(8);
        assert_eq!((h.bytes(), h.first_seq()), (20, Some(9)));
        h.prune(ms(1_000_000), TTL);
        assert_eq!((h.bytes(), h.first_seq()), (0, None));
        // A newest entry larger than the budget leaves the ring empty, never with a gap.
        let mut h = ring(1, 3, 100);
        h.push(
            Entry {
                offset: 4,
                at: ms(4000),
                event: Arc::new(json!(4)),
                bytes: 50,
                seq: 4,
            },
            100,
        );
        h.fit(40);
        assert!(h.is_empty() && h.bytes() == 0);
    }

    #[test]
    fn coverage() {
        let h = ring(1, 10, 3); // keeps 8, 9, 10
        let now = ms(10_000);
        assert!(h.covers(10, 10, now, TTL), "nothing missed");
        assert!(h.covers(9, 10, now, TTL));
        assert!(h.covers(7, 10, now, TTL), "8..=10 all kept");
        assert!(!h.covers(6, 10, now, TTL), "7 is gone");
        assert!(!h.covers(11, 10, now, TTL), "ahead of the channel");
        assert!(!History::default().covers(0, 1, now, TTL));
        assert!(History::default().covers(0, 0, now, TTL));
        // At 108 s, offset 8 (published at 8 s) has expired: 7 is no longer covered, 8 still is.
        assert!(!h.covers(7, 10, ms(108_000), TTL));
        assert!(h.covers(8, 10, ms(108_000), TTL));
        assert!(!h.covers(8, 10, ms(110_000), TTL), "everything expired");
        assert!(h.covers(10, 10, ms(110_000), TTL));
    }

    #[test]
    fn after_skips_old_and_expired() {
        let h = ring(1, 10, 100);
        let offs = |it: &mut dyn Iterator<Item = &Entry>| it.map(|e| e.offset).collect::<Vec<_>>();
        assert_eq!(offs(&mut h.after(7, ms(0), TTL)), vec![8, 9, 10]);
        assert_eq!(offs(&mut h.after(0, ms(0), TTL)).len(), 10);
        assert_eq!(offs(&mut h.after(10, ms(0), TTL)), Vec::<u64>::new());
        assert_eq!(offs(&mut h.after(0, ms(108_000), TTL)), vec![9, 10]);
    }

    #[test]
    fn prune_and_expiry() {
        let mut h = ring(1, 5, 100);
        assert_eq!(h.next_expiry(TTL), Some(ms(101_000)));
        h.prune(ms(103_000), TTL);
        assert_eq!(h.iter().map(|e| e.offset).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(h.next_expiry(TTL), Some(ms(104_000)));
        h.prune(ms(1_000_000), TTL);
        assert!(h.is_empty());
        assert_eq!(h.next_expiry(TTL), None);
    }

    #[test]
    fn pages() {
        let h = ring(1, 5, 100);
        let p = h.page("e", None, 2, ms(0), TTL);
        let a = |n: u64| Arc::new(json!(n));
        assert_eq!(p.events, vec![(1, a(1)), (2, a(2))]);
        assert_eq!(p.next_since, Some(2));
        let p = h.page("e", Some(2), 2, ms(0), TTL);
        assert_eq!(p.events, vec![(3, a(3)), (4, a(4))]);
        assert_eq!(p.next_since, Some(4));
        let p = h.page("e", Some(4), 2, ms(0), TTL);
        assert_eq!(p.events, vec![(5, a(5))]);
        assert_eq!(p.next_since, None);
        let p = h.page("e", Some(5), 2, ms(0), TTL);
        assert_eq!((p.events.len(), p.next_since), (0, None));
        let p = h.page("e", Some(1), 0, ms(0), TTL);
        assert_eq!((p.events.len(), p.next_since), (0, Some(1)));
        let p = h.page("e", None, 0, ms(0), TTL);
        assert_eq!((p.events.len(), p.next_since), (0, Some(0)));
        assert_eq!(p.epoch, "e");
    }

    #[test]
    fn a_page_shares_the_stored_events() {
        let h = ring(1, 3, 100);
        let p = h.page("e", None, 10, ms(0), TTL);
        for ((offset, paged), stored) in p.events.iter().zip(h.iter()) {
            assert_eq!(*offset, stored.offset);
            assert!(
                Arc::ptr_eq(paged, &stored.event),
                "offset {offset} was copied"
            );
        }
        assert_eq!(p.events.len(), 3);
    }
}
