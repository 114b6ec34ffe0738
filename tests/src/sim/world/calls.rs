//! Routed calls and server requests that must succeed: the ones made in a **fault-free stretch**.
//!
//! A handler may refuse, stay silent or be slow, a fault may cut a link, and a call or server request then fails
//! legitimately: the checker in `invariants.rs` accepts every outcome such a request can have. That alone would let
//! a hub that lost every call pass. So the driver also counts **disturbances**: every fault injected, every close
//! by the hub, every transport end a client reports (`Disconnected`), every `RATE_LIMITED` answer, every client that
//! leaves and every `serve` (routing changes). A fault's trouble also lasts: a stall until the client reads again,
//! a listener or hub restart until it is back, a cut until both ends notice, and then the world needs time to
//! reconnect (`World::recovery_wait`, the wait the settling uses). A request is in a **fault-free stretch** when it
//! starts after the last fault's trouble and recovery are over, no disturbance happens between its start and its
//! end, its asker was connected when it started (for a server request: its own timeout,
//! if any, is at least [`SHORTEST_TIMEOUT`]), and its handler received it and chose to answer it with a success
//! within [`PROMPT`]. Such a request must end in success: a call with its `call_res`, a
//! server request with its `server_response`. Anything else is a violation.
//!
//! [`PROMPT`] leaves room for the network: a handler's answer within it, plus two crossings of the slowest link
//! (150 ms of latency and 50 ms of jitter each, see `scenario.rs`), stays under the shortest request timeouts a
//! scenario draws (1 s for the hub's, 2 s for the client's).

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_protocol::server::ConnId;
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::MessageId;

/// The longest handler delay after which a request in a fault-free stretch must still succeed.
pub(super) const PROMPT: Duration = Duration::from_millis(500);

/// The shortest request timeout after which a request in a fault-free stretch must have succeeded: the hub's
/// shortest in `scenario.rs`. A server request sent with a shorter timeout of its own is not followed.
pub(super) const SHORTEST_TIMEOUT: Duration = Duration::from_secs(1);

/// A request being followed: its number, and the disturbance count when it started.
#[derive(Debug, Clone, Copy)]
struct Started {
    n: u64,
    disturbances: u64,
}

/// What the driver follows for the fault-free-stretch check.
#[derive(Debug, Default)]
pub(super) struct CallBook {
    /// Disturbances so far (see the module docs).
    disturbances: u64,
    /// No request starting before this instant is followed: the last fault's trouble is not over.
    calm_from: Timestamp,
    /// Calls issued by a connected client: (slot, incarnation, id) → started.
    calls: BTreeMap<(usize, u32, MessageId), Started>,
    /// Server requests sent: (hub generation, connection, id) → started.
    requests: BTreeMap<(u32, ConnId, MessageId), Started>,
    /// The handler's choice per request number: `true` when it answers with a success within [`PROMPT`].
    prompt_success: BTreeMap<u64, bool>,
    /// Requests that ended in a fault-free stretch, hence were checked to succeed.
    pub(super) checked: u64,
}

impl CallBook {
    /// Something happened that may make a request fail legitimately.
    pub(super) fn disturbed(&mut self) {
        self.disturbances += 1;
    }

    /// A fault's trouble lasts until `until` (its own end plus the time the world needs to recover).
    pub(super) fn calm_after(&mut self, until: Timestamp) {
        self.calm_from = self.calm_from.max(until);
    }

    /// A connected client issued a call with number `n`.
    pub(super) fn call_issued(
        &mut self,
        now: Timestamp,
        slot: usize,
        incarnation: u32,
        id: MessageId,
        n: u64,
    ) {
        if now < self.calm_from {
            return;
        }
        let started = self.start(n);
        self.calls.insert((slot, incarnation, id), started);
    }

    /// The hub sent a server request with number `n`, to time out after `timeout`.
    pub(super) fn request_sent(
        &mut self,
        now: Timestamp,
        generation: u32,
        conn: ConnId,
        id: MessageId,
        n: u64,
        timeout: Duration,
    ) {
        if now < self.calm_from || timeout < SHORTEST_TIMEOUT {
            return;
        }
        let started = self.start(n);
        self.requests.insert((generation, conn, id), started);
    }

    /// A handler received request number `n` and chose this answer (`None`: it never answers).
    pub(super) fn handler_chose(&mut self, n: Option<u64>, success: bool, delay: Option<Duration>) {
        if let Some(n) = n {
            let prompt = success && delay.is_some_and(|d| d <= PROMPT);
            self.prompt_success.insert(n, prompt);
        }
    }

    /// A call ended; `Err` names a failure if it had to succeed and did not.
    pub(super) fn call_ended(
        &mut self,
        slot: usize,
        incarnation: u32,
        id: &MessageId,
        success: bool,
        how: impl FnOnce() -> String,
    ) -> Result<(), String> {
        let Some(started) = self.calls.remove(&(slot, incarnation, id.clone())) else {
            return Ok(());
        };
        self.end(started, success, || {
            format!("client {slot}: call {id} (n = {}) {}", started.n, how())
        })
    }

    /// A server request ended; `Err` names a failure if it had to succeed and did not.
    pub(super) fn request_ended(
        &mut self,
        generation: u32,
        conn: ConnId,
        id: &MessageId,
        success: bool,
        how: impl FnOnce() -> String,
    ) -> Result<(), String> {
        let Some(started) = self.requests.remove(&(generation, conn, id.clone())) else {
            return Ok(());
        };
        self.end(started, success, || {
            format!(
                "server request {id} to {conn} (n = {}) {}",
                started.n,
                how()
            )
        })
    }

    fn start(&self, n: u64) -> Started {
        Started {
            n,
            disturbances: self.disturbances,
        }
    }

    fn end(
        &mut self,
        started: Started,
        success: bool,
        what: impl FnOnce() -> String,
    ) -> Result<(), String> {
        let prompt = self.prompt_success.remove(&started.n).unwrap_or(false);
        if !prompt || started.disturbances != self.disturbances {
            return Ok(());
        }
        self.checked += 1;
        if success {
            Ok(())
        } else {
            Err(format!(
                "{} in a fault-free stretch (its handler answered with a success within {PROMPT:?})",
                what()
            ))
        }
    }
}
