//! The memory store's byte budgets: per channel and over all channels, oldest first, exact counts, recovery past a
//! trimmed gap, the retained state left alone, and a property test against a model of plain queues.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::time::Duration;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use super::{AppendJson, MemoryStore, Store, StoreStats};
use crate::time::Timestamp;
use crate::wire::{ChannelName, StreamPosition, json_len};

fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).expect("valid")
}

fn ms(n: u64) -> Timestamp {
    Timestamp::from_millis(n)
}

/// An event whose JSON is exactly `bytes` long (at least 2).
fn sized(bytes: usize) -> Arc<Value> {
    let event = Value::String("x".repeat(bytes - 2));
    debug_assert_eq!(json_len(&event), bytes);
    Arc::new(event)
}

fn store(per_channel: usize, total: usize) -> MemoryStore {
    MemoryStore::new(String::from("e"), 1000, Duration::from_secs(3600))
        .with_history_bytes(per_channel, total)
}

fn offsets(store: &MemoryStore, channel: &str) -> Vec<u64> {
    store
        .page(ms(0), &ch(channel), None, 10_000)
        .events
        .into_iter()
        .map(|(o, _)| o)
        .collect()
}

fn from(offset: u64) -> StreamPosition {
    StreamPosition {
        epoch: String::from("e"),
        offset,
    }
}

#[test]
fn a_channel_over_its_bytes_drops_its_oldest() {
    let mut s = store(100, 1000);
    for _ in 0..10 {
        s.append_json(ms(0), &ch("a"), sized(30), false);
    }
    s.append_json(ms(0), &ch("b"), sized(30), false);
    assert_eq!(
        offsets(&s, "a"),
        [8, 9, 10],
        "90 bytes fit in 100, 120 do not"
    );
    assert_eq!(offsets(&s, "b"), [1]);
    assert_eq!(s.stats(), StoreStats::new(2, 4, 120));
    assert_eq!(s.check(), Ok(()));
}

#[test]
fn over_the_total_the_oldest_of_all_channels_go_first() {
    let mut s = store(1000, 100);
    // Published in the order a1, b1, a2, c1, b2: 20 bytes each, 100 in all.
    for name in ["a", "b", "a", "c", "b"] {
        s.append_json(ms(0), &ch(name), sized(20), false);
    }
    assert_eq!(s.stats().bytes, 100);
    s.append_json(ms(0), &ch("c"), sized(20), false);
    assert_eq!(
        (offsets(&s, "a"), offsets(&s, "b")),
        (Vec::from([2]), Vec::from([1, 2])),
        "a1 was the oldest"
    );
    s.append_json(ms(0), &ch("c"), sized(40), false);
    // b1 then a2 go: the oldest two, from two channels.
    assert_eq!(offsets(&s, "a"), Vec::<u64>::new());
    assert_eq!(offsets(&s, "b"), [2]);
    assert_eq!(offsets(&s, "c"), [1, 2, 3]);
    assert_eq!(s.stats(), StoreStats::new(3, 4, 100));
    assert_eq!(s.check(), Ok(()));
}

#[test]
fn recovery_past_a_trimmed_gap_is_refused() {
    let mut s = store(50, 1000);
    for _ in 0..5 {
        s.append_json(ms(0), &ch("a"), sized(20), false);
    }
    // Kept: 4 and 5. A subscriber at 3 can resume; one at 2 lost 3.
    assert_eq!(offsets(&s, "a"), [4, 5]);
    let replayed = |after| {
        s.replay(ms(0), &ch("a"), &from(after))
            .map(|events| events.into_iter().map(|(o, _)| o).collect::<Vec<_>>())
    };
    assert_eq!(replayed(3), Some(Vec::from([4, 5])));
    assert_eq!(replayed(2), None);
    assert_eq!(replayed(0), None);
    assert_eq!(replayed(5), Some(Vec::new()));
}

#[test]
fn an_event_over_the_budget_gets_its_offset_but_is_not_kept() {
    let mut s = store(50, 1000);
    s.append_json(ms(0), &ch("a"), sized(20), false);
    s.append_json(ms(0), &ch("b"), sized(20), false);
    assert_eq!(
        s.append_json(ms(0), &ch("a"), sized(51), true),
        super::Appended::Kept(2)
    );
    assert_eq!(s.offset(&ch("a")), 2);
    assert_eq!(offsets(&s, "a"), Vec::<u64>::new(), "history stays gapless");
    assert_eq!(
        s.replay(ms(0), &ch("a"), &from(1)),
        None,
        "2 cannot be replayed"
    );
    assert_eq!(s.replay(ms(0), &ch("a"), &from(2)), Some(Vec::new()));
    assert_eq!(offsets(&s, "b"), [1], "other channels keep theirs");
    assert_eq!(s.stats(), StoreStats::new(2, 1, 20));
    // Not history: the retained state is kept whatever its size.
    assert_eq!(s.state(&ch("a")).state.as_ref(), Some(&*sized(51)));
    s.append_json(ms(0), &ch("a"), sized(20), false);
    assert_eq!(offsets(&s, "a"), [3]);
    assert_eq!(s.check(), Ok(()));
}

#[test]
fn the_retained_state_outlives_a_total_trim_and_is_not_counted() {
    let mut s = store(1000, 60);
    s.append_json(ms(0), &ch("s"), sized(30), true);
    s.append_json(ms(0), &ch("a"), sized(30), false);
    s.append_json(ms(0), &ch("a"), sized(30), false);
    assert_eq!(offsets(&s, "s"), Vec::<u64>::new());
    assert_eq!(s.state(&ch("s")).state.as_ref(), Some(&*sized(30)));
    assert_eq!(s.stats().bytes, 60);
    assert_eq!(s.check(), Ok(()));
}

#[test]
fn expiry_and_count_trims_give_their_bytes_back() {
    let mut s = MemoryStore::new(String::from("e"), 2, Duration::from_secs(10))
        .with_history_bytes(1000, 1000);
    for n in 0..3 {
        s.append_json(ms(n * 1000), &ch("a"), sized(10 + n as usize), false);
    }
    assert_eq!(s.stats(), StoreStats::new(1, 2, 11 + 12));
    s.expire(ms(11_500));
    assert_eq!(s.stats(), StoreStats::new(1, 1, 12));
    s.trim_through(ms(11_500), &ch("a"), 3);
    assert_eq!(s.stats(), StoreStats::new(1, 0, 0));
    assert_eq!(s.check(), Ok(()));
    // Nothing keeps it any more: forgotten at the next expiry.
    assert_eq!(s.next_expiry(), Some(ms(11_500)));
    s.expire(ms(11_500));
    assert_eq!(s.stats(), StoreStats::new(0, 0, 0));
    assert_eq!(s.check(), Ok(()));
}

/// The reference: a queue of `(offset, bytes, number)` per channel, trimmed by scanning.
#[derive(Debug, Default)]
struct Model {
    channels: [VecDeque<(u64, usize, u64)>; 3],
    heads: [u64; 3],
    seq: u64,
}

impl Model {
    fn total(&self) -> usize {
        self.channels.iter().flatten().map(|e| e.1).sum()
    }

    /// Returns (trimmed by the channel's bytes, trimmed by the total, not kept at all).
    fn append(&mut self, c: usize, bytes: usize, per: usize, total: usize) -> (bool, bool, bool) {
        self.heads[c] += 1;
        self.seq += 1;
        let q = &mut self.channels[c];
        q.push_back((self.heads[c], bytes, self.seq));
        while q.len() > SIZE {
            q.pop_front();
        }
        let too_big = bytes > per.min(total);
        let mut by_channel = false;
        while q.iter().map(|e| e.1).sum::<usize>() > per.min(total) {
            q.pop_front();
            by_channel = true;
        }
        let mut by_total = false;
        while self.total() > total {
            let oldest = (0..3)
                .filter_map(|i| self.channels[i].front().map(|e| (e.2, i)))
                .min()
                .map(|(_, i)| i)
                .expect("something to trim");
            self.channels[oldest].pop_front();
            by_total = true;
        }
        (by_channel && !too_big, by_total, too_big)
    }
}

const SIZE: usize = 6;
const NAMES: [&str; 3] = ["a", "b", "c"];

/// The store and the model agree after every append, and the runs reach every kind of trim.
#[test]
fn the_store_trims_like_the_model() {
    let (per, total) = (100, 200);
    let reached = [Cell::new(0), Cell::new(0), Cell::new(0)];
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    let ops = proptest::collection::vec((0usize..3, 2usize..=110), 1..80);
    runner
        .run(&ops, |ops| {
            let mut s = MemoryStore::new(String::from("e"), SIZE, Duration::from_secs(3600))
                .with_history_bytes(per, total);
            let mut model = Model::default();
            for (c, bytes) in ops {
                let offset = s.append_json(ms(0), &ch(NAMES[c]), sized(bytes), false);
                let trims = model.append(c, bytes, per, total);
                for (hit, count) in [trims.0, trims.1, trims.2].into_iter().zip(&reached) {
                    count.set(count.get() + usize::from(hit));
                }
                prop_assert_eq!(offset.offset(), model.heads[c]);
                prop_assert_eq!(s.check(), Ok(()));
                let events: usize = model.channels.iter().map(VecDeque::len).sum();
                prop_assert_eq!(
                    s.stats(),
                    StoreStats::new(
                        model.heads.iter().filter(|h| **h > 0).count(),
                        events,
                        model.total()
                    )
                );
                for (i, name) in NAMES.iter().enumerate() {
                    let expected: Vec<u64> = model.channels[i].iter().map(|e| e.0).collect();
                    prop_assert_eq!(offsets(&s, name), expected.clone());
                    // Replay from every position: all of it, or nothing once a trimmed event is missing.
                    for after in 0..=model.heads[i] {
                        let at = StreamPosition {
                            epoch: String::from(s.epoch(&ch(name))),
                            offset: after,
                        };
                        let replayed = s.replay(ms(0), &ch(name), &at);
                        let whole = after == model.heads[i]
                            || expected.first().is_some_and(|first| *first <= after + 1);
                        prop_assert_eq!(replayed.is_some(), whole, "{} after {}", name, after);
                    }
                }
            }
            Ok(())
        })
        .expect("the store agrees with the model");
    let [by_channel, by_total, too_big] = reached.map(Cell::into_inner);
    assert!(
        by_channel > 0 && by_total > 0 && too_big > 0,
        "trims reached: channel {by_channel}, total {by_total}, too big {too_big}"
    );
}

#[test]
fn json_length_is_what_the_store_counts() {
    let mut s = store(1000, 1000);
    let event = json!({"a": [1, 2, 3], "b": "é"});
    s.append_json(ms(0), &ch("a"), Arc::new(event.clone()), false);
    assert_eq!(
        s.stats().bytes,
        serde_json::to_string(&event).expect("json").len()
    );
}
