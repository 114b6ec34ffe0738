//! Decoding a 200-byte native client frame next to a bare `serde_json::from_str::<Value>` of the same bytes, the
//! hub's full intake of it (decode + dispatch + the reply), and encoding.
//!
//! `cargo bench -p switchboard-protocol --bench decode`. The ratio decode / bare parse is the number to watch;
//! `examples/hot_paths.rs` gives the same operations as instruction counts under callgrind.

use std::hint::black_box;

use divan::Bencher;
use serde_json::{Value, json};
use switchboard_protocol::server::{Hub, HubConfig, Permissions};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{
    ChannelName, MessageId, ServerFrame, ServerMessage, decode_client, encode_event,
};

mod common;
use common::drain;

fn main() {
    divan::main();
}

/// A 200-byte `publish` frame (the event padded to fit).
fn publish_frame() -> String {
    let frame = |pad: &str| {
        json!({"type": "publish", "message_id": "0b7e4b9e-7d51-4f0e-9f39-5d1f2a9c1e42",
            "data": {"channel": "projects/p1", "event": {"stage": "build", "pct": 42, "note": pad}}})
        .to_string()
    };
    let bare = frame("").len();
    let text = frame(&"x".repeat(200 - bare));
    assert_eq!(text.len(), 200);
    text
}

/// A 200-byte `ping` frame (the echoed timestamp padded to fit).
fn ping_frame() -> String {
    let frame = |pad: &str| {
        json!({"type": "ping", "message_id": "0b7e4b9e-7d51-4f0e-9f39-5d1f2a9c1e42",
            "data": {"timestamp": {"client": 1_700_000_000_000u64, "note": pad}}})
        .to_string()
    };
    let bare = frame("").len();
    let text = frame(&"x".repeat(200 - bare));
    assert_eq!(text.len(), 200);
    text
}

#[divan::bench_group]
mod publish_200b {
    use super::*;

    #[divan::bench]
    fn serde_value(bencher: Bencher<'_, '_>) {
        let text = publish_frame();
        bencher.bench(|| serde_json::from_str::<Value>(black_box(&text)).unwrap());
    }

    #[divan::bench]
    fn decode_client_native(bencher: Bencher<'_, '_>) {
        let text = publish_frame();
        bencher.bench(|| decode_client(black_box(&text)).unwrap());
    }
}

#[divan::bench_group]
mod ping_200b {
    use super::*;

    #[divan::bench]
    fn serde_value(bencher: Bencher<'_, '_>) {
        let text = ping_frame();
        bencher.bench(|| serde_json::from_str::<Value>(black_box(&text)).unwrap());
    }

    #[divan::bench]
    fn decode_client_native(bencher: Bencher<'_, '_>) {
        let text = ping_frame();
        bencher.bench(|| decode_client(black_box(&text)).unwrap());
    }

    /// A frame through the connection's `Intake` (size and rate checks, decode) and `Hub::handle_inbound`
    /// (dispatch), then draining the `ping_res` it queues.
    #[divan::bench]
    fn hub_handle_text_and_reply(bencher: Bencher<'_, '_>) {
        let text = ping_frame();
        let now = Timestamp::from_millis(1_700_000_000_000);
        let config = HubConfig {
            rate_per_sec: 0,
            ..HubConfig::default()
        };
        let mut hub = Hub::new(config);
        let (conn, mut intake) = hub.handle_open(
            now,
            switchboard_protocol::server::Dialect::Native,
            Permissions::allow_all(),
            switchboard_protocol::server::Trust::Untrusted,
        );
        drain(&mut hub);
        bencher.bench_local(|| {
            let inbound = intake.text(now, black_box(&text));
            hub.handle_inbound(now, conn, inbound);
            drain(&mut hub)
        });
    }
}

#[divan::bench_group]
mod encode {
    use super::*;

    /// The fan-out encoding: once per publish, shared by every subscriber.
    #[divan::bench]
    fn event_200b(bencher: Bencher<'_, '_>) {
        let id = MessageId::new("0b7e4b9e-7d51-4f0e-9f39-5d1f2a9c1e42").unwrap();
        let channel = ChannelName::new("projects/p1").unwrap();
        let event = json!({"stage": "build", "pct": 42, "note": "x".repeat(60)});
        bencher.bench(|| encode_event(&id, &channel, "4f1c2a7e", 12345, black_box(&event)));
    }

    #[divan::bench]
    fn ping_res(bencher: Bencher<'_, '_>) {
        let frame = ServerFrame {
            message_id: Some(MessageId::new("0b7e4b9e-7d51-4f0e-9f39-5d1f2a9c1e42").unwrap()),
            message: ServerMessage::PingRes {
                timestamp: Some(json!({"client": 1_700_000_000_000u64})),
                server_time: 1_700_000_000_123,
            },
        };
        bencher.bench(|| black_box(&frame).encode());
    }
}
