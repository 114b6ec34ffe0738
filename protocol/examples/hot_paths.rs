//! The core's hot paths in a loop, for instruction counts under callgrind (steady where wall-clock time on a
//! shared machine is not):
//!
//! ```text
//! cargo build --release -p switchboard-protocol --example hot_paths
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hot_paths serde 1000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hot_paths serde 11000
//! ```
//!
//! Instructions per operation = (Ir at 11000 − Ir at 1000) / 10000, which cancels the setup. Operations: `serde`
//! (bare `serde_json::from_str::<Value>` of a 200-byte publish frame), `decode` (`decode_client` of it), `publish`
//! (it through the connection's `Intake` and `Hub::handle_inbound`, on a channel nobody follows, drained),
//! `serde_ping` (bare parse of a 200-byte ping frame), `ping` (that ping through `Intake` and `Hub::handle_inbound`,
//! draining the reply), `fanout1000` (one publish to 1,000 native subscribers, drained), `encode` (`encode_event` of
//! a 100-byte event).

use std::hint::black_box;

use serde_json::{Value, json};
use switchboard_protocol::server::{Dialect, Hub, HubConfig, Permissions, Trust};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, MessageId, decode_client, encode_event};

#[path = "../benches/common/mod.rs"]
mod common;
use common::drain;

fn padded(make: impl Fn(&str) -> String) -> String {
    let bare = make("").len();
    make(&"x".repeat(200 - bare))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "decode".to_owned());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let publish = padded(|pad| {
        json!({"type": "publish", "message_id": "0b7e4b9e-7d51-4f0e-9f39-5d1f2a9c1e42",
            "data": {"channel": "projects/p1", "event": {"stage": "build", "pct": 42, "note": pad}}})
        .to_string()
    });
    let ping = padded(|pad| {
        json!({"type": "ping", "message_id": "0b7e4b9e-7d51-4f0e-9f39-5d1f2a9c1e42",
            "data": {"timestamp": {"client": 1_700_000_000_000u64, "note": pad}}})
        .to_string()
    });
    let now = Timestamp::from_millis(1_700_000_000_000);
    let config = HubConfig {
        rate_per_sec: 0,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config);
    let channel = ChannelName::new("projects/bench").unwrap();
    let mut total = 0usize;
    match op.as_str() {
        "serde" => {
            for _ in 0..n {
                total += serde_json::from_str::<Value>(black_box(&publish))
                    .unwrap()
                    .as_object()
                    .map_or(0, |o| o.len());
            }
        }
        "serde_ping" => {
            for _ in 0..n {
                total += serde_json::from_str::<Value>(black_box(&ping))
                    .unwrap()
                    .as_object()
                    .map_or(0, |o| o.len());
            }
        }
        "publish" => {
            let (conn, mut intake) = hub.handle_open(
                now,
                Dialect::Native,
                Permissions::allow_all(),
                Trust::Untrusted,
            );
            drain(&mut hub);
            for _ in 0..n {
                let inbound = intake.text(now, black_box(&publish));
                hub.handle_inbound(now, conn, inbound);
                total += drain(&mut hub);
            }
        }
        "decode" => {
            for _ in 0..n {
                total += decode_client(black_box(&publish))
                    .unwrap()
                    .message_id
                    .as_str()
                    .len();
            }
        }
        "ping" => {
            let (conn, mut intake) = hub.handle_open(
                now,
                Dialect::Native,
                Permissions::allow_all(),
                Trust::Untrusted,
            );
            drain(&mut hub);
            for _ in 0..n {
                let inbound = intake.text(now, black_box(&ping));
                hub.handle_inbound(now, conn, inbound);
                total += drain(&mut hub);
            }
        }
        "fanout1000" => {
            for _ in 0..1000 {
                let (conn, mut intake) = hub.handle_open(
                    now,
                    Dialect::Native,
                    Permissions::allow_all(),
                    Trust::Untrusted,
                );
                let inbound = intake.text(
                    now,
                    r#"{"type":"subscribe","message_id":"s","data":{"channel":"projects/bench"}}"#,
                );
                hub.handle_inbound(now, conn, inbound);
            }
            drain(&mut hub);
            for seq in 0..n {
                let event =
                    json!({"seq": seq, "t": 1_700_000_000_000_000u64, "pad": "x".repeat(60)});
                hub.publish(now, &channel, event, false).unwrap();
                total += drain(&mut hub);
            }
        }
        "encode" => {
            let id = MessageId::new("0b7e4b9e-7d51-4f0e-9f39-5d1f2a9c1e42").unwrap();
            let event = json!({"seq": 1, "t": 1_700_000_000_000_000u64, "pad": "x".repeat(60)});
            for seq in 0..n as u64 {
                total += encode_event(&id, &channel, "4f1c2a7e", seq, black_box(&event)).len();
            }
        }
        other => panic!("unknown operation {other}"),
    }
    println!("{op} x{n}: {total}");
}
