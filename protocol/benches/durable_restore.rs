//! Restoring the durable store: decoding a snapshot of 1,000 channels × 1,000 events (one million events of about
//! 100 bytes of JSON) and building the in-memory store from it, the core's part of a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_protocol::server::store::durable::{DurableConfig, DurableStore, Restorer};
use switchboard_protocol::server::{Store, StoreWrite};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, json_len};

fn main() {
    divan::main();
}

const CHANNELS: usize = 1000;
const PER_CHANNEL: u64 = 1000;

fn config() -> DurableConfig {
    DurableConfig::new(1000, Duration::from_secs(3600))
}

/// The log segments of one million publishes, as the store writes them (a batch per channel).
fn log() -> BTreeMap<u64, Vec<u8>> {
    let mut store = DurableStore::new(config(), String::from("e"));
    let mut files = BTreeMap::new();
    let drain = |store: &mut DurableStore, files: &mut BTreeMap<u64, Vec<u8>>| {
        while let Some(StoreWrite {
            batch,
            segment,
            bytes,
            ..
        }) = store.poll_write()
        {
            files.entry(segment).or_default().extend_from_slice(&bytes);
            store.handle_written(Timestamp::from_millis(1), batch);
        }
    };
    for c in 0..CHANNELS {
        let channel = ChannelName::new(&format!("projects/p{c}/executions/run")).expect("valid");
        for n in 0..PER_CHANNEL {
            let event = json!({"event_type": "progress", "data": {"step": n, "of": PER_CHANNEL, "msg": "tokenising shard"}});
            let bytes = json_len(&event);
            store.append(
                Timestamp::from_millis(1),
                &channel,
                Arc::new(event),
                bytes,
                false,
            );
        }
        drain(&mut store, &mut files);
    }
    files
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn restore_one_million_events(bencher: divan::Bencher<'_, '_>) {
    let files = log();
    bencher.bench(|| {
        let mut restorer = Restorer::new(config());
        for (&id, file) in &files {
            let scan = restorer.segment(id, file).expect("our format");
            assert_eq!(scan.damage, None);
        }
        let (store, report) = restorer.finish(Timestamp::from_millis(2), String::from("x"));
        assert_eq!(report.events, CHANNELS * PER_CHANNEL as usize);
        store
    });
}

/// What a snapshot costs the hub's lock: the store clones its committed data (the events are shared, not
/// copied); the encoding happens off the lock.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn snapshot_capture_one_million_events(bencher: divan::Bencher<'_, '_>) {
    let mut store = switchboard_protocol::server::MemoryStore::new(
        String::from("e"),
        1000,
        Duration::from_secs(3600),
    );
    for c in 0..CHANNELS {
        let channel = ChannelName::new(&format!("projects/p{c}/executions/run")).expect("valid");
        for n in 0..PER_CHANNEL {
            let event = json!({"step": n});
            let bytes = json_len(&event);
            store.append(
                Timestamp::from_millis(1),
                &channel,
                Arc::new(event),
                bytes,
                false,
            );
        }
    }
    bencher.bench(|| store.clone());
}
