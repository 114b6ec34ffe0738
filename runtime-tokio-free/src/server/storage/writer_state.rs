//! [`WriterState`]: what the writer's threads share with the driver.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// What the writer's threads share with the driver: whether work is under way, whether the directory is
/// released, and counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct WriterState {
    /// Jobs handed over and not yet reported.
    busy: AtomicUsize,
    /// The writer thread has ended and dropped its files.
    finished: AtomicBool,
    /// Bytes appended to log segments.
    pub log_bytes: AtomicU64,
    /// Log writes that failed.
    pub write_failures: AtomicU64,
    /// Snapshots written.
    pub snapshots: AtomicU64,
    /// Snapshots that failed.
    pub snapshot_failures: AtomicU64,
}

impl WriterState {
    /// Counts a job handed over.
    pub(super) fn begin(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
    }

    /// Marks a job done: called after its report, so `busy` is never 0 while a report may hand over the next job.
    pub(super) fn done(&self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether every job handed over has been reported.
    pub(super) fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    /// The writer thread has ended and dropped its files.
    pub(super) fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    /// Whether [`finish`](Self::finish) was called.
    pub(super) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}
