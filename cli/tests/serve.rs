//! `serve`: settings from flags and `SWITCHBOARD_*` variables, and a graceful stop on SIGTERM.

mod support;

use support::{Proc, get_json, listening_on, run, serve};

#[test]
fn serve_takes_env_and_flags_and_stops_on_sigterm() {
    let mut server = Proc::spawn(
        &[
            "serve",
            "--heartbeat-ms",
            "4000",
            "--trusted-rate-per-sec",
            "5000",
            "--history-bytes",
            "1MiB",
        ],
        &[
            ("SWITCHBOARD_BIND", "127.0.0.1:0"),
            ("SWITCHBOARD_HTTP_RATE_BURST", "300"),
            ("SWITCHBOARD_HISTORY_SIZE", "7"),
            ("SWITCHBOARD_HISTORY_TTL_MS", "60000"),
            ("SWITCHBOARD_MAX_MESSAGE_BYTES", "65536"),
            ("SWITCHBOARD_HISTORY_TOTAL_BYTES", "8388608"),
        ],
    );
    let addr = listening_on(&server);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let info = get_json(&addr, "/api/info");
    let limits = &info["limits"];
    assert_eq!(limits["history_size"], 7);
    assert_eq!(limits["history_ttl_ms"], 60000);
    assert_eq!(limits["history_bytes"], 1_048_576);
    assert_eq!(limits["history_total_bytes"], 8_388_608);
    assert_eq!(limits["heartbeat_ms"], 4000);
    assert_eq!(limits["max_message_bytes"], 65536);
    assert_eq!(limits["trusted_rate_per_sec"], 5000);
    assert_eq!(limits["http_rate_burst"], 300);
    assert_eq!(limits["rate_per_sec"], 100);
    assert_eq!(limits["trusted_http_rate_per_sec"], 0);
    assert_eq!(get_json(&addr, "/health")["status"], "healthy");

    server.signal("TERM");
    assert!(server.wait().success());
    server.stderr_until("stopped");
}

/// Each run of `serve` starts a new history, so it must announce a new epoch: a client resuming after a restart
/// then sees the history was lost instead of mistaking the new one for the old.
#[test]
fn every_serve_run_has_a_new_epoch() {
    let mut epochs = Vec::new();
    for _ in 0..2 {
        let (mut server, url) = serve(&[]);
        let state = run(&["state", &url, "news"]);
        assert_eq!(state.code, Some(0), "{}", state.stderr);
        let state: serde_json::Value = serde_json::from_str(&state.stdout[0]).expect("JSON");
        epochs.push(state["epoch"].as_str().expect("an epoch").to_owned());
        server.signal("TERM");
        assert!(server.wait().success());
    }
    assert_ne!(epochs[0], epochs[1]);
}
