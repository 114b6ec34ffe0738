//! [`MemoryStore`]: every channel's log in this process's memory, for the life of the hub. Each log has its own
//! epoch, drawn when the log is made from a generator seeded by the store's first epoch (itself drawn from the hub's
//! seed), so neither a restarted server's history nor a forgotten and recreated channel is ever mistaken for the old
//! one.
//!
//! A log is forgotten once it is **idle**: the hub has no interest in the channel ([`Store::hold`]), no append to it
//! is pending, and it keeps no history and no retained state. A log the hub holds is kept even empty, so a channel
//! subscribed to before its first publish keeps the epoch its subscribers were told. Forgetting is never a scan: a
//! log that may have become idle is checked where that happened (expiry, a trim, the end of the hub's interest) or,
//! inside an append (whose epoch the hub is about to send), filed to be checked at the next [`Store::expire`].
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
use super::{Appended, ChannelState, HistoryPage, KeptKey, Store, StoreStats};
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey, StreamPosition};

/// One channel's log.
#[derive(Debug, Clone)]
struct Log {
    /// This log's epoch: a log made again after being forgotten gets a new one.
    epoch: String,
    /// The hub has an interest in the channel (subscribers, a server).
    held: bool,
    /// Appends given an offset in this log and not yet kept (a durable store's writes in flight).
    pending: u32,
    /// Counted in [`MemoryStore::live`].
    live: bool,
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

impl Log {
    fn new(epoch: String) -> Log {
        Log {
            epoch,
            held: false,
            pending: 0,
            live: false,
            offset: 0,
            history: History::default(),
            state: None,
            expires_at: None,
            aged: None,
        }
    }

    /// Nothing keeps it: no interest, no pending append, no history, no retained state.
    fn is_idle(&self) -> bool {
        !self.held && self.pending == 0 && self.history.is_empty() && self.state.is_none()
    }

    /// Counts against `max_channels`: it has events, or one is on its way.
    fn is_live(&self) -> bool {
        self.offset > 0 || self.pending > 0
    }
}

/// Channels' logs in memory: the last `history_size` events of each, none older than `history_ttl`, within the byte
/// budgets.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    /// Draws the epochs of new logs.
    rng: Rng,
    /// The epoch the next new log takes: what a channel without a log reports.
    next_epoch: String,
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
    /// Every reader with a position (a handful: a forgotten channel's positions are dropped reader by reader).
    readers: BTreeSet<String>,
    /// Logs that may have become idle inside an append, checked at the next expiry.
    idle: BTreeSet<ChannelName>,
    /// When the first of `idle` was filed.
    idle_at: Option<Timestamp>,
    /// Logs with events or a pending append: what `max_channels` bounds.
    live: usize,
    /// Forgotten logs that had events, for a durable store to record; `None`: nobody records them.
    forgotten: Option<Vec<ChannelName>>,
}

impl MemoryStore {
    /// An empty store whose first log has `epoch` (the next ones' epochs are drawn from a generator seeded by it),
    /// with no byte budget (see [`with_history_bytes`](Self::with_history_bytes)).
    pub fn new(epoch: String, history_size: usize, history_ttl: Duration) -> MemoryStore {
        MemoryStore {
            rng: Rng::from_seed(seed_of(&epoch)),
            next_epoch: epoch,
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
            readers: BTreeSet::new(),
            idle: BTreeSet::new(),
            idle_at: None,
            live: 0,
            forgotten: None,
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

    /// A store holding `logs`, each `(channel, its epoch (`None`: draw a new one), offset of its last event, kept
    /// history oldest first, retained state)`, as a [durable store](super::DurableStore) reads them back; what has
    /// expired at `now` is dropped, and the byte budgets hold: the events are kept again oldest first (by publish
    /// time) over all channels. A log left with nothing is forgotten (nobody holds it yet). `epoch` seeds the
    /// epochs of new logs.
    pub(crate) fn restored(
        epoch: String,
        retention: Retention,
        now: Timestamp,
        logs: impl IntoIterator<Item = RestoredLog>,
    ) -> MemoryStore {
        let mut store = MemoryStore::new(epoch, retention.history_size, retention.history_ttl)
            .with_history_bytes(retention.history_bytes, retention.history_total_bytes);
        let ttl = store.history_ttl;
        let mut names = Vec::new();
        let mut entries = Vec::new();
        for (name, epoch, offset, kept, state) in logs {
            // Within a channel, times never go backwards, so the expired ones are a prefix and the rest stay
            // consecutive.
            let index = names.len();
            entries.extend(
                kept.into_iter()
                    .filter(|e| e.at + ttl > now)
                    .map(|e| (index, e)),
            );
            let epoch = epoch.unwrap_or_else(|| store.take_epoch());
            let live = offset > 0;
            store.live += usize::from(live);
            store.logs.insert(
                name.clone(),
                Log {
                    offset,
                    state,
                    live,
                    ..Log::new(epoch)
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
            store.forget_if_idle(name);
        }
        store
    }

    /// A new epoch, never given before by this store.
    fn draw_epoch(&mut self) -> String {
        alloc::format!("{:016x}", self.rng.next_u64())
    }

    /// The epoch for a new log: the one announced for channels without a log, replaced by a new one.
    fn take_epoch(&mut self) -> String {
        let fresh = self.draw_epoch();
        core::mem::replace(&mut self.next_epoch, fresh)
    }

    /// `channel`'s log, made (with the next epoch) when it has none.
    fn open(&mut self, channel: &ChannelName) -> &mut Log {
        if !self.logs.contains_key(channel) {
            let epoch = self.take_epoch();
            self.logs.insert(channel.clone(), Log::new(epoch));
        }
        self.logs
            .get_mut(channel)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Gives `channel`'s log (made if need be) one more pending append; returns its epoch.
    pub(crate) fn pend(&mut self, channel: &ChannelName) -> &str {
        self.open(channel).pending += 1;
        self.recount(channel);
        &self.logs[channel].epoch
    }

    /// A pending append of `channel` was kept or dropped; the log is forgotten at the next expiry if that left it
    /// idle.
    pub(crate) fn unpend(&mut self, now: Timestamp, channel: &ChannelName) {
        if let Some(log) = self.logs.get_mut(channel) {
            log.pending = log.pending.saturating_sub(1);
        }
        self.recount(channel);
        self.file_idle(now, channel);
    }

    /// Keeps `live` in step with `channel`'s log.
    fn recount(&mut self, channel: &ChannelName) {
        if let Some(log) = self.logs.get_mut(channel) {
            let live = log.is_live();
            if live != log.live {
                log.live = live;
                if live {
                    self.live += 1;
                } else {
                    self.live -= 1;
                }
            }
        }
    }

    /// Files `channel` to be forgotten at the next expiry if its log is idle (inside an append, whose epoch the
    /// hub is about to send, it is not forgotten at once).
    fn file_idle(&mut self, now: Timestamp, channel: &ChannelName) {
        if self.logs.get(channel).is_some_and(Log::is_idle) && self.idle.insert(channel.clone()) {
            self.idle_at = Some(self.idle_at.map_or(now, |at| at.min(now)));
        }
    }

    /// Forgets `channel`'s log if it is idle; returns whether it did.
    fn forget_if_idle(&mut self, channel: &ChannelName) -> bool {
        if !self.logs.get(channel).is_some_and(Log::is_idle) {
            return false;
        }
        let Some(log) = self.logs.remove(channel) else {
            return false;
        };
        if let Some(at) = log.expires_at {
            self.expiry.remove(&(at, channel.clone()));
        }
        if let Some(seq) = log.aged {
            self.age.remove(&(seq, channel.clone()));
        }
        if log.live {
            self.live -= 1;
        }
        if log.offset > 0 {
            // A reader's position means nothing in the next log of this name.
            for reader in &self.readers {
                self.cursors.remove(&(reader.clone(), channel.clone()));
            }
            if let Some(forgotten) = &mut self.forgotten {
                forgotten.push(channel.clone());
            }
        }
        if self.idle.remove(channel) && self.idle.is_empty() {
            self.idle_at = None;
        }
        true
    }

    /// Has the store list every forgotten log that had events, for [`take_forgotten`](Self::take_forgotten).
    pub(crate) fn record_forgotten(&mut self) {
        self.forgotten.get_or_insert_with(Vec::new);
    }

    /// The logs with events forgotten since the last call, in the order they were forgotten.
    pub(crate) fn take_forgotten(&mut self) -> Vec<ChannelName> {
        self.forgotten
            .as_mut()
            .map(core::mem::take)
            .unwrap_or_default()
    }

    /// Whether `channel` has a log with events or a pending append (it is not new to `max_channels`).
    pub(crate) fn is_live(&self, channel: &ChannelName) -> bool {
        self.logs.get(channel).is_some_and(|log| log.live)
    }

    /// The offset of `channel`'s oldest kept event (expired ones included until pruned).
    pub(crate) fn first_kept(&self, channel: &ChannelName) -> Option<u64> {
        self.logs.get(channel)?.history.first_offset()
    }

    /// Drops `channel`'s history up to and including `through` (its offset and state stay; a log left idle is
    /// forgotten at the next expiry).
    pub(crate) fn trim_through(&mut self, now: Timestamp, channel: &ChannelName, through: u64) {
        if let Some(log) = self.logs.get_mut(channel) {
            let before = log.history.bytes();
            log.history.trim_through(through);
            self.bytes -= before - log.history.bytes();
            if let Some(at) = log.expires_at.take() {
                self.expiry.remove(&(at, channel.clone()));
            }
            self.refile(channel);
        }
        self.file_idle(now, channel);
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
            self.forget_if_idle(&name);
        }
        if self.idle_at.is_some_and(|at| at <= now) {
            self.idle_at = None;
            for name in core::mem::take(&mut self.idle) {
                self.forget_if_idle(&name);
            }
        }
    }

    /// Every log: `(channel, epoch, offset of its last event, kept history oldest first, retained state)`.
    pub(crate) fn logs(
        &self,
    ) -> impl Iterator<
        Item = (
            &ChannelName,
            &str,
            u64,
            impl Iterator<Item = &Entry>,
            Option<&Arc<Value>>,
        ),
    > + '_ {
        self.logs.iter().map(|(name, log)| {
            (
                name,
                log.epoch.as_str(),
                log.offset,
                log.history.iter(),
                log.state.as_ref(),
            )
        })
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
        self.open(channel);
        let Some(log) = self.logs.get_mut(channel) else {
            return 0;
        };
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
        self.recount(channel);
        // An event kept neither in history (over a budget) nor as the state leaves the log idle.
        self.file_idle(now, channel);
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
        let now = entry.at;
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
        self.fit_total(now, trimmed);
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
    fn fit_total(&mut self, now: Timestamp, trimmed: &mut dyn FnMut(&ChannelName)) {
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
                self.file_idle(now, &name);
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
        self.readers = cursors.keys().map(|(reader, _)| reader.clone()).collect();
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

/// A log as a durable store reads it back: `(channel, epoch (`None`: a new one), offset of its last event, kept
/// history oldest first, retained state)`.
pub(crate) type RestoredLog = (
    ChannelName,
    Option<String>,
    u64,
    Vec<Entry>,
    Option<Arc<Value>>,
);

/// The seed of a store's epoch generator: its first epoch's FNV-1a hash.
fn seed_of(epoch: &str) -> u64 {
    epoch.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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

    /// Nothing to write down: the hub's table is all there is, and a restart starts with no history either.
    fn key_next(&mut self, _: Timestamp, _: &ChannelName, _: &IdempotencyKey, _: u64) {}

    fn take_restored_keys(&mut self) -> Vec<KeptKey> {
        Vec::new()
    }

    fn set_cursor(&mut self, name: &str, channel: &ChannelName, offset: u64) {
        if !self.readers.contains(name) {
            self.readers.insert(String::from(name));
        }
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

    fn epoch(&self, channel: &ChannelName) -> &str {
        self.logs
            .get(channel)
            .map_or(self.next_epoch.as_str(), |log| log.epoch.as_str())
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
            epoch: String::from(self.epoch(channel)),
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
        if after.epoch != self.epoch(channel) {
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
                .page(&log.epoch, since, limit, now, self.history_ttl),
            None => HistoryPage {
                epoch: self.next_epoch.clone(),
                events: Vec::new(),
                next_since: None,
            },
        }
    }

    fn next_expiry(&self) -> Option<Timestamp> {
        let history = self.expiry.first().map(|(at, _)| *at);
        match (history, self.idle_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn hold(&mut self, channel: &ChannelName) {
        self.open(channel).held = true;
    }

    fn release(&mut self, channel: &ChannelName) {
        if let Some(log) = self.logs.get_mut(channel) {
            log.held = false;
        }
        self.forget_if_idle(channel);
    }

    fn admits(&self, channel: &ChannelName, max_channels: usize) -> bool {
        self.is_live(channel) || self.live < max_channels
    }

    fn expire(&mut self, now: Timestamp) {
        self.expire_each(now, |_| ());
    }

    fn holds(&self, channel: &ChannelName) -> bool {
        self.logs.contains_key(channel)
    }

    fn channels_with_prefix(&self, prefix: &str) -> Vec<ChannelName> {
        // Names sort as strings, so the names with the prefix are one range, from the prefix itself on.
        self.logs
            .range::<str, _>((
                core::ops::Bound::Included(prefix),
                core::ops::Bound::Unbounded,
            ))
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| name.clone())
            .collect()
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
        let mut live = 0;
        for (name, log) in &self.logs {
            if log.live != log.is_live() {
                return Err(format!("{name}: live flag out of step"));
            }
            live += usize::from(log.live);
            if log.is_idle() && !self.idle.contains(name) {
                return Err(format!("{name}: idle and neither forgotten nor filed"));
            }
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
        if live != self.live {
            return Err(format!("{} live logs counted, {live} held", self.live));
        }
        if self.idle.iter().any(|name| !self.logs.contains_key(name))
            || self.idle.is_empty() != self.idle_at.is_none()
        {
            return Err(String::from("idle filing out of step"));
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
