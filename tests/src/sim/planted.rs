//! The planted fault (test-only, `--features _internal_planted_fault`): a store whose recovery loses the first event it
//! replays. The simulation must catch it as a gap; `tests/simulation.rs` asserts that it does.

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
    Hub::with_store(config, Box::new(LosesOneReplayed(store)))
}

/// The memory store, but every replay skips its first event.
#[derive(Debug)]
struct LosesOneReplayed(MemoryStore);

impl Store for LosesOneReplayed {
    fn append(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Arc<Value>,
        bytes: usize,
        retain: bool,
    ) -> Appended {
        self.0.append(now, channel, event, bytes, retain)
    }

    fn key_next(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        key: &switchboard_protocol::wire::IdempotencyKey,
        count: u64,
    ) {
        self.0.key_next(now, channel, key, count)
    }

    fn take_restored_keys(&mut self) -> Vec<switchboard_protocol::server::KeptKey> {
        self.0.take_restored_keys()
    }

    fn set_cursor(&mut self, name: &str, channel: &ChannelName, offset: u64) {
        self.0.set_cursor(name, channel, offset)
    }

    fn cursor(&self, name: &str, channel: &ChannelName) -> Option<u64> {
        self.0.cursor(name, channel)
    }

    fn epoch(&self, channel: &ChannelName) -> &str {
        self.0.epoch(channel)
    }

    fn offset(&self, channel: &ChannelName) -> u64 {
        self.0.offset(channel)
    }

    fn channels_with_prefix(&self, prefix: &str) -> Vec<ChannelName> {
        self.0.channels_with_prefix(prefix)
    }

    fn state(&self, channel: &ChannelName) -> ChannelState {
        self.0.state(channel)
    }

    fn replay(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        after: &StreamPosition,
    ) -> Option<Vec<(u64, Arc<Value>)>> {
        self.0
            .replay(now, channel, after)
            .map(|events| events.into_iter().skip(1).collect())
    }

    fn page(
        &self,
        now: Timestamp,
        channel: &ChannelName,
        since: Option<u64>,
        limit: usize,
    ) -> HistoryPage {
        self.0.page(now, channel, since, limit)
    }

    fn hold(&mut self, channel: &ChannelName) {
        self.0.hold(channel)
    }

    fn release(&mut self, channel: &ChannelName) {
        self.0.release(channel)
    }

    fn admits(&self, channel: &ChannelName, max_channels: usize) -> bool {
        self.0.admits(channel, max_channels)
    }

    fn next_expiry(&self) -> Option<Timestamp> {
        self.0.next_expiry()
    }

    fn expire(&mut self, now: Timestamp) {
        self.0.expire(now)
    }

    fn holds(&self, channel: &ChannelName) -> bool {
        self.0.holds(channel)
    }

    fn stats(&self) -> StoreStats {
        self.0.stats()
    }

    fn check(&self) -> Result<(), String> {
        self.0.check()
    }
}
