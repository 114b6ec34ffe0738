//! # switchboard-tests
//!
//! Helpers for the end-to-end tests in `tests/`: a bounded-time test wrapper ([`bounded`]), a small HTTP/1.1
//! client ([`http`]) and a WebSocket JSON client ([`ws`]), all over the [`Runtime`] trait so the same scenario runs
//! on every adapter. No tokio, no big HTTP client: the point is to see the server's bytes as a client would.
//!
//! [`sim`] is the deterministic simulation: real client and hub machines over a seeded fake network with a virtual
//! clock, checking invariants after every step (run by `tests/simulation.rs`; see `docs/TESTING.md`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod http;
pub mod sim;
pub mod ws;

use std::future::Future;
use std::time::Duration;

use switchboard_runtime::Runtime;

/// How long one end-to-end test may take.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one expected message or answer may take to arrive.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `fut`, failing the test if it takes longer than `limit`.
pub async fn bounded<R: Runtime, T>(
    runtime: &R,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> T {
    let deadline = runtime.now() + limit;
    match switchboard_runtime::deadline::with_deadline(runtime, deadline, fut).await {
        Some(v) => v,
        None => panic!("timed out after {limit:?}"),
    }
}

/// Polls `check` every 10 ms until it holds, failing the test after [`STEP_TIMEOUT`]. For conditions the server
/// reaches on its own tasks (a registry emptying, a callback having run).
pub async fn eventually<R: Runtime>(runtime: &R, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = runtime.now() + STEP_TIMEOUT;
    while !check() {
        let now = runtime.now();
        assert!(now < deadline, "timed out waiting for {what}");
        runtime.sleep_until(now + Duration::from_millis(10)).await;
    }
}
