//! [`Report`]: how the writer's jobs ended, taken back to the hub by a [`Reporter`].

use std::sync::Arc;

/// How a [`Job`](super::writer::Job) ended, for the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The write `batch` is done (and synced when it asked to be).
    Written { batch: u64 },
    /// The write `batch` failed and was cut back.
    WriteFailed { batch: u64 },
    /// The snapshot covering segments up to `covers` is in place, `bytes` long.
    SnapshotWritten { covers: u64, bytes: u64 },
    /// The snapshot covering segments up to `covers` could not be written.
    SnapshotFailed { covers: u64 },
}

/// Takes a [`Report`] to the hub. Called on the writer's threads, with no lock held.
pub(crate) type Reporter = Arc<dyn Fn(Report) + Send + Sync>;
