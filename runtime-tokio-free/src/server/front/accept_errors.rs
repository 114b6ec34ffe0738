//! Failed accepts (out of file descriptors, mostly): counted for `/metrics`, and logged at most once per
//! [`LOG_INTERVAL`] with how many failed since the last line. The accept loop retries every 50 ms while the
//! condition lasts, and a warning per retry would flood the log just when the operator needs it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_protocol::time::Timestamp;

use crate::server::hub::metrics as hub_metrics;

/// At most one log line per this long.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The failed accepts of all listeners.
#[derive(Debug)]
pub(crate) struct AcceptErrors {
    total: AtomicU64,
    gate: Mutex<LogGate>,
}

impl Default for AcceptErrors {
    fn default() -> Self {
        AcceptErrors {
            total: AtomicU64::new(0),
            gate: Mutex::new(LogGate::new(LOG_INTERVAL)),
        }
    }
}

impl AcceptErrors {
    /// Counts a failed accept at `now`, and logs it when a line is due.
    pub fn failed(&self, now: Timestamp, error: &std::io::Error) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let due = self
            .gate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed(now);
        if let Some(failures) = due {
            tracing::warn!(
                %error,
                failures,
                "accept failed; retrying every 50 ms (logged at most once per {}s, `failures` counts those since the last line)",
                LOG_INTERVAL.as_secs()
            );
        }
    }

    /// Appends the counter to `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        hub_metrics::metric(
            out,
            "switchboard_accept_errors_total",
            "counter",
            "Failed accepts on the listeners (out of file descriptors and the like).",
            &[(String::new(), self.total.load(Ordering::Relaxed))],
        );
    }
}

/// When a failure is logged: the first one, then the first one at least `interval` after the last line.
#[derive(Debug)]
pub(crate) struct LogGate {
    interval: Duration,
    last_line: Option<Timestamp>,
    unlogged: u64,
}

impl LogGate {
    /// A gate letting a line through at most once per `interval`.
    pub fn new(interval: Duration) -> LogGate {
        LogGate {
            interval,
            last_line: None,
            unlogged: 0,
        }
    }

    /// A failure at `now`. `Some(n)` when a line is due: `n` failures (this one and those held back since the last
    /// line) are to be reported in it.
    pub fn failed(&mut self, now: Timestamp) -> Option<u64> {
        self.unlogged += 1;
        match self.last_line {
            Some(last) if now < last + self.interval => None,
            _ => {
                self.last_line = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let mut gate = LogGate::new(Duration::from_secs(10));
        assert_eq!(
            gate.failed(ms(1_000)),
            Some(1),
            "the first failure is logged at once"
        );
        // A retry every 50 ms for 10 s: all held back.
        let held: Vec<Option<u64>> = (1..200).map(|i| gate.failed(ms(1_000 + 50 * i))).collect();
        assert!(held.iter().all(Option::is_none), "{held:?}");
        // 10 s after the last line: the next failure is logged, standing for itself and the 199 before it.
        assert_eq!(gate.failed(ms(11_000)), Some(200));
        assert_eq!(gate.failed(ms(11_050)), None);
        // After a quiet spell, the next failure is logged at once.
        assert_eq!(gate.failed(ms(60_000)), Some(2));
    }

    #[test]
    fn failures_are_counted_for_metrics() {
        let errors = AcceptErrors::default();
        let e = std::io::Error::other("too many open files");
        for i in 0..5 {
            errors.failed(ms(i * 50), &e);
        }
        let mut out = String::new();
        errors.render_metrics(&mut out);
        assert!(out.contains("switchboard_accept_errors_total 5\n"), "{out}");
        assert!(
            out.contains("# TYPE switchboard_accept_errors_total counter"),
            "{out}"
        );
    }
}
