//! The storage side of the driver, in a durable seed: what a runtime does with the store's writes and snapshots on
//! the [simulated disk](crate::sim::disk), and the restart of a hub from its files after a crash.
//!
//! - [`HubOutput::Persist`]: the bytes go into the segment's file at once (unsynced), and the write is reported a
//!   seeded while later (write and sync latency): synced first when asked, or, when the disk is "full", cut back
//!   and reported failed.
//! - [`HubOutput::Snapshot`]: the job is encoded into a temporary file at once; a while later it is synced, renamed
//!   into place, the segments it covers and older snapshots are removed, and it is reported (or it fails, is
//!   removed, and that is reported).
//! - **Restart**: the disk crashes ([`SimDisk::crash`]), then the files are read back as a runtime does at start:
//!   temporary files removed, the newest snapshot read, then every later segment in order, each damaged one cut
//!   back to its last whole record, and every file synced (what a process crash left in the operating system's
//!   cache is served from now on); a [`Restorer`] builds the store and [`Hub::with_store`] the hub. The
//!   [durability invariants](crate::sim::durability) are checked against what the old hub held.
//!
//! With the planted fault `_internal_planted_unsynced_ack`, writes are reported done without being synced: the
//! acknowledged events sit in the unsynced tail, and a power loss takes them (`tests/simulation.rs` proves the
//! simulation notices). With `_internal_planted_forgotten_keys`, a restored hub never gets the idempotency keys
//! the files held, so a retry of a publish from before the restart lands twice.
//!
//! [`HubOutput::Persist`]: switchboard_protocol::server::HubOutput::Persist
//! [`HubOutput::Snapshot`]: switchboard_protocol::server::HubOutput::Snapshot

use std::time::Duration;

use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::store::durable::record::{
    Record, RecordReader, check_header, header,
};
use switchboard_protocol::server::store::durable::{Damage, Restorer};
use switchboard_protocol::server::{
    DurableStore, FsyncPolicy, Hub, HubConfig, SnapshotJob, StoreWrite,
};

use crate::sim::disk::{CrashKind, DiskSetup, SimDisk, Unfinished};
use crate::sim::durability::{self, Held, Written};
use crate::sim::workload::exponential;

use super::{Task, World};

/// The planted fault: a write is reported done before (in fact without) its sync.
const ACK_BEFORE_SYNC: bool = cfg!(feature = "_internal_planted_unsynced_ack");

/// A log file's header length: a shorter file is a creation the crash cut short.
const HEADER_LEN: usize = 16;

/// The store's disk, in a durable seed.
#[derive(Debug)]
pub(super) struct Storage {
    setup: DiskSetup,
    disk: SimDisk,
    rng: Rng,
    /// The write the driver is doing.
    writing: Option<Writing>,
    /// Writes and snapshots no longer fail (the world is settling).
    calm: bool,
    /// The events of the last write reported done: the hub's `Published` for each follows, and a small history
    /// may already have dropped some of them (a batch longer than `history_size`).
    pub(super) last_written: Written,
}

/// A write in progress.
#[derive(Debug)]
struct Writing {
    batch: u64,
    name: String,
    start: usize,
    create: bool,
    sync: bool,
    fails: bool,
}

impl Storage {
    /// The storage of a durable seed, drawn from its own generator (so the seed's other draws are those of a
    /// memory seed).
    pub(super) fn draw(seed: u64, hub: &HubConfig) -> Storage {
        let mut rng = Rng::from_seed(seed ^ 0x5eed_d15c_5eed_d15c);
        let setup = DiskSetup::draw(&mut rng, hub);
        Storage {
            setup,
            disk: SimDisk::default(),
            rng,
            writing: None,
            calm: false,
            last_written: Written::new(),
        }
    }

    /// An empty store for the first hub.
    pub(super) fn first_store(&self, config: &HubConfig) -> DurableStore {
        DurableStore::new(self.setup.store.clone(), fresh_epoch(config))
    }

    fn latency(&mut self) -> Duration {
        exponential(&mut self.rng, self.setup.write_time)
    }

    fn fails(&mut self) -> bool {
        !self.calm && self.rng.chance(self.setup.full)
    }
}

/// The epoch a new store takes, drawn from the hub's seed as [`Hub::new`] does.
fn fresh_epoch(config: &HubConfig) -> String {
    format!("{:016x}", Rng::from_seed(config.seed).next_u64())
}

/// A file's id, when its name is `{id:016x}{suffix}`.
fn file_id(name: &str, suffix: &str) -> Option<u64> {
    let hex = name.strip_suffix(suffix)?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

impl World {
    /// The hub asks for a write: into the file now, reported later.
    pub(super) fn on_persist(&mut self, write: StoreWrite) {
        let now = self.clock.now();
        let process = self.hub_generation;
        let Some(storage) = self.storage.as_mut() else {
            return self.fail(String::from("a memory hub asked for a store write"));
        };
        if storage.writing.is_some() {
            return self.fail(String::from(
                "the store asked for a write while one is in progress",
            ));
        }
        let name = DiskSetup::segment_name(write.segment);
        if write.create {
            storage.disk.create(&name);
            self.counts.segments_created += 1;
        } else if storage.disk.len(&name).is_none() {
            return self.fail(format!("the store appends to {name}, which does not exist"));
        }
        let start = storage.disk.len(&name).unwrap_or(0);
        if write.offset != start as u64 {
            return self.fail(format!(
                "the store writes {name} at {}, where its end is {start}",
                write.offset
            ));
        }
        storage.disk.append(&name, &write.bytes);
        let fails = storage.fails();
        let at = now + storage.latency();
        storage.writing = Some(Writing {
            batch: write.batch,
            name,
            start,
            create: write.create,
            sync: write.sync,
            fails,
        });
        self.counts.store_writes += 1;
        self.trace.number(70 + write.batch);
        self.log(|| {
            format!(
                "store write {} to segment {}: {} bytes{}{}",
                write.batch,
                write.segment,
                write.bytes.len(),
                if write.sync { ", synced" } else { "" },
                if fails { ", will fail" } else { "" }
            )
        });
        self.agenda.schedule(
            at,
            Task::StoreWritten {
                process,
                batch: write.batch,
            },
        );
    }

    /// The write is done (or failed): report it to the hub.
    pub(super) fn on_store_written(&mut self, process: u32, batch: u64) {
        if process != self.hub_generation {
            return;
        }
        let now = self.clock.now();
        let Some(storage) = self.storage.as_mut() else {
            return;
        };
        let Some(w) = storage.writing.take_if(|w| w.batch == batch) else {
            return self.fail(format!("write {batch} finished, but it is not in progress"));
        };
        self.trace.number(71);
        if w.fails {
            if w.create {
                storage.disk.remove(&w.name);
            } else {
                storage.disk.truncate(&w.name, w.start);
            }
            self.counts.store_write_failures += 1;
            self.log(|| format!("store write {batch} failed: disk full"));
            self.hub.handle_store_failed(now, batch);
        } else {
            if w.sync && !ACK_BEFORE_SYNC {
                storage.disk.sync(&w.name);
            }
            let mut records = header().to_vec();
            let file = storage.disk.read(&w.name).unwrap_or_default();
            if !w.create {
                records.extend_from_slice(file.get(w.start..).unwrap_or_default());
            } else {
                records = file.to_vec();
            }
            storage.last_written.clear();
            collect(&records, &mut storage.last_written);
            self.log(|| format!("store write {batch} done"));
            self.hub.handle_store_written(now, batch);
        }
        self.drain_hub();
    }

    /// The hub asks for a snapshot: encoded into a temporary file now, put in place later.
    pub(super) fn on_snapshot(&mut self, job: SnapshotJob) {
        let now = self.clock.now();
        let process = self.hub_generation;
        let Some(storage) = self.storage.as_mut() else {
            return self.fail(String::from("a memory hub asked for a snapshot"));
        };
        let mut bytes = Vec::new();
        let written = job.write_to(|chunk| {
            bytes.extend_from_slice(chunk);
            Ok::<(), ()>(())
        });
        if written != Ok(bytes.len() as u64) {
            return self.fail(format!(
                "the snapshot says it wrote {written:?} bytes, {} arrived",
                bytes.len()
            ));
        }
        let tmp = format!("{}.tmp", DiskSetup::snapshot_name(job.covers));
        storage.disk.create(&tmp);
        storage.disk.append(&tmp, &bytes);
        let fails = storage.fails();
        let at = now + storage.latency() * 2;
        self.trace.number(72 + job.covers);
        self.log(|| format!("snapshot covering {}: {} bytes", job.covers, bytes.len()));
        self.agenda.schedule(
            at,
            Task::SnapshotWritten {
                process,
                covers: job.covers,
                fails,
            },
        );
    }

    /// The snapshot is synced and renamed into place, and what it covers removed (or it failed): report it.
    pub(super) fn on_snapshot_written(&mut self, process: u32, covers: u64, fails: bool) {
        if process != self.hub_generation {
            return;
        }
        let now = self.clock.now();
        let Some(storage) = self.storage.as_mut() else {
            return;
        };
        self.trace.number(73);
        let name = DiskSetup::snapshot_name(covers);
        let tmp = format!("{name}.tmp");
        if fails {
            storage.disk.remove(&tmp);
            self.counts.snapshot_failures += 1;
            self.log(|| format!("snapshot covering {covers} failed: disk full"));
            self.hub.handle_snapshot_failed(now, covers);
        } else {
            let Some(bytes) = storage.disk.len(&tmp) else {
                return self.fail(format!("the snapshot file {tmp} is gone"));
            };
            storage.disk.sync(&tmp);
            storage.disk.rename(&tmp, &name);
            for file in storage.disk.names() {
                let covered = file_id(&file, ".log").is_some_and(|id| id <= covers)
                    || file_id(&file, ".snap").is_some_and(|id| id < covers);
                if covered {
                    storage.disk.remove(&file);
                }
            }
            self.counts.snapshots += 1;
            self.log(|| format!("snapshot covering {covers} written"));
            self.hub.handle_snapshot_written(now, covers, bytes as u64);
        }
        self.drain_hub();
    }

    /// The next hub of a durable seed after the old one died: crash the disk, read it back, check what survived.
    /// `graceful`: the process exited after a shutdown, so the operating system kept every written byte.
    pub(super) fn restarted_hub(&mut self, config: HubConfig, graceful: bool) -> Option<Hub> {
        let now = self.clock.now();
        // Every channel publishes reach, the ones only patterns follow too: their written-but-unacknowledged
        // events must be learned like any other's.
        let channels: Vec<switchboard_protocol::wire::ChannelName> = self
            .workload
            .channels
            .iter()
            .chain(&self.workload.pattern_only)
            .cloned()
            .collect();
        let before = Held::of(&self.hub, now, &channels);
        let storage = self.storage.as_mut()?;
        let kind = if graceful || storage.setup.store.fsync == FsyncPolicy::Off {
            // Unsynced acknowledged writes are the policy's promise only against a process crash.
            CrashKind::Process
        } else if storage.rng.chance(0.85) {
            CrashKind::PowerLoss
        } else {
            CrashKind::Process
        };
        let unfinished = storage.writing.take().map(|w| Unfinished {
            name: w.name,
            start: w.start,
        });
        let damage = storage
            .disk
            .crash(&mut storage.rng, kind, unfinished.as_ref());
        let restored = read_back(&mut storage.disk, &storage.setup, now, &config);
        if kind == CrashKind::PowerLoss {
            self.counts.power_losses += 1;
        }
        self.log(|| format!("the disk crashes ({kind:?}): {damage:?}"));
        let restored = match restored {
            Ok(r) => r,
            Err(e) => {
                self.fail(e);
                return None;
            }
        };
        self.counts.durable_restores += 1;
        self.counts.torn_tails_cut += restored.torn;
        self.counts.budget_trims_restored += restored.trims;
        #[cfg_attr(not(feature = "_internal_planted_forgotten_keys"), allow(unused_mut))]
        let mut store = restored.store;
        #[cfg(feature = "_internal_planted_forgotten_keys")]
        {
            use switchboard_protocol::server::Store;
            // The planted fault: the keys the files held never reach the hub.
            drop(store.take_restored_keys());
        }
        let hub = Hub::with_store(config, Box::new(store));
        let checked = durability::check_restored(
            &mut self.checker.truth,
            &before,
            &hub,
            now,
            &restored.written,
        );
        match checked {
            Ok(check) => {
                self.counts.epochs_kept += u64::from(check.epochs_kept > 0);
                self.counts.acked_verified += check.verified;
                self.counts.unacked_restored += check.learned;
                self.log(|| format!("restored: {check:?}"));
                Some(hub)
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    /// Settling: writes and snapshots stop failing.
    pub(super) fn calm_storage(&mut self) {
        if let Some(storage) = self.storage.as_mut() {
            storage.calm = true;
        }
    }
}

/// A store read back from the disk.
struct ReadBack {
    store: DurableStore,
    written: Written,
    torn: u64,
    /// Trim records read (history the disk budget dropped).
    trims: u64,
}

/// Reads the store back from its files as a runtime does at start, cutting damage off the files.
fn read_back(
    disk: &mut SimDisk,
    setup: &DiskSetup,
    now: switchboard_protocol::time::Timestamp,
    config: &HubConfig,
) -> Result<ReadBack, String> {
    let mut snapshots = Vec::new();
    let mut segments = Vec::new();
    for name in disk.names() {
        if name.ends_with(".tmp") {
            disk.remove(&name);
        } else if let Some(id) = file_id(&name, ".snap") {
            snapshots.push(id);
        } else if let Some(id) = file_id(&name, ".log") {
            segments.push(id);
        } else {
            return Err(format!("an unknown file {name} on the store's disk"));
        }
    }
    let mut restorer = Restorer::new(setup.store.clone());
    let mut written = Written::new();
    let mut torn = 0;
    let mut trims = 0;
    let newest = snapshots.iter().max().copied();
    if let Some(id) = newest {
        let name = DiskSetup::snapshot_name(id);
        let bytes = disk.read(&name).unwrap_or_default();
        let scan = restorer
            .snapshot(id, bytes)
            .map_err(|e| format!("snapshot {name}: {e}"))?;
        if let Some(damage) = scan.damage {
            return Err(format!(
                "snapshot {name}, synced before it was renamed into place, is damaged: {damage:?}"
            ));
        }
        trims += collect(bytes, &mut written);
    }
    for id in snapshots.into_iter().filter(|&id| Some(id) != newest) {
        disk.remove(&DiskSetup::snapshot_name(id));
    }
    segments.sort_unstable();
    for id in segments {
        let name = DiskSetup::segment_name(id);
        if newest.is_some_and(|snap| id <= snap) {
            disk.remove(&name);
            continue;
        }
        let bytes = disk.read(&name).unwrap_or_default().to_vec();
        if bytes.len() < HEADER_LEN {
            // Its creation was cut short: nothing in it was ever acknowledged.
            disk.remove(&name);
            torn += 1;
            continue;
        }
        check_header(&bytes).map_err(|e| format!("segment {name}: {e}"))?;
        let scan = restorer
            .segment(id, &bytes)
            .map_err(|e| format!("segment {name}: {e}"))?;
        match scan.damage {
            None => {}
            Some(Damage::TornTail) => {
                disk.truncate(&name, scan.good_len as usize);
                torn += 1;
            }
            Some(other) => {
                return Err(format!(
                    "segment {name} is damaged ({other:?}) at {}, though only unsynced tails were lost",
                    scan.good_len
                ));
            }
        }
        trims += collect(&bytes[..scan.good_len as usize], &mut written);
    }
    // What was read may be only in the operating system's cache (written before a process crash, never
    // synced): a runtime syncs every file before the restored store serves it, or the next power loss could
    // take events that were delivered since.
    for name in disk.names() {
        disk.sync(&name);
    }
    let (store, _report) = restorer.finish(now, fresh_epoch(config));
    Ok(ReadBack {
        store,
        written,
        torn,
        trims,
    })
}

/// Notes every event record of a file (the first record of an offset stands, as in the restorer); returns how many
/// records of history dropped for the disk budget it holds.
fn collect(file: &[u8], written: &mut Written) -> u64 {
    let mut trims = 0;
    for (record, _) in RecordReader::new(file) {
        match record {
            Record::Event {
                channel,
                offset,
                event,
                ..
            } => {
                written.entry((channel, offset)).or_insert(event);
            }
            // A new log of the channel, or its end: the offsets that follow are the next log's.
            Record::Channel {
                channel, head: 0, ..
            }
            | Record::Forget { channel } => written.retain(|(c, _), _| *c != channel),
            Record::Trim { .. } => trims += 1,
            _ => {}
        }
    }
    trims
}
