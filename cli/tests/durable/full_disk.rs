//! A full disk: publishes are refused with `STORAGE_UNAVAILABLE` until space returns, and nothing acknowledged is
//! lost.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::data_dir::TempDir;
use crate::support::native::Native;
use crate::support::rest::{Http, history};
use crate::support::{BIN, Proc, STEP, listening_on};
use crate::{DataServer, epoch, padded, serve_args, start};

/// Whether a tool is on the `PATH`.
fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
fn a_full_disk_refuses_publishes_until_space_returns_and_loses_nothing_acknowledged() {
    if !have("prlimit") {
        eprintln!(
            "SKIPPED a_full_disk_refuses_publishes…: `prlimit` (util-linux) is not installed, and the test needs it to \
             give the running server its space back"
        );
        return;
    }
    let dir = TempDir::new("full");
    // A soft file-size limit stands in for a full disk: writes past it fail with EFBIG (SIGXFSZ is ignored, and
    // the ignoring survives exec), and `prlimit` lifts it on the running process.
    let args = serve_args("127.0.0.1:0", &dir, &[]);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"trap "" XFSZ; ulimit -S -f 128 && exec "$0" "$@""#)
        .arg(BIN)
        .args(&args);
    let mut server = DataServer {
        proc: Proc::start(command, format!("ulimit -f 128; {}", args.join(" "))),
        addr: String::new(),
    };
    server.addr = listening_on(&server.proc);
    let channel = "full";
    let mut http = Http::new(&server.addr);
    let mut acked: Vec<(u64, Value)> = Vec::new();
    let mut refused: Vec<Value> = Vec::new();
    let mut n = 0u64;

    // Publish until the file-size limit refuses one.
    while refused.is_empty() {
        n += 1;
        // Some 250 publishes fill the limit (128 blocks of 512 bytes under dash, of 1 KiB under bash).
        assert!(
            n < 1_500,
            "{n} publishes of over 200 bytes never filled a segment limited to 64 KiB"
        );
        let answer = http.publish(channel, &padded(n), false).expect("publish");
        match answer.status {
            201 => acked.push((
                answer.body["offset"].as_u64().expect("an offset"),
                padded(n),
            )),
            503 => {
                assert_eq!(
                    answer.error_code(),
                    Some("STORAGE_UNAVAILABLE"),
                    "{:?}",
                    answer.body
                );
                refused.push(padded(n));
            }
            status => panic!("publish {n}: {status} {:?}", answer.body),
        }
    }
    assert!(!acked.is_empty(), "the first publish already failed");
    // Still full: REST and WebSocket are both refused.
    n += 1;
    let answer = http.publish(channel, &padded(n), false).expect("publish");
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(
        answer.error_code(),
        Some("STORAGE_UNAVAILABLE"),
        "{:?}",
        answer.body
    );
    refused.push(padded(n));
    let mut socket = Native::connect(&server.addr);
    n += 1;
    let answer = socket.request("publish", json!({"channel": channel, "event": padded(n)}));
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["data"]["code"], "STORAGE_UNAVAILABLE", "{answer}");
    refused.push(padded(n));

    // Space returns.
    let lifted = Command::new("prlimit")
        .args(["--pid", &server.proc.pid().to_string(), "--fsize=unlimited"])
        .status()
        .expect("run prlimit");
    assert!(lifted.success(), "prlimit failed");
    let deadline = Instant::now() + STEP;
    loop {
        n += 1;
        let answer = http.publish(channel, &padded(n), false).expect("publish");
        match answer.status {
            201 => {
                acked.push((
                    answer.body["offset"].as_u64().expect("an offset"),
                    padded(n),
                ));
                break;
            }
            503 => refused.push(padded(n)),
            status => panic!("publish {n}: {status} {:?}", answer.body),
        }
        assert!(
            Instant::now() < deadline,
            "publishing did not recover once space returned"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..5 {
        n += 1;
        let answer = http.publish(channel, &padded(n), false).expect("publish");
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        acked.push((
            answer.body["offset"].as_u64().expect("an offset"),
            padded(n),
        ));
    }
    n += 1;
    let answer = socket.request("publish", json!({"channel": channel, "event": padded(n)}));
    assert_eq!(answer["type"], "publish_res", "{answer}");
    acked.push((
        answer["data"]["offset"].as_u64().expect("an offset"),
        padded(n),
    ));
    socket.close();
    let before = epoch(&server.addr, channel);

    // What was acknowledged, and only that, survives a crash.
    server.proc.kill_hard();
    let server = start("127.0.0.1:0", &dir, &[]);
    let (after, events) = history(&server.addr, channel);
    assert_eq!(
        after, before,
        "nothing acknowledged was lost: the epoch stays"
    );
    for (i, (offset, _)) in events.iter().enumerate() {
        assert_eq!(*offset, i as u64 + 1, "a refused publish takes no offset");
    }
    assert_eq!(
        events, acked,
        "history after the restart is exactly the acknowledged publishes, in order"
    );
    for event in &refused {
        assert!(
            !events.iter().any(|(_, e)| e == event),
            "a refused publish was stored: {event}"
        );
    }
}
