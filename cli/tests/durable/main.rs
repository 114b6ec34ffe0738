//! `serve --data-dir`: the real binary keeps every acknowledged event across SIGKILL and restarts, a subscriber
//! running across them sees every event once, damaged files are cut back (a torn tail keeps the epoch, a changed
//! byte takes a new one), a data directory in use or from a newer format is refused with exit 2, a full disk turns
//! publishes into `STORAGE_UNAVAILABLE` until space returns, a disk budget drops the oldest history first, and
//! retained state, recovery and the webhook sender's place survive a restart.
//!
//! Every test starts its servers on 127.0.0.1 in a data directory of its own (removed at the end), bounds every
//! wait, and kills what it started, also when it fails.

#[path = "../support/mod.rs"]
mod support;

mod budget;
mod crash;
mod damage;
mod full_disk;
mod refusal;
mod restart;
mod webhook;

use std::net::TcpListener;

use serde_json::{Value, json};
use support::Proc;
use support::data_dir::TempDir;
use support::listening_on;
use support::rest::{Http, state};

/// A `serve --data-dir` process and the address it listens on.
pub(crate) struct DataServer {
    pub(crate) proc: Proc,
    pub(crate) addr: String,
}

impl DataServer {
    /// The native WebSocket URL.
    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/api/ws", self.addr)
    }
}

/// The arguments of `serve` on `bind` with `dir`. WebSocket publishes are not rate-limited (the tests publish in
/// bursts); the REST limit counts per client address (see [`Http::from_source`]).
pub(crate) fn serve_args<'a>(bind: &'a str, dir: &'a TempDir, extra: &[&'a str]) -> Vec<&'a str> {
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
pub(crate) fn start(bind: &str, dir: &TempDir, extra: &[&str]) -> DataServer {
    let proc = Proc::spawn(&serve_args(bind, dir, extra), &[]);
    let addr = listening_on(&proc);
    DataServer { proc, addr }
}

/// A port that was free a moment ago, for a server that must come back on the same address after a crash.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("its address")
        .port()
}

/// Publishes over REST and expects 201 at `offset`.
pub(crate) fn publish_at(http: &mut Http, channel: &str, event: &Value, retain: bool, offset: u64) {
    let answer = http
        .publish(channel, event, retain)
        .unwrap_or_else(|e| panic!("publish {event} on {channel}: {e}"));
    assert_eq!(answer.status, 201, "publish {event}: {:?}", answer.body);
    assert_eq!(answer.body["channel"], channel, "{:?}", answer.body);
    assert_eq!(answer.body["offset"], offset, "{:?}", answer.body);
}

/// The epoch the server gives `channel`.
pub(crate) fn epoch(addr: &str, channel: &str) -> String {
    state(addr, channel)["epoch"]
        .as_str()
        .expect("an epoch")
        .to_owned()
}
/// Offsets `1..=n` with `{"n": offset}`, as history lists them.
pub(crate) fn numbered(n: u64) -> Vec<(u64, Value)> {
    (1..=n).map(|i| (i, json!({"n": i}))).collect()
}

/// An event of over 200 bytes, all of the same size whatever `n` (so when one does not fit a full disk, none does).
pub(crate) fn padded(n: u64) -> Value {
    json!({"n": n, "pad": "x".repeat(200)})
}
