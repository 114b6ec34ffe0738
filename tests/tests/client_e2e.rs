//! End-to-end tests of the async `Client` against a real `Server`: every scenario in `client_scenarios/` runs once
//! on smol and once on async-std, over loopback TCP. Each is bounded in time and closes what it starts.

mod client_scenarios;

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
                        ::smol::block_on(Box::pin(crate::client_scenarios::$name(
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
                        ::async_std::task::block_on(Box::pin(crate::client_scenarios::$name(
                            switchboard_async_std::AsyncStdRuntime::new(),
                        )))
                    });
                }
            )*
        }
    };
}

on_both_runtimes!(
    requests_get_their_answers_or_errors,
    subscribe_publish_and_receive,
    routed_call_through_serve,
    server_requests_and_notifications,
    survives_a_listener_restart_without_gap_or_duplicate,
    close_fails_pending_and_ends_streams,
    dropping_every_handle_closes_the_connection,
    a_refused_token_gives_up_and_a_good_one_connects,
);
