//! The planted stale epoch (test-only, `--features _internal_planted_stale_epoch`): a store under which a channel
//! forgotten and published to again keeps the epoch of its first log, so positions in the old log look valid in
//! the new one. The simulation must catch it; `tests/simulation.rs` asserts that it does.
//!
//! The memory store is behind the public `Store` boundary, unchanged; this wrapper only renames each channel's
//! later epochs to its first one (and back, for a replay's position). No production code carries the fault.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::store::StoreStats;
use switchboard_protocol::server::{
    Appended, ChannelState, HistoryPage, Hub, HubConfig, MemoryStore, Store,
};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, StreamPosition};

/// A hub over the faulty store.
pub(super) fn hub(config: HubConfig) -> Hub {
    let epoch = format!("{:016x}", Rng::from_seed(config.seed).next_u64());
    let store = MemoryStore::new(epoch, config.history_size, config.history_ttl)
        .with_history_bytes(config.history_bytes, config.history_total_bytes);
    Hub::with_store(
        config,
        Box::new(KeepsFirstEpoch {
            inner: store,
            first: BTreeMap::new(),
        }),
    )
}

/// The memory store, but every channel reports the epoch its first log had, whatever log it has now.
#[derive(Debug)]
struct KeepsFirstEpoch {
    inner: MemoryStore,
    /// The epoch of each channel's first log.
    first: BTreeMap<ChannelName, String>,
}

impl KeepsFirstEpoch {
    /// Remembers `channel`'s epoch if it is its first log.
    fn remember(&mut self, channel: &ChannelName) {
        if !self.first.contains_key(channel) {
            let epoch = String::from(self.inner.epoch(channel));
            self.first.insert(channel.clone(), epoch);
        }
    }
}

impl Store for KeepsFirstEpoch {
    fn append(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Arc<Value>,
        bytes: usize,
        retain: bool,
    ) -> Appended {
        let appended = self.inner.append(now, channel, event, bytes, retain);
        self.remember(channel);
        appended
    }

    fn key_next(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        key: &switchboard_protocol::wire::IdempotencyKey,
        count: u64,
    ) {
        self.inner.key_next(now, channel, key, count)
    }

    fn take_restored_keys(&mut self) -> Vec<switchboard_protocol::server::KeptKey> {
        self.inner.take_restored_keys()
    }

    fn set_cursor(&mut self, name: &str, channel: &ChannelName, offset: u64) {
        self.inner.set_cursor(name, channel, offset)
    }

    fn cursor(&self, name: &str, channel: &ChannelName) -> Option<u64> {
        self.inner.cursor(name, channel)
    }

    fn epoch(&self, channel: &ChannelName) -> &str {
        match self.first.get(channel) {
            Some(first) => first,
            None => self.inner.epoch(channel),
        }
    }

    fn offset(&self, channel: &ChannelName) -> u64 {
        self.inner.offset(channel)
    }

    fn channels_with_prefix(&self, prefix: &str) -> Vec<ChannelName> {
        self.inner.channels_with_prefix(prefix)
    }

    fn state(&self, channel: &ChannelName) -> ChannelState {
        ChannelState {
            epoch: String::from(self.epoch(channel)),
            ..self.inner.state(channel)
        }
    }

    fn replay(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        after: &StreamPosition,
    ) -> Option<Vec<(u64, Arc<Value>)>> {
        let after = if after.epoch == self.epoch(channel) {
            StreamPosition {
                epoch: String::from(self.inner.epoch(channel)),
                offset: after.offset,
            }
        } else {
            after.clone()
        };
        self.inner.replay(now, channel, &after)
    }

    fn page(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        since: Option<u64>,
        limit: usize,
    ) -> HistoryPage {
        HistoryPage {
            epoch: String::from(self.epoch(channel)),
            ..self.inner.page(now, channel, since, limit)
        }
    }

    fn hold(&mut self, channel: &ChannelName) {
        self.inner.hold(channel);
        self.remember(channel);
    }

    fn release(&mut self, channel: &ChannelName) {
        self.inner.release(channel)
    }

    fn admits(&self, channel: &ChannelName, max_channels: usize) -> bool {
        self.inner.admits(channel, max_channels)
    }

    fn next_expiry(&self) -> Option<Timestamp> {
        self.inner.next_expiry()
    }

    fn expire(&mut self, now: Timestamp) {
        self.inner.expire(now)
    }

    fn holds(&self, channel: &ChannelName) -> bool {
        self.inner.holds(channel)
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }

    fn check(&self) -> Result<(), String> {
        self.inner.check()
    }
}
