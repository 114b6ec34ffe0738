//! [`DurableConfig`] and [`FsyncPolicy`].

use core::time::Duration;

use crate::server::config::{DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_TOTAL_BYTES};
use crate::server::store::Retention;

/// When the driver syncs what it wrote, and so what an acknowledgement promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Every event is written and synced on its own before it is acknowledged: an acknowledged event survives a
    /// power loss. One sync per event bounds throughput by the disk's sync rate.
    Always,
    /// Group commit: the events that queued while the previous write was syncing are written together and synced
    /// once, then all acknowledged. The same promise as `Always` (nothing is acknowledged before its sync), with
    /// throughput from batching.
    #[default]
    Batch,
    /// Events are acknowledged once written to the operating system, never synced by the server (except when a
    /// file is created or a snapshot replaces the log). They survive a crash of the process, not of the machine.
    Off,
}

impl FsyncPolicy {
    /// The policy's name as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Batch => "batch",
            FsyncPolicy::Off => "off",
        }
    }
}

/// The durable store's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurableConfig {
    /// Events kept per channel (as [`HubConfig::history_size`](crate::server::HubConfig::history_size)).
    pub history_size: usize,
    /// No kept event is older than this (as [`HubConfig::history_ttl`](crate::server::HubConfig::history_ttl)).
    pub history_ttl: Duration,
    /// Bytes of history kept in memory per channel (as
    /// [`HubConfig::history_bytes`](crate::server::HubConfig::history_bytes); default 16 MiB).
    pub history_bytes: usize,
    /// Bytes of history kept in memory over all channels (as
    /// [`HubConfig::history_total_bytes`](crate::server::HubConfig::history_total_bytes); default 256 MiB).
    pub history_total_bytes: usize,
    /// When writes are synced.
    pub fsync: FsyncPolicy,
    /// The most the store's files may take on disk; `None`: no budget.
    pub max_disk_bytes: Option<u64>,
    /// A log segment is closed and the next begun once it holds this many bytes (default 64 MiB).
    pub segment_bytes: u64,
    /// The log is not snapshotted before it holds this many bytes (default 64 MiB; with a disk budget, at most a
    /// quarter of it).
    pub min_log_bytes: u64,
}

impl DurableConfig {
    /// The defaults with the hub's retention.
    pub fn new(history_size: usize, history_ttl: Duration) -> DurableConfig {
        DurableConfig {
            history_size,
            history_ttl,
            history_bytes: DEFAULT_HISTORY_BYTES,
            history_total_bytes: DEFAULT_HISTORY_TOTAL_BYTES,
            fsync: FsyncPolicy::Batch,
            max_disk_bytes: None,
            segment_bytes: 64 * 1024 * 1024,
            min_log_bytes: 64 * 1024 * 1024,
        }
    }

    /// The in-memory retention the store's reads are served under.
    pub(crate) fn retention(&self) -> Retention {
        Retention {
            history_size: self.history_size,
            history_ttl: self.history_ttl,
            history_bytes: self.history_bytes,
            history_total_bytes: self.history_total_bytes,
        }
    }

    /// The log size that calls for a snapshot when the last snapshot was `snapshot_bytes` long. Under a disk
    /// budget, never more than the log's [`share`](Self::share): a log that may not grow further is snapshotted.
    pub(crate) fn log_limit(&self, snapshot_bytes: u64) -> u64 {
        let limit = match self.share() {
            Some(share) => snapshot_bytes.max(self.min_log_bytes.min(share)).min(share),
            None => snapshot_bytes.max(self.min_log_bytes),
        };
        limit.max(1)
    }

    /// Under a disk budget, the most each of the four things the files may hold at once takes: the last snapshot,
    /// the log it is followed by, the next snapshot while it is written, and the log begun when it was asked for.
    /// The log is held to its share (writes wait for a running snapshot); the snapshots are held to theirs by the
    /// history kept ([`live_limit`](Self::live_limit)). [`DIRECTORY_SLACK`] (or a sixteenth of a smaller budget) is
    /// kept aside for the lock file and for what the snapshots hold besides history growing between two of them.
    pub(crate) fn share(&self) -> Option<u64> {
        self.max_disk_bytes
            .map(|max| ((max - DIRECTORY_SLACK.min(max / 16)) / 4).max(1))
    }

    /// The most history (in log record bytes) the store keeps in memory, and so in a snapshot, under the budget:
    /// a snapshot's share less what the last snapshot held besides history (`overhead`: retained states, channel
    /// heads, readers' positions, idempotency keys).
    pub(crate) fn live_limit(&self, overhead: u64) -> Option<u64> {
        self.share().map(|share| share.saturating_sub(overhead))
    }
}

/// Bytes of a disk budget not shared among snapshots and logs (see [`DurableConfig::share`]).
pub(crate) const DIRECTORY_SLACK: u64 = 4096;
