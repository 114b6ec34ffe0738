//! `pub`, `state`, `sub --json` and `call` against a `serve` process, and the exit codes.

mod support;

use serde_json::json;
use support::{Proc, run, run_with_stdin, serve};

/// A subscriber prints what two publishes sent, one JSON object a line; `pub` prints offsets, `state` the retained
/// event. SIGINT stops `sub` cleanly.
#[test]
fn pub_state_and_sub_json_round_trip() {
    let (_server, url) = serve(&[]);
    let mut sub = Proc::spawn(&["sub", &url, "news", "--json"], &[]);
    sub.stderr_until("subscribed");

    let first = run(&["pub", &url, "news", r#"{"n":1}"#]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.stdout, ["1"]);
    let second = run(&["pub", &url, "news", r#"{"n":2}"#, "--retain"]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert_eq!(second.stdout, ["2"]);

    let state = run(&["state", &url, "news"]);
    assert_eq!(state.code, Some(0), "{}", state.stderr);
    let state: serde_json::Value = serde_json::from_str(&state.stdout[0]).expect("JSON");
    assert_eq!(state["channel"], "news");
    assert_eq!(state["offset"], 2);
    assert_eq!(state["state"], json!({"n": 2}));

    assert_eq!(
        sub.json_line(),
        json!({"channel": "news", "offset": 1, "event": {"n": 1}})
    );
    assert_eq!(
        sub.json_line(),
        json!({"channel": "news", "offset": 2, "event": {"n": 2}})
    );
    sub.signal("INT");
    assert!(sub.wait().success());
}

/// A call nobody serves fails with exit 1 and the server's code on stderr.
#[test]
fn call_without_a_handler_fails() {
    let (_server, url) = serve(&[]);
    let call = run(&["call", &url, "jobs/1", "cancel", "{}"]);
    assert_eq!(call.code, Some(1));
    assert!(call.stderr.contains("NO_HANDLER"), "{}", call.stderr);
    assert!(call.stdout.is_empty());
}

/// `pub` with `--idempotency-key`: a re-run with the same key prints the original offset and publishes nothing; a
/// run without one gets a random key, so it always publishes.
#[test]
fn pub_with_the_same_idempotency_key_lands_once() {
    let (_server, url) = serve(&[]);
    let keyed = [
        "pub",
        &url,
        "jobs",
        r#"{"n":1}"#,
        "--idempotency-key",
        "job-7",
    ];
    let first = run(&keyed);
    assert_eq!(
        (first.code, first.stdout.clone()),
        (Some(0), vec!["1".to_owned()]),
        "{}",
        first.stderr
    );
    let again = run(&keyed);
    assert_eq!(
        (again.code, again.stdout.clone()),
        (Some(0), vec!["1".to_owned()]),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("duplicate"), "{}", again.stderr);
    for expected in ["2", "3"] {
        let unkeyed = run(&["pub", &url, "jobs", r#"{"n":2}"#]);
        assert_eq!(unkeyed.stdout, [expected], "{}", unkeyed.stderr);
    }
    let state = run(&["state", &url, "jobs"]);
    let state: serde_json::Value = serde_json::from_str(&state.stdout[0]).expect("JSON");
    assert_eq!(state["offset"], 3);
}

/// Mistakes in the command line exit 2 before any network traffic.
#[test]
fn usage_mistakes_exit_2() {
    for args in [
        &["pub"][..],
        &["pub", "ws://127.0.0.1:9/api/ws", "news", "not json"],
        &["pub", "ws://127.0.0.1:9/api/ws", "bad channel", "1"],
        &["pub", "ws://127.0.0.1:9/api/ws", "news", "null"],
        &[
            "pub",
            "ws://127.0.0.1:9/api/ws",
            "news",
            "1",
            "--idempotency-key",
            "",
        ],
        &[
            "sub",
            "wss://127.0.0.1:9/api/ws",
            "news",
            "--ca-file",
            "/nonexistent/ca.pem",
        ],
        &["state", "http://127.0.0.1:9/", "news"],
        &[
            "sub",
            "ws://127.0.0.1:9/api/ws",
            "news",
            "--json",
            "--progress",
        ],
        &["demo", "--speed", "0"],
        &["serve", "--bind", "nowhere"],
        &["no-such-command"],
    ] {
        let finished = run(args);
        assert_eq!(finished.code, Some(2), "{args:?}: {}", finished.stderr);
    }
    let help = run(&["--help"]);
    assert_eq!(help.code, Some(0));
    assert!(help.stdout.iter().any(|l| l.contains("serve")));
}

/// Nobody listening: the one-shot commands give up after a couple of attempts and exit 1.
#[test]
fn unreachable_server_exits_1() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("ws://127.0.0.1:{port}/api/ws");
    let finished = run(&["state", &url, "news"]);
    assert_eq!(finished.code, Some(1), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("could not connect"),
        "{}",
        finished.stderr
    );
}

/// `pub --batch`: the lines of stdin, published in order in batches of at most 1,000 (the printed ranges are
/// consecutive and cover every line), the last one retained with `--retain`; a line that is not JSON stops it with
/// the line's number, after publishing what came before it.
#[test]
fn pub_batch_publishes_stdin_lines_in_order() {
    let (_server, url) = serve(&[]);
    let mut input = String::new();
    for n in 1..=2500 {
        input.push_str(&format!("{{\"n\":{n}}}\n"));
        if n == 7 {
            input.push('\n');
        }
    }
    let done = run_with_stdin(
        &["pub", &url, "logs", "--batch", "--retain"],
        input.as_bytes(),
    );
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let mut next = 1u64;
    for line in &done.stdout {
        let (first, last) = line.split_once('-').expect("FIRST-LAST");
        let (first, last): (u64, u64) = (first.parse().unwrap(), last.parse().unwrap());
        assert_eq!(first, next, "{:?}", done.stdout);
        assert!(last >= first && last - first < 1000, "{line}");
        next = last + 1;
    }
    assert_eq!(next, 2501, "{:?}", done.stdout);
    let state = run(&["state", &url, "logs"]);
    let state: serde_json::Value = serde_json::from_str(&state.stdout[0]).expect("JSON");
    assert_eq!(
        (state["offset"].clone(), state["state"].clone()),
        (json!(2500), json!({"n": 2500}))
    );

    let bad = run_with_stdin(
        &["pub", &url, "bad", "--batch"],
        b"{\"n\":1}\nnot json\n{\"n\":3}\n",
    );
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("line 2"), "{}", bad.stderr);
    assert_eq!(bad.stdout, ["1-1"]);
    let refused = run(&["pub", &url, "logs"]);
    assert_eq!(
        refused.code,
        Some(2),
        "an event or --batch: {}",
        refused.stderr
    );
}
