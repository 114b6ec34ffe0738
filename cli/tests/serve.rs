//! `serve`: settings from flags and `SWITCHBOARD_*` variables, and a graceful stop on SIGTERM.

mod support;

use support::{Proc, get_json, listening_on};

#[test]
fn serve_takes_env_and_flags_and_stops_on_sigterm() {
    let mut server = Proc::spawn(
        &["serve", "--heartbeat-ms", "4000"],
        &[
            ("SWITCHBOARD_BIND", "127.0.0.1:0"),
            ("SWITCHBOARD_HISTORY_SIZE", "7"),
            ("SWITCHBOARD_HISTORY_TTL_MS", "60000"),
            ("SWITCHBOARD_MAX_MESSAGE_BYTES", "65536"),
        ],
    );
    let addr = listening_on(&server);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let info = get_json(&addr, "/api/info");
    let limits = &info["limits"];
    assert_eq!(limits["history_size"], 7);
    assert_eq!(limits["history_ttl_ms"], 60000);
    assert_eq!(limits["heartbeat_ms"], 4000);
    assert_eq!(limits["max_message_bytes"], 65536);
    assert_eq!(get_json(&addr, "/health")["status"], "healthy");

    server.signal("TERM");
    assert!(server.wait().success());
    server.stderr_until("stopped");
}
