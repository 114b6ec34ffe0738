//! [`Restorer`]: the durable store read back from its files at start.
//!
//! The driver hands it the newest snapshot (if any), then every log segment after it in id order. Each file is
//! read up to its first damage; the driver cuts the file there ([`SegmentScan::good_len`]). Records apply in file
//! order, so the last word on anything is the last record about it.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::Value;

use super::config::DurableConfig;
use super::record::{Damage, FormatError, HEADER_LEN, Record, RecordReader, check_header, header};
use super::store::DurableStore;
use crate::server::store::MemoryStore;
use crate::server::store::history::Entry;
use crate::time::Timestamp;
use crate::wire::ChannelName;

/// What reading one file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentScan {
    /// Whole records read.
    pub records: usize,
    /// Where the last whole record ends: cut the file to this length when `damage` is set; 0 means the file was
    /// cut short inside its header: remove it.
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
    /// The epoch every channel has.
    pub epoch: String,
    /// Whether the epoch is new: the files were empty, or damage means acknowledged events may be gone.
    pub epoch_changed: bool,
    /// Records read.
    pub records: usize,
}

/// One channel as the files describe it so far.
#[derive(Debug, Default)]
struct ChannelLog {
    head: u64,
    entries: VecDeque<Entry>,
    state: Option<Arc<Value>>,
}

/// Reads the store's files back: the newest snapshot (if any), then every log segment after it in id order; each
/// file is read up to its first damage, where the driver cuts it ([`SegmentScan::good_len`]).
#[derive(Debug)]
pub struct Restorer {
    config: DurableConfig,
    epoch: Option<String>,
    corrupt: bool,
    logs: BTreeMap<ChannelName, ChannelLog>,
    cursors: BTreeMap<(String, ChannelName), u64>,
    last_file: Option<u64>,
    records: usize,
}

impl Restorer {
    /// A restorer for a store with `config`.
    pub fn new(config: DurableConfig) -> Restorer {
        Restorer {
            config,
            epoch: None,
            corrupt: false,
            logs: BTreeMap::new(),
            cursors: BTreeMap::new(),
            last_file: None,
            records: 0,
        }
    }

    /// Reads the snapshot `{id:016x}.snap`. A snapshot without its end record is damage (snapshots are renamed
    /// into place only once complete), counted as corruption.
    pub fn snapshot(&mut self, id: u64, file: &[u8]) -> Result<SegmentScan, FormatError> {
        let mut scan = self.read(id, file)?;
        if !scan.complete {
            scan.scan.damage.get_or_insert(Damage::Corrupt);
            self.corrupt = true;
        }
        Ok(scan.scan)
    }

    /// Reads the log segment `{id:016x}.log` (segments after the snapshot, in id order).
    pub fn segment(&mut self, id: u64, file: &[u8]) -> Result<SegmentScan, FormatError> {
        Ok(self.read(id, file)?.scan)
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
        self.last_file = Some(self.last_file.map_or(id, |last| last.max(id)));
        let mut reader = RecordReader::new(file);
        let mut records = 0;
        let mut complete = false;
        for (record, _) in reader.by_ref() {
            records += 1;
            complete |= matches!(record, Record::SnapshotEnd);
            self.apply(record);
        }
        if reader.damage() == Some(Damage::Corrupt) {
            self.corrupt = true;
        }
        self.records += records;
        Ok(Read {
            scan: SegmentScan {
                records,
                good_len: reader.good_len() as u64,
                damage: reader.damage(),
            },
            complete,
        })
    }

    fn apply(&mut self, record: Record) {
        let limit = self.config.history_size;
        match record {
            Record::Epoch(epoch) => self.epoch = Some(epoch),
            Record::Channel { channel, head } => {
                let log = self.logs.entry(channel).or_default();
                log.head = log.head.max(head);
            }
            Record::Event {
                channel,
                offset,
                at,
                retain,
                event,
            } => {
                let log = self.logs.entry(channel).or_default();
                if offset <= log.head {
                    // Already known: the first record of an offset stands.
                    return;
                }
                if offset != log.head + 1 {
                    // A gap (damage took the records between): history restarts here.
                    log.entries.clear();
                }
                if retain {
                    log.state = Some(Arc::clone(&event));
                }
                let at = log.entries.back().map_or(at, |last| at.max(last.at));
                log.entries.push_back(Entry { offset, at, event });
                while log.entries.len() > limit {
                    log.entries.pop_front();
                }
                log.head = log.head.max(offset);
            }
            Record::State { channel, event } => {
                self.logs.entry(channel).or_default().state = Some(event);
            }
            Record::Cursor {
                name,
                channel,
                offset,
            } => {
                self.cursors.insert((name, channel), offset);
            }
            Record::Trim { channel, through } => {
                if let Some(log) = self.logs.get_mut(&channel) {
                    while log.entries.front().is_some_and(|e| e.offset <= through) {
                        log.entries.pop_front();
                    }
                }
            }
            Record::SnapshotEnd => {}
        }
    }

    /// The store the files describe, at `now`. `fresh_epoch` is its epoch when the files named none or were
    /// corrupt. Its first write creates the segment after the last one read.
    pub fn finish(self, now: Timestamp, fresh_epoch: String) -> (DurableStore, RestoreReport) {
        let epoch_changed = self.corrupt || self.epoch.is_none();
        let epoch = match (self.corrupt, self.epoch) {
            (false, Some(epoch)) => epoch,
            _ => fresh_epoch,
        };
        let mut mem = MemoryStore::restored(
            epoch.clone(),
            self.config.history_size,
            self.config.history_ttl,
            now,
            self.logs
                .into_iter()
                .map(|(name, log)| (name, log.head, Vec::from(log.entries), log.state)),
        );
        if !epoch_changed {
            // Positions in another epoch mean nothing; a webhook reader starts again from the oldest kept event.
            mem.set_cursors(self.cursors);
        }
        let stats = crate::server::store::Store::stats(&mem);
        let report = RestoreReport {
            channels: stats.channels,
            events: stats.events,
            epoch,
            epoch_changed,
            records: self.records,
        };
        let next_segment = self.last_file.map_or(1, |last| last + 1);
        let mut store = DurableStore::restored(self.config, mem, next_segment);
        if self.corrupt {
            store.want_snapshot();
        }
        (store, report)
    }
}

struct Read {
    scan: SegmentScan,
    complete: bool,
}
