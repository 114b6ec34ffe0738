//! The simulated disk under the durable store: files by name, each with a **synced prefix** (what a sync made
//! durable) and an **unsynced tail** (written, held by the operating system, lost if the machine loses power), and
//! what each seed draws about it ([`DiskSetup`]: the store's fsync policy, its small segment and snapshot sizes,
//! how fast writes and syncs are, how often the disk is full).
//!
//! A crash ([`SimDisk::crash`]) is one of two things:
//! - **process crash**: the server dies, the operating system survives, so every written byte stays; only a write
//!   the process was in the middle of may be left half done;
//! - **power loss**: every file keeps its synced prefix and, of its unsynced tail, nothing, a random prefix (which
//!   usually ends inside a record: a torn write), all of it, or a stretch of zeros (space the file system allocated
//!   but the data never reached). A file whose name was never synced may vanish altogether.

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::{DurableConfig, FsyncPolicy, HubConfig};

/// One file: its bytes, how many of them are synced, and whether its name survives a power loss.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SimFile {
    bytes: Vec<u8>,
    synced: usize,
    named: bool,
}

/// Files by name.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    files: BTreeMap<String, SimFile>,
}

/// How the server died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    /// The process died; the operating system kept everything written.
    Process,
    /// The machine lost power: unsynced data is gone, or partly gone.
    PowerLoss,
}

/// A write the process had started when it died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// The file.
    pub name: String,
    /// Its length before the write.
    pub start: usize,
}

/// What a crash did to the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashDamage {
    /// Unsynced bytes lost.
    pub bytes_lost: u64,
    /// Files whose unsynced name vanished.
    pub files_lost: u64,
}

impl SimDisk {
    /// Creates an empty file (replacing any of that name). Its name is durable only once synced.
    pub fn create(&mut self, name: &str) {
        self.files.insert(String::from(name), SimFile::default());
    }

    /// Appends to a file, creating it when missing.
    pub fn append(&mut self, name: &str, bytes: &[u8]) {
        self.files
            .entry(String::from(name))
            .or_default()
            .bytes
            .extend_from_slice(bytes);
    }

    /// Syncs a file's data and its name (`fdatasync`, and the directory for a new file).
    pub fn sync(&mut self, name: &str) {
        if let Some(f) = self.files.get_mut(name) {
            f.synced = f.bytes.len();
            f.named = true;
        }
    }

    /// Cuts a file back to `len` bytes.
    pub fn truncate(&mut self, name: &str, len: usize) {
        if let Some(f) = self.files.get_mut(name) {
            f.bytes.truncate(len);
            f.synced = f.synced.min(len);
        }
    }

    /// Renames a file (the name is synced with the directory, as the snapshot protocol does).
    pub fn rename(&mut self, from: &str, to: &str) {
        if let Some(mut f) = self.files.remove(from) {
            f.named = true;
            self.files.insert(String::from(to), f);
        }
    }

    /// Removes a file.
    pub fn remove(&mut self, name: &str) {
        self.files.remove(name);
    }

    /// A file's bytes.
    pub fn read(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|f| f.bytes.as_slice())
    }

    /// A file's length.
    pub fn len(&self, name: &str) -> Option<usize> {
        self.files.get(name).map(|f| f.bytes.len())
    }

    /// Every file name, in order.
    pub fn names(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Bytes not yet synced, over all files.
    pub fn unsynced_bytes(&self) -> u64 {
        self.files
            .values()
            .map(|f| (f.bytes.len() - f.synced) as u64)
            .sum()
    }

    /// The server dies (see the [module docs](self)). `unfinished` is the write it was doing, if any.
    pub fn crash(
        &mut self,
        rng: &mut Rng,
        kind: CrashKind,
        unfinished: Option<&Unfinished>,
    ) -> CrashDamage {
        let mut damage = CrashDamage::default();
        match kind {
            CrashKind::Process => {
                if let Some(w) = unfinished
                    && let Some(f) = self.files.get_mut(&w.name)
                    && rng.chance(0.5)
                {
                    let written = f.bytes.len() - w.start;
                    let keep = w.start + rng.below_inclusive(written as u64) as usize;
                    damage.bytes_lost += (f.bytes.len() - keep) as u64;
                    f.bytes.truncate(keep);
                    f.synced = f.synced.min(keep);
                }
            }
            CrashKind::PowerLoss => {
                let mut vanished = Vec::new();
                for (name, f) in &mut self.files {
                    if !f.named && rng.chance(0.5) {
                        vanished.push(name.clone());
                        continue;
                    }
                    let tail = f.bytes.len() - f.synced;
                    let kept = match rng.below_inclusive(9) {
                        0..=3 => 0,
                        4..=7 => rng.below_inclusive(tail as u64) as usize,
                        _ => tail,
                    };
                    damage.bytes_lost += (tail - kept) as u64;
                    f.bytes.truncate(f.synced + kept);
                    // Space allocated for the lost writes, never filled: zeros (never in a file's header).
                    if tail > 0 && f.synced >= 64 && rng.chance(0.1) {
                        let zeros = rng.range_inclusive(1, 64) as usize;
                        f.bytes.resize(f.bytes.len() + zeros, 0);
                    }
                    f.synced = f.bytes.len();
                    f.named = true;
                }
                for name in vanished {
                    damage.files_lost += 1;
                    if let Some(f) = self.files.remove(&name) {
                        damage.bytes_lost += f.bytes.len() as u64;
                    }
                }
            }
        }
        damage
    }
}

/// What a durable seed draws about its store and its disk (in some seeds a disk budget, so history is trimmed).
#[derive(Debug, Clone)]
pub struct DiskSetup {
    /// The store's settings (small segments and snapshot thresholds, so a few thousand steps roll and snapshot).
    pub store: DurableConfig,
    /// The mean time a write (and its sync) takes.
    pub write_time: Duration,
    /// The chance that a write or a snapshot fails for a full disk.
    pub full: f64,
}

impl DiskSetup {
    /// Draws the disk of a durable seed, with the hub's retention.
    pub fn draw(rng: &mut Rng, hub: &HubConfig) -> DiskSetup {
        let mut store = DurableConfig::new(hub.history_size, hub.history_ttl);
        store.history_bytes = hub.history_bytes;
        store.history_total_bytes = hub.history_total_bytes;
        store.fsync = match rng.below_inclusive(3) {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::Off,
            _ => FsyncPolicy::Batch,
        };
        store.segment_bytes = rng.range_inclusive(1_000, 16_000);
        store.min_log_bytes = rng.range_inclusive(500, 8_000);
        let write_time = Duration::from_micros(rng.range_inclusive(100, 20_000));
        let full = [0.0, 0.01, 0.05][rng.below_inclusive(2) as usize];
        if rng.chance(0.3) {
            // A disk budget small enough that the store drops old history to stay within it.
            store.max_disk_bytes = Some(rng.range_inclusive(3_000, 30_000));
        }
        DiskSetup {
            store,
            write_time,
            full,
        }
    }

    /// The name of log segment `id`.
    pub fn segment_name(id: u64) -> String {
        format!("{id:016x}.log")
    }

    /// The name of the snapshot covering segments up to `id`.
    pub fn snapshot_name(id: u64) -> String {
        format!("{id:016x}.snap")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_power_loss_keeps_the_synced_prefix_and_a_process_crash_keeps_everything() {
        for seed in 0..50 {
            let mut rng = Rng::from_seed(seed);
            let mut disk = SimDisk::default();
            disk.create("a");
            disk.append("a", &[1; 100]);
            disk.sync("a");
            disk.append("a", &[2; 50]);
            disk.create("b");
            disk.append("b", &[3; 10]);
            let mut after_process = disk.clone();
            after_process.crash(&mut rng, CrashKind::Process, None);
            assert_eq!(after_process.len("a"), Some(150));
            assert_eq!(after_process.len("b"), Some(10));
            let damage = disk.crash(&mut rng, CrashKind::PowerLoss, None);
            let a = disk.read("a").unwrap();
            assert!(a.len() >= 100 && a[..100] == [1; 100]);
            assert!(
                a[100..].iter().all(|&b| b == 2 || b == 0),
                "the tail is a prefix of what was written, or zeros"
            );
            assert!(damage.bytes_lost <= 60 + 64, "{damage:?}");
        }
    }

    #[test]
    fn an_unfinished_write_may_be_cut_by_a_process_crash() {
        let cut = (0..50).any(|seed| {
            let mut disk = SimDisk::default();
            disk.append("a", &[1; 10]);
            disk.append("a", &[2; 10]);
            let unfinished = Unfinished {
                name: String::from("a"),
                start: 10,
            };
            disk.crash(
                &mut Rng::from_seed(seed),
                CrashKind::Process,
                Some(&unfinished),
            );
            let len = disk.len("a").unwrap();
            assert!((10..=20).contains(&len));
            len < 20
        });
        assert!(cut);
    }
}
