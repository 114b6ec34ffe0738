//! Publishing with pattern subscriptions: 10,000 connections, each subscribed to a pattern of its own
//! (`jobs/<i>/*`), and 100 more to `jobs/*/logs`. A publish walks the index of pattern segments along the channel's
//! name, so a channel no pattern matches costs what it costs with no patterns at all, and a matching one costs its
//! recipients, not the 10,100 patterns.
//!
//! `cargo bench -p switchboard-protocol --bench pattern_fanout`

use divan::Bencher;
use serde_json::json;
use switchboard_protocol::server::{Dialect, Hub, HubConfig, Permissions, Trust};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::ChannelName;

mod common;
use common::drain;

fn main() {
    divan::main();
}

const NOW_MS: u64 = 1_700_000_000_000;

/// A hub with `patterns` connections on `jobs/<i>/*` and `patterns / 100` on `jobs/*/logs` (with `by_pattern`
/// false, as many connections each subscribed to a channel `jobs/<i>/x` instead: the same hub without patterns).
fn hub_with(patterns: usize, by_pattern: bool) -> Hub {
    let now = Timestamp::from_millis(NOW_MS);
    let mut hub = Hub::new(HubConfig::default());
    let mut open = |pattern: String| {
        let (conn, mut intake) = hub.handle_open(
            now,
            Dialect::Native,
            Permissions::allow_all(),
            Trust::Untrusted,
        );
        let text = if by_pattern {
            format!(r#"{{"type":"subscribe","message_id":"s","data":{{"pattern":"{pattern}"}}}}"#)
        } else {
            let channel = pattern.replace('*', "x");
            format!(r#"{{"type":"subscribe","message_id":"s","data":{{"channel":"{channel}"}}}}"#)
        };
        let inbound = intake.text(now, &text);
        hub.handle_inbound(now, conn, inbound);
    };
    for i in 0..patterns {
        open(format!("jobs/{i}/*"));
    }
    for _ in 0..patterns / 100 {
        open(String::from("jobs/*/logs"));
    }
    drain(&mut hub);
    hub
}

fn run(bencher: Bencher<'_, '_>, patterns: usize, channel: &str, recipients: usize) {
    run_on(bencher, hub_with(patterns, true), channel, recipients);
}

fn run_on(bencher: Bencher<'_, '_>, mut hub: Hub, channel: &str, recipients: usize) {
    let channel = ChannelName::new(channel).expect("valid channel");
    let now = Timestamp::from_millis(NOW_MS);
    let mut seq = 0u64;
    bencher.bench_local(|| {
        seq += 1;
        hub.publish(now, &channel, json!({"n": seq}), false)
            .expect("publish");
        let frames = drain(&mut hub);
        assert_eq!(frames, recipients);
        frames
    });
}

/// A channel no pattern matches, with no pattern subscriptions at all: the baseline.
#[divan::bench]
fn unmatched_no_patterns(bencher: Bencher<'_, '_>) {
    run(bencher, 0, "other/1/logs", 0);
}

/// The same channel on a hub with 10,100 connections each subscribed to a channel, no patterns: what the hub's
/// size costs by itself.
#[divan::bench]
fn unmatched_10k_channel_subscribers(bencher: Bencher<'_, '_>) {
    run_on(bencher, hub_with(10_000, false), "other/1/logs", 0);
}

/// The same channel with 10,100 pattern subscriptions (none matches it).
#[divan::bench]
fn unmatched_10k_patterns(bencher: Bencher<'_, '_>) {
    run(bencher, 10_000, "other/1/logs", 0);
}

/// A channel under `jobs/` that no pattern matches (`jobs/5/logs/x`), 10,100 patterns: the walk goes one level down.
#[divan::bench]
fn unmatched_under_jobs_10k_patterns(bencher: Bencher<'_, '_>) {
    run(bencher, 10_000, "jobs/5/logs/x", 0);
}

/// `jobs/5/logs`: matched by `jobs/5/*` and the 100 `jobs/*/logs`: 101 deliveries out of 10,100 patterns.
#[divan::bench]
fn matched_101_of_10k_patterns(bencher: Bencher<'_, '_>) {
    run(bencher, 10_000, "jobs/5/logs", 101);
}
