//! [`Restorer`]: the durable store read back from its files at start.
//!
//! The driver hands it the newest snapshot (if any), then every log segment after it in id order. Each file is
//! read up to its first damage; the driver cuts the file there ([`SegmentScan::good_len`]). Records apply in file
//! order, so the last word on anything is the last record about it: a `Channel` record in another epoch than the
//! one known for its channel starts the log again, a `Forget` record drops it.
//!
//! Files of format version 1 name one epoch for every channel (their `Epoch` record); it becomes the epoch of each
//! channel they hold, so a store written by an older build restores with every position still valid.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::Value;

use super::config::DurableConfig;
use super::record::{Damage, FormatError, HEADER_LEN, Record, RecordReader, check_header, header};
use super::store::DurableStore;
use crate::server::store::history::Entry;
use crate::server::store::{KeptKey, MemoryStore};
use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey, json_len};

/// What reading one file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentScan {
    /// Whole records read.
    pub records: usize,
    /// Where the last whole record ends: cut the file to this length when `damage` is set (and, without damage,
    /// when it is shorter than the file: the rest is reserved space never written); 0 means the file was cut short
    /// inside its header: remove it.
    pub good_len: u64,
    /// What stopped the reader before the end of the file.
    pub damage: Option<Damage>,
}

/// What the restored store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Channels restored.
    pub channels: usize,
    /// Events restored into history (after retention).
    pub events: usize,
    /// Whether every channel's epoch is new: the files held nothing, or damage means acknowledged events may be
    /// gone. Otherwise every channel keeps the epoch its files name.
    pub epoch_changed: bool,
    /// Records read.
    pub records: usize,
    /// Idempotency keys read back (in their epoch, with their events).
    pub keys: usize,
}

/// One channel as the files describe it so far.
#[derive(Debug, Default)]
struct ChannelLog {
    /// `None` until a record names it (in a snapshot, the `Channel` record follows the events).
    epoch: Option<String>,
    head: u64,
    entries: VecDeque<Kept>,
    /// The retained event, and its offset when it came as an event (so it is parsed once with its entry).
    state: Option<(Option<u64>, Body)>,
}

/// An event read back, parsed only at the end if it is still kept: a restore reads many events that later ones
/// push out of history.
#[derive(Debug)]
struct Kept {
    offset: u64,
    at: Timestamp,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Parsed(Arc<Value>),
    Unparsed(Arc<Vec<u8>>),
}

impl Body {
    /// The event; `None` when its JSON does not parse (a checksum cannot catch our own bug; the caller treats it
    /// as damage).
    fn parse(self) -> Option<Arc<Value>> {
        match self {
            Body::Parsed(value) => Some(value),
            Body::Unparsed(json) => serde_json::from_slice::<Value>(&json).ok().map(Arc::new),
        }
    }
}

/// Reads the store's files back: the newest snapshot (if any), then every log segment after it in id order; each
/// file is read up to its first damage, where the driver cuts it ([`SegmentScan::good_len`]).
#[derive(Debug)]
pub struct Restorer {
    config: DurableConfig,
    /// The `Epoch` record of the version 1 file being read.
    file_epoch: Option<String>,
    corrupt: bool,
    logs: BTreeMap<ChannelName, ChannelLog>,
    cursors: BTreeMap<(String, ChannelName), u64>,
    /// The readers with a position (a handful).
    readers: BTreeSet<String>,
    /// Idempotency keys, the last record of each standing.
    keys: BTreeMap<(ChannelName, IdempotencyKey), KeptKey>,
    last_file: Option<u64>,
    records: usize,
    /// Bytes of the snapshot read, and of the log segments after it (the store's snapshot schedule goes on from
    /// there).
    snapshot_bytes: u64,
    log_bytes: u64,
}

impl Restorer {
    /// A restorer for a store with `config`.
    pub fn new(config: DurableConfig) -> Restorer {
        Restorer {
            config,
            file_epoch: None,
            corrupt: false,
            logs: BTreeMap::new(),
            cursors: BTreeMap::new(),
            readers: BTreeSet::new(),
            keys: BTreeMap::new(),
            last_file: None,
            records: 0,
            snapshot_bytes: 0,
            log_bytes: 0,
        }
    }

    /// Reads the snapshot `{id:016x}.snap`. A snapshot without its end record is damage (snapshots are renamed
    /// into place only once complete), counted as corruption.
    pub fn snapshot(&mut self, id: u64, file: &[u8]) -> Result<SegmentScan, FormatError> {
        let mut scan = self.read(id, file)?;
        self.snapshot_bytes = scan.scan.good_len;
        if !scan.complete {
            scan.scan.damage.get_or_insert(Damage::Corrupt);
            self.corrupt = true;
        }
        Ok(scan.scan)
    }

    /// Reads the log segment `{id:016x}.log` (segments after the snapshot, in id order).
    pub fn segment(&mut self, id: u64, file: &[u8]) -> Result<SegmentScan, FormatError> {
        let scan = self.read(id, file)?.scan;
        self.log_bytes += scan.good_len;
        Ok(scan)
    }

    fn read(&mut self, id: u64, file: &[u8]) -> Result<Read, FormatError> {
        if file.len() < HEADER_LEN && header().starts_with(file) {
            // The crash came while the file was being created: nothing in it was ever acknowledged.
            self.last_file = Some(self.last_file.map_or(id, |last| last.max(id)));
            return Ok(Read {
                scan: SegmentScan {
                    records: 0,
                    good_len: 0,
                    damage: Some(Damage::TornTail),
                },
                complete: false,
            });
        }
        check_header(file)?;
        self.file_epoch = None;
        self.last_file = Some(self.last_file.map_or(id, |last| last.max(id)));
        let mut reader = RecordReader::lazy(file);
        let mut records = 0;
        let mut complete = false;
        let mut pos = HEADER_LEN;
        let mut publishing: Option<Publishing> = None;
        for (record, len) in reader.by_ref() {
            records += 1;
            complete |= matches!(record, Record::SnapshotEnd);
            let start = pos;
            pos += len;
            if let Some(open) = publishing.as_mut() {
                let last = is_event_through(&record, &open.key.channel, open.key.last);
                open.held.push(record);
                if last {
                    let done = publishing
                        .take()
                        .unwrap_or_else(|| unreachable!("open above"));
                    for record in done.held {
                        self.apply(record);
                    }
                    self.keys
                        .insert((done.key.channel.clone(), done.key.key.clone()), done.key);
                }
                continue;
            }
            if self.key_to_come(&record)
                && let Record::Key(key) = &record
            {
                let key = key.clone();
                publishing = Some(Publishing {
                    start,
                    records_before: records - 1,
                    key,
                    held: Vec::new(),
                });
            } else {
                self.apply(record);
            }
        }
        let mut damage = reader.damage();
        if damage == Some(Damage::Corrupt) {
            self.corrupt = true;
        }
        let mut good_len = reader.good_len();
        if let Some(torn) = publishing {
            // The file ends inside a keyed publish: the write that held it was cut short, so none of it was
            // acknowledged. It goes, key and events, and the file is cut back to where it began.
            good_len = torn.start;
            records = torn.records_before;
            damage = damage.or(Some(Damage::TornTail));
        }
        self.records += records;
        Ok(Read {
            scan: SegmentScan {
                records,
                good_len: good_len as u64,
                damage,
            },
            complete,
        })
    }

    /// Whether `record` is a `Key` record whose events are still to come: its channel's log is in its epoch and
    /// not yet at its last offset (in a log segment the key comes before its events; in a snapshot, after).
    fn key_to_come(&self, record: &Record) -> bool {
        let Record::Key(KeptKey {
            channel,
            epoch,
            last,
            ..
        }) = record
        else {
            return false;
        };
        self.logs
            .get(channel)
            .is_some_and(|log| log.epoch.as_deref() == Some(epoch.as_str()) && log.head < *last)
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Epoch(epoch) => self.file_epoch = Some(epoch),
            Record::Channel {
                channel,
                head,
                epoch,
            } => {
                let epoch = epoch.or_else(|| self.file_epoch.clone());
                let log = self.logs.entry(channel).or_default();
                match (&log.epoch, epoch) {
                    (Some(known), Some(epoch)) if *known != epoch => {
                        // A new log of the same name: the old one was forgotten.
                        *log = ChannelLog {
                            epoch: Some(epoch),
                            head,
                            ..ChannelLog::default()
                        };
                    }
                    (_, epoch) => {
                        if log.epoch.is_none() {
                            log.epoch = epoch;
                        }
                        log.head = log.head.max(head);
                    }
                }
            }
            Record::Forget { channel } => {
                self.logs.remove(&channel);
                for reader in &self.readers {
                    self.cursors.remove(&(reader.clone(), channel.clone()));
                }
            }
            Record::Event {
                channel,
                offset,
                at,
                retain,
                event,
            } => self.event(channel, offset, at, retain, Body::Parsed(event)),
            Record::UnparsedEvent {
                channel,
                offset,
                at,
                retain,
                json,
            } => self.event(channel, offset, at, retain, Body::Unparsed(Arc::new(json))),
            Record::State { channel, event } => {
                self.logs.entry(channel).or_default().state = Some((None, Body::Parsed(event)));
            }
            Record::Cursor {
                name,
                channel,
                offset,
            } => {
                if !self.readers.contains(&name) {
                    self.readers.insert(name.clone());
                }
                self.cursors.insert((name, channel), offset);
            }
            Record::Trim { channel, through } => {
                if let Some(log) = self.logs.get_mut(&channel) {
                    while log.entries.front().is_some_and(|e| e.offset <= through) {
                        log.entries.pop_front();
                    }
                }
            }
            Record::Key(kept) => {
                self.keys
                    .insert((kept.channel.clone(), kept.key.clone()), kept);
            }
            Record::SnapshotEnd => {}
        }
    }

    fn event(
        &mut self,
        channel: ChannelName,
        offset: u64,
        at: Timestamp,
        retain: bool,
        body: Body,
    ) {
        let limit = self.config.history_size;
        let log = self.logs.entry(channel).or_default();
        if log.epoch.is_none() {
            log.epoch.clone_from(&self.file_epoch);
        }
        if offset <= log.head {
            // Already known: the first record of an offset stands.
            return;
        }
        if offset != log.head + 1 {
            // A gap (damage took the records between): history restarts here.
            log.entries.clear();
        }
        if retain {
            log.state = Some((Some(offset), body.clone()));
        }
        let at = log.entries.back().map_or(at, |last| at.max(last.at));
        log.entries.push_back(Kept { offset, at, body });
        while log.entries.len() > limit {
            log.entries.pop_front();
        }
        log.head = log.head.max(offset);
    }

    /// The store the files describe, at `now`. `fresh_epoch` seeds the epochs of new logs, and of every log when the
    /// files were corrupt. Its first write creates the segment after the last one read.
    pub fn finish(self, now: Timestamp, fresh_epoch: String) -> (DurableStore, RestoreReport) {
        // The events still kept are parsed now, the retained one with its entry when it is one.
        let mut unreadable = false;
        let mut logs = Vec::with_capacity(self.logs.len());
        for (name, log) in self.logs {
            let mut entries = Vec::with_capacity(log.entries.len());
            let mut state = None;
            for kept in log.entries {
                let Some(event) = kept.body.parse() else {
                    unreadable = true;
                    continue;
                };
                if log
                    .state
                    .as_ref()
                    .is_some_and(|(at, _)| *at == Some(kept.offset))
                {
                    state = Some(Arc::clone(&event));
                }
                entries.push(Entry {
                    offset: kept.offset,
                    at: kept.at,
                    bytes: json_len(&event),
                    event,
                    // Numbered again, in publish-time order over all channels, by the store.
                    seq: 0,
                });
            }
            if state.is_none()
                && let Some((_, body)) = log.state
            {
                state = body.parse();
                unreadable |= state.is_none();
            }
            // A log whose epoch no record named is damage; it gets a new one.
            unreadable |= log.epoch.is_none();
            logs.push((name, log.epoch, log.head, entries, state));
        }
        let corrupt = self.corrupt || unreadable;
        let epoch_changed = corrupt || self.records == 0;
        // A key answers with its offsets only where they still name its events: in the epoch it was kept in (a
        // forgotten log, or damage, gives the channel another), and with every event up to its last read back.
        let keys: Vec<KeptKey> = if corrupt {
            Vec::new()
        } else {
            let heads: BTreeMap<&ChannelName, (&str, u64)> = logs
                .iter()
                .filter_map(|(name, epoch, head, _, _)| Some((name, (epoch.as_deref()?, *head))))
                .collect();
            self.keys
                .into_values()
                .filter(|k| {
                    heads
                        .get(&k.channel)
                        .is_some_and(|&(epoch, head)| epoch == k.epoch && k.last <= head)
                })
                .collect()
        };
        if corrupt {
            // Any position may now name other events: every channel starts a new epoch.
            for log in &mut logs {
                log.1 = None;
            }
        }
        let mut mem = MemoryStore::restored(fresh_epoch, self.config.retention(), now, logs);
        if !epoch_changed {
            // Positions in another epoch mean nothing; a webhook reader starts again from the oldest kept event.
            mem.set_cursors(self.cursors);
        }
        let stats = crate::server::store::Store::stats(&mem);
        let report = RestoreReport {
            channels: stats.channels,
            events: stats.events,
            epoch_changed,
            records: self.records,
            keys: keys.len(),
        };
        let next_segment = self.last_file.map_or(1, |last| last + 1);
        let mut store = DurableStore::restored(self.config, mem, next_segment);
        store.set_file_sizes(self.snapshot_bytes, self.log_bytes);
        store.set_restored_keys(keys);
        if corrupt {
            store.want_snapshot();
        }
        (store, report)
    }
}

struct Read {
    scan: SegmentScan,
    complete: bool,
}

/// A keyed publish being read: its `Key` record came first, and its records are held back until its last event
/// is read, so a publish the crash tore is not half restored.
struct Publishing {
    /// Where its `Key` record begins in the file.
    start: usize,
    /// Whole records read before it.
    records_before: usize,
    key: KeptKey,
    held: Vec<Record>,
}

/// Whether `record` is an event of `channel` at `last` or after.
fn is_event_through(record: &Record, channel: &ChannelName, last: u64) -> bool {
    match record {
        Record::Event {
            channel: c, offset, ..
        }
        | Record::UnparsedEvent {
            channel: c, offset, ..
        } => c == channel && *offset >= last,
        _ => false,
    }
}
