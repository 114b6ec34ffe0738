//! `demo` against a `serve` process, watched with `sub --json`: every pipeline event type, `--fail`, and a
//! `cancel` call.

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::{Proc, run, serve};

/// Reads `sub` lines until `stop` says so; checks each line's shape and that each channel's offsets go up by one.
fn read_until(sub: &Proc, mut stop: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    loop {
        let line = sub.json_line();
        let channel = line["channel"].as_str().expect("a channel").to_owned();
        let offset = line["offset"].as_u64().expect("an offset");
        if let Some(previous) = seen.iter().rev().find(|l| l["channel"] == channel.as_str()) {
            assert_eq!(
                previous["offset"].as_u64(),
                Some(offset - 1),
                "no gap, no duplicate"
            );
        }
        let event = &line["event"];
        assert!(
            event["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{event}"
        );
        assert!(event["data"].is_object(), "{event}");
        let done = stop(&line);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

fn event_type(line: &Value) -> &str {
    line["event"]["event_type"].as_str().unwrap_or("")
}

/// A full run publishes every pipeline event type but `pipeline_failed` and ends with `pipeline_completed`, which
/// is retained; a `--fail` run ends with `pipeline_failed`.
#[test]
fn demo_publishes_every_pipeline_event_type() {
    let (_server, url) = serve(&[]);
    let sub = Proc::spawn(
        &["sub", &url, "projects/demo", "projects/failing", "--json"],
        &[],
    );
    sub.stderr_until("subscribed channel=projects/failing");

    let demo = run(&["demo", &url, "--speed", "40"]);
    assert_eq!(demo.code, Some(0), "{}", demo.stderr);
    let seen = read_until(&sub, |line| event_type(line) == "pipeline_completed");
    let types: BTreeSet<&str> = seen.iter().map(event_type).collect();
    let want: BTreeSet<&str> = [
        "stage_transition",
        "progress_update",
        "log",
        "decision",
        "approval_required",
        "error",
        "pipeline_completed",
    ]
    .into();
    assert_eq!(types, want);
    let state = run(&["state", &url, "projects/demo"]);
    let state: Value = serde_json::from_str(&state.stdout[0]).expect("JSON");
    assert_eq!(state["state"]["event_type"], "pipeline_completed");

    let failing = run(&[
        "demo",
        &url,
        "--project",
        "failing",
        "--speed",
        "40",
        "--fail",
    ]);
    assert_eq!(failing.code, Some(0), "{}", failing.stderr);
    let seen = read_until(&sub, |line| event_type(line) == "pipeline_failed");
    let last = seen.last().expect("an event");
    assert_eq!(last["channel"], "projects/failing");
    assert_eq!(last["event"]["data"]["stage"], "training");
    assert!(
        last["event"]["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("--fail"))
    );
}

/// `call … cancel` reaches the running demo, which answers, publishes `pipeline_failed` and exits 0.
#[test]
fn call_cancels_the_demo() {
    let (_server, url) = serve(&[]);
    let sub = Proc::spawn(&["sub", &url, "projects/demo", "--json"], &[]);
    sub.stderr_until("subscribed");
    let mut demo = Proc::spawn(&["demo", &url, "--speed", "1"], &[]);
    // The demo serves the channel before it publishes anything.
    read_until(&sub, |line| event_type(line) == "stage_transition");

    let call = run(&[
        "call",
        &url,
        "projects/demo",
        "cancel",
        r#"{"reason":"test"}"#,
    ]);
    assert_eq!(call.code, Some(0), "{}", call.stderr);
    let answer: Value = serde_json::from_str(&call.stdout[0]).expect("JSON");
    assert_eq!(answer["cancelled"], true);

    assert!(demo.wait().success());
    let seen = read_until(&sub, |line| event_type(line) == "pipeline_failed");
    let failed = &seen.last().expect("an event")["event"]["data"];
    assert_eq!(failed["reason"], "cancelled");
    assert_eq!(failed["details"], json!({"reason": "test"}));
    assert!(failed["cancelled_by"].is_string());
}
