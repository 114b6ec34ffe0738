//! The deterministic simulation (`switchboard_tests::sim`): real clients and a real hub over a seeded fake network,
//! invariants checked after every step. See `docs/TESTING.md` for the knobs (`SIM_SEEDS`, `SIM_STEPS`, `SIM_SEED`,
//! `SIM_TRACE`) and how to replay a failing seed.
//!
//! - `cargo test` (debug) runs 200 seeds of 1000 steps; CI runs 1000 seeds in release.
//! - With `--features _internal_planted_fault`, the hubs run over a store with a known bug in recovery,
//!   the zero-violation run is left out, and `planted_fault_is_caught` must find that bug and nothing else.
//! - With `--features _internal_planted_unsynced_ack`, every seed runs over the durable store and the driver
//!   acknowledges writes without syncing them; `planted_unsynced_ack_is_caught` must find the lost events.
//! - The cluster world (`sim::cluster`: nodes' live feeds over a simulated engine) runs the same seeds in
//!   `cluster_feeds_find_no_violation`; with `--features _internal_planted_feed_fault` the feed delivers across a
//!   gap and `planted_feed_fault_is_caught` must find exactly that.
//! - With `--features _internal_planted_stale_epoch`, every seed runs over a store whose channels keep their first
//!   epoch when forgotten and published to again; `planted_stale_epoch_is_caught` must find it.
//! - With `--features _internal_planted_forgotten_keys`, every seed runs over the durable store and a restored hub
//!   drops the idempotency keys its files held; `planted_forgotten_keys_is_caught` must find a retry landing twice.

use switchboard_tests::sim;

/// Default seeds of a plain `cargo test` run.
#[cfg(not(any(
    feature = "_internal_planted_fault",
    feature = "_internal_planted_unsynced_ack",
    feature = "_internal_planted_stale_epoch",
    feature = "_internal_planted_forgotten_keys"
)))]
const DEFAULT_SEEDS: u64 = 200;
/// Default steps per seed.
const DEFAULT_STEPS: u64 = 1000;

/// Every seed runs its steps, settles, and breaks no invariant.
#[cfg(not(any(
    feature = "_internal_planted_fault",
    feature = "_internal_planted_unsynced_ack",
    feature = "_internal_planted_stale_epoch",
    feature = "_internal_planted_forgotten_keys"
)))]
#[test]
fn simulation_finds_no_violation() {
    let settings =
        sim::Settings::from_env(DEFAULT_SEEDS, DEFAULT_STEPS).expect("valid SIM_* variables");
    let summary = sim::run(&settings);
    println!("{summary}");
    assert_eq!(
        summary.violations(),
        0,
        "the simulation found violations; each failing seed above prints its replay command"
    );
    assert!(
        summary.steps >= settings.steps * settings.seeds.len() as u64,
        "every seed ran its budget"
    );
    // The fault-free-stretch check (`world/calls.rs`) must have had something to check: with a handful of seeds
    // (a replay of one seed may have none), calls and server requests ended in calm stretches and succeeded.
    if settings.seeds.len() >= 10 {
        let c = summary.counts;
        assert!(
            c.fault_free_requests > 0 && c.calls_succeeded > 0 && c.server_requests_answered > 0,
            "no request was checked in a fault-free stretch: {c}"
        );
        // The durability invariants must have had something to check, too.
        assert!(
            c.durable_restores > 0 && c.acked_verified > 0 && c.recoveries_checked > 0,
            "the durable store's restarts were not exercised: {}",
            c.durable()
        );
    }
}

/// The same seed gives the same run, step for step (the trace hash covers every frame, event and instant);
/// another seed gives another run.
#[test]
fn a_seed_replays_identically() {
    let first = sim::run_seed(7, 600, false);
    let again = sim::run_seed(7, 600, false);
    assert_eq!(first, again);
    assert!(
        first.steps >= 600 && first.counts.delivered > 0,
        "{first:?}"
    );
    let other = sim::run_seed(8, 600, false);
    assert_ne!(first.trace_hash, other.trace_hash);
}

/// The faults and the workload really happen: over a few seeds, every kind of trouble the simulation claims to
/// inject shows up (a run that never cut a link or restarted a hub would prove nothing).
#[test]
fn the_faults_really_happen() {
    let settings = sim::Settings {
        seeds: (100..180).collect(),
        // Longer than the default: a torn file needs a crash in the middle of a write, rare in short seeds.
        steps: 4 * DEFAULT_STEPS,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        verbose: false,
    };
    let summary = sim::run(&settings);
    let c = summary.counts;
    println!("{summary}");
    for (what, n) in [
        ("cuts", c.cuts),
        ("stalls", c.stalls),
        ("listener restarts", c.listener_restarts),
        ("hub restarts", c.hub_restarts),
        ("channels forgotten and recreated", c.channels_recreated),
        ("slow consumers", c.slow_consumers),
        ("heartbeat timeouts", c.heartbeat_timeouts),
        ("resyncs", c.resyncs),
        ("server requests", c.server_requests),
        ("departures", c.departures),
        ("deliveries", c.delivered),
        ("successful calls", c.calls_succeeded),
        ("answered server requests", c.server_requests_answered),
        (
            "calls or server requests in fault-free stretches",
            c.fault_free_requests,
        ),
        ("durable seeds", c.durable_seeds),
        ("store writes", c.store_writes),
        ("failed store writes", c.store_write_failures),
        ("log segments rolled", c.segments_created - c.durable_seeds),
        ("snapshots", c.snapshots),
        ("durable restores", c.durable_restores),
        ("power losses", c.power_losses),
        ("torn files cut back", c.torn_tails_cut),
        ("restores keeping the epoch", c.epochs_kept),
        ("budget trims read at a restore", c.budget_trims_restored),
        (
            "acknowledged events verified after a restart",
            c.acked_verified,
        ),
        ("recoveries checked", c.recoveries_checked),
        (
            "recoveries from before a restart",
            c.recovered_after_restart,
        ),
        ("redeliveries checked", c.redeliveries_checked),
        ("keyed retries", c.keyed_retries),
        ("retries answered as duplicates", c.keyed_duplicates),
    ] {
        assert!(n > 0, "no {what} in 80 seeds: {c}");
    }
}

/// With the planted fault (the store's replay skips one event), the simulation must notice within a
/// bounded number of seeds, and what it notices must be that fault: a gap of exactly one event in a channel's
/// offsets with no `Resync`. Any other violation, a panic above all, fails the test (it would be a different bug,
/// or the simulation breaking, not the proof). Run it in a build of its own:
/// `cargo test -p switchboard-tests --release --features _internal_planted_fault --test simulation -- --exact planted_fault_is_caught --nocapture`.
#[cfg(feature = "_internal_planted_fault")]
#[test]
fn planted_fault_is_caught() {
    assert_planted("the planted fault", is_planted_gap);
}

/// Whether a violation is the planted fault's signature: the gap invariant (`invariants.rs`) reporting exactly one
/// missed offset, `... gap: offset N delivered after N-2 without a Resync (missed N-1..=N-1)`. A panic is not.
fn is_planted_gap(what: &str) -> bool {
    if what.starts_with("panicked") {
        return false;
    }
    let Some((_, rest)) = what.split_once(": gap: offset ") else {
        return false;
    };
    let Some((_, missed)) = rest.split_once(" without a Resync (missed ") else {
        return false;
    };
    let Some((from, to)) = missed.strip_suffix(')').and_then(|m| m.split_once("..=")) else {
        return false;
    };
    from == to && from.parse::<u64>().is_ok()
}

/// Runs seeds 0..50 (or `SIM_SEED`, to replay one of them) in a build with a planted bug: at least one seed must
/// fail, and every failure must carry the bug's signature (`is_planted`), so what is proven is that the simulation
/// catches that bug, not that it breaks.
#[cfg(any(
    feature = "_internal_planted_fault",
    feature = "_internal_planted_unsynced_ack",
    feature = "_internal_planted_stale_epoch",
    feature = "_internal_planted_forgotten_keys"
))]
fn assert_planted(planted: &str, is_planted: impl Fn(&str) -> bool) {
    /// The bound.
    const MAX_SEEDS: u64 = 50;
    let settings =
        sim::Settings::from_env(MAX_SEEDS, DEFAULT_STEPS).expect("valid SIM_* variables");
    assert!(
        settings.seeds.len() as u64 <= MAX_SEEDS,
        "the proof is about at most {MAX_SEEDS} seeds"
    );
    let summary = sim::run(&settings);
    println!("{summary}");
    assert!(
        summary.violations() > 0,
        "{planted} went unnoticed in {MAX_SEEDS} seeds"
    );
    for failure in &summary.failures {
        let what = &failure
            .violation
            .as_ref()
            .expect("a failure has a violation")
            .what;
        assert!(
            is_planted(what),
            "seed {} broke something other than {planted}: {what}",
            failure.seed
        );
    }
    let first = &summary.failures[0];
    println!(
        "sim: {planted} was caught first by seed {} ({} of {MAX_SEEDS} seeds failed)",
        first.seed,
        summary.violations()
    );
}

/// With the planted forgotten keys (a hub restored from the durable store's files never gets the idempotency keys
/// they held), the simulation must notice within a bounded number of seeds that a publish retried under its key
/// after a restart landed twice, and nothing else. Run it in a build of its own:
/// `cargo test -p switchboard-tests --release --features _internal_planted_forgotten_keys --test simulation -- --exact planted_forgotten_keys_is_caught --nocapture`.
#[cfg(feature = "_internal_planted_forgotten_keys")]
#[test]
fn planted_forgotten_keys_is_caught() {
    assert_planted("the planted forgotten keys", is_landed_twice);
}

/// Whether a violation is a retried publish landing twice: the truth seeing one tag published at two offsets,
/// `publish #N applied twice: at C#A and C#B`. A panic is not.
fn is_landed_twice(what: &str) -> bool {
    !what.starts_with("panicked") && what.contains(" applied twice: at ")
}

#[test]
fn a_retry_landing_twice_is_recognised() {
    assert!(is_landed_twice(
        "publish #7 applied twice: at news/0#3 and news/0#9"
    ));
    assert!(!is_landed_twice(
        "news/1: the hub published offset 9 after 7 (offsets must be consecutive)"
    ));
}

/// With the planted unsynced acknowledgement (the driver reports the durable store's writes done without syncing
/// them), the simulation must notice within a bounded number of seeds that a restart lost acknowledged data, and
/// nothing else. Run it in a build of its own:
/// `cargo test -p switchboard-tests --release --features _internal_planted_unsynced_ack --test simulation -- --exact planted_unsynced_ack_is_caught --nocapture`.
#[cfg(feature = "_internal_planted_unsynced_ack")]
#[test]
fn planted_unsynced_ack_is_caught() {
    assert_planted("the planted unsynced acknowledgement", |what| {
        what.starts_with(sim::durability::LOST)
    });
}

/// The signature check itself: the planted gap passes, a panic, a longer gap or another invariant does not.
#[test]
fn the_planted_gap_is_recognised() {
    assert!(is_planted_gap(
        "client 5: news/0: gap: offset 18 delivered after 16 without a Resync (missed 17..=17)"
    ));
    for other in [
        "panicked: client 5: news/0: gap: offset 18 delivered after 16 without a Resync (missed 17..=17)",
        "panicked: index out of bounds",
        "client 5: news/0: gap: offset 19 delivered after 16 without a Resync (missed 17..=18)",
        "hub: check_invariants: session 3 has no connection",
        "client 1: request 7 still open after its deadline",
    ] {
        assert!(!is_planted_gap(other), "{other}");
    }
}

/// The cluster world of every seed (nodes' live feeds over a simulated engine, `sim::cluster`) runs its steps,
/// settles, and breaks no invariant; and its faults really happen.
#[cfg(not(feature = "_internal_planted_feed_fault"))]
#[test]
fn cluster_feeds_find_no_violation() {
    let settings = sim::Settings::from_env(DEFAULT_CLUSTER_SEEDS, DEFAULT_STEPS)
        .expect("valid SIM_* variables");
    let started = std::time::Instant::now();
    let reports = sim::cluster::run(&settings);
    let failed: Vec<_> = reports.iter().filter(|r| r.violation.is_some()).collect();
    let sum = |f: fn(&sim::cluster::ClusterReport) -> u64| reports.iter().map(f).sum::<u64>();
    println!(
        "sim: cluster: {} seeds, {} failed, {} steps, {} delivered, {} reads, {} resyncs, {} cuts, {} channels lost, {} node crashes, in {:?}",
        reports.len(),
        failed.len(),
        sum(|r| r.steps),
        sum(|r| r.delivered),
        sum(|r| r.reads),
        sum(|r| r.resyncs),
        sum(|r| r.cuts),
        sum(|r| r.losses),
        sum(|r| r.crashes),
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "the cluster world found violations; each failing seed above prints its replay command"
    );
    if reports.len() >= 10 {
        for (what, n) in [
            ("deliveries", sum(|r| r.delivered)),
            ("gap-filling reads", sum(|r| r.reads)),
            ("resyncs", sum(|r| r.resyncs)),
            ("cut links", sum(|r| r.cuts)),
            ("lost channels", sum(|r| r.losses)),
            ("node crashes", sum(|r| r.crashes)),
        ] {
            assert!(n > 0, "no {what} in {} cluster seeds", reports.len());
        }
    }
}

/// Default seeds of the cluster world in a plain `cargo test` run.
#[cfg(not(feature = "_internal_planted_feed_fault"))]
const DEFAULT_CLUSTER_SEEDS: u64 = 200;

/// With the planted feed fault (the live feed delivers a held publication across a gap instead of reading the gap
/// first), the cluster world must notice within a bounded number of seeds, and only as a gap without a resync.
/// Run it in a build of its own:
/// `cargo test -p switchboard-tests --release --features _internal_planted_feed_fault --test simulation -- --exact planted_feed_fault_is_caught --nocapture`.
#[cfg(feature = "_internal_planted_feed_fault")]
#[test]
fn planted_feed_fault_is_caught() {
    /// The bound: seeds 0..50 (or `SIM_SEED`, to replay one of them), 1000 cluster steps each (a cluster seed runs
    /// a quarter of `SIM_STEPS`).
    const MAX_SEEDS: u64 = 50;
    let settings =
        sim::Settings::from_env(MAX_SEEDS, 4 * DEFAULT_STEPS).expect("valid SIM_* variables");
    assert!(
        settings.seeds.len() as u64 <= MAX_SEEDS,
        "the proof is about at most {MAX_SEEDS} seeds"
    );
    let reports = sim::cluster::run(&settings);
    let failed: Vec<_> = reports.iter().filter(|r| r.violation.is_some()).collect();
    assert!(
        !failed.is_empty(),
        "the planted feed fault went unnoticed in {MAX_SEEDS} seeds"
    );
    for report in &failed {
        let what = report.violation.as_deref().unwrap_or_default();
        assert!(
            what.contains(": gap without resync: "),
            "cluster seed {} broke something other than the planted gap: {what}",
            report.seed
        );
    }
    println!(
        "sim: the planted feed fault was caught first by cluster seed {} ({} of {MAX_SEEDS} seeds failed)",
        failed[0].seed,
        failed.len()
    );
}

/// With the planted stale epoch (a channel forgotten and published to again keeps its first log's epoch), the
/// simulation must notice within a bounded number of seeds, and what it notices must be that fault: the new log's
/// offsets restarting under an epoch the truth already holds events of. Run it in a build of its own:
/// `cargo test -p switchboard-tests --release --features _internal_planted_stale_epoch --test simulation -- --exact planted_stale_epoch_is_caught --nocapture`.
#[cfg(feature = "_internal_planted_stale_epoch")]
#[test]
fn planted_stale_epoch_is_caught() {
    assert_planted("the planted stale epoch", is_stale_epoch);
}

/// Whether a violation is the planted stale epoch's signature: the truth seeing a channel's offsets start again at
/// 1 in an epoch it already holds events of, `...: the hub published offset 1 after N (offsets must be
/// consecutive)`. A panic is not.
fn is_stale_epoch(what: &str) -> bool {
    if what.starts_with("panicked") {
        return false;
    }
    let Some((_, rest)) = what.split_once(": the hub published offset 1 after ") else {
        return false;
    };
    rest.strip_suffix(" (offsets must be consecutive)")
        .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
}

#[test]
fn the_stale_epoch_is_recognised() {
    assert!(is_stale_epoch(
        "news/1: the hub published offset 1 after 7 (offsets must be consecutive)"
    ));
    assert!(!is_stale_epoch(
        "news/1: the hub published offset 9 after 7 (offsets must be consecutive)"
    ));
    assert!(!is_stale_epoch(
        "news/1: the hub published offset 1 after 0 (offsets must be consecutive)"
    ));
    assert!(!is_stale_epoch(
        "panicked: the hub published offset 1 after 7"
    ));
}
