//! The server's per-delivery write path, socket taken out: a batch of published events framed once, pushed onto
//! every subscriber's outbound queue (with the connection lookup and the wake-up the driver does), then taken and
//! written by every subscriber's writer with vectored writes. Counted per delivery (subscriber × event).
//!
//! `cargo bench -p switchboard-runtime --features _internal_test_exports --bench write_path`
//!
//! The kernel's `writev` and the executor's scheduling are not in it: `switchboard bench fanout --server-pid`
//! measures the whole server.

use std::sync::Arc;

use divan::Bencher;
use divan::counter::ItemsCount;
use switchboard_runtime::write_path::{WritePath, event_text};

fn main() {
    divan::main();
}

const SUBSCRIBERS: &[usize] = &[1, 100, 1_000, 10_000];

/// `n` events of 100 bytes, as `bench fanout` publishes them.
fn events(n: usize) -> Vec<Arc<str>> {
    (0..n).map(|seq| event_text(seq, 100)).collect()
}

/// One event per wake-up: a fixed, modest rate, where every delivery is its own write.
#[divan::bench(args = SUBSCRIBERS)]
fn one_event_per_write(bencher: Bencher<'_, '_>, subscribers: usize) {
    let mut path = WritePath::new(subscribers);
    let batch = events(1);
    // Steady state, as in a running server: every queue has its buffer from the first batch.
    path.deliver(&batch);
    bencher
        .counter(ItemsCount::new(subscribers))
        .bench_local(|| path.deliver(&batch));
}

/// Sixteen events per wake-up: a publisher as fast as acknowledged with 16 publishes in flight.
#[divan::bench(args = SUBSCRIBERS)]
fn sixteen_events_per_write(bencher: Bencher<'_, '_>, subscribers: usize) {
    let mut path = WritePath::new(subscribers);
    let batch = events(16);
    path.deliver(&batch);
    bencher
        .counter(ItemsCount::new(subscribers * batch.len()))
        .bench_local(|| path.deliver(&batch));
}
