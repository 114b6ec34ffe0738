//! # The deterministic simulation
//!
//! Real machines, fake world: several [`ClientMachine`](switchboard_protocol::client::ClientMachine)s and one
//! [`Hub`](switchboard_protocol::server::Hub) — the very code the runtimes drive — talk over a seeded fake
//! [`network`] (latency, jitter, in-order delivery per direction, failed and hanging dials, cuts, stalled readers)
//! while a [`workload`] of publishers, subscribers, callers, servers, sessions and server-side requests runs and
//! [`faults`] strike (cuts, slow consumers, listener restarts, hub restarts with a new epoch, or, over the durable
//! store on a simulated [`disk`], crashes that keep it). A virtual [`clock`]
//! jumps straight to the next deadline or delivery, so a seed covers minutes of traffic in milliseconds. Each seed
//! draws its own [`scenario`] (configurations, network quality). The driver in [`world`] plays the runtime's part
//! and checks the [`invariants`] after every step, against the hub's ground [`truth`] (and the [`durability`]
//! invariants at every restart of a durable hub); [`report`] says what happened
//! and how to replay it. The [`cluster`] world runs beside it: 2 or 3 `Hub::clustered` nodes, each with its real
//! live feed, over a simulated engine (cut pub/sub links, slow and failing commands, trimmed, expired and lost
//! channels).
//!
//! Every random choice comes from one seeded [`Rng`](switchboard_protocol::rng::Rng) (the machines get seeds drawn
//! from it too), no hash map is iterated, and nothing reads the real clock: **the same seed always gives the same
//! run**, down to the trace hash.
//!
//! # Running it
//!
//! `cargo test -p switchboard-tests --release --test simulation -- --nocapture`, tuned with environment variables:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SIM_SEEDS` | how many seeds | 200 |
//! | `SIM_SEED_BASE` | the first seed (`SIM_SEED_BASE .. SIM_SEED_BASE + SIM_SEEDS`) | 0 |
//! | `SIM_STEPS` | steps per seed before the world settles | 1000 |
//! | `SIM_SEED` | run this one seed only (replay) | |
//! | `SIM_TRACE` | `1`: print every step of every seed to stderr (use with `SIM_SEED`) | off |
//! | `SIM_THREADS` | worker threads | the machine's parallelism |
//!
//! A failing seed prints the command that replays it; see `docs/TESTING.md`.

pub mod clock;
pub mod cluster;
pub mod disk;
pub mod durability;
pub mod faults;
pub mod invariants;
pub mod network;
#[cfg(feature = "_internal_planted_fault")]
mod planted;
#[cfg(feature = "_internal_planted_stale_epoch")]
mod planted_epoch;
pub mod report;
pub mod scenario;
pub mod truth;
pub mod workload;
pub mod world;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use report::{InvariantViolation, SeedReport, Summary};
pub use world::World;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The seeds.
    pub seeds: Vec<u64>,
    /// Steps per seed before settling.
    pub steps: u64,
    /// Worker threads.
    pub threads: usize,
    /// Print every step.
    pub verbose: bool,
}

impl Settings {
    /// Reads `SIM_SEEDS`, `SIM_SEED_BASE`, `SIM_STEPS`, `SIM_SEED`, `SIM_TRACE` and `SIM_THREADS`, with these
    /// defaults for the seed count and the steps.
    pub fn from_env(default_seeds: u64, default_steps: u64) -> Result<Settings, String> {
        Settings::from_vars(default_seeds, default_steps, |name| {
            std::env::var(name).ok()
        })
    }

    /// As [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_vars(
        default_seeds: u64,
        default_steps: u64,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, String> {
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match var(name) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse()
                    .map_err(|e| format!("{name}={text:?} is not a number: {e}")),
            }
        };
        let steps = number("SIM_STEPS", default_steps)?;
        let seeds = match var("SIM_SEED") {
            Some(_) => vec![number("SIM_SEED", 0)?],
            None => {
                let base = number("SIM_SEED_BASE", 0)?;
                let count = number("SIM_SEEDS", default_seeds)?;
                (base..base.saturating_add(count)).collect()
            }
        };
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = number("SIM_THREADS", parallelism as u64)?.max(1) as usize;
        let verbose = var("SIM_TRACE").is_some_and(|v| !v.is_empty() && v != "0");
        Ok(Settings {
            seeds,
            steps,
            threads,
            verbose,
        })
    }
}

/// Runs one seed. A panic in a machine (or in the driver) is reported as a violation, with the replay command,
/// rather than taking the whole run down.
pub fn run_seed(seed: u64, steps: u64, verbose: bool) -> SeedReport {
    match catch_unwind(AssertUnwindSafe(|| World::new(seed, verbose).run(steps))) {
        Ok(report) => report,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            SeedReport {
                seed,
                budget: steps,
                steps: 0,
                virtual_time: Duration::ZERO,
                violation: Some(InvariantViolation {
                    step: 0,
                    at: Duration::ZERO,
                    what: format!("panicked: {message}"),
                }),
                trace_hash: 0,
                counts: Default::default(),
            }
        }
    }
}

/// Runs every seed of `settings`, spread over its threads, and sums up.
pub fn run(settings: &Settings) -> Summary {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::with_capacity(settings.seeds.len()));
    std::thread::scope(|scope| {
        for _ in 0..settings.threads.min(settings.seeds.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = settings.seeds.get(i) else {
                        break;
                    };
                    let report = run_seed(seed, settings.steps, settings.verbose);
                    if let Some(v) = &report.violation {
                        eprintln!(
                            "sim: seed {seed} FAILED at {v}\nsim:   replay: {}",
                            report.replay_command()
                        );
                    }
                    reports
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(report);
                }
            });
        }
    });
    let reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    Summary::of(reports, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| String::from(*v))
            }
        };
        let s = Settings::from_vars(5, 7, vars(&[("SIM_THREADS", "3")])).unwrap();
        assert_eq!(
            (s.seeds, s.steps, s.threads, s.verbose),
            (vec![0, 1, 2, 3, 4], 7, 3, false)
        );
        let s = Settings::from_vars(
            5,
            7,
            vars(&[
                ("SIM_SEEDS", "2"),
                ("SIM_SEED_BASE", "10"),
                ("SIM_STEPS", "9"),
            ]),
        )
        .unwrap();
        assert_eq!((s.seeds, s.steps), (vec![10, 11], 9));
        let s = Settings::from_vars(5, 7, vars(&[("SIM_SEED", "42"), ("SIM_TRACE", "1")])).unwrap();
        assert_eq!((s.seeds, s.verbose), (vec![42], true));
        assert!(Settings::from_vars(5, 7, vars(&[("SIM_STEPS", "many")])).is_err());
    }
}
