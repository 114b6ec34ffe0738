//! What a run tells its reader: per seed a [`SeedReport`] (steps, virtual time, counters, the first violation, the
//! trace hash), over all seeds a [`Summary`] whose last line is `sim: <seeds> seeds, <steps> steps, <n> violations`,
//! and for every failing seed the exact command that replays it.

use std::fmt;
use std::time::Duration;

/// A broken invariant: what, when, and at which step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantViolation {
    /// The step at which it was found (counting from 1).
    pub step: u64,
    /// Virtual time since the start of the run.
    pub at: Duration,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} at {:?}: {}", self.step, self.at, self.what)
    }
}

/// What happened during one seed's run, for the summary and for eyeballing that the faults really fire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Client machines (initial and joined).
    pub clients: u64,
    /// Connections the hubs accepted.
    pub connections: u64,
    /// Client commands issued.
    pub commands: u64,
    /// Events published (by clients and by the hub).
    pub published: u64,
    /// Channel events delivered to applications.
    pub delivered: u64,
    /// `Resync`s reported.
    pub resyncs: u64,
    /// Links cut.
    pub cuts: u64,
    /// Clients stalled.
    pub stalls: u64,
    /// Listener restarts.
    pub listener_restarts: u64,
    /// Hub restarts (new epoch).
    pub hub_restarts: u64,
    /// Channels forgotten (idle) and published to again: a new log in a new epoch, within one hub.
    pub channels_recreated: u64,
    /// Connections the hub closed as slow consumers (1013).
    pub slow_consumers: u64,
    /// Connections the hub closed for silence (4008).
    pub heartbeat_timeouts: u64,
    /// Server requests the hub sent.
    pub server_requests: u64,
    /// Clients that left (and were replaced by a new one).
    pub departures: u64,
    /// Routed calls answered with a `call_res`.
    pub calls_succeeded: u64,
    /// Server requests answered with a `server_response`.
    pub server_requests_answered: u64,
    /// Calls and server requests that ended in a fault-free stretch, hence were checked to succeed
    /// (`world/calls.rs`).
    pub fault_free_requests: u64,
    /// Seeds whose hub ran over the durable store.
    pub durable_seeds: u64,
    /// Store writes the hubs asked for.
    pub store_writes: u64,
    /// Store writes that failed (a full disk).
    pub store_write_failures: u64,
    /// Server-side publishes refused because their write failed.
    pub publishes_refused: u64,
    /// Log segments created.
    pub segments_created: u64,
    /// Snapshots written and put in place.
    pub snapshots: u64,
    /// Snapshots that failed (a full disk).
    pub snapshot_failures: u64,
    /// Hubs restored from the disk after a restart.
    pub durable_restores: u64,
    /// Restarts that were power losses (unsynced data lost).
    pub power_losses: u64,
    /// Files cut back to their last whole record at a restore.
    pub torn_tails_cut: u64,
    /// Restores that kept the epoch.
    pub epochs_kept: u64,
    /// Records of history dropped for the disk budget, read at restores.
    pub budget_trims_restored: u64,
    /// Acknowledged events found again at their offset after a restore.
    pub acked_verified: u64,
    /// Events written but never acknowledged, found on disk after a restore.
    pub unacked_restored: u64,
    /// Subscribes with `since` over the durable store checked to recover.
    pub recoveries_checked: u64,
    /// Of those, subscribes resuming from before the last restart.
    pub recovered_after_restart: u64,
    /// Deliveries at a position already delivered, checked to carry the same event.
    pub redeliveries_checked: u64,
    /// Server-side publishes made again under the key of an earlier one.
    pub keyed_retries: u64,
    /// Publishes answered as duplicates of their key's original, checked against the truth.
    pub keyed_duplicates: u64,
}

impl Counts {
    /// Adds another seed's counts.
    pub fn add(&mut self, o: &Counts) {
        self.clients += o.clients;
        self.connections += o.connections;
        self.commands += o.commands;
        self.published += o.published;
        self.delivered += o.delivered;
        self.resyncs += o.resyncs;
        self.cuts += o.cuts;
        self.stalls += o.stalls;
        self.listener_restarts += o.listener_restarts;
        self.hub_restarts += o.hub_restarts;
        self.channels_recreated += o.channels_recreated;
        self.slow_consumers += o.slow_consumers;
        self.heartbeat_timeouts += o.heartbeat_timeouts;
        self.server_requests += o.server_requests;
        self.departures += o.departures;
        self.calls_succeeded += o.calls_succeeded;
        self.server_requests_answered += o.server_requests_answered;
        self.fault_free_requests += o.fault_free_requests;
        self.durable_seeds += o.durable_seeds;
        self.store_writes += o.store_writes;
        self.store_write_failures += o.store_write_failures;
        self.publishes_refused += o.publishes_refused;
        self.segments_created += o.segments_created;
        self.snapshots += o.snapshots;
        self.snapshot_failures += o.snapshot_failures;
        self.durable_restores += o.durable_restores;
        self.power_losses += o.power_losses;
        self.torn_tails_cut += o.torn_tails_cut;
        self.epochs_kept += o.epochs_kept;
        self.budget_trims_restored += o.budget_trims_restored;
        self.acked_verified += o.acked_verified;
        self.unacked_restored += o.unacked_restored;
        self.recoveries_checked += o.recoveries_checked;
        self.recovered_after_restart += o.recovered_after_restart;
        self.redeliveries_checked += o.redeliveries_checked;
        self.keyed_retries += o.keyed_retries;
        self.keyed_duplicates += o.keyed_duplicates;
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} clients, {} connections, {} commands, {} published, {} delivered, {} resyncs, {} cuts, {} stalls, \
             {} listener restarts, {} hub restarts, {} channels forgotten and recreated, {} slow consumers, {} heartbeat timeouts, \
             {} server requests ({} answered), {} departures, {} calls succeeded, \
             {} calls and server requests checked in fault-free stretches, {} keyed retries ({} answered as duplicates)",
            self.clients,
            self.connections,
            self.commands,
            self.published,
            self.delivered,
            self.resyncs,
            self.cuts,
            self.stalls,
            self.listener_restarts,
            self.hub_restarts,
            self.channels_recreated,
            self.slow_consumers,
            self.heartbeat_timeouts,
            self.server_requests,
            self.server_requests_answered,
            self.departures,
            self.calls_succeeded,
            self.fault_free_requests,
            self.keyed_retries,
            self.keyed_duplicates
        )
    }
}

impl Counts {
    /// The durable store's line of the summary.
    pub fn durable(&self) -> impl fmt::Display + '_ {
        DurableCounts(self)
    }
}

/// The durable store's counters, as a line.
struct DurableCounts<'a>(&'a Counts);

impl fmt::Display for DurableCounts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        write!(
            f,
            "{} durable seeds, {} store writes ({} failed, {} server publishes refused), {} segments, \
             {} snapshots ({} failed), {} restores ({} power losses, {} torn files cut, {} kept the epoch, {} budget trims read), \
             acked events verified after restart: {}, unacknowledged events found on disk: {}, \
             recoveries checked: {} ({} from before a restart), redeliveries checked: {}",
            c.durable_seeds,
            c.store_writes,
            c.store_write_failures,
            c.publishes_refused,
            c.segments_created,
            c.snapshots,
            c.snapshot_failures,
            c.durable_restores,
            c.power_losses,
            c.torn_tails_cut,
            c.epochs_kept,
            c.budget_trims_restored,
            c.acked_verified,
            c.unacked_restored,
            c.recoveries_checked,
            c.recovered_after_restart,
            c.redeliveries_checked
        )
    }
}

/// One seed's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// The step budget it ran with (`SIM_STEPS`), needed to replay it.
    pub budget: u64,
    /// Steps taken, the final settling phase included.
    pub steps: u64,
    /// Virtual time covered.
    pub virtual_time: Duration,
    /// The first broken invariant; the run stops there.
    pub violation: Option<InvariantViolation>,
    /// A hash of everything that happened, in order: two runs of one seed must agree.
    pub trace_hash: u64,
    /// What happened.
    pub counts: Counts,
}

impl SeedReport {
    /// The command that replays this seed exactly.
    pub fn replay_command(&self) -> String {
        replay_command(self.seed, self.budget)
    }
}

/// The command that replays one seed with one step budget (with the planted fault when this build has it).
pub fn replay_command(seed: u64, steps: u64) -> String {
    let (features, test) = if cfg!(feature = "_internal_planted_fault") {
        (" --features _internal_planted_fault", " planted")
    } else if cfg!(feature = "_internal_planted_unsynced_ack") {
        (" --features _internal_planted_unsynced_ack", " planted")
    } else {
        ("", "")
    };
    format!(
        "SIM_SEED={seed} SIM_STEPS={steps} SIM_TRACE=1 cargo test -p switchboard-tests --release{features} \
         --test simulation{test} -- --nocapture"
    )
}

/// A run over many seeds.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Steps over all seeds.
    pub steps: u64,
    /// Virtual time over all seeds.
    pub virtual_time: Duration,
    /// The seeds that broke an invariant, in seed order.
    pub failures: Vec<SeedReport>,
    /// What happened, over all seeds.
    pub counts: Counts,
    /// Real time the run took.
    pub wall_time: Duration,
}

impl Summary {
    /// Folds the reports of a run (in any order) into a summary.
    pub fn of(mut reports: Vec<SeedReport>, wall_time: Duration) -> Summary {
        reports.sort_by_key(|r| r.seed);
        let mut s = Summary {
            wall_time,
            ..Summary::default()
        };
        for r in reports {
            s.seeds += 1;
            s.steps += r.steps;
            s.virtual_time += r.virtual_time;
            s.counts.add(&r.counts);
            if r.violation.is_some() {
                s.failures.push(r);
            }
        }
        s
    }

    /// How many invariants broke (one per failing seed: a seed stops at its first).
    pub fn violations(&self) -> usize {
        self.failures.len()
    }

    /// Steps per second of real time.
    pub fn steps_per_second(&self) -> f64 {
        self.steps as f64 / self.wall_time.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    /// Every failure with its replay command, the counters, and last the one-line verdict.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.failures {
            if let Some(v) = &r.violation {
                writeln!(f, "sim: seed {} FAILED at {v}", r.seed)?;
                writeln!(f, "sim:   replay: {}", r.replay_command())?;
            }
        }
        writeln!(f, "sim: {}", self.counts)?;
        writeln!(f, "sim: durable store: {}", self.counts.durable())?;
        writeln!(
            f,
            "sim: {:.1} s of real time, {:.0} steps/s, {:.0} s of virtual time",
            self.wall_time.as_secs_f64(),
            self.steps_per_second(),
            self.virtual_time.as_secs_f64()
        )?;
        write!(
            f,
            "sim: {} seeds, {} steps, {} violations",
            self.seeds,
            self.steps,
            self.violations()
        )
    }
}

/// A running FNV-1a hash of what happened, and optionally a line per step on stderr (`SIM_TRACE`).
#[derive(Debug, Clone)]
pub struct Trace {
    hash: u64,
    /// Print every step.
    pub verbose: bool,
}

impl Trace {
    /// A fresh trace.
    pub fn new(verbose: bool) -> Trace {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            verbose,
        }
    }

    /// Mixes bytes into the hash.
    pub fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Mixes a number into the hash.
    pub fn number(&mut self, n: u64) {
        self.bytes(&n.to_le_bytes());
    }

    /// The hash so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seed: u64, failed: bool) -> SeedReport {
        SeedReport {
            seed,
            budget: 10,
            steps: 12,
            virtual_time: Duration::from_secs(1),
            violation: failed.then(|| InvariantViolation {
                step: 3,
                at: Duration::from_millis(5),
                what: String::from("boom"),
            }),
            trace_hash: 0,
            counts: Counts::default(),
        }
    }

    #[test]
    fn the_summary_ends_with_the_verdict_and_names_the_replay() {
        let s = Summary::of(
            vec![report(2, true), report(1, false)],
            Duration::from_secs(1),
        );
        let text = s.to_string();
        assert!(
            text.ends_with("sim: 2 seeds, 24 steps, 1 violations"),
            "{text}"
        );
        assert!(text.contains("SIM_SEED=2 SIM_STEPS=10"), "{text}");
        assert!(text.contains("step 3 at 5ms: boom"), "{text}");
    }

    #[test]
    fn the_trace_hash_depends_on_order() {
        let (mut a, mut b) = (Trace::new(false), Trace::new(false));
        a.number(1);
        a.number(2);
        b.number(2);
        b.number(1);
        assert_ne!(a.hash(), b.hash());
    }
}
