//! History's memory budget, end to end: a server with an 8 MiB total history budget takes 96 MiB of events over
//! REST, and `/metrics` shows history held within the budget, the oldest events of all channels dropped first, and
//! the process's resident memory bounded. Alone in its binary, so no other test's allocations move the resident
//! size; bounded in time; the server is shut down.

use std::time::Duration;

use serde_json::json;
use switchboard_protocol::server::HubConfig;
use switchboard_runtime::server::{Server, ServerConfig};
use switchboard_smol::SmolRuntime;
use switchboard_tests::http::{self, HttpConn};
use switchboard_tests::{bounded, on_roomy_stack};

const BUDGET: usize = 8 * 1024 * 1024;
const EVENT: usize = 512 * 1024;
const EVENTS: usize = 192;
const CHANNELS: usize = 8;

/// The value of an unlabelled sample in a `/metrics` page.
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
        .parse()
        .expect("a number")
}

#[test]
fn history_stays_within_its_byte_budget_and_memory_with_it() {
    on_roomy_stack(|| {
        smol::block_on(async {
            let rt = SmolRuntime::new();
            bounded(&rt, Duration::from_secs(120), async {
                let config = ServerConfig {
                    hub: HubConfig {
                        seed: 7,
                        history_total_bytes: BUDGET,
                        ..HubConfig::default()
                    },
                    shutdown_timeout: Duration::from_secs(5),
                    ..ServerConfig::default()
                };
                let server = Server::bind(rt.clone(), "127.0.0.1:0".parse().unwrap(), config)
                    .await
                    .expect("bind a loopback port");
                let addr = server.local_addr().expect("a bound address");
                let mut conn = HttpConn::connect(&rt, addr).await;
                let metrics = conn.get("/metrics").await.text();
                let start = sample(&metrics, "process_resident_memory_bytes");
                let mut peak = start;
                let pad = "x".repeat(EVENT);
                for n in 0..EVENTS {
                    let path = format!("/api/v1/channels/c{}/events", n % CHANNELS);
                    let r = conn
                        .post_json(&path, &json!({"event": {"n": n, "pad": pad}}))
                        .await;
                    assert_eq!(r.status, 201, "publish {n}: {}", r.text());
                    assert_eq!(r.json()["offset"], (n / CHANNELS + 1) as u64);
                    if n % 8 == 7 {
                        let metrics = conn.get("/metrics").await.text();
                        let held = sample(&metrics, "switchboard_history_bytes");
                        assert!(held <= BUDGET as u64, "{held} bytes held after {n}");
                        peak = peak.max(sample(&metrics, "process_resident_memory_bytes"));
                    }
                }
                let metrics = conn.get("/metrics").await.text();
                let held = sample(&metrics, "switchboard_history_bytes");
                let kept = sample(&metrics, "switchboard_history_events") as usize;
                let size = serde_json::to_string(&json!({"n": 100, "pad": pad}))
                    .unwrap()
                    .len();
                assert_eq!(kept, BUDGET / size, "as many of the newest events as fit");
                assert!(
                    held <= BUDGET as u64 && held > (BUDGET - 2 * size) as u64,
                    "{held}"
                );
                // The oldest of all channels went first: every channel holds exactly its part of the newest.
                let first_kept = EVENTS - kept;
                for c in 0..CHANNELS {
                    let first = (first_kept..EVENTS).find(|n| n % CHANNELS == c).unwrap();
                    let page = conn
                        .get(&format!("/api/v1/channels/c{c}/events?limit=1"))
                        .await
                        .json();
                    assert_eq!(
                        page["events"][0]["offset"],
                        (first / CHANNELS + 1) as u64,
                        "c{c}"
                    );
                }
                // Without the budget the process would hold all 96 MiB of events.
                let growth = peak.saturating_sub(start);
                assert!(
                    growth < 64 * 1024 * 1024,
                    "resident memory grew by {} MiB",
                    growth / (1024 * 1024)
                );
                let _ = http::get(&rt, addr, "/health").await;
                server.shutdown().await;
            })
            .await
        })
    });
}
