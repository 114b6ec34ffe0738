//! The disk budget (`--max-disk-bytes`).

use serde_json::{Value, json};

use crate::support::data_dir::TempDir;
use crate::support::native::Native;
use crate::support::rest::{history, state};
use crate::{epoch, padded, start};

/// The bytes of every file in `dir`.
fn dir_bytes(dir: &TempDir) -> u64 {
    std::fs::read_dir(dir.path())
        .expect("list the data dir")
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum()
}

#[test]
fn a_disk_budget_drops_the_oldest_history_and_keeps_the_retained_state() {
    const BUDGET: u64 = 256 * 1024;
    const EVENTS: u64 = 3_000;
    let dir = TempDir::new("budget");
    let options = ["--max-disk-bytes", "256K", "--history-size", "100000"];
    let mut server = start("127.0.0.1:0", &dir, &options);
    let channel = "budgeted";
    // Over WebSocket: one connection, no rate limit, so three times the budget is written in seconds.
    let mut socket = Native::connect(&server.addr);
    let publish = |socket: &mut Native, event: Value, retain: bool, offset: u64| {
        let answer = socket.request(
            "publish",
            json!({"channel": channel, "event": event, "retain": retain}),
        );
        assert_eq!(answer["type"], "publish_res", "{answer}");
        assert_eq!(answer["data"]["offset"], offset, "{answer}");
    };
    publish(&mut socket, json!({"config": "kept"}), true, 1);
    for n in 2..=EVENTS {
        publish(&mut socket, padded(n), false, n);
        // After every publish: the snapshots are written on a thread of their own, and the budget holds while
        // one is being written too.
        let used = dir_bytes(&dir);
        assert!(
            used <= BUDGET,
            "{used} bytes on disk after {n} publishes, over {BUDGET}"
        );
    }
    socket.close();

    for round in ["before a restart", "after a SIGKILL and restart"] {
        let kept_state = state(&server.addr, channel);
        assert_eq!(kept_state["offset"], EVENTS, "{round}");
        assert_eq!(kept_state["state"], json!({"config": "kept"}), "{round}");
        let (_, events) = history(&server.addr, channel);
        let first = events
            .first()
            .map(|(offset, _)| *offset)
            .expect("some history");
        assert!(
            first > 2,
            "{round}: the budget dropped no history (it starts at {first})"
        );
        let expected: Vec<(u64, Value)> = (first..=EVENTS).map(|n| (n, padded(n))).collect();
        assert_eq!(
            events, expected,
            "{round}: the newest events, in order, with no gap"
        );
        if round.starts_with("before") {
            server.proc.kill_hard();
            server = start("127.0.0.1:0", &dir, &options);
            assert_eq!(
                epoch(&server.addr, channel),
                kept_state["epoch"].as_str().unwrap()
            );
        }
    }
    let used = dir_bytes(&dir);
    assert!(
        used <= BUDGET,
        "{used} bytes on disk after the restart, over {BUDGET}"
    );
}
