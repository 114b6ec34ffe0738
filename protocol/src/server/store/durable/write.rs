//! What the driver writes for the [durable store](super::DurableStore): [`StoreWrite`] (an append to a log
//! segment) and [`SnapshotJob`] (a snapshot, encoded off the hub's lock).

use alloc::string::String;
use alloc::vec::Vec;

use super::record::{Record, header};
use crate::server::store::{KeptKey, MemoryStore};

/// Write `bytes` at `offset` of log segment `segment` (`{segment:016x}.log` in the data directory), sync when
/// `sync`, then report [`handle_written`](crate::server::Store::handle_written) with `batch`, or, if anything
/// failed, [`handle_write_failed`](crate::server::Store::handle_write_failed) after cutting the file back to
/// `offset` (removing it when `create`).
///
/// A new segment may first be given `reserve` bytes of space (`fallocate`): writes into space already allocated,
/// within the file's length, let a sync skip the file-size and allocation updates an append needs, about halving
/// its cost. The reserved tail reads as zeros, which a restore takes as unwritten space, not damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWrite {
    /// Echo it in the report.
    pub batch: u64,
    /// The segment's id.
    pub segment: u64,
    /// Where in the segment the bytes go (the end of what was written before).
    pub offset: u64,
    /// When `create`: the bytes of space to reserve for the segment (0: none).
    pub reserve: u64,
    /// The segment is new: create it (its bytes begin with the file header), and when `sync`, sync the directory
    /// too so the file's name survives.
    pub create: bool,
    /// What to append.
    pub bytes: Vec<u8>,
    /// Sync the file's data (`fdatasync`) before reporting.
    pub sync: bool,
}

/// Write a snapshot of the store: encode it with [`SnapshotJob::write_to`] into `{covers:016x}.snap.tmp`, sync
/// it, rename it to `{covers:016x}.snap`, sync the directory, then remove every log segment with an id up to
/// `covers` and every older snapshot, and report
/// [`handle_snapshot_written`](crate::server::Store::handle_snapshot_written) (or, on failure, remove the temporary
/// file and report [`handle_snapshot_failed`](crate::server::Store::handle_snapshot_failed)).
#[derive(Debug, Clone)]
pub struct SnapshotJob {
    /// The last log segment the snapshot replaces.
    pub covers: u64,
    pub(super) store: alloc::boxed::Box<MemoryStore>,
    /// The idempotency keys within the dedupe window: the hub's table, added as the job passes through it
    /// ([`with_keys`](Self::with_keys)), since the segments that held their records are removed after it.
    pub(super) keys: Vec<KeptKey>,
}

/// Two jobs are the same when they cover the same segments.
impl PartialEq for SnapshotJob {
    fn eq(&self, other: &SnapshotJob) -> bool {
        self.covers == other.covers
    }
}

impl SnapshotJob {
    /// The job, with the keys to keep (those settled in the store's epochs; every key whose record is in a
    /// segment the snapshot replaces has settled before the job is handed out).
    pub(crate) fn with_keys(mut self, keys: Vec<KeptKey>) -> SnapshotJob {
        self.keys = keys;
        self
    }

    /// Encodes the snapshot into `sink` in chunks of about a megabyte; returns the bytes written or the sink's
    /// first error.
    pub fn write_to<E>(&self, mut sink: impl FnMut(&[u8]) -> Result<(), E>) -> Result<u64, E> {
        const CHUNK: usize = 1024 * 1024;
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        let mut total = 0u64;
        let mut flush = |buf: &mut Vec<u8>, total: &mut u64| -> Result<(), E> {
            sink(buf)?;
            *total += buf.len() as u64;
            buf.clear();
            Ok(())
        };
        buf.extend_from_slice(&header());
        for (channel, epoch, head, history, state) in self.store.logs() {
            if head == 0 {
                // Held by the hub, never published to: nothing to keep across a restart.
                continue;
            }
            let mut state_in_history = false;
            for entry in history {
                let retain = state.is_some_and(|s| alloc::sync::Arc::ptr_eq(s, &entry.event));
                state_in_history |= retain;
                Record::Event {
                    channel: channel.clone(),
                    offset: entry.offset,
                    at: entry.at,
                    retain,
                    event: alloc::sync::Arc::clone(&entry.event),
                }
                .encode(&mut buf);
                if buf.len() >= CHUNK {
                    flush(&mut buf, &mut total)?;
                }
            }
            if let (Some(state), false) = (state, state_in_history) {
                Record::State {
                    channel: channel.clone(),
                    event: alloc::sync::Arc::clone(state),
                }
                .encode(&mut buf);
            }
            // After its history: a restore takes the events as they come, then the head (which may be past
            // them when the newest events expired).
            Record::Channel {
                channel: channel.clone(),
                head,
                epoch: Some(String::from(epoch)),
            }
            .encode(&mut buf);
            if buf.len() >= CHUNK {
                flush(&mut buf, &mut total)?;
            }
        }
        for ((name, channel), offset) in self.store.cursors() {
            Record::Cursor {
                name: name.clone(),
                channel: channel.clone(),
                offset: *offset,
            }
            .encode(&mut buf);
        }
        for key in &self.keys {
            Record::Key(key.clone()).encode(&mut buf);
            if buf.len() >= CHUNK {
                flush(&mut buf, &mut total)?;
            }
        }
        Record::SnapshotEnd.encode(&mut buf);
        flush(&mut buf, &mut total)?;
        Ok(total)
    }
}
