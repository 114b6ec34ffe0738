//! `serve --data-dir`: the real binary keeps every acknowledged event across SIGKILL and restarts, a subscriber
//! running across them sees every event once, damaged files are cut back (a torn tail keeps the epoch, a changed
//! byte takes a new one), a data directory in use or from a newer format is refused with exit 2, a full disk turns
//! publishes into `STORAGE_UNAVAILABLE` until space returns, and retained state, recovery and the webhook sender's
//! place survive a restart.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::data_dir::{TempDir, frames, header};
use support::native::Native;
use support::rest::{Http, history, state};
use support::{BIN, Proc, listening_on, run, run_with_env};

/// A `serve --data-dir` process and the address it listens on.
struct DataServer {
    proc: Proc,
    addr: String,
}

impl DataServer {
    /// The native WebSocket URL.
    fn ws_url(&self) -> String {
        format!("ws://{}/api/ws", self.addr)
    }
}

/// The arguments of `serve` on `bind` with `dir`. WebSocket publishes are not rate-limited (the tests publish in
/// bursts); the REST limit counts per client address (see [`Http::from_source`]).
fn serve_args<'a>(bind: &'a str, dir: &'a TempDir, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "serve",
        "--bind",
        bind,
        "--data-dir",
        dir.arg(),
        "--rate-per-sec",
        "0",
    ];
    args.extend_from_slice(extra);
    args
}

/// Starts `serve` on `bind` (port 0 for any) with `dir` and waits until it listens.
fn start(bind: &str, dir: &TempDir, extra: &[&str]) -> DataServer {
    let proc = Proc::spawn(&serve_args(bind, dir, extra), &[]);
    let addr = listening_on(&proc);
    DataServer { proc, addr }
}

/// A port that was free a moment ago, for a server that must come back on the same address after a crash.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("its address")
        .port()
}

/// Publishes over REST and expects 201 at `offset`.
fn publish_at(http: &mut Http, channel: &str, event: &Value, retain: bool, offset: u64) {
    let answer = http
        .publish(channel, event, retain)
        .unwrap_or_else(|e| panic!("publish {event} on {channel}: {e}"));
    assert_eq!(answer.status, 201, "publish {event}: {:?}", answer.body);
    assert_eq!(answer.body["channel"], channel, "{:?}", answer.body);
    assert_eq!(answer.body["offset"], offset, "{:?}", answer.body);
}

/// The epoch the server gives `channel`.
fn epoch(addr: &str, channel: &str) -> String {
    state(addr, channel)["epoch"]
        .as_str()
        .expect("an epoch")
        .to_owned()
}

/// Whether a log line tells about damage found in `file` (a segment's file name).
fn tells_damage(line: &str, file: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    line.contains(file)
        && ["torn", "truncat", "corrupt", "checksum", "damage", " cut"]
            .iter()
            .any(|word| lower.contains(word))
}

/// Expects exactly one stderr line about damage in `segment`: waits for it, then gives any further line a moment
/// to show up.
fn expect_one_damage_line(server: &DataServer, segment: &std::path::Path) {
    let file = segment
        .file_name()
        .and_then(|name| name.to_str())
        .expect("a file name");
    server
        .proc
        .stderr_matching(&format!("about the damage in {file}"), |line| {
            tells_damage(line, file)
        });
    std::thread::sleep(Duration::from_millis(200));
    let more = server.proc.drain_stderr();
    assert!(
        !more.lines().any(|line| tells_damage(line, file)),
        "one line about the damage, not more: {more}"
    );
}

/// Offsets `1..=n` with `{"n": offset}`, as history lists them.
fn numbered(n: u64) -> Vec<(u64, Value)> {
    (1..=n).map(|i| (i, json!({"n": i}))).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// SIGKILL under load

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
    let deadline = Instant::now() + support::STEP;
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
    let first_epoch = epoch(&server.addr, LOAD_CHANNELS[0]);

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
        assert_eq!(
            epoch(&server.addr, LOAD_CHANNELS[0]),
            first_epoch,
            "restart {crash} changed the epoch"
        );
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
        assert_eq!(history_epoch, first_epoch, "{channel}: the epoch changed");
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

// ---------------------------------------------------------------------------------------------------------------
// Damaged files

/// Publishes `{"n": 1..=n}` on `channel`, kills the server with SIGKILL and returns the epoch it had and the
/// newest log segment's path.
fn fill_and_crash(dir: &TempDir, channel: &str, n: u64) -> (String, std::path::PathBuf) {
    let mut server = start("127.0.0.1:0", dir, &[]);
    let mut http = Http::new(&server.addr);
    for i in 1..=n {
        publish_at(&mut http, channel, &json!({"n": i}), false, i);
    }
    let before = epoch(&server.addr, channel);
    server.proc.kill_hard();
    let segment = dir
        .segments()
        .pop()
        .unwrap_or_else(|| panic!("no log segment in {}", dir.arg()));
    (before, segment)
}

#[test]
fn a_torn_tail_is_cut_back_and_the_epoch_stays() {
    let dir = TempDir::new("tail");
    let (before, segment) = fill_and_crash(&dir, "tail", 10);
    let bytes = std::fs::read(&segment).expect("read the segment");
    let last = frames(&bytes).pop().expect("records in the segment");
    assert_eq!(
        last.event(),
        Some(("tail".to_owned(), 10)),
        "the newest record is the last publish"
    );
    // A crash in the middle of writing the last record: its last five bytes never reached the file.
    let cut = bytes.len() - 5;
    std::fs::write(&segment, &bytes[..cut]).expect("truncate the segment");

    let server = start("127.0.0.1:0", &dir, &[]);
    expect_one_damage_line(&server, &segment);
    let (after, events) = history(&server.addr, "tail");
    assert_eq!(
        after, before,
        "a torn tail held nothing acknowledged: the epoch stays"
    );
    assert_eq!(
        events,
        numbered(9),
        "everything before the torn record is kept"
    );
    assert!(
        std::fs::metadata(&segment).map(|m| m.len()).unwrap_or(0) <= last.start as u64,
        "the torn record is cut off the file"
    );
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, "tail", &json!({"n": 10}), false, 10);
}

#[test]
fn a_changed_byte_is_cut_back_and_takes_a_new_epoch() {
    let dir = TempDir::new("flip");
    let (before, segment) = fill_and_crash(&dir, "flip", 20);
    let mut bytes = std::fs::read(&segment).expect("read the segment");
    let damaged = frames(&bytes)
        .into_iter()
        .find(|frame| frame.event() == Some(("flip".to_owned(), 10)))
        .expect("the record of offset 10");
    // A byte of the event's JSON, so the record still parses but its checksum disagrees.
    bytes[damaged.end() - 2] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write the damaged segment");

    let mut server = start("127.0.0.1:0", &dir, &[]);
    expect_one_damage_line(&server, &segment);
    let (after, events) = history(&server.addr, "flip");
    assert_ne!(
        after, before,
        "damage may have lost acknowledged events: clients must resync under a new epoch"
    );
    assert_eq!(
        events,
        numbered(9),
        "everything before the damaged record is kept"
    );
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, "flip", &json!({"n": "next"}), false, 10);
    assert_eq!(epoch(&server.addr, "flip"), after);

    // The cut is for good: the next start finds the same epoch and no more damage.
    server.proc.signal("TERM");
    assert!(server.proc.wait().success());
    let again = start("127.0.0.1:0", &dir, &[]);
    let (epoch_again, events) = history(&again.addr, "flip");
    assert_eq!(epoch_again, after);
    let mut expected = numbered(9);
    expected.push((10, json!({"n": "next"})));
    assert_eq!(events, expected);
}

// ---------------------------------------------------------------------------------------------------------------
// Refused data directories

#[test]
fn a_data_dir_in_use_is_refused_with_exit_2() {
    let dir = TempDir::new("in-use");
    let first = start("127.0.0.1:0", &dir, &[]);
    // Named by the flag, and by the environment variable.
    let by_flag = run(&serve_args("127.0.0.1:0", &dir, &[]));
    let by_env = run_with_env(
        &["serve", "--bind", "127.0.0.1:0"],
        &[("SWITCHBOARD_DATA_DIR", dir.arg())],
    );
    for second in [by_flag, by_env] {
        assert_eq!(second.code, Some(2), "stderr: {}", second.stderr);
        assert!(second.stdout.is_empty(), "{:?}", second.stdout);
        let refusals = second
            .stderr
            .lines()
            .filter(|line| line.contains("in use") && line.contains(dir.arg()))
            .count();
        assert_eq!(
            refusals, 1,
            "one line says the directory is in use: {}",
            second.stderr
        );
    }
    // The first server is unharmed.
    let mut http = Http::new(&first.addr);
    publish_at(&mut http, "still", &json!({"n": 1}), false, 1);
}

#[test]
fn a_data_dir_from_a_newer_format_is_refused_with_exit_2() {
    let dir = TempDir::new("newer");
    let mut file = header(99).to_vec();
    // A record after the header, so the refusal is about the version and not about an empty file.
    file.extend_from_slice(&[0u8; 8]);
    std::fs::write(dir.path().join(format!("{:016x}.log", 1)), &file).expect("write a segment");
    let refused = run(&serve_args("127.0.0.1:0", &dir, &[]));
    assert_eq!(refused.code, Some(2), "stderr: {}", refused.stderr);
    assert!(refused.stdout.is_empty(), "{:?}", refused.stdout);
    assert!(
        refused.stderr.contains("99"),
        "the refusal names the version: {}",
        refused.stderr
    );
    // Nothing was rewritten.
    assert_eq!(
        std::fs::read(dir.path().join(format!("{:016x}.log", 1))).unwrap(),
        file
    );
}

// ---------------------------------------------------------------------------------------------------------------
// A full disk

/// The payload every publish of the full-disk test carries: all the same size, so when one does not fit, none does.
fn padded(n: u64) -> Value {
    json!({"n": n, "pad": "x".repeat(200)})
}

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
    let deadline = Instant::now() + support::STEP;
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

// ---------------------------------------------------------------------------------------------------------------
// Retained state and recovery across restarts

#[test]
fn a_restart_keeps_retained_state_and_a_resubscribing_client_recovers() {
    let dir = TempDir::new("state");
    let channel = "agent.run";
    let mut server = start("127.0.0.1:0", &dir, &[]);
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, channel, &json!({"step": 1}), true, 1);
    publish_at(&mut http, channel, &json!({"log": "a"}), false, 2);

    let mut client = Native::connect(&server.addr);
    let subscribed = client.request("subscribe", json!({"channel": channel}));
    assert_eq!(subscribed["type"], "subscribe_res", "{subscribed}");
    let first_epoch = subscribed["data"]["epoch"]
        .as_str()
        .expect("an epoch")
        .to_owned();
    assert_eq!(subscribed["data"]["offset"], 2);
    publish_at(&mut http, channel, &json!({"step": 3}), true, 3);
    let seen = client.event();
    assert_eq!(seen["offset"], 3, "{seen}");
    assert_eq!(seen["event"], json!({"step": 3}));
    client.close();
    // Missed by the client.
    publish_at(&mut http, channel, &json!({"log": "b"}), false, 4);
    publish_at(&mut http, channel, &json!({"log": "c"}), false, 5);

    // A graceful stop, then a crash: both restarts keep the state and let the client recover.
    for (round, hard) in [(0, false), (1, true)] {
        if hard {
            server.proc.kill_hard();
        } else {
            server.proc.signal("TERM");
            assert!(server.proc.wait().success());
        }
        server = start("127.0.0.1:0", &dir, &[]);
        let rest_state = state(&server.addr, channel);
        assert_eq!(
            rest_state,
            json!({"channel": channel, "epoch": first_epoch, "offset": 5 + round, "state": {"step": 3}}),
            "restart {round}"
        );

        let mut client = Native::connect(&server.addr);
        let got = client.request("get_state", json!({"channel": channel}));
        assert_eq!(got["type"], "get_state_res", "{got}");
        assert_eq!(got["data"], rest_state);
        let resumed = client.request(
            "subscribe",
            json!({"channel": channel, "since": {"epoch": first_epoch, "offset": 3}}),
        );
        assert_eq!(resumed["type"], "subscribe_res", "{resumed}");
        assert_eq!(resumed["data"]["recovered"], true, "{resumed}");
        assert_eq!(resumed["data"]["epoch"], first_epoch.as_str());
        let mut missed = vec![json!({"log": "b"}), json!({"log": "c"})];
        if round == 1 {
            missed.push(json!({"live": 0}));
        }
        for (i, event) in missed.iter().enumerate() {
            let got = client.event();
            assert_eq!(got["epoch"], first_epoch.as_str(), "{got}");
            assert_eq!(got["offset"], 4 + i as u64, "{got}");
            assert_eq!(&got["event"], event, "{got}");
        }
        // Live events follow the replay.
        let mut http = Http::new(&server.addr);
        let next = 6 + round;
        publish_at(&mut http, channel, &json!({"live": round}), false, next);
        let live = client.event();
        assert_eq!(live["offset"], next, "{live}");
        assert_eq!(live["event"], json!({"live": round}));
        client.close();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The webhook sender's place

/// A webhook receiver on `listener` answering 200 to every request and passing on each body. (Signatures are
/// checked in the webhook tests; here only what is delivered, and in what order, matters.)
fn webhook_receiver(listener: TcpListener) -> std::sync::mpsc::Receiver<Value> {
    use std::io::{BufRead, BufReader, Read, Write};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone the stream");
                let mut reader = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.trim().eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("a length");
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = tx.send(serde_json::from_slice(&body).expect("a JSON body"));
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    rx
}

/// Deliveries of `channel` until one of `offset` arrives; returns their offsets.
fn deliveries_through(
    deliveries: &std::sync::mpsc::Receiver<Value>,
    channel: &str,
    offset: u64,
) -> Vec<u64> {
    let mut offsets = Vec::new();
    while offsets.last() != Some(&offset) {
        let body = deliveries
            .recv_timeout(support::STEP)
            .unwrap_or_else(|_| panic!("no delivery of {channel} #{offset}; got {offsets:?}"));
        assert_eq!(body["type"], "channel_event", "{body}");
        assert_eq!(body["channel"], channel, "{body}");
        let got = body["offset"].as_u64().expect("an offset");
        assert_eq!(body["event"], json!({"n": got}), "{body}");
        offsets.push(got);
    }
    offsets
}

#[test]
fn the_webhook_sender_resumes_after_a_crash_from_where_it_stopped() {
    let dir = TempDir::new("webhook");
    // The receiver's address is known before it listens: down while the first events are published.
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let webhook = [
        "--webhook",
        hook.as_str(),
        "--webhook-secret",
        "durable-secret",
        "--webhook-channel",
        "jobs/*",
    ];
    let channel = "jobs/7";
    let mut server = start("127.0.0.1:0", &dir, &webhook);
    let mut http = Http::new(&server.addr);
    for n in 1..=3 {
        publish_at(&mut http, channel, &json!({"n": n}), false, n);
    }
    // Crashed before any of them could be delivered.
    server.proc.kill_hard();

    let deliveries =
        webhook_receiver(TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver's port"));
    let mut server = start("127.0.0.1:0", &dir, &webhook);
    assert_eq!(
        deliveries_through(&deliveries, channel, 3),
        [1, 2, 3],
        "the sender resumes with what it had not delivered, in order"
    );
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, channel, &json!({"n": 4}), false, 4);
    assert_eq!(deliveries_through(&deliveries, channel, 4), [4]);

    // A second crash after deliveries: at least once and in order, so a redelivery starts at some earlier offset
    // and runs up through the new event without a gap.
    server.proc.kill_hard();
    let server = start("127.0.0.1:0", &dir, &webhook);
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, channel, &json!({"n": 5}), false, 5);
    let after = deliveries_through(&deliveries, channel, 5);
    let first = after[0];
    assert_eq!(
        after,
        (first..=5).collect::<Vec<_>>(),
        "deliveries after the restart are in offset order with no gap"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The disk budget

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
        if n % 250 == 0 {
            let used = dir_bytes(&dir);
            assert!(
                used <= BUDGET,
                "{used} bytes on disk after {n} publishes, over {BUDGET}"
            );
        }
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
