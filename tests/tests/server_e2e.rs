//! End-to-end server tests: every scenario in `scenarios/` runs once on smol and once on async-std, over loopback
//! TCP (and the in-memory transport where a scenario needs a peer that stops reading). Each test is bounded in
//! time and shuts down the servers it starts.

mod scenarios;

/// Runs a scenario on a thread with a roomy stack: debug builds of deeply nested futures need more than the
/// default 2 MiB of a test thread.
pub fn run(scenario: impl FnOnce() + Send + 'static) {
    let thread = std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(scenario)
        .expect("spawn the scenario thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Generates one `#[test]` per scenario and runtime: `smol::<name>` and `async_std::<name>`.
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod smol {
            $(
                #[test]
                fn $name() {
                    crate::run(|| {
                        ::smol::block_on(Box::pin(crate::scenarios::$name(
                            switchboard_smol::SmolRuntime::new(),
                        )))
                    });
                }
            )*
        }
        mod async_std {
            $(
                #[test]
                fn $name() {
                    crate::run(|| {
                        ::async_std::task::block_on(Box::pin(crate::scenarios::$name(
                            switchboard_async_std::AsyncStdRuntime::new(),
                        )))
                    });
                }
            )*
        }
    };
}

on_both_runtimes!(
    native_subscribe_and_publish_over_ws_and_http,
    http_routes_and_their_errors,
    http_limits_and_keep_alive,
    idle_connections_time_out,
    bad_handshakes_are_refused,
    tokens_are_checked_before_the_upgrade,
    project_stream_dialect,
    channel_payload_dialect,
    binary_and_oversize_frames,
    app_api_requests_notifications_and_handlers,
    server_request_times_out,
    slow_consumer_is_closed_and_recovers,
    graceful_shutdown_closes_with_1001,
    listener_restart_keeps_the_hub_and_history,
    in_memory_transport_serves_the_same_protocol,
);
