//! SIGKILL under load: acknowledged publishes survive, in order, under one epoch, and a subscriber running across
//! the crashes prints every event once.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::data_dir::TempDir;
use crate::support::rest::{Http, history, state};
use crate::support::{Proc, STEP};
use crate::{epoch, free_port, start};

/// The channels the load publishes on; two publishers share each, so their offsets interleave.
const LOAD_CHANNELS: [&str; 2] = ["runs.alpha", "runs.beta"];
/// Concurrent REST publishers.
const PUBLISHERS: usize = 4;
/// Crashes and restarts.
const CRASHES: usize = 3;

/// What the publishers saw: every acknowledged publish (channel, offset, event) and any answer that was neither
/// an acknowledgement nor a lost connection.
#[derive(Default)]
struct Ledger {
    acked: Vec<(String, u64, Value)>,
    unexpected: Vec<String>,
}

/// A publisher on its own keep-alive connection until `stop`: every publish has a payload no other has; a lost
/// connection (the server was killed) leaves the outcome unknown, and the publisher goes on with the next.
fn publisher(
    id: usize,
    addr: String,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let channel = LOAD_CHANNELS[id % LOAD_CHANNELS.len()];
        // Each publisher its own source address, and so its own share of the REST rate limit.
        let source = IpAddr::from([127, 0, 0, 10 + u8::try_from(id).expect("few publishers")]);
        let mut http = Http::from_source(&addr, source);
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let event = json!({"publisher": id, "n": n});
            match http.publish(channel, &event, false) {
                Ok(answer) if answer.status == 201 => {
                    let offset = answer.body["offset"].as_u64().expect("an offset");
                    let mut ledger = ledger.lock().unwrap();
                    if answer.body["channel"] != channel {
                        ledger.unexpected.push(format!("{:?}", answer.body));
                    }
                    ledger.acked.push((channel.to_owned(), offset, event));
                }
                Ok(answer) => {
                    let line = format!("{} {:?}", answer.status, answer.body);
                    ledger.lock().unwrap().unexpected.push(line);
                }
                // The server is down or was killed mid-request: try again shortly.
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            // Leave the two shared cores some room for the server and the subscriber.
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Tells the publishers to stop when dropped, also when the test fails before it does.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How many publishes are acknowledged so far.
fn acked_count(ledger: &Mutex<Ledger>) -> usize {
    ledger.lock().unwrap().acked.len()
}

/// Waits until `more` publishes beyond `from` are acknowledged, so a crash comes under load.
fn wait_for_acks(ledger: &Mutex<Ledger>, from: usize, more: usize) {
    let deadline = Instant::now() + STEP;
    while acked_count(ledger) < from + more {
        assert!(
            Instant::now() < deadline,
            "publishers got no acknowledgements: {} of {}",
            acked_count(ledger),
            from + more
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What `sub --json` printed so far, by channel, in order.
#[derive(Default)]
struct Printed(BTreeMap<String, Vec<(u64, Value)>>);

impl Printed {
    /// The last offset printed for `channel` (0: none).
    fn last(&self, channel: &str) -> u64 {
        self.0
            .get(channel)
            .and_then(|events| events.last())
            .map_or(0, |(offset, _)| *offset)
    }

    /// Reads lines until every channel's last printed offset reaches its `target`.
    fn read_until(&mut self, sub: &Proc, targets: &BTreeMap<String, u64>) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while targets
            .iter()
            .any(|(channel, target)| self.last(channel) < *target)
        {
            assert!(
                Instant::now() < deadline,
                "the subscriber did not print up to {targets:?} in time; stderr: {}",
                sub.drain_stderr()
            );
            if let Some(line) = sub.line_within(Duration::from_millis(500)) {
                let line: Value = serde_json::from_str(&line).expect("a JSON line");
                let channel = line["channel"].as_str().expect("a channel").to_owned();
                let offset = line["offset"].as_u64().expect("an offset");
                self.0
                    .entry(channel)
                    .or_default()
                    .push((offset, line["event"].clone()));
            }
        }
    }
}

/// Each load channel's offset now, plus one: an event at or past it was published after this call.
fn next_offsets(addr: &str) -> BTreeMap<String, u64> {
    LOAD_CHANNELS
        .iter()
        .map(|channel| {
            let offset = state(addr, channel)["offset"].as_u64().expect("an offset");
            ((*channel).to_owned(), offset + 1)
        })
        .collect()
}

#[test]
fn acknowledged_publishes_survive_repeated_sigkill_and_a_subscriber_sees_each_once() {
    // `--fsync batch`, the default.
    crash_loop(&[]);
}

#[test]
fn acknowledged_publishes_survive_repeated_sigkill_with_fsync_always() {
    crash_loop(&["--fsync", "always"]);
}

/// `--fsync off` promises to survive a crash of the process (not of the machine): SIGKILL is such a crash.
#[test]
fn acknowledged_publishes_survive_repeated_sigkill_with_fsync_off() {
    crash_loop(&["--fsync", "off"]);
}

/// Publishers and a `sub --json` against a server on a fixed port that is killed with SIGKILL and restarted
/// [`CRASHES`] times under load (`fsync` adds `serve` options): every acknowledged publish is in history at its
/// offset, in order, under one epoch, and the subscriber printed every stored event once, in order, without a
/// resync.
fn crash_loop(fsync: &[&str]) {
    let dir = TempDir::new("kill9");
    let bind = format!("127.0.0.1:{}", free_port());
    let mut options = vec!["--history-size", "1000000"];
    options.extend_from_slice(fsync);
    let serve_options = options.as_slice();
    let mut server = start(&bind, &dir, serve_options);
    assert_eq!(server.addr, bind);

    let mut sub_args = vec!["sub", "--json"];
    let url = server.ws_url();
    sub_args.push(&url);
    sub_args.extend_from_slice(&LOAD_CHANNELS);
    let mut sub = Proc::spawn(&sub_args, &[]);
    for channel in LOAD_CHANNELS {
        sub.stderr_matching(&format!("saying {channel} is subscribed"), |line| {
            line.contains("subscribed") && line.contains(channel)
        });
    }
    // Each channel has an epoch of its own, fixed once it is subscribed to (its log is held from then on).
    let first_epochs: BTreeMap<&str, String> = LOAD_CHANNELS
        .iter()
        .map(|channel| (*channel, epoch(&server.addr, channel)))
        .collect();

    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|id| publisher(id, server.addr.clone(), stop.0.clone(), ledger.clone()))
        .collect();

    let mut printed = Printed::default();
    let mut live_from = next_offsets(&server.addr);
    for crash in 0..CRASHES {
        wait_for_acks(&ledger, acked_count(&ledger), 200);
        // The subscriber is connected to this server (it printed events published since it started), so the
        // crash cuts a live subscription.
        printed.read_until(&sub, &live_from);
        server.proc.kill_hard();
        server = start(&bind, &dir, serve_options);
        assert_eq!(server.addr, bind, "restart {crash} came back elsewhere");
        for channel in LOAD_CHANNELS {
            assert_eq!(
                epoch(&server.addr, channel),
                first_epochs[channel],
                "restart {crash} changed {channel}'s epoch"
            );
        }
        live_from = next_offsets(&server.addr);
    }
    wait_for_acks(&ledger, acked_count(&ledger), 200);
    stop.0.store(true, Ordering::SeqCst);
    for publisher in publishers {
        publisher.join().expect("a publisher panicked");
    }
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(
        ledger.unexpected.is_empty(),
        "answers other than 201: {:?}",
        ledger.unexpected
    );

    let mut heads = BTreeMap::new();
    let mut stored = BTreeMap::new();
    for channel in LOAD_CHANNELS {
        let (history_epoch, events) = history(&server.addr, channel);
        assert_eq!(
            history_epoch, first_epochs[channel],
            "{channel}: the epoch changed"
        );
        // In order with no gap: offsets 1, 2, 3, …
        for (i, (offset, _)) in events.iter().enumerate() {
            assert_eq!(
                *offset,
                i as u64 + 1,
                "{channel}: history out of order or with a gap"
            );
        }
        // Every payload is published once, so a payload twice is an event stored twice.
        let distinct: HashSet<String> = events.iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(
            distinct.len(),
            events.len(),
            "{channel}: an event is stored twice"
        );
        heads.insert(channel.to_owned(), events.len() as u64);
        stored.insert(channel.to_owned(), events);
    }
    for (channel, offset, event) in &ledger.acked {
        let events = &stored[channel];
        let kept = usize::try_from(*offset)
            .ok()
            .and_then(|o| o.checked_sub(1))
            .and_then(|i| events.get(i));
        assert_eq!(
            kept.map(|(_, e)| e),
            Some(event),
            "{channel}: acknowledged offset {offset} does not hold its event after {CRASHES} crashes"
        );
    }

    printed.read_until(&sub, &heads);
    // Nothing is published any more: anything printed now is a duplicate or a stray event.
    if let Some(extra) = sub.line_within(Duration::from_secs(1)) {
        panic!("the subscriber printed past every channel's head: {extra}");
    }
    let printed = printed.0;
    for channel in LOAD_CHANNELS {
        assert_eq!(
            printed.get(channel).map(Vec::as_slice).unwrap_or_default(),
            stored[channel].as_slice(),
            "{channel}: the subscriber did not print every stored event exactly once, in order"
        );
    }
    let sub_log = sub.drain_stderr();
    assert!(
        !sub_log.contains("were lost") && !sub_log.contains("subscription was lost"),
        "the subscriber had to resync: {sub_log}"
    );
    // One subscriber process, one lost connection per crash: it really ran across every restart.
    let disconnects = sub_log
        .lines()
        .filter(|line| line.contains("disconnected"))
        .count();
    assert_eq!(disconnects, CRASHES, "{sub_log}");
    sub.signal("INT");
    assert!(sub.wait().success());
    eprintln!(
        "{fsync:?}: {} acknowledged publishes, heads {heads:?}, {CRASHES} SIGKILLs",
        ledger.acked.len()
    );
}
