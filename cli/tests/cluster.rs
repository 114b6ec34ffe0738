//! Several `serve --redis` processes on one real `redis-server`, and their faults: a node killed with SIGKILL while
//! a subscriber reads through a proxy (it reconnects to the other node and misses nothing), a call routed from one
//! node to `demo` serving on the other, and Redis itself killed and started again while a publisher keeps
//! publishing (publishes fail with `STORAGE_UNAVAILABLE` meanwhile, readiness is 503, and nothing acknowledged is
//! lost or doubled). Each test skips, saying so, where `redis-server` is not installed (CI requires it).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::Node;
use support::data_dir::TempDir;
use support::native::Native;
use support::proxy::Proxy;
use support::redis_server::RedisServer;
use support::rest::{Http, history};
use support::{Proc, STEP, run};

/// What `sub --json` printed for one event: its offset and the event's `data`.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    offset: u64,
    data: Value,
}

/// Starts `switchboard sub URL CHANNEL --json` and waits until it has subscribed.
fn subscriber(url: &str, channel: &str) -> Proc {
    let sub = Proc::spawn(&["sub", url, channel, "--json"], &[]);
    sub.stderr_until("subscribed");
    sub
}

/// Reads `sub --json` lines until `done` says so, each within [`STEP`].
fn read_events(sub: &Proc, mut done: impl FnMut(&[Seen]) -> bool) -> Vec<Seen> {
    let mut seen = Vec::new();
    while !done(&seen) {
        let line = sub.json_line();
        seen.push(Seen {
            offset: line["offset"].as_u64().expect("an offset"),
            data: line["event"]["data"].clone(),
        });
    }
    seen
}

/// Offsets go up by one: nothing missed, nothing twice.
fn assert_consecutive(seen: &[Seen]) {
    for pair in seen.windows(2) {
        assert_eq!(
            pair[1].offset,
            pair[0].offset + 1,
            "a gap or a duplicate between {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
}

/// The subscriber never resynchronised (it would log that events were lost to it).
fn assert_no_loss(sub: &Proc) {
    let stderr = sub.drain_stderr();
    assert!(
        !stderr.contains("some events were lost") && !stderr.contains("subscription was lost"),
        "the subscriber lost events:\n{stderr}"
    );
}

/// Publishes `event` on `channel`, by `turn`: over REST, over the native WebSocket, as a one-event batch over REST,
/// as a one-event batch over the WebSocket. `Ok(offset)`, or `Err(code)` (`STORAGE_UNAVAILABLE`, or `IO` when the
/// answer itself was lost).
fn publish(
    http: &mut Http,
    socket: &mut Native,
    channel: &str,
    turn: u64,
    event: &Value,
) -> Result<u64, String> {
    let batch = turn % 4 >= 2;
    if turn.is_multiple_of(2) {
        let outcome = if batch {
            let path = format!("/api/v1/channels/{}/events", channel.replace('/', "%2F"));
            let body = json!({"events": [event]});
            let deadline = Instant::now() + STEP;
            loop {
                // Over the REST rate limit (refused before the hub saw it): again, as `Http::publish` does.
                match http.send("POST", &path, Some(&body)) {
                    Ok(answer) if answer.status == 429 && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    outcome => break outcome,
                }
            }
        } else {
            http.publish(channel, event, false)
        };
        match outcome {
            Ok(answer) if answer.status == 201 => {
                let offset = if batch { "first_offset" } else { "offset" };
                Ok(answer.body[offset].as_u64().expect("an offset"))
            }
            Ok(answer) => {
                assert_eq!(answer.status, 503, "{:?}", answer.body);
                Err(answer.error_code().unwrap_or("?").to_owned())
            }
            Err(_) => Err("IO".to_owned()),
        }
    } else {
        let (data, offset) = if batch {
            (
                json!({"channel": channel, "events": [event]}),
                "first_offset",
            )
        } else {
            (json!({"channel": channel, "event": event}), "offset")
        };
        let answer = socket.request("publish", data);
        match answer["type"].as_str() {
            Some("publish_res") => Ok(answer["data"][offset].as_u64().expect("an offset")),
            _ => Err(answer["data"]["code"].as_str().unwrap_or("?").to_owned()),
        }
    }
}

/// A subscriber connected to node A through a proxy reads while node B publishes (REST and WebSocket); node A is
/// killed with SIGKILL mid-stream and the proxy turns to node B. The subscriber reconnects there and ends with
/// every event exactly once, in order, with no resync.
#[test]
fn a_subscriber_moves_to_another_node_when_its_node_is_killed() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url(0);
    let mut a = Node::start(&url, "node-a");
    let b = Node::start(&url, "node-b");
    let proxy = Proxy::start(&a.addr);
    let channel = "jobs/failover";
    let sub = subscriber(&format!("ws://{}/api/ws", proxy.addr()), channel);

    const EVENTS: u64 = 200;
    let published = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let (addr, published) = (b.addr.clone(), published.clone());
        std::thread::spawn(move || {
            let mut http = Http::new(&addr);
            let mut socket = Native::connect(&addr);
            for n in 0..EVENTS {
                let event = json!({"event_type": "log", "data": {"n": n}});
                let offset = publish(&mut http, &mut socket, channel, n, &event)
                    .unwrap_or_else(|code| panic!("publish {n} on node B: {code}"));
                assert_eq!(offset, n + 1, "node B's offsets");
                published.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let before = read_events(&sub, |seen| seen.len() == 50);
    proxy.switch_to(&b.addr);
    a.proc.kill_hard();
    let killed_at = published.load(Ordering::SeqCst);
    let after = read_events(&sub, |seen| {
        seen.last().is_some_and(|last| last.offset == EVENTS)
    });
    publisher.join().expect("the publisher");
    assert!(
        (killed_at as u64) < EVENTS,
        "node A was killed after the last publish: not mid-stream"
    );

    let seen: Vec<Seen> = before.into_iter().chain(after).collect();
    assert_consecutive(&seen);
    let numbers: Vec<u64> = seen
        .iter()
        .map(|s| s.data["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(numbers, (0..EVENTS).collect::<Vec<_>>());
    assert_no_loss(&sub);
}

/// `call` on node B reaches `demo` serving its project channel on node A: the demo answers, publishes
/// `pipeline_failed` (seen by a subscriber on node B) and exits.
#[test]
fn a_call_on_one_node_reaches_the_demo_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url(0);
    let a = Node::start(&url, "node-a");
    let b = Node::start(&url, "node-b");
    let sub = subscriber(&b.ws_url(), "projects/demo");
    let mut demo = Proc::spawn(&["demo", &a.ws_url(), "--speed", "1"], &[]);
    // The demo serves the channel before it publishes anything.
    read_events(&sub, |seen| !seen.is_empty());

    let deadline = Instant::now() + STEP;
    let answer = loop {
        let call = run(&[
            "call",
            &b.ws_url(),
            "projects/demo",
            "cancel",
            r#"{"reason":"test"}"#,
        ]);
        // The registration reaches Redis on its own connection's schedule: a call racing it finds nobody yet.
        if call.code != Some(0) && call.stderr.contains("NO_HANDLER") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(call.code, Some(0), "{}", call.stderr);
        break serde_json::from_str::<Value>(&call.stdout[0]).expect("JSON");
    };
    assert_eq!(answer["cancelled"], true, "{answer}");
    assert!(demo.wait().success());
    let seen = read_events(&sub, |seen| {
        seen.last()
            .is_some_and(|last| last.data["reason"] == "cancelled")
    });
    assert_consecutive(&seen);
    assert_eq!(
        seen.last().expect("an event").data["details"],
        json!({"reason": "test"})
    );
}

/// One publish attempt: the event's number and which attempt at it.
type Attempt = (u64, u64);

/// Redis (append-only, synced before each answer) is killed while node B publishes numbered events (REST and
/// WebSocket, single and batch, in turn) and a subscriber reads on node A. Readiness goes 503 on both nodes, publishes fail with `STORAGE_UNAVAILABLE` within
/// the documented bound, and the publisher retries each failed number. Redis starts again on its files: readiness
/// is 200 again, and the subscriber's stream and REST history on both nodes hold every acknowledged event exactly
/// once, in order; an attempt that failed appears at most once (its outcome was unknown to the publisher).
#[test]
fn acknowledged_events_survive_a_redis_restart_and_subscribers_resume() {
    let dir = TempDir::new("redis-aof");
    let Some(mut redis) = RedisServer::start_persistent(dir.path()) else {
        return;
    };
    let url = redis.url(0);
    let a = Node::start(&url, "node-a");
    let b = Node::start(&url, "node-b");
    let channel = "jobs/redis-restart";
    let sub = subscriber(&a.ws_url(), channel);

    const EVENTS: u64 = 60;
    let acked: Arc<Mutex<Vec<(u64, Attempt)>>> = Arc::default();
    let failed: Arc<Mutex<Vec<(Attempt, String, Duration)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // The publisher stops when the test ends, also when it fails.
    let _stop_publisher = StopOnDrop(stop.clone());
    let publisher = {
        let (addr, acked, failed, stop) =
            (b.addr.clone(), acked.clone(), failed.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut http = Http::new(&addr);
            let mut socket = Native::connect(&addr);
            for n in 0..EVENTS {
                let mut attempt = 0;
                loop {
                    assert!(!stop.load(Ordering::SeqCst), "the test gave up");
                    let event = json!({"event_type": "log", "data": {"n": n, "attempt": attempt}});
                    let started = Instant::now();
                    match publish(&mut http, &mut socket, channel, n + attempt, &event) {
                        Ok(offset) => {
                            acked.lock().expect("acked").push((offset, (n, attempt)));
                            break;
                        }
                        Err(code) => {
                            failed.lock().expect("failed").push((
                                (n, attempt),
                                code,
                                started.elapsed(),
                            ));
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    let wait_acked = |count: usize| {
        let deadline = Instant::now() + STEP;
        while acked.lock().expect("acked").len() < count {
            assert!(
                Instant::now() < deadline,
                "fewer than {count} publishes acknowledged"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    wait_acked(15);
    redis.kill();
    let down_a = a.wait_ready(503);
    b.wait_ready(503);
    assert_eq!(a.readiness().1.as_deref(), Some("storage_unavailable"));
    // Publishes fail for a while (each within the bound) while the nodes keep their WebSockets: the first waits
    // for Redis up to the bound, the later ones (Redis gone for longer than that) are refused at once.
    let deadline = Instant::now() + STEP;
    while failed.lock().expect("failed").len() < 4 {
        assert!(
            Instant::now() < deadline,
            "too few publishes failed while Redis was down: {:?}",
            failed.lock().expect("failed")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let acked_before_restart = acked.lock().expect("acked").len();
    redis.start_again();
    let up_a = a.wait_ready(200);
    b.wait_ready(200);
    wait_acked(EVENTS as usize);
    stop.store(true, Ordering::SeqCst);
    publisher.join().expect("the publisher");

    let acked = acked.lock().expect("acked").clone();
    let failed = failed.lock().expect("failed").clone();
    eprintln!(
        "readiness 503 {down_a:?} after the kill, 200 {up_a:?} after the restart; {} acknowledged ({acked_before_restart} before the \
         restart), {} failed attempts: {:?}",
        acked.len(),
        failed.len(),
        failed
    );
    for (attempt, code, took) in &failed {
        assert!(
            code == "STORAGE_UNAVAILABLE" || code == "IO",
            "attempt {attempt:?} failed with {code}"
        );
        // The documented bound is 5 s; the rest is the test's own scheduling and the REST round trip.
        assert!(
            *took < Duration::from_secs(7),
            "attempt {attempt:?} took {took:?}"
        );
    }
    assert!(
        failed
            .iter()
            .any(|(_, _, took)| *took < Duration::from_secs(1)),
        "no publish was refused at once during a long outage"
    );

    let last = acked
        .iter()
        .map(|(offset, _)| *offset)
        .max()
        .expect("acknowledged events");
    let seen = read_events(&sub, |seen| seen.last().is_some_and(|s| s.offset >= last));
    assert_consecutive(&seen);
    assert_eq!(
        seen.first().map(|s| s.offset),
        Some(1),
        "the subscriber saw the first event"
    );
    assert_no_loss(&sub);
    let attempts: Vec<Attempt> = seen
        .iter()
        .map(|s| {
            (
                s.data["n"].as_u64().expect("n"),
                s.data["attempt"].as_u64().expect("attempt"),
            )
        })
        .collect();
    check_attempts(&attempts, &seen, &acked, &failed);

    // REST history on either node holds the same events at the same offsets.
    let expected: Vec<(u64, Value)> = seen.iter().map(|s| (s.offset, s.data.clone())).collect();
    for node in [&a, &b] {
        let (_, events) = history(&node.addr, channel);
        let events: Vec<(u64, Value)> = events
            .into_iter()
            .map(|(offset, event)| (offset, event["data"].clone()))
            .collect();
        assert_eq!(events, expected, "history on {}", node.addr);
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Every acknowledged attempt is in `seen` once, at its offset; every attempt at most once; numbers never go back.
fn check_attempts(
    attempts: &[Attempt],
    seen: &[Seen],
    acked: &[(u64, Attempt)],
    failed: &[(Attempt, String, Duration)],
) {
    let mut counts: BTreeMap<Attempt, usize> = BTreeMap::new();
    for attempt in attempts {
        *counts.entry(*attempt).or_default() += 1;
    }
    assert!(
        counts.values().all(|&count| count == 1),
        "an attempt appears twice: {attempts:?}"
    );
    let at: BTreeMap<u64, Attempt> = seen
        .iter()
        .map(|s| s.offset)
        .zip(attempts.iter().copied())
        .collect();
    for (offset, attempt) in acked {
        assert_eq!(
            at.get(offset),
            Some(attempt),
            "acknowledged {attempt:?} at offset {offset}"
        );
    }
    let failed: BTreeSet<Attempt> = failed.iter().map(|(attempt, _, _)| *attempt).collect();
    let acked_set: BTreeSet<Attempt> = acked.iter().map(|(_, attempt)| *attempt).collect();
    for attempt in attempts {
        assert!(
            acked_set.contains(attempt) || failed.contains(attempt),
            "{attempt:?} was never published"
        );
    }
    assert!(
        attempts.windows(2).all(|pair| pair[0].0 <= pair[1].0),
        "numbers out of order: {attempts:?}"
    );
}

/// Redis without persistence restarted: every channel is gone, so a subscriber on node A cannot get back what it
/// had not seen. It is told (`sub` logs the resync its client reports, `recovered: false`) and then receives what
/// node B publishes from then on, in order.
#[test]
fn a_redis_restart_without_persistence_resyncs_subscribers() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url(0);
    let a = Node::start(&url, "node-a");
    let b = Node::start(&url, "node-b");
    let channel = "jobs/forgotten";
    let sub = subscriber(&a.ws_url(), channel);
    let mut http = Http::new(&b.addr);
    for n in 0..5 {
        let event = json!({"event_type": "log", "data": {"n": n}});
        let answer = http.publish(channel, &event, false).expect("publish");
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    let before = read_events(&sub, |seen| seen.len() == 5);
    assert_consecutive(&before);

    redis.restart();
    a.wait_ready(200);
    b.wait_ready(200);
    // Node A finds the channel gone once its feed is back, and its subscriber is resynchronised.
    sub.stderr_until("some events were lost");
    let mut n = 5;
    let deadline = Instant::now() + STEP;
    while n < 10 {
        let event = json!({"event_type": "log", "data": {"n": n}});
        match http.publish(channel, &event, false) {
            Ok(answer) if answer.status == 201 => n += 1,
            outcome => {
                assert!(
                    Instant::now() < deadline,
                    "publishing did not resume: {outcome:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let after = read_events(&sub, |seen| {
        seen.last().is_some_and(|last| last.data["n"] == 9)
    });
    assert_consecutive(&after);
    let numbers: Vec<u64> = after
        .iter()
        .map(|s| s.data["n"].as_u64().expect("n"))
        .collect();
    assert!(
        numbers.ends_with(&[5, 6, 7, 8, 9]) && numbers.iter().all(|&n| n >= 5),
        "after the restart: {numbers:?}"
    );
}
