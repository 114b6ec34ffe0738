//! Publish → fan-out: one `Hub::publish` to a channel with N subscribers, then draining every output as a driver
//! would (each `Transmit` handed back through `handle_sent`). Divide the time by N for the cost per delivery.
//!
//! `cargo bench -p switchboard-protocol --bench hub_fanout`

use divan::Bencher;
use divan::counter::ItemsCount;
use serde_json::json;
use switchboard_protocol::server::{Dialect, Hub, HubConfig, Permissions, Trust};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::ChannelName;

mod common;
use common::drain;

fn main() {
    divan::main();
}

const SUBSCRIBERS: &[usize] = &[1, 100, 10_000];

/// A hub whose channel `bench` has `n` subscribers, speaking the given dialects in turn.
fn hub_with_subscribers(n: usize, dialects: &[fn() -> Dialect]) -> (Hub, ChannelName) {
    let now = Timestamp::from_millis(1_700_000_000_000);
    let mut hub = Hub::new(HubConfig::default());
    let channel = ChannelName::new("projects/bench").expect("valid channel");
    for i in 0..n {
        let dialect = dialects[i % dialects.len()]();
        let (conn, mut intake) = hub.handle_open(
            now,
            dialect.clone(),
            Permissions::allow_all(),
            Trust::Untrusted,
        );
        let subscribe = match dialect {
            Dialect::Native => {
                r#"{"type":"subscribe","message_id":"s","data":{"channel":"projects/bench"}}"#
            }
            Dialect::ChannelPayload => {
                r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"projects/bench"}}"#
            }
            // Subscribed on open.
            _ => continue,
        };
        let inbound = intake.text(now, subscribe);
        hub.handle_inbound(now, conn, inbound);
    }
    drain(&mut hub);
    assert_eq!(hub.subscriber_count(&channel), n);
    (hub, channel)
}

fn run(bencher: Bencher<'_, '_>, n: usize, dialects: &[fn() -> Dialect]) {
    let (mut hub, channel) = hub_with_subscribers(n, dialects);
    let now = Timestamp::from_millis(1_700_000_000_000);
    let mut seq = 0u64;
    bencher.counter(ItemsCount::new(n)).bench_local(|| {
        seq += 1;
        let event =
            json!({"event_type": "progress_update", "data": {"stage": "build", "pct": seq % 100}});
        hub.publish(now, &channel, event, false).expect("publish");
        let frames = drain(&mut hub);
        debug_assert_eq!(frames, n);
        frames
    });
}

/// Every subscriber speaks the native dialect: one encoding per publish.
#[divan::bench(args = SUBSCRIBERS)]
fn native(bencher: Bencher<'_, '_>, n: usize) {
    run(bencher, n, &[|| Dialect::Native]);
}

/// Subscribers spread over the three dialects: three encodings per publish.
#[divan::bench(args = SUBSCRIBERS)]
fn mixed_dialects(bencher: Bencher<'_, '_>, n: usize) {
    run(
        bencher,
        n,
        &[
            || Dialect::Native,
            || Dialect::ChannelPayload,
            || Dialect::ProjectStream {
                project_id: "bench".to_owned(),
                since: None,
            },
        ],
    );
}
