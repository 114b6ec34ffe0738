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
pub mod redis_server;
pub mod sim;
pub mod sse;
pub mod ws;
pub mod yielding;

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

/// Runs a test body on a thread with a roomy (32 MiB) stack and re-raises its panic: debug builds of the drivers'
/// deeply nested futures need more than a test thread's default 2 MiB.
pub fn on_roomy_stack(test: impl FnOnce() + Send + 'static) {
    let thread = std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(test)
        .expect("spawn the test thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Generates one `#[test]` per scenario and runtime, `smol::<name>`, `smol_yielding::<name>` and
/// `async_std::<name>`, each on a roomy stack. `smol_yielding` is smol with every connection's reads and writes
/// yielding once each ([`yielding`]), which makes a lost wake-up hang the test on every run.
/// `on_every_runtime!(module; a, b)` runs `module::a(runtime)` (a module beside the call) and so on, where each
/// scenario is an `async fn(R: Runtime)`.
#[macro_export]
macro_rules! on_every_runtime {
    ($module:ident; $($name:ident),* $(,)?) => {
        mod smol {
            $(
                #[test]
                fn $name() {
                    $crate::on_roomy_stack(|| {
                        ::smol::block_on(Box::pin(super::$module::$name(
                            switchboard_smol::SmolRuntime::new(),
                        )))
                    });
                }
            )*
        }
        mod smol_yielding {
            $(
                #[test]
                fn $name() {
                    $crate::on_roomy_stack(|| {
                        ::smol::block_on(Box::pin(super::$module::$name(
                            $crate::yielding::YieldingRuntime(switchboard_smol::SmolRuntime::new()),
                        )))
                    });
                }
            )*
        }
        mod async_std {
            $(
                #[test]
                fn $name() {
                    $crate::on_roomy_stack(|| {
                        ::async_std::task::block_on(Box::pin(super::$module::$name(
                            switchboard_async_std::AsyncStdRuntime::new(),
                        )))
                    });
                }
            )*
        }
    };
}
