//! [`DurableStore`]: the committed data in a [`MemoryStore`] (every read is served from memory), the appends not
//! yet written in order behind it, and the write and snapshot schedule. See the [module docs](super).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::Value;

use super::config::{DurableConfig, FsyncPolicy};
use super::record::{HEADER_LEN, Record, header};
use super::write::{SnapshotJob, StoreWrite};
use crate::server::store::{
    Appended, ChannelState, HistoryPage, KeptKey, MemoryStore, Store, StoreStats,
};
use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey, StreamPosition};

/// How long after a failed snapshot the store asks for the next one.
const SNAPSHOT_RETRY: core::time::Duration = core::time::Duration::from_secs(10);

/// An operation whose record is in the write queue, in order.
#[derive(Debug)]
enum Op {
    /// A pending append.
    Append {
        channel: ChannelName,
        offset: u64,
        at: Timestamp,
        event: Arc<Value>,
        bytes: usize,
        retain: bool,
        len: u32,
        /// Written in the same write as the next append (they are one batch publish).
        joined: bool,
    },
    /// A reader's position.
    Cursor {
        name: String,
        channel: ChannelName,
        offset: u64,
        len: u32,
    },
    /// The budget dropped history (already gone from memory; the record makes a restart agree), a log was
    /// forgotten, or a new log begins (its epoch, before its first event).
    Trim { len: u32 },
    /// An idempotency key, before the first append of its publish and written with the whole publish.
    Key { len: u32 },
}

impl Op {
    /// Whether the next append must go in the same write: `Some` for an append, `None` for the other records
    /// (which leave the answer to the appends around them).
    fn joins_next(&self) -> Option<bool> {
        match self {
            Op::Append { joined, .. } => Some(*joined),
            // Like the other records, it goes in one write with the append after it: its publish's first event.
            Op::Key { .. } | Op::Cursor { .. } | Op::Trim { .. } => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            Op::Append { len, .. }
            | Op::Cursor { len, .. }
            | Op::Trim { len }
            | Op::Key { len } => *len as usize,
        }
    }
}

/// The write the driver is doing.
#[derive(Debug)]
struct InFlight {
    batch: u64,
    ops: usize,
    bytes: u64,
    create: bool,
}

/// A snapshot the driver is writing.
#[derive(Debug)]
struct RunningSnapshot {
    /// The last log segment it replaces.
    covers: u64,
    /// Bytes of log in the segments it replaces.
    log_bytes: u64,
    /// Bytes of history (as log records) it holds.
    live_bytes: u64,
}

/// Bytes of each kept event's record, per channel, for the disk budget.
#[derive(Debug, Default)]
struct Footprint {
    lens: VecDeque<(u64, u32)>,
    bytes: u64,
}

/// The durable store. See the [module docs](super).
#[derive(Debug)]
pub struct DurableStore {
    config: DurableConfig,
    /// What is written: every read comes from here.
    mem: MemoryStore,
    /// The last offset given to a channel with appends not yet written.
    assigned: BTreeMap<ChannelName, u64>,
    /// Operations not yet written, oldest first: those of the write in flight, then the queued ones.
    ops: VecDeque<Op>,
    /// The records of the queued operations (not those in flight).
    queued: Vec<u8>,
    in_flight: Option<InFlight>,
    /// The last write failed (and none succeeded since).
    write_failed: bool,
    /// Appends still to come of a batch publish ([`Store::group_next`]).
    group_left: usize,
    next_batch: u64,
    /// The log segment being appended to, whether it exists yet, and its length.
    segment: u64,
    segment_exists: bool,
    segment_len: u64,
    /// Bytes of log written since the last snapshot, and that snapshot's length.
    log_bytes: u64,
    snapshot_bytes: u64,
    /// A snapshot asked for and not yet taken by the driver, or being written (with the log bytes it covers).
    snapshot_ready: Option<SnapshotJob>,
    snapshot_running: Option<RunningSnapshot>,
    /// What the last snapshot held besides history, in bytes: the disk budget leaves it room.
    snapshot_overhead: u64,
    /// The log since the last snapshot went past its share of the disk budget where nothing else could be done
    /// (a write unit larger than the share, a failed snapshot, a smaller budget than the files were written
    /// under); the next snapshot ends it.
    log_over_share: bool,
    snapshot_not_before: Timestamp,
    /// A snapshot is wanted whatever the log's size (the files read back were damaged).
    snapshot_due: bool,
    /// Kept events' record sizes, only with a disk budget.
    footprint: BTreeMap<ChannelName, Footprint>,
    live_bytes: u64,
    /// Idempotency keys read back at start, until the hub takes them.
    restored_keys: Vec<KeptKey>,
    /// The key of the publish whose appends come next ([`Store::key_next`]), with its channel and event count.
    key_next: Option<(ChannelName, IdempotencyKey, u64)>,
}

impl DurableStore {
    /// The operations, and their bytes, of the first write under `--fsync always`: one append with what precedes
    /// it, or the whole of a batch publish.
    fn first_unit(&self) -> (usize, usize) {
        let (mut ops, mut len) = (0, 0);
        for op in &self.ops {
            ops += 1;
            len += op.len();
            if op.joins_next() == Some(false) {
                break;
            }
        }
        (ops, len)
    }

    /// An empty store with epoch `epoch` (a data directory never written to).
    pub fn new(config: DurableConfig, epoch: String) -> DurableStore {
        let mem = MemoryStore::new(epoch, config.history_size, config.history_ttl)
            .with_history_bytes(config.history_bytes, config.history_total_bytes);
        DurableStore::restored(config, mem, 1)
    }

    pub(super) fn restored(
        config: DurableConfig,
        mem: MemoryStore,
        next_segment: u64,
    ) -> DurableStore {
        let mut mem = mem;
        mem.record_forgotten();
        let mut store = DurableStore {
            config,
            mem,
            assigned: BTreeMap::new(),
            ops: VecDeque::new(),
            queued: Vec::new(),
            in_flight: None,
            write_failed: false,
            group_left: 0,
            next_batch: 1,
            segment: next_segment,
            segment_exists: false,
            segment_len: 0,
            log_bytes: 0,
            snapshot_bytes: 0,
            snapshot_ready: None,
            snapshot_running: None,
            snapshot_overhead: 0,
            log_over_share: false,
            snapshot_not_before: Timestamp::ZERO,
            snapshot_due: false,
            footprint: BTreeMap::new(),
            live_bytes: 0,
            restored_keys: Vec::new(),
            key_next: None,
        };
        if store.config.max_disk_bytes.is_some() {
            let mut footprint: BTreeMap<ChannelName, Footprint> = BTreeMap::new();
            for (name, _, _, history, _) in store.mem.logs() {
                let fp = footprint.entry(name.clone()).or_default();
                for entry in history {
                    let len = event_record_len(name, entry.offset, entry.at, &entry.event);
                    fp.lens.push_back((entry.offset, len));
                    fp.bytes += u64::from(len);
                }
            }
            store.live_bytes = footprint.values().map(|fp| fp.bytes).sum();
            store.footprint = footprint;
            // Over the budget (a smaller one than the files were written under, or a trim whose record the crash
            // took), the store holds what it read until its first write, made at once, trims: a restart never
            // drops an event the previous run still held before it has written anything.
        }
        store
    }

    /// What the files read back hold: the snapshot's bytes and the log's after it, so the snapshot schedule goes on
    /// where the previous run left it.
    pub(super) fn set_file_sizes(&mut self, snapshot_bytes: u64, log_bytes: u64) {
        self.snapshot_bytes = snapshot_bytes;
        self.log_bytes = log_bytes;
        self.log_over_share = self.config.share().is_some_and(|share| log_bytes > share);
    }

    /// Asks for a snapshot as soon as the first write is done: the files read back were damaged, and a whole
    /// snapshot of what was kept replaces them.
    pub(super) fn want_snapshot(&mut self) {
        self.snapshot_due = true;
    }

    /// The idempotency keys the files held, for the hub's table.
    pub(super) fn set_restored_keys(&mut self, keys: Vec<KeptKey>) {
        self.restored_keys = keys;
    }

    /// The store's settings.
    pub fn config(&self) -> &DurableConfig {
        &self.config
    }

    /// Bytes of kept history counted against the disk budget (0 without a budget).
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    fn queue(&mut self, record: &Record, op: impl FnOnce(u32) -> Op) {
        let len = record.encode(&mut self.queued);
        self.ops
            .push_back(op(u32::try_from(len).unwrap_or(u32::MAX)));
    }

    /// Brings `channel`'s footprint in line with its history in memory.
    fn sync_footprint(&mut self, channel: &ChannelName) {
        let Some(fp) = self.footprint.get_mut(channel) else {
            return;
        };
        let first = self.mem.first_kept(channel).unwrap_or(u64::MAX);
        while let Some(&(offset, len)) = fp.lens.front() {
            if offset >= first {
                break;
            }
            fp.lens.pop_front();
            fp.bytes -= u64::from(len);
            self.live_bytes -= u64::from(len);
        }
    }

    /// Queues a `Forget` record for every log with events the memory store forgot, and drops its footprint.
    fn record_forgotten(&mut self) {
        for channel in self.mem.take_forgotten() {
            if let Some(fp) = self.footprint.remove(&channel) {
                self.live_bytes -= fp.bytes;
            }
            self.queue(&Record::Forget { channel }, |len| Op::Trim { len });
        }
    }

    /// Drops the oldest history until what is kept fits the budget.
    fn enforce_budget(&mut self, now: Timestamp) {
        let Some(limit) = self.config.live_limit(self.snapshot_overhead) else {
            return;
        };
        while self.live_bytes > limit {
            let Some(name) = self.mem.oldest_channel().cloned() else {
                return;
            };
            let Some(first) = self.mem.first_kept(&name) else {
                return;
            };
            self.mem.trim_through(now, &name, first);
            self.sync_footprint(&name);
            let record = Record::Trim {
                channel: name,
                through: first,
            };
            self.queue(&record, |len| Op::Trim { len });
        }
    }

    /// Makes a snapshot job of what is written, when the log calls for one. The log rolls to a new segment so
    /// the snapshot covers exactly the segments before it.
    fn consider_snapshot(&mut self, now: Timestamp) {
        if self.in_flight.is_some()
            || self.snapshot_ready.is_some()
            || self.snapshot_running.is_some()
            || now < self.snapshot_not_before
            || !self.segment_exists
            // A segment with no record yet: a snapshot would replace nothing (and begin the next such segment).
            || (self.segment_len <= HEADER_LEN as u64 && !self.snapshot_due)
            || (!self.snapshot_due
                && self.log_bytes < self.config.log_limit(self.snapshot_bytes)
                && !self.log_full())
        {
            return;
        }
        self.snapshot_due = false;
        let covers = self.segment;
        self.snapshot_ready = Some(SnapshotJob {
            covers,
            store: alloc::boxed::Box::new(self.mem.clone()),
            keys: Vec::new(),
        });
        self.snapshot_running = Some(RunningSnapshot {
            covers,
            log_bytes: self.log_bytes,
            live_bytes: self.live_bytes,
        });
        self.log_bytes = 0;
        self.log_over_share = false;
        self.roll();
    }

    /// Under a disk budget, whether the next write unit would take the log past its share (asked only while the
    /// segment exists, so no header comes with it).
    fn log_full(&self) -> bool {
        self.config.share().is_some_and(|share| {
            !self.ops.is_empty() && self.log_bytes + self.first_unit().1 as u64 > share
        })
    }

    /// The first `max_ops` operations' longest run of whole write units within `room` bytes: (operations, bytes).
    fn units_within(&self, max_ops: usize, room: u64) -> (usize, usize) {
        let (mut fit, mut fit_len) = (0, 0);
        let (mut ops, mut len) = (0, 0);
        for op in self.ops.iter().take(max_ops) {
            ops += 1;
            len += op.len();
            if len as u64 > room {
                break;
            }
            if op.joins_next() == Some(false) || ops == max_ops {
                (fit, fit_len) = (ops, len);
            }
        }
        (fit, fit_len)
    }

    fn roll(&mut self) {
        if self.segment_exists {
            self.segment += 1;
            self.segment_exists = false;
            self.segment_len = 0;
        }
    }
}

fn event_record_len(channel: &ChannelName, offset: u64, at: Timestamp, event: &Arc<Value>) -> u32 {
    let mut buf = Vec::new();
    let len = Record::Event {
        channel: channel.clone(),
        offset,
        at,
        retain: false,
        event: Arc::clone(event),
    }
    .encode(&mut buf);
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Store for DurableStore {
    fn append(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Arc<Value>,
        bytes: usize,
        retain: bool,
    ) -> Appended {
        let offset = match self.assigned.get(channel) {
            Some(last) => last + 1,
            None => self.mem.offset(channel) + 1,
        };
        self.assigned.insert(channel.clone(), offset);
        // The log's epoch is fixed now (the event's record names its offset in it), and the log is kept until the
        // append is written or dropped.
        let epoch = String::from(self.mem.pend(channel));
        if offset == 1 {
            // A new log: its epoch goes before its first event, so a restore knows it from an older log's.
            let record = Record::Channel {
                channel: channel.clone(),
                head: 0,
                epoch: Some(epoch),
            };
            self.queue(&record, |len| Op::Trim { len });
        }
        if let Some((keyed, key, count)) = self.key_next.take()
            && keyed == *channel
        {
            // Before the publish's events, in their write: a restore keeps the key only with every event it
            // names, and cuts a key whose events the crash tore off together with them.
            let record = Record::Key(KeptKey {
                channel: keyed,
                key,
                epoch: String::from(self.mem.epoch(channel)),
                first: offset,
                last: offset + count - 1,
                at: now,
            });
            self.queue(&record, |len| Op::Key { len });
        }
        let record = Record::Event {
            channel: channel.clone(),
            offset,
            at: now,
            retain,
            event,
        };
        let len = record.encode(&mut self.queued);
        let Record::Event {
            channel, event, at, ..
        } = record
        else {
            unreachable!("built above")
        };
        self.group_left = self.group_left.saturating_sub(1);
        let unit_done = self.group_left == 0;
        self.ops.push_back(Op::Append {
            channel,
            offset,
            at,
            event,
            bytes,
            retain,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            joined: !unit_done,
        });
        if unit_done {
            // A log at its share of a disk budget is snapshotted before this waits behind it.
            self.consider_snapshot(now);
        }
        Appended::Pending(offset)
    }

    fn group_next(&mut self, count: usize) {
        self.group_left = count;
    }

    fn key_next(
        &mut self,
        _now: Timestamp,
        channel: &ChannelName,
        key: &IdempotencyKey,
        count: u64,
    ) {
        self.key_next = Some((channel.clone(), key.clone(), count.max(1)));
    }

    fn take_restored_keys(&mut self) -> Vec<KeptKey> {
        core::mem::take(&mut self.restored_keys)
    }

    fn poll_write(&mut self) -> Option<StoreWrite> {
        if self.in_flight.is_some() {
            return None;
        }
        if self.segment_exists && self.segment_len >= self.config.segment_bytes {
            self.roll();
        }
        let create = !self.segment_exists;
        // A segment is begun with nothing to write only while writes succeed: after a failure (a full disk) the
        // next attempt waits for something to keep, or the driver would retry the empty write without end.
        if self.ops.is_empty() && (!create || self.write_failed) {
            return None;
        }
        let (mut ops, mut len) = match self.config.fsync {
            // One event per write and sync, a batch publish's events being one.
            FsyncPolicy::Always => self.first_unit(),
            FsyncPolicy::Batch | FsyncPolicy::Off => (self.ops.len(), self.queued.len()),
        };
        let share = self.config.share();
        if let Some(share) = share {
            let header = if create { HEADER_LEN as u64 } else { 0 };
            let room = share.saturating_sub(self.log_bytes + header);
            if len as u64 > room {
                (ops, len) = match self.units_within(ops, room) {
                    (0, _) if self.snapshot_ready.is_some() || self.snapshot_running.is_some() => {
                        // The log is at its share of the budget: the snapshot being written makes room for it.
                        return None;
                    }
                    // No snapshot is coming soon (one failed, or the log was read back at start and has no
                    // segment to snapshot yet): the store writes past the log's share rather than stop.
                    (0, _) => {
                        self.log_over_share = true;
                        self.first_unit()
                    }
                    fit => fit,
                };
            } else if self.log_bytes + header > share {
                // A share smaller than a segment's header.
                self.log_over_share = true;
            }
        }
        let mut bytes = Vec::with_capacity(len + if create { 64 } else { 0 });
        if create {
            bytes.extend_from_slice(&header());
        }
        bytes.extend(self.queued.drain(..len));
        let batch = self.next_batch;
        self.next_batch += 1;
        self.in_flight = Some(InFlight {
            batch,
            ops,
            bytes: bytes.len() as u64,
            create,
        });
        let sync = match self.config.fsync {
            FsyncPolicy::Always | FsyncPolicy::Batch => true,
            FsyncPolicy::Off => create,
        };
        Some(StoreWrite {
            batch,
            segment: self.segment,
            offset: self.segment_len,
            // What this segment will hold before it rolls (at its size, or at the next snapshot).
            reserve: if create {
                let log = match share {
                    Some(share) => share.saturating_sub(self.log_bytes),
                    None => self.config.log_limit(self.snapshot_bytes),
                };
                self.config.segment_bytes.min(log)
            } else {
                0
            },
            create,
            bytes,
            sync,
        })
    }

    fn handle_written(&mut self, now: Timestamp, batch: u64) -> usize {
        let Some(flight) = self.in_flight.take_if(|f| f.batch == batch) else {
            return 0;
        };
        self.write_failed = false;
        self.segment_exists = true;
        self.segment_len += flight.bytes;
        self.log_bytes += flight.bytes;
        let mut appends = 0;
        let mut trimmed: Vec<ChannelName> = Vec::new();
        let done: Vec<Op> = self.ops.drain(..flight.ops).collect();
        for op in done {
            match op {
                Op::Append {
                    channel,
                    offset,
                    at,
                    event,
                    bytes,
                    retain,
                    len,
                    ..
                } => {
                    appends += 1;
                    let kept = self
                        .mem
                        .keep(at, &channel, event, bytes, retain, &mut |name| {
                            trimmed.push(name.clone());
                        });
                    debug_assert_eq!(kept, offset, "appends are written in order");
                    self.mem.unpend(now, &channel);
                    if self.assigned.get(&channel) == Some(&offset) {
                        self.assigned.remove(&channel);
                    }
                    if self.config.max_disk_bytes.is_some() {
                        let fp = self.footprint.entry(channel.clone()).or_default();
                        fp.lens.push_back((offset, len));
                        fp.bytes += u64::from(len);
                        self.live_bytes += u64::from(len);
                        self.sync_footprint(&channel);
                    }
                }
                Op::Cursor {
                    name,
                    channel,
                    offset,
                    ..
                } => self.mem.set_cursor(&name, &channel, offset),
                Op::Trim { .. } | Op::Key { .. } => {}
            }
        }
        // The memory budget's trims need no record: a restart applies the same budget to what it reads back.
        trimmed.sort();
        trimmed.dedup();
        for name in &trimmed {
            self.sync_footprint(name);
        }
        self.enforce_budget(now);
        self.record_forgotten();
        let _ = flight.create;
        self.consider_snapshot(now);
        appends
    }

    fn handle_write_failed(&mut self, now: Timestamp, batch: u64) -> usize {
        if self.in_flight.take_if(|f| f.batch == batch).is_none() {
            return 0;
        }
        self.write_failed = true;
        let dropped = self.pending_appends();
        for op in &self.ops {
            if let Op::Append { channel, .. } = op {
                self.mem.unpend(now, channel);
            }
        }
        self.ops.clear();
        self.queued.clear();
        self.assigned.clear();
        dropped
    }

    fn pending_appends(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| matches!(op, Op::Append { .. }))
            .count()
    }

    fn poll_snapshot(&mut self) -> Option<SnapshotJob> {
        self.snapshot_ready.take()
    }

    fn handle_snapshot_written(&mut self, now: Timestamp, covers: u64, bytes: u64) {
        if let Some(done) = self.snapshot_running.take_if(|r| r.covers == covers) {
            self.snapshot_bytes = bytes;
            self.snapshot_overhead = bytes.saturating_sub(done.live_bytes);
            // More overhead than the budget left room for shortens the history kept.
            self.enforce_budget(now);
            self.record_forgotten();
            // A log that reached its share while this was written waits for the next snapshot (with a write in
            // flight, its completion asks for it).
            self.consider_snapshot(now);
        }
    }

    fn handle_snapshot_failed(&mut self, now: Timestamp, covers: u64) {
        if let Some(failed) = self.snapshot_running.take_if(|r| r.covers == covers) {
            self.log_bytes += failed.log_bytes;
            self.log_over_share = true;
            self.snapshot_not_before = now + SNAPSHOT_RETRY;
        }
    }

    fn set_cursor(&mut self, name: &str, channel: &ChannelName, offset: u64) {
        if self.mem.cursor(name, channel) == Some(offset) {
            return;
        }
        let record = Record::Cursor {
            name: String::from(name),
            channel: channel.clone(),
            offset,
        };
        self.queue(&record, |len| Op::Cursor {
            name: String::from(name),
            channel: channel.clone(),
            offset,
            len,
        });
    }

    fn cursor(&self, name: &str, channel: &ChannelName) -> Option<u64> {
        // The newest position asked for, written or not: the reader already has those events.
        self.ops
            .iter()
            .rev()
            .find_map(|op| match op {
                Op::Cursor {
                    name: n,
                    channel: c,
                    offset,
                    ..
                } if n == name && c == channel => Some(*offset),
                _ => None,
            })
            .or_else(|| self.mem.cursor(name, channel))
    }

    fn cursors(&self, name: &str) -> Vec<(ChannelName, u64)> {
        let mut all: BTreeMap<ChannelName, u64> =
            Store::cursors(&self.mem, name).into_iter().collect();
        // Positions asked for and not yet written count too, the newest last.
        for op in &self.ops {
            if let Op::Cursor {
                name: n,
                channel,
                offset,
                ..
            } = op
                && n == name
            {
                all.insert(channel.clone(), *offset);
            }
        }
        all.into_iter().collect()
    }

    fn epoch(&self, channel: &ChannelName) -> &str {
        self.mem.epoch(channel)
    }

    fn offset(&self, channel: &ChannelName) -> u64 {
        self.mem.offset(channel)
    }

    fn state(&self, channel: &ChannelName) -> ChannelState {
        self.mem.state(channel)
    }

    fn replay(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        after: &StreamPosition,
    ) -> Option<Vec<(u64, Arc<Value>)>> {
        self.mem.replay(now, channel, after)
    }

    fn page(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        since: Option<u64>,
        limit: usize,
    ) -> HistoryPage {
        self.mem.page(now, channel, since, limit)
    }

    fn next_expiry(&self) -> Option<Timestamp> {
        self.mem.next_expiry()
    }

    fn hold(&mut self, channel: &ChannelName) {
        self.mem.hold(channel);
    }

    fn release(&mut self, channel: &ChannelName) {
        self.mem.release(channel);
        self.record_forgotten();
    }

    fn admits(&self, channel: &ChannelName, max_channels: usize) -> bool {
        self.mem.admits(channel, max_channels)
    }

    fn expire(&mut self, now: Timestamp) {
        if self.config.max_disk_bytes.is_none() {
            self.mem.expire(now);
        } else {
            let mut pruned = Vec::new();
            self.mem.expire_each(now, |name| pruned.push(name.clone()));
            for name in pruned {
                self.sync_footprint(&name);
            }
        }
        self.record_forgotten();
    }

    fn holds(&self, channel: &ChannelName) -> bool {
        self.mem.holds(channel)
    }

    fn channels_with_prefix(&self, prefix: &str) -> Vec<ChannelName> {
        self.mem.channels_with_prefix(prefix)
    }

    fn stats(&self) -> StoreStats {
        self.mem.stats()
    }

    #[cfg(any(test, feature = "_internal_test_exports"))]
    fn check(&self) -> Result<(), String> {
        use alloc::format;
        self.mem.check()?;
        let appends = self.pending_appends();
        let assigned: u64 = self
            .assigned
            .iter()
            .map(|(name, last)| last - self.mem.offset(name))
            .sum();
        if assigned != appends as u64 {
            return Err(format!(
                "{appends} appends pending, {assigned} offsets assigned ahead"
            ));
        }
        let queued: usize = self
            .ops
            .iter()
            .skip(self.in_flight.as_ref().map_or(0, |f| f.ops))
            .map(Op::len)
            .sum();
        if queued != self.queued.len() {
            return Err(format!(
                "{queued} bytes of queued records, {} in the queue",
                self.queued.len()
            ));
        }
        if let Some(share) = self.config.share()
            && self.log_bytes > share
            && !self.log_over_share
        {
            return Err(format!(
                "{} bytes of log since the last snapshot, over its share of the disk budget, {share}",
                self.log_bytes
            ));
        }
        if let Some(limit) = self.config.live_limit(self.snapshot_overhead)
            && self.live_bytes > limit
            && self.in_flight.is_none()
            && self.segment_exists
        {
            return Err(format!(
                "{} live bytes over the budget's {limit}",
                self.live_bytes
            ));
        }
        Ok(())
    }
}
