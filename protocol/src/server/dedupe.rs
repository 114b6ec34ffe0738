//! The dedupe table of idempotent publishing: per channel, the idempotency keys seen within the window and the
//! offsets their publish got, bounded per channel and in all.
//!
//! A key is first **in flight** (its publish is waiting for the store's write or the engine's answer): a publish
//! with the same key then waits for that one and is answered from its outcome. Once the original is kept the key is
//! **settled** with its offsets and the epoch they belong to, until the window has passed since, or the channel's
//! (or the hub's) cap pushes the oldest settled key out. A failed original forgets the key, so a retry publishes.
//!
//! Settled keys are numbered in settling order; since time only goes forward, the lowest number is also the first to
//! expire, so expiry and eviction are `O(log n)` and never scan.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::publish_answer::Answer;
use super::store::KeptKey;
use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey};

/// The table's bounds ([`HubConfig`](super::HubConfig)'s `dedupe_*` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) window: Duration,
    pub(crate) per_channel: usize,
    pub(crate) total: usize,
}

/// What a keyed publish finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen (or seen too long ago, or in another epoch): the key is now in flight, and the publish goes ahead.
    Fresh,
    /// Kept before, at these offsets: nothing is published.
    Duplicate { first: u64, last: u64 },
    /// The original is still in flight: its answer was held, to be given when the original ends.
    Held,
}

type Slot = (ChannelName, IdempotencyKey);

#[derive(Debug)]
enum Entry {
    InFlight { waiters: Vec<Answer> },
    Settled(Settled),
}

#[derive(Debug)]
struct Settled {
    seq: u64,
    /// `None` where the hub cannot tell a channel's epoch when the key settles (a node of a cluster).
    epoch: Option<String>,
    first: u64,
    last: u64,
}

/// The keys, in flight and settled.
#[derive(Debug)]
pub(crate) struct Dedupe {
    bounds: Bounds,
    entries: BTreeMap<Slot, Entry>,
    /// Settled keys by settling number, with when they settled.
    order: BTreeMap<u64, (Timestamp, Slot)>,
    /// Each channel's settled keys' numbers.
    per_channel: BTreeMap<ChannelName, BTreeSet<u64>>,
    next_seq: u64,
}

impl Dedupe {
    pub(crate) fn new(bounds: Bounds) -> Dedupe {
        Dedupe {
            bounds,
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
            per_channel: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Whether keys are remembered at all (a zero window, or zero caps, turn it off).
    pub(crate) fn is_on(&self) -> bool {
        !self.bounds.window.is_zero() && self.bounds.per_channel > 0 && self.bounds.total > 0
    }

    /// Looks `key` up on `channel` (whose epoch is now `epoch`) for a publish answered by `answer`: a fresh key is
    /// put in flight; a held answer is kept for [`settle`](Self::settle) or [`forget`](Self::forget). A key settled
    /// in another epoch is forgotten: its offsets name events of a history that is gone.
    pub(crate) fn check(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        key: &IdempotencyKey,
        epoch: Option<&str>,
        answer: &Answer,
    ) -> Seen {
        self.expire(now);
        let slot = (channel.clone(), key.clone());
        match self.entries.get_mut(&slot) {
            Some(Entry::InFlight { waiters }) => {
                waiters.push(answer.clone());
                return Seen::Held;
            }
            Some(Entry::Settled(s)) if same_epoch(s.epoch.as_deref(), epoch) => {
                return Seen::Duplicate {
                    first: s.first,
                    last: s.last,
                };
            }
            Some(Entry::Settled(_)) => self.remove(&slot),
            None => {}
        }
        self.entries.insert(
            slot,
            Entry::InFlight {
                waiters: Vec::new(),
            },
        );
        Seen::Fresh
    }

    /// The original publish of `key` was kept at `first..=last` in `epoch`: the key is settled (evicting the
    /// oldest settled keys past the caps), and the answers held for it are returned.
    pub(crate) fn settle(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        key: &IdempotencyKey,
        epoch: Option<String>,
        first: u64,
        last: u64,
    ) -> Vec<Answer> {
        let slot = (channel.clone(), key.clone());
        let waiters = match self.entries.remove(&slot) {
            Some(Entry::InFlight { waiters }) => waiters,
            _ => Vec::new(),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, (now, slot.clone()));
        let mine = self.per_channel.entry(channel.clone()).or_default();
        mine.insert(seq);
        let oldest_of_channel = (mine.len() > self.bounds.per_channel)
            .then(|| mine.first().copied())
            .flatten();
        self.entries.insert(
            slot,
            Entry::Settled(Settled {
                seq,
                epoch,
                first,
                last,
            }),
        );
        if let Some(oldest) = oldest_of_channel {
            self.evict(oldest);
        }
        while self.order.len() > self.bounds.total {
            let Some((&oldest, _)) = self.order.first_key_value() else {
                break;
            };
            self.evict(oldest);
        }
        waiters
    }

    /// The original publish of `key` failed: the key is forgotten (a retry publishes), and the answers held for it
    /// are returned (they are refused as the original was).
    pub(crate) fn forget(&mut self, channel: &ChannelName, key: &IdempotencyKey) -> Vec<Answer> {
        let slot = (channel.clone(), key.clone());
        match self.entries.get(&slot) {
            Some(Entry::InFlight { .. }) => match self.entries.remove(&slot) {
                Some(Entry::InFlight { waiters }) => waiters,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Forgets every settled key whose window has passed.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        while let Some((&seq, &(at, _))) = self.order.first_key_value() {
            if at + self.bounds.window > now {
                break;
            }
            self.evict(seq);
        }
    }

    /// When the oldest settled key's window ends.
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.order
            .first_key_value()
            .map(|(_, &(at, _))| at + self.bounds.window)
    }

    /// Takes in keys a store read back at start, oldest first, as if they had settled when they were published
    /// (the window runs from then; the caps apply).
    pub(crate) fn restore(&mut self, mut keys: Vec<KeptKey>) {
        keys.sort_by_key(|k| k.at);
        for k in keys {
            self.settle(k.at, &k.channel, &k.key, Some(k.epoch), k.first, k.last);
        }
    }

    /// The settled keys whose epoch is known, oldest first: what a store writes into a snapshot.
    pub(crate) fn export(&self) -> Vec<KeptKey> {
        self.order
            .values()
            .filter_map(|(at, slot)| match self.entries.get(slot) {
                Some(Entry::Settled(s)) => Some(KeptKey {
                    channel: slot.0.clone(),
                    key: slot.1.clone(),
                    epoch: s.epoch.clone()?,
                    first: s.first,
                    last: s.last,
                    at: *at,
                }),
                _ => None,
            })
            .collect()
    }

    /// Settled keys held.
    pub(crate) fn settled(&self) -> usize {
        self.order.len()
    }

    /// Keys whose publish is in flight.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.entries.len() - self.order.len()
    }

    fn evict(&mut self, seq: u64) {
        if let Some((_, slot)) = self.order.remove(&seq) {
            self.entries.remove(&slot);
            self.unfile(&slot.0, seq);
        }
    }

    /// Removes a settled entry.
    fn remove(&mut self, slot: &Slot) {
        if let Some(Entry::Settled(s)) = self.entries.remove(slot) {
            self.order.remove(&s.seq);
            self.unfile(&slot.0, s.seq);
        }
    }

    fn unfile(&mut self, channel: &ChannelName, seq: u64) {
        if let Some(mine) = self.per_channel.get_mut(channel) {
            mine.remove(&seq);
            if mine.is_empty() {
                self.per_channel.remove(channel);
            }
        }
    }
}

/// Whether a key settled in `then` may answer in `now`; an unknown epoch on either side (a cluster node that did
/// not follow the channel) does not tell them apart.
fn same_epoch(then: Option<&str>, now: Option<&str>) -> bool {
    match (then, now) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }
    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::new(k).unwrap()
    }
    const T: fn(u64) -> Timestamp = Timestamp::from_millis;

    fn table(per_channel: usize, total: usize) -> Dedupe {
        Dedupe::new(Bounds {
            window: Duration::from_millis(100),
            per_channel,
            total,
        })
    }

    #[test]
    fn fresh_held_settled_expired() {
        let mut d = table(10, 10);
        let (c, k, e) = (ch("c"), key("k"), Some("e"));
        assert_eq!(d.check(T(0), &c, &k, e, &Answer::Silent), Seen::Fresh);
        assert_eq!(d.check(T(1), &c, &k, e, &Answer::Silent), Seen::Held);
        assert_eq!(d.settle(T(2), &c, &k, e.map(Into::into), 4, 6).len(), 1);
        let dup = Seen::Duplicate { first: 4, last: 6 };
        assert_eq!(d.check(T(101), &c, &k, e, &Answer::Silent), dup);
        assert_eq!(d.next_expiry(), Some(T(102)));
        assert_eq!(d.check(T(102), &c, &k, e, &Answer::Silent), Seen::Fresh);
        assert_eq!((d.settled(), d.in_flight()), (0, 1));
    }

    #[test]
    fn another_epoch_is_fresh_and_a_failure_forgets() {
        let mut d = table(10, 10);
        let (c, k) = (ch("c"), key("k"));
        d.check(T(0), &c, &k, Some("a"), &Answer::Silent);
        d.settle(T(0), &c, &k, Some("a".into()), 1, 1);
        assert_eq!(
            d.check(T(1), &c, &k, Some("b"), &Answer::Silent),
            Seen::Fresh
        );
        assert_eq!(
            d.check(T(1), &c, &k, Some("b"), &Answer::Silent),
            Seen::Held
        );
        assert_eq!(d.forget(&c, &k).len(), 1);
        assert_eq!(
            d.check(T(2), &c, &k, Some("b"), &Answer::Silent),
            Seen::Fresh
        );
    }

    #[test]
    fn caps_push_out_the_oldest() {
        let mut d = table(2, 3);
        let (a, b) = (ch("a"), ch("b"));
        for (i, k) in ["1", "2", "3"].iter().enumerate() {
            d.check(T(0), &a, &key(k), None, &Answer::Silent);
            d.settle(T(0), &a, &key(k), None, i as u64, i as u64);
        }
        assert_eq!(d.settled(), 2, "the channel's cap");
        assert_eq!(
            d.check(T(0), &a, &key("1"), None, &Answer::Silent),
            Seen::Fresh
        );
        for k in ["x", "y"] {
            d.check(T(0), &b, &key(k), None, &Answer::Silent);
            d.settle(T(0), &b, &key(k), None, 9, 9);
        }
        assert_eq!(d.settled(), 3, "the hub's cap");
        assert!(matches!(
            d.check(T(0), &a, &key("3"), None, &Answer::Silent),
            Seen::Duplicate { .. }
        ));
        assert_eq!(
            d.check(T(0), &a, &key("2"), None, &Answer::Silent),
            Seen::Fresh
        );
    }

    /// Against a reference model (a map of keys to their range and when they settled, read through the window;
    /// caps large enough not to bind): every lookup answers as the model does, whatever the interleaving of
    /// publishes that are kept, publishes that fail, and time passing.
    mod model {
        use super::*;
        use alloc::collections::BTreeMap;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            /// A publish with key `k` on channel `c`, kept (`true`) or failed.
            Publish {
                c: u8,
                k: u8,
                kept: bool,
            },
            Advance(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u8..2, 0u8..4, prop::bool::weighted(0.8)).prop_map(|(c, k, kept)| Op::Publish {
                    c,
                    k,
                    kept
                }),
                (0u64..80).prop_map(Op::Advance),
            ]
        }

        proptest! {
            #[test]
            fn lookups_agree_with_a_map_read_through_the_window(ops in prop::collection::vec(op(), 1..60)) {
                let mut table = table(1000, 1000);
                let mut model: BTreeMap<(u8, u8), (u64, u64, u64)> = BTreeMap::new();
                let (mut now, mut next_offset) = (0u64, 1u64);
                for op in ops {
                    match op {
                        Op::Advance(ms) => now += ms,
                        Op::Publish { c, k, kept } => {
                            let (channel, k_name) = (ch(&alloc::format!("c{c}")), key(&alloc::format!("k{k}")));
                            let seen = table.check(T(now), &channel, &k_name, Some("e"), &Answer::Silent);
                            let live = model.get(&(c, k)).filter(|&&(_, _, at)| at + 100 > now);
                            match live {
                                Some(&(first, last, _)) => prop_assert_eq!(seen, Seen::Duplicate { first, last }),
                                None => {
                                    prop_assert_eq!(seen, Seen::Fresh);
                                    if kept {
                                        let (first, last) = (next_offset, next_offset + 1);
                                        next_offset += 2;
                                        table.settle(T(now), &channel, &k_name, Some("e".into()), first, last);
                                        model.insert((c, k), (first, last, now));
                                    } else {
                                        table.forget(&channel, &k_name);
                                        model.remove(&(c, k));
                                    }
                                }
                            }
                        }
                    }
                    let live = model.values().filter(|&&(_, _, at)| at + 100 > now).count();
                    table.expire(T(now));
                    prop_assert_eq!(table.settled(), live);
                    prop_assert_eq!(table.in_flight(), 0);
                }
            }
        }
    }
}
