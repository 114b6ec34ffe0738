//! The storage boundary: the one interface through which the hub reaches channels' positions, history and retained
//! state.
//!
//! The hub decides *what* is stored and *when* an event may be acknowledged and delivered; a [`Store`] does the
//! keeping. A publish is two steps on either side of the boundary: [`Store::append`] gives the event its position
//! (offset in the channel's epoch), and only then does the hub answer the publisher and fan the event out
//! ([`Hub::publish`](super::Hub::publish)). Recovery asks the store for the events after a position
//! ([`Store::replay`]) and gets either all of them or a refusal, never a part: the store is the one that knows
//! whether its history still reaches back.
//!
//! [`MemoryStore`] is the implementation every hub starts with ([`Hub::new`](super::Hub::new)); another comes in
//! through [`Hub::with_store`](super::Hub::with_store). docs/ARCHITECTURE.md describes how a durable store and an
//! external engine (which assigns offsets itself and feeds publications back in) take the same place.

pub mod durable;
mod history;
mod kept_key;
mod memory;

#[cfg(test)]
mod budget_tests;

pub use durable::{DurableConfig, DurableStore, FsyncPolicy, SnapshotJob, StoreWrite};
pub use kept_key::KeptKey;
pub use memory::MemoryStore;
pub(crate) use memory::Retention;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use serde_json::Value;

use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey, StreamPosition};

/// Where channels' events live.
///
/// Every method is called with the hub's current time; none may block. Reads must honour the store's own
/// retention exactly (an event past its time-to-live is not read, even before it is pruned), because recovery
/// answers `recovered: true` only on what [`replay`](Self::replay) returns.
pub trait Store: fmt::Debug + Send {
    /// Gives `event` the next offset of `channel` (creating the channel's log at offset 1), keeps it in history
    /// and, when `retain`, as the channel's state. `bytes` is the length of the event's compact JSON
    /// ([`json_len`](crate::wire::json_len)), counted once by the hub: what the event weighs against a store's byte
    /// budgets. An event may be given its offset and still not be kept in history (one larger than the budget).
    ///
    /// A store that keeps it at once answers [`Appended::Kept`]. A store that must first write it somewhere
    /// answers [`Appended::Pending`]: the event is not readable (not in `replay`, `page`, `state` or `offset`)
    /// until [`handle_written`](Self::handle_written) counts it, and it is dropped if
    /// [`handle_write_failed`](Self::handle_write_failed) does. Pending appends complete in the order they were made.
    fn append(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Arc<Value>,
        bytes: usize,
        retain: bool,
    ) -> Appended;

    /// The next `count` appends are one batch publish, and must be kept or dropped together: by one
    /// [`handle_written`](Self::handle_written) or [`handle_write_failed`](Self::handle_write_failed) (the hub
    /// answers the batch when its first append completes). A store that writes appends one at a time (the durable
    /// store under `--fsync always`) writes these in one write. Stores that keep at once, or write everything
    /// queued in one write, need do nothing.
    fn group_next(&mut self, _count: usize) {}

    /// The next `count` appends on `channel` are one publish under the idempotency `key`. A store that survives
    /// a restart writes the key down with them, in the same write, so that a key is read back only with every
    /// event it names; [`take_restored_keys`](Self::take_restored_keys) hands it back. The hub's own table
    /// answers repeats while the process runs; a store that does not survive a restart does nothing.
    fn key_next(&mut self, now: Timestamp, channel: &ChannelName, key: &IdempotencyKey, count: u64);

    /// The keys a store read back at start (their offsets still in the epoch the store restored), for the hub's
    /// dedupe table; empty after the first call.
    fn take_restored_keys(&mut self) -> Vec<KeptKey>;

    /// The next write for the driver to do (one at a time: the next comes after the driver reported this one).
    fn poll_write(&mut self) -> Option<StoreWrite> {
        None
    }

    /// The write `batch` is done (and synced when it asked to be): its appends are kept. Returns how many
    /// pending appends it completed, oldest first.
    fn handle_written(&mut self, _now: Timestamp, _batch: u64) -> usize {
        0
    }

    /// The write `batch` failed: it and every pending append after it are dropped, and their offsets will be
    /// given again. Returns how many pending appends were dropped, oldest first.
    fn handle_write_failed(&mut self, _now: Timestamp, _batch: u64) -> usize {
        0
    }

    /// Appends answered [`Appended::Pending`] and not yet written or dropped.
    fn pending_appends(&self) -> usize {
        0
    }

    /// A snapshot for the driver to write, off the hub's lock.
    fn poll_snapshot(&mut self) -> Option<SnapshotJob> {
        None
    }

    /// The snapshot covering segments up to `covers` is written (`bytes` long) and those segments are removed.
    fn handle_snapshot_written(&mut self, _now: Timestamp, _covers: u64, _bytes: u64) {}

    /// The snapshot covering segments up to `covers` could not be written; the segments stay.
    fn handle_snapshot_failed(&mut self, _now: Timestamp, _covers: u64) {}

    /// Records that the reader `name` (the webhook sender) has every event of `channel` up to `offset`.
    fn set_cursor(&mut self, name: &str, channel: &ChannelName, offset: u64);

    /// Where the reader `name` is in `channel`.
    fn cursor(&self, name: &str, channel: &ChannelName) -> Option<u64>;

    /// Every channel the reader `name` has a position in, with the position, in channel order (a reader resuming
    /// after a restart). A store that keeps no positions across restarts may leave it empty.
    fn cursors(&self, _name: &str) -> Vec<(ChannelName, u64)> {
        Vec::new()
    }

    /// The epoch of `channel` (of a channel with no log yet: the epoch its log will have).
    fn epoch(&self, channel: &ChannelName) -> &str;

    /// The offset of `channel`'s last event (0 before the first).
    fn offset(&self, channel: &ChannelName) -> u64;

    /// `channel`'s epoch, offset of its last event (0 before the first) and retained state.
    fn state(&self, channel: &ChannelName) -> ChannelState;

    /// Every event of `channel` after `after`, oldest first, when all of them are still kept: `after` is in the
    /// channel's epoch and history reaches back to `after.offset + 1`. `None` otherwise (PROTOCOL §3).
    fn replay(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        after: &StreamPosition,
    ) -> Option<Vec<(u64, Arc<Value>)>>;

    /// A page of at most `limit` kept events of `channel` after `since` (from the oldest kept when `None`).
    fn page(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        since: Option<u64>,
        limit: usize,
    ) -> HistoryPage;

    /// The hub has an interest in `channel` (a subscriber or a server): its log is kept, even empty, until
    /// [`release`](Self::release), so the epoch its subscribers were told stays the one its first event gets.
    fn hold(&mut self, _channel: &ChannelName) {}

    /// The hub's interest in `channel` ended: a log that keeps nothing more (no history, no retained state, no
    /// pending append) is forgotten, and the channel's next event starts a new log in a new epoch (PROTOCOL §3).
    fn release(&mut self, _channel: &ChannelName) {}

    /// Whether an append to `channel` fits `max_channels`: the channel already has events (or one pending), or
    /// fewer than `max_channels` channels do.
    fn admits(&self, _channel: &ChannelName, _max_channels: usize) -> bool {
        true
    }

    /// When the store next has something to expire; `None`: nothing.
    fn next_expiry(&self) -> Option<Timestamp>;

    /// Drops what has expired at `now`, and forgets the logs that leaves idle (no interest, history or state).
    fn expire(&mut self, now: Timestamp);

    /// The channels with a log whose name starts with `prefix`, in name order (a pattern subscription's matching
    /// channels are among them, so a store that left one out would leave it out of the subscription's replay).
    fn channels_with_prefix(&self, prefix: &str) -> Vec<ChannelName>;

    /// Whether `channel` has a log (it was published to or is held, and not forgotten since).
    fn holds(&self, channel: &ChannelName) -> bool;

    /// What the store holds.
    fn stats(&self) -> StoreStats;

    /// Checks the store's own indexes; the first disagreement found is the error (for the hub's invariant checks
    /// in tests, the simulation and fuzzing).
    #[cfg(any(test, feature = "_internal_test_exports"))]
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// What [`Store::append`] did with an event: the offset it gave it, and whether it is kept yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Kept: readable now.
    Kept(u64),
    /// Given this offset, and kept once the store's write completes.
    Pending(u64),
}

impl Appended {
    /// The offset the event was given.
    pub fn offset(self) -> u64 {
        match self {
            Appended::Kept(offset) | Appended::Pending(offset) => offset,
        }
    }
}

/// A channel's position and retained state ([`Hub::state`](super::Hub::state)).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelState {
    /// The channel's epoch.
    pub epoch: String,
    /// The offset of its last event (0 before the first).
    pub offset: u64,
    /// The retained event, if any.
    pub state: Option<Value>,
}

/// A page of a channel's history, for the history route (`GET /api/v1/channels/{channel}/events`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// The channel's epoch.
    pub epoch: String,
    /// `(offset, event)` in offset order, shared with the store (reading a page copies no event).
    pub events: Vec<(u64, Arc<Value>)>,
    /// Pass this as `since` to get the next page; `None` when the page reaches the newest kept event.
    pub next_since: Option<u64>,
}

/// What a store holds, for [`HubStats`](super::HubStats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Channels with a log (published to or held by the hub, and not forgotten).
    pub channels: usize,
    /// Events kept in history, over all channels.
    pub events: usize,
    /// Bytes of those events (each its compact JSON's length), over all channels. The retained state is not
    /// counted.
    pub bytes: usize,
}

impl StoreStats {
    /// Stats of `channels` logs holding `events` events of `bytes` bytes in all.
    pub fn new(channels: usize, events: usize, bytes: usize) -> StoreStats {
        StoreStats {
            channels,
            events,
            bytes,
        }
    }
}

/// [`Store::append`] with the event's length counted, for tests.
#[cfg(test)]
pub(crate) trait AppendJson {
    fn append_json(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Arc<Value>,
        retain: bool,
    ) -> Appended;
}

#[cfg(test)]
impl<S: Store + ?Sized> AppendJson for S {
    fn append_json(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Arc<Value>,
        retain: bool,
    ) -> Appended {
        let bytes = crate::wire::json_len(&event);
        self.append(now, channel, event, bytes, retain)
    }
}
