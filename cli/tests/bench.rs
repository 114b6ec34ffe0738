//! `bench`: each load generator runs briefly against a real `serve` and prints a report that parses, with nothing
//! lost or duplicated. A functional test only: no numbers are asserted beyond "something happened".

mod support;

use serde_json::Value;
use support::{Finished, run, serve};

fn report(finished: &Finished) -> Value {
    assert_eq!(
        finished.code,
        Some(0),
        "stdout: {:?}\nstderr: {}",
        finished.stdout,
        finished.stderr
    );
    let line = finished.stdout.last().expect("a report line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn fanout_delivers_every_event_once() {
    let (_server, url) = serve(&["--rate-per-sec", "0"]);
    let finished = run(&[
        "bench",
        "fanout",
        &url,
        "--subscribers",
        "5",
        "--rate",
        "200",
        "--size",
        "100",
        "--duration",
        "1s",
    ]);
    let report = report(&finished);
    assert_eq!(report["bench"], "fanout");
    assert_eq!(report["lost"], 0);
    assert_eq!(report["duplicated"], 0);
    let published = report["published"].as_u64().unwrap();
    assert!(published > 0);
    assert_eq!(report["delivered"], published * 5);
    assert_eq!(report["publish_acks"], published);
    assert!(report["latency"]["p50_ms"].is_number());
    assert!(report["delivered_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn rpc_counts_round_trips() {
    let (_server, url) = serve(&["--rate-per-sec", "0"]);
    let finished = run(&[
        "bench",
        "rpc",
        &url,
        "--connections",
        "4",
        "--duration",
        "1s",
    ]);
    let report = report(&finished);
    assert_eq!(report["bench"], "rpc");
    assert_eq!(report["errors"], 0);
    assert!(report["round_trips"].as_u64().unwrap() > 0);
    assert!(report["latency"]["p99_ms"].is_number());
}

#[test]
fn publish_with_keys_stores_each_publish_once_and_reads_the_server_cpu() {
    let (server, url) = serve(&[]);
    let pid = server.pid().to_string();
    let finished = run(&[
        "bench",
        "publish",
        &url,
        "--publishers",
        "2",
        "--in-flight",
        "8",
        "--keyed",
        "--channels",
        "1",
        "--duration",
        "1s",
        "--server-pid",
        &pid,
    ]);
    let report = report(&finished);
    assert_eq!(report["bench"], "publish");
    assert_eq!(report["keyed"], true);
    assert_eq!(report["errors"], 0);
    let acknowledged = report["acknowledged"].as_u64().unwrap();
    assert!(acknowledged > 0);
    let cpu = report["server_cpu_us_per_publish"].as_f64().unwrap();
    assert!(cpu > 0.0);
    let system = report["server_system_us_per_publish"].as_f64().unwrap();
    assert!(
        (0.0..=cpu).contains(&system),
        "the kernel's share {system} is part of the server's {cpu}"
    );
    // Every key is new, so every acknowledged publish is a stored event: the channel's offset says how many.
    let http = url.replace("ws://", "http://").replace("/api/ws", "");
    let since = (acknowledged - 1).to_string();
    let history = run(&[
        "history",
        &http,
        "bench/publish",
        "--since",
        &since,
        "--json",
    ]);
    assert_eq!(history.code, Some(0), "{}", history.stderr);
    let [line] = history.stdout.as_slice() else {
        panic!("one event after {since}: {:?}", history.stdout);
    };
    let event: Value = serde_json::from_str(line).unwrap();
    assert_eq!(event["offset"], acknowledged, "{line}");
}

#[test]
fn idle_reports_memory_per_connection_over_several_source_addresses() {
    let (_server, url) = serve(&[]);
    let finished = run(&[
        "bench",
        "idle",
        &url,
        "--connections",
        "20",
        "--per-address",
        "8",
        "--hold",
        "200ms",
    ]);
    let report = report(&finished);
    assert_eq!(report["bench"], "idle");
    assert_eq!(report["connections"], 20);
    assert_eq!(report["source_addresses"], 3);
    assert_eq!(report["still_open"], 20);
    assert!(report["server_rss_after"].as_u64().unwrap() > 0);
    assert!(report["bytes_per_connection"].is_number());
}

#[test]
fn bench_refuses_a_non_websocket_url() {
    let finished = run(&["bench", "rpc", "http://127.0.0.1:1/api/ws"]);
    assert_eq!(finished.code, Some(2), "{}", finished.stderr);
}
