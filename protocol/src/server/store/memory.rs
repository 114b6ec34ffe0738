//! [`MemoryStore`]: every channel's log in this process's memory, for the life of the hub. One epoch for every
//! channel, drawn when the store is made, so a restarted server's history is never mistaken for the old one.
//!
//! History is bounded four ways: events per channel (`history_size`), age (`history_ttl`), bytes per channel
//! (`history_bytes`) and bytes over all channels (`history_total_bytes`), an event counting the length of its
//! compact JSON. Past a byte budget the oldest events go first: the channel's own for its budget, the store's
//! oldest (by publish order) for the total. The retained state is not history: no budget drops it, and it is not
//! counted (one event per channel at most, shared with the history entry while that is kept).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::Value;

use super::history::{Entry, History};
use super::{Appended, ChannelState, HistoryPage, Store, StoreStats};
use crate::time::Timestamp;
use crate::wire::{ChannelName, StreamPosition};

/// One channel's log.
#[derive(Debug, Clone, Default)]
struct Log {
    /// The offset of the last event.
    offset: u64,
    history: History,
    /// The retained event, shared with the history ring.
    state: Option<Arc<Value>>,
    /// Where this log is filed in the expiry index.
    expires_at: Option<Timestamp>,
    /// Where this log is filed in the age index.
    aged: Option<u64>,
}

/// Channels' logs in memory: the last `history_size` events of each, none older than `history_ttl`, within the byte
/// budgets.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    epoch: String,
    history_size: usize,
    history_ttl: Duration,
    /// Bytes of history one channel may keep.
    history_bytes: usize,
    /// Bytes of history all channels together may keep.
    history_total_bytes: usize,
    logs: BTreeMap<ChannelName, Log>,
    /// Logs by the time their oldest kept event expires.
    expiry: BTreeSet<(Timestamp, ChannelName)>,
    /// Logs by the append number of their oldest kept event, filed lazily: a log's key is at most its oldest
    /// event's number (it only grows as history is dropped), so the first key that is exact is the store's oldest
    /// event, and a stale one is re-filed when it comes first. Every log with history is filed.
    age: BTreeSet<(u64, ChannelName)>,
    /// The next append number.
    next_seq: u64,
    /// Bytes of history over all channels.
    bytes: usize,
    /// Readers' positions, by reader and channel.
    cursors: BTreeMap<(String, ChannelName), u64>,
}

impl MemoryStore {
    /// An empty store whose channels all have `epoch`, with no byte budget (see
    /// [`with_history_bytes`](Self::with_history_bytes)).
    pub fn new(epoch: String, history_size: usize, history_ttl: Duration) -> MemoryStore {
        MemoryStore {
            epoch,
            history_size,
            history_ttl,
            history_bytes: usize::MAX,
            history_total_bytes: usize::MAX,
            logs: BTreeMap::new(),
            expiry: BTreeSet::new(),
            age: BTreeSet::new(),
            next_seq: 0,
            bytes: 0,
            cursors: BTreeMap::new(),
        }
    }

    /// The store with byte budgets: each channel keeps at most `per_channel` bytes of history, all channels together
    /// at most `total` (as [`HubConfig::history_bytes`](crate::server::HubConfig::history_bytes) and
    /// [`HubConfig::history_total_bytes`](crate::server::HubConfig::history_total_bytes)). Made before anything is
    /// kept.
    pub fn with_history_bytes(mut self, per_channel: usize, total: usize) -> MemoryStore {
        self.history_bytes = per_channel;
        self.history_total_bytes = total;
        self
    }

    /// A store holding `logs`, each `(channel, offset of its last event, kept history oldest first, retained
    /// state)`, as a [durable store](super::DurableStore) reads them back; what has expired at `now` is dropped,
    /// and the byte budgets hold: the events are kept again oldest first (by publish time) over all channels.
    pub(crate) fn restored(
        epoch: String,
        retention: Retention,
        now: Timestamp,
        logs: impl IntoIterator<Item = (ChannelName, u64, Vec<Entry>, Option<Arc<Value>>)>,
    ) -> MemoryStore {
        let mut store = MemoryStore::new(epoch, retention.history_size, retention.history_ttl)
            .with_history_bytes(retention.history_bytes, retention.history_total_bytes);
        let ttl = store.history_ttl;
        let mut names = Vec::new();
        let mut entries = Vec::new();
        for (name, offset, kept, state) in logs {
            // Within a channel, times never go backwards, so the expired ones are a prefix and the rest stay
            // consecutive.
            let index = names.len();
            entries.extend(
                kept.into_iter()
                    .filter(|e| e.at + ttl > now)
                    .map(|e| (index, e)),
            );
            store.logs.insert(
                name.clone(),
                Log {
                    offset,
                    state,
                    ..Log::default()
                },
            );
            names.push(name);
        }
        // A stable sort keeps each channel's order.
        entries.sort_by_key(|(_, e)| e.at);
        for (index, mut entry) in entries {
            entry.seq = store.next_seq;
            store.next_seq += 1;
            store.insert(&names[index], entry, &mut |_| ());
        }
        for name in &names {
            store.refile(name);
        }
        store
    }

    /// The offset of `channel`'s oldest kept event (expired ones included until pruned).
    pub(crate) fn first_kept(&self, channel: &ChannelName) -> Option<u64> {
        self.logs.get(channel)?.history.first_offset()
    }

    /// Drops `channel`'s history up to and including `through` (its offset and state stay).
    pub(crate) fn trim_through(&mut self, channel: &ChannelName, through: u64) {
        if let Some(log) = self.logs.get_mut(channel) {
            let before = log.history.bytes();
            log.history.trim_through(through);
            self.bytes -= before - log.history.bytes();
            if let Some(at) = log.expires_at.take() {
                self.expiry.remove(&(at, channel.clone()));
            }
            self.refile(channel);
        }
    }

    /// The channel whose oldest kept event is the oldest of all (by the lazy expiry index: close to it).
    pub(crate) fn oldest_channel(&self) -> Option<&ChannelName> {
        self.expiry.first().map(|(_, name)| name)
    }

    /// [`Store::expire`], calling `pruned` with every channel whose history it looked at.
    pub(crate) fn expire_each(&mut self, now: Timestamp, mut pruned: impl FnMut(&ChannelName)) {
        let ttl = self.history_ttl;
        while let Some((at, name)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            if let Some(log) = self.logs.get_mut(&name) {
                log.expires_at = None;
                let before = log.history.bytes();
                log.history.prune(now, ttl);
                self.bytes -= before - log.history.bytes();
            }
            self.refile(&name);
            pruned(&name);
        }
    }

    /// Every log: `(channel, offset of its last event, kept history oldest first, retained state)`.
    pub(crate) fn logs(
        &self,
    ) -> impl Iterator<
        Item = (
            &ChannelName,
            u64,
            impl Iterator<Item = &Entry>,
            Option<&Arc<Value>>,
        ),
    > + '_ {
        self.logs
            .iter()
            .map(|(name, log)| (name, log.offset, log.history.iter(), log.state.as_ref()))
    }

    /// Keeps `event` (`bytes` long as JSON) as `channel`'s next event; returns its offset. `trimmed` hears every
    /// other channel whose history the total budget shortened.
    pub(crate) fn keep(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Arc<Value>,
        bytes: usize,
        retain: bool,
        trimmed: &mut dyn FnMut(&ChannelName),
    ) -> u64 {
        let ttl = self.history_ttl;
        let log = self.logs.entry(channel.clone()).or_default();
        let before = log.history.bytes();
        log.history.prune(now, ttl);
        self.bytes -= before - log.history.bytes();
        log.offset += 1;
        let offset = log.offset;
        if retain {
            log.state = Some(Arc::clone(&event));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert(
            channel,
            Entry {
                offset,
                at: now,
                event,
                bytes,
                seq,
            },
            trimmed,
        );
        offset
    }

    /// Puts `entry` at the end of `channel`'s (existing) history and makes every limit hold again: the count and
    /// the channel's bytes by dropping its oldest, then the total by dropping the store's oldest.
    fn insert(
        &mut self,
        channel: &ChannelName,
        entry: Entry,
        trimmed: &mut dyn FnMut(&ChannelName),
    ) {
        let Some(log) = self.logs.get_mut(channel) else {
            return;
        };
        let before = log.history.bytes();
        log.history.push(entry, self.history_size);
        // An event over either budget is not kept (nor is anything before it).
        log.history
            .fit(self.history_bytes.min(self.history_total_bytes));
        self.bytes = self.bytes - before + log.history.bytes();
        // Lazily: a log already filed may fire early, find its oldest event not yet due, and re-file.
        if log.expires_at.is_none() {
            self.refile(channel);
        }
        self.file_age(channel);
        self.fit_total(trimmed);
    }

    /// Files `name`'s log in the age index if it has history and is not filed (a filed key stays valid: it can
    /// only be older than the log's oldest event).
    fn file_age(&mut self, name: &ChannelName) {
        let Some(log) = self.logs.get_mut(name) else {
            return;
        };
        if log.aged.is_none()
            && let Some(seq) = log.history.first_seq()
        {
            self.age.insert((seq, name.clone()));
            log.aged = Some(seq);
        }
    }

    /// Drops the store's oldest events until the total budget holds. Each step is `O(log channels)`; a stale
    /// age key costs one extra step, paid for by the event whose dropping made it stale.
    fn fit_total(&mut self, trimmed: &mut dyn FnMut(&ChannelName)) {
        while self.bytes > self.history_total_bytes {
            let Some((filed, name)) = self.age.pop_first() else {
                return;
            };
            let Some(log) = self.logs.get_mut(&name) else {
                continue;
            };
            log.aged = None;
            if log.history.first_seq() == Some(filed) {
                if let Some(entry) = log.history.pop_front() {
                    self.bytes -= entry.bytes;
                }
                trimmed(&name);
            }
            self.file_age(&name);
        }
    }

    /// Every reader position.
    pub(crate) fn cursors(&self) -> &BTreeMap<(String, ChannelName), u64> {
        &self.cursors
    }

    /// Sets every reader position at once (a restored store).
    pub(crate) fn set_cursors(&mut self, cursors: BTreeMap<(String, ChannelName), u64>) {
        self.cursors = cursors;
    }

    /// Files `name`'s log under its next expiry.
    fn refile(&mut self, name: &ChannelName) {
        let ttl = self.history_ttl;
        let Some(log) = self.logs.get_mut(name) else {
            return;
        };
        let next = log.history.next_expiry(ttl);
        if log.expires_at == next {
            return;
        }
        if let Some(at) = log.expires_at.take() {
            self.expiry.remove(&(at, name.clone()));
        }
        if let Some(at) = next {
            self.expiry.insert((at, name.clone()));
            log.expires_at = Some(at);
        }
    }
}

/// The retention a store is made with: what [`MemoryStore::new`] and
/// [`with_history_bytes`](MemoryStore::with_history_bytes) take, in one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    pub(crate) history_size: usize,
    pub(crate) history_ttl: Duration,
    pub(crate) history_bytes: usize,
    pub(crate) history_total_bytes: usize,
}

impl Store for MemoryStore {
    fn append(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Arc<Value>,
        bytes: usize,
        retain: bool,
    ) -> Appended {
        Appended::Kept(self.keep(now, channel, event, bytes, retain, &mut |_| ()))
    }

    fn set_cursor(&mut self, name: &str, channel: &ChannelName, offset: u64) {
        self.cursors
            .insert((String::from(name), channel.clone()), offset);
    }

    fn cursor(&self, name: &str, channel: &ChannelName) -> Option<u64> {
        self.cursors
            .get(&(String::from(name), channel.clone()))
            .copied()
    }

    fn cursors(&self, name: &str) -> Vec<(ChannelName, u64)> {
        self.cursors
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, channel), offset)| (channel.clone(), *offset))
            .collect()
    }

    fn epoch(&self, _channel: &ChannelName) -> &str {
        &self.epoch
    }

    fn offset(&self, channel: &ChannelName) -> u64 {
        self.logs.get(channel).map_or(0, |log| log.offset)
    }

    fn state(&self, channel: &ChannelName) -> ChannelState {
        let (offset, state) = self
            .logs
            .get(channel)
            .map_or((0, None), |log| (log.offset, log.state.as_deref().cloned()));
        ChannelState {
            epoch: self.epoch.clone(),
            offset,
            state,
        }
    }

    fn replay(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        after: &StreamPosition,
    ) -> Option<Vec<(u64, Arc<Value>)>> {
        if after.epoch != self.epoch {
            return None;
        }
        let ttl = self.history_ttl;
        let (offset, history) = match self.logs.get(channel) {
            Some(log) => (log.offset, &log.history),
            None => return (after.offset == 0).then(Vec::new),
        };
        if !history.covers(after.offset, offset, now, ttl) {
            return None;
        }
        Some(
            history
                .after(after.offset, now, ttl)
                .map(|e| (e.offset, Arc::clone(&e.event)))
                .collect(),
        )
    }

    fn page(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        since: Option<u64>,
        limit: usize,
    ) -> HistoryPage {
        match self.logs.get(channel) {
            Some(log) => log
                .history
                .page(&self.epoch, since, limit, now, self.history_ttl),
            None => HistoryPage {
                epoch: self.epoch.clone(),
                events: Vec::new(),
                next_since: None,
            },
        }
    }

    fn next_expiry(&self) -> Option<Timestamp> {
        self.expiry.first().map(|(at, _)| *at)
    }

    fn expire(&mut self, now: Timestamp) {
        self.expire_each(now, |_| ());
    }

    fn holds(&self, channel: &ChannelName) -> bool {
        self.logs.contains_key(channel)
    }

    fn stats(&self) -> StoreStats {
        StoreStats::new(
            self.logs.len(),
            self.logs.values().map(|log| log.history.len()).sum(),
            self.bytes,
        )
    }

    #[cfg(any(test, feature = "_internal_test_exports"))]
    fn check(&self) -> Result<(), String> {
        use alloc::format;
        let mut filed = 0;
        let mut aged = 0;
        let mut total = 0usize;
        for (name, log) in &self.logs {
            if log.history.len() > self.history_size {
                return Err(format!("{name}: history over history_size"));
            }
            let bytes: usize = log.history.iter().map(|e| e.bytes).sum();
            if bytes != log.history.bytes() {
                return Err(format!(
                    "{name}: {} bytes counted, {bytes} kept",
                    log.history.bytes()
                ));
            }
            if bytes > self.history_bytes {
                return Err(format!("{name}: {bytes} bytes over history_bytes"));
            }
            total += bytes;
            if log
                .history
                .iter()
                .zip(log.history.iter().skip(1))
                .any(|(a, b)| a.seq >= b.seq || b.seq >= self.next_seq)
            {
                return Err(format!("{name}: append numbers out of order"));
            }
            match (log.aged, log.history.first_seq()) {
                (Some(key), first) => {
                    aged += 1;
                    if !self.age.contains(&(key, name.clone())) {
                        return Err(format!("{name}: age not filed"));
                    }
                    if first.is_some_and(|first| key > first) {
                        return Err(format!("{name}: filed younger than its oldest event"));
                    }
                }
                (None, Some(_)) => return Err(format!("{name}: history without an age")),
                (None, None) => {}
            }
            let Some(mut next) = (log.offset + 1).checked_sub(log.history.len() as u64) else {
                return Err(format!("{name}: more history than events"));
            };
            for e in log.history.iter() {
                if e.offset != next {
                    return Err(format!(
                        "{name}: history offsets not consecutive up to {}",
                        log.offset
                    ));
                }
                next += 1;
            }
            match log.expires_at {
                Some(at) => {
                    filed += 1;
                    if !self.expiry.contains(&(at, name.clone())) {
                        return Err(format!("{name}: history expiry not filed"));
                    }
                }
                None if !log.history.is_empty() => {
                    return Err(format!("{name}: history without an expiry"));
                }
                None => {}
            }
        }
        if aged != self.age.len() {
            return Err(format!("{} ages filed, {aged} owned", self.age.len()));
        }
        if total != self.bytes || total > self.history_total_bytes {
            return Err(format!(
                "{} bytes counted, {total} kept (budget {})",
                self.bytes, self.history_total_bytes
            ));
        }
        if filed != self.expiry.len() {
            return Err(format!(
                "{} expiries filed, {filed} owned",
                self.expiry.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::AppendJson;
    use serde_json::json;

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).expect("valid")
    }

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    fn at(epoch: &str, offset: u64) -> StreamPosition {
        StreamPosition {
            epoch: String::from(epoch),
            offset,
        }
    }

    #[test]
    fn append_replay_state_and_expiry() {
        let mut s = MemoryStore::new(String::from("e"), 3, Duration::from_secs(10));
        let a = ch("a");
        assert_eq!(s.replay(ms(0), &a, &at("e", 0)), Some(Vec::new()));
        assert_eq!(
            s.replay(ms(0), &a, &at("e", 1)),
            None,
            "ahead of the channel"
        );
        for n in 1..=4 {
            assert_eq!(
                s.append_json(ms(n * 1000), &a, Arc::new(json!(n)), n == 2),
                Appended::Kept(n)
            );
        }
        assert_eq!(s.state(&a).offset, 4);
        assert_eq!(s.state(&a).state, Some(json!(2)));
        let offsets = |r: Option<Vec<(u64, Arc<Value>)>>| {
            r.map(|v| v.into_iter().map(|(o, _)| o).collect::<Vec<_>>())
        };
        assert_eq!(
            offsets(s.replay(ms(4000), &a, &at("e", 1))),
            Some(alloc::vec![2, 3, 4])
        );
        assert_eq!(
            offsets(s.replay(ms(4000), &a, &at("e", 0))),
            None,
            "1 was trimmed"
        );
        assert_eq!(
            offsets(s.replay(ms(4000), &a, &at("x", 1))),
            None,
            "another epoch"
        );
        // Filed lazily under offset 1's expiry: trimming 1 did not re-file it, so it may wake early.
        assert_eq!(s.next_expiry(), Some(ms(11_000)));
        s.expire(ms(13_500));
        assert_eq!(s.stats(), StoreStats::new(1, 1, 1));
        assert_eq!(s.next_expiry(), Some(ms(14_000)));
        assert_eq!(
            offsets(s.replay(ms(13_500), &a, &at("e", 3))),
            Some(alloc::vec![4])
        );
        s.expire(ms(20_000));
        assert_eq!(
            (s.next_expiry(), s.stats()),
            (None, StoreStats::new(1, 0, 0))
        );
        assert_eq!(
            s.state(&a).state,
            Some(json!(2)),
            "the state outlives its history"
        );
        assert!(s.holds(&a) && !s.holds(&ch("b")));
        assert_eq!(s.check(), Ok(()));
    }
}
