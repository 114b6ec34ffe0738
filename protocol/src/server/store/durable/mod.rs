//! [`DurableStore`]: channels' history, positions, retained state and readers' cursors kept in files, so a restart
//! or a crash loses no acknowledged event.
//!
//! The store decides everything and does no IO: the driver writes what [`poll_write`](super::Store::poll_write) hands it
//! ([`StoreWrite`]: bytes to append to a log segment, and whether to sync them), reports the outcome
//! ([`handle_written`](super::Store::handle_written) / [`handle_write_failed`](super::Store::handle_write_failed)),
//! writes the snapshots it asks for ([`SnapshotJob`]) and, at start, feeds the files back in through a
//! [`Restorer`].
//!
//! - **Acknowledged means written.** An append is [`Pending`](super::Appended::Pending) until the write holding its
//!   record is done (and synced, under [`FsyncPolicy::Always`] and [`FsyncPolicy::Batch`]); only then is it
//!   readable, answered and delivered. Appends that arrive while a write is in flight go into the next one: group
//!   commit, one write and one sync for everything that queued behind the previous sync.
//! - **Files.** The log is a sequence of segments (`{id:016x}.log`), each a header, the store's epoch and
//!   records ([`record`]). When the log since the last snapshot has grown as large as the snapshot (and at least
//!   [`DurableConfig::min_log_bytes`]), the store captures what it holds and asks for a snapshot
//!   (`{id:016x}.snap`) written off the hub's lock; once it is written the segments it covers are removed. So the
//!   files hold at most about twice the live data plus one snapshot's worth, and a restart reads one snapshot and
//!   the log after it.
//! - **Damage.** A file that ends inside a record (a torn write) is cut back to its last whole record and the
//!   store starts; nothing cut was acknowledged. A record whose checksum disagrees (the bytes changed after they
//!   were written) is cut back the same way, and because acknowledged events may be gone, the store takes a new
//!   epoch: every client resumes with `recovered: false` instead of trusting positions that may now name other
//!   events.
//! - **Disk budget** ([`DurableConfig::max_disk_bytes`]): the files hold at most the last snapshot, the log after
//!   it, the next snapshot while it is written and the log begun when it was asked for; each gets a quarter of the
//!   budget. The store keeps the history it holds within a snapshot's quarter (less what the last snapshot held
//!   besides history), dropping the oldest events first (never the retained state), and a log at its quarter waits
//!   for the running snapshot before it is written to again.

mod config;
mod restore;
mod store;
mod write;

pub mod record;

pub use config::{DurableConfig, FsyncPolicy};
pub use record::{Damage, FormatError};
pub use restore::{RestoreReport, Restorer, SegmentScan};
pub use store::DurableStore;
pub use write::{SnapshotJob, StoreWrite};

#[cfg(test)]
mod tests;
