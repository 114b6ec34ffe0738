//! Request metrics in bounded memory: counts, success and error rates, mean and percentile latency, cache hit rate.
//!
//! Record **one entry per call** as the caller saw it ([`RequestMetrics::record`]): the latency from the first send to
//! the final outcome, retries and their waits included, and how it ended. Retries are counted on the side
//! ([`record_retry`](RequestMetrics::record_retry)); a call answered from the cache is a
//! [`record_cache_hit`](RequestMetrics::record_cache_hit), not a request (it never reached the network).
//!
//! # What is exact over what
//!
//! - Counts, rates and the **mean** latency cover every call since creation or [`reset`](RequestMetrics::reset)
//!   (the mean is a running sum divided by a count; nothing is sampled).
//! - **Percentiles** (p95 and any other) are exact over the latencies of the **last `window` calls**, kept in a
//!   fixed ring of `window` values (default [`DEFAULT_WINDOW`]): the nearest-rank percentile, i.e. the smallest
//!   kept latency such that at least `p`% of kept latencies are at or below it. Older calls fall out of the
//!   percentiles but stay in the counts and the mean. Memory is `8 × window` bytes, whatever the traffic.

use alloc::vec::Vec;
use core::time::Duration;

use crate::rng::duration_micros;

/// Latencies kept for percentiles by [`RequestMetrics::default`].
pub const DEFAULT_WINDOW: usize = 1000;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// A successful (2xx) response.
    Success,
    /// A response with this non-success status.
    Status(u16),
    /// The connection failed.
    TransportError,
    /// No response in time.
    Timeout,
}

/// A point-in-time view of [`RequestMetrics`]. Rates and latencies are `None` when there is nothing to compute them
/// from.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Calls recorded.
    pub total: u64,
    /// Calls that ended in [`CallOutcome::Success`].
    pub successes: u64,
    /// Calls that did not: `total - successes`.
    pub failures: u64,
    /// Failures with a 4xx status.
    pub client_errors: u64,
    /// Failures with a 5xx status.
    pub server_errors: u64,
    /// Failures without a response: transport errors.
    pub transport_errors: u64,
    /// Failures without a response: timeouts.
    pub timeouts: u64,
    /// Retries recorded.
    pub retries: u64,
    /// `successes / total`.
    pub success_rate: Option<f64>,
    /// `failures / total`.
    pub error_rate: Option<f64>,
    /// Mean latency over every call (rounded down to the microsecond).
    pub mean_latency: Option<Duration>,
    /// Nearest-rank 95th percentile over the kept window.
    pub p95_latency: Option<Duration>,
    /// The longest latency over every call.
    pub max_latency: Option<Duration>,
    /// Calls answered from the cache.
    pub cache_hits: u64,
    /// Cache lookups that missed.
    pub cache_misses: u64,
    /// `cache_hits / (cache_hits + cache_misses)`.
    pub cache_hit_rate: Option<f64>,
}

/// Request metrics (see the [module docs](self) for what is exact over what).
///
/// - **Record**: [`record`](Self::record), [`record_retry`](Self::record_retry),
///   [`record_cache_hit`](Self::record_cache_hit), [`record_cache_miss`](Self::record_cache_miss).
/// - **Read**: [`snapshot`](Self::snapshot), [`percentile`](Self::percentile).
/// - **Start over**: [`reset`](Self::reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMetrics {
    total: u64,
    successes: u64,
    client_errors: u64,
    server_errors: u64,
    transport_errors: u64,
    timeouts: u64,
    retries: u64,
    cache_hits: u64,
    cache_misses: u64,
    latency_sum_micros: u128,
    latency_max_micros: u64,
    /// The last `window` latencies in µs; once full, `next` is the oldest and the next to be overwritten.
    ring: Vec<u64>,
    next: usize,
    window: usize,
}

impl Default for RequestMetrics {
    /// [`RequestMetrics::new`]`(`[`DEFAULT_WINDOW`]`)`.
    fn default() -> Self {
        RequestMetrics::new(DEFAULT_WINDOW)
    }
}

impl RequestMetrics {
    /// Empty metrics keeping the last `window` latencies for percentiles (0: no percentiles).
    pub fn new(window: usize) -> Self {
        RequestMetrics {
            total: 0,
            successes: 0,
            client_errors: 0,
            server_errors: 0,
            transport_errors: 0,
            timeouts: 0,
            retries: 0,
            cache_hits: 0,
            cache_misses: 0,
            latency_sum_micros: 0,
            latency_max_micros: 0,
            ring: Vec::new(),
            next: 0,
            window,
        }
    }

    /// How many latencies are kept for percentiles.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Records one call: how long it took (first send to final outcome) and how it ended.
    pub fn record(&mut self, latency: Duration, outcome: CallOutcome) {
        self.total += 1;
        match outcome {
            CallOutcome::Success => self.successes += 1,
            CallOutcome::Status(400..=499) => self.client_errors += 1,
            CallOutcome::Status(500..=599) => self.server_errors += 1,
            CallOutcome::Status(_) => {}
            CallOutcome::TransportError => self.transport_errors += 1,
            CallOutcome::Timeout => self.timeouts += 1,
        }
        let micros = duration_micros(latency);
        self.latency_sum_micros += u128::from(micros);
        self.latency_max_micros = self.latency_max_micros.max(micros);
        if self.window == 0 {
            return;
        }
        if self.ring.len() < self.window {
            self.ring.push(micros);
        } else {
            self.ring[self.next] = micros;
        }
        self.next = (self.next + 1) % self.window;
    }

    /// Records one retry (an attempt after the first).
    pub fn record_retry(&mut self) {
        self.retries += 1;
    }

    /// Records a call answered from the cache.
    pub fn record_cache_hit(&mut self) {
        self.cache_hits += 1;
    }

    /// Records a cache lookup that missed (the call then goes to the network and is [`record`](Self::record)ed).
    pub fn record_cache_miss(&mut self) {
        self.cache_misses += 1;
    }

    /// The nearest-rank `p`th percentile (`0 < p <= 100`) of the kept latencies: the smallest one with at least
    /// `p`% of them at or below it. `None` when none are kept; `p` outside `(0, 100]` is clamped into it (so
    /// `p <= 0` gives the minimum).
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.ring.is_empty() {
            return None;
        }
        let n = self.ring.len();
        let p = if p.is_nan() {
            100.0
        } else {
            p.clamp(0.0, 100.0)
        };
        // The rank is the least r with r × 100 >= p × n ("at least p% at or below"). Dividing can round either
        // way, so correct the estimate against that comparison, which is exact for whole percentages.
        let wanted = p * n as f64;
        let mut rank = libm_ceil(wanted / 100.0);
        while rank > 0 && ((rank - 1) as f64) * 100.0 >= wanted {
            rank -= 1;
        }
        while (rank as f64) * 100.0 < wanted {
            rank += 1;
        }
        let rank = rank.clamp(1, n);
        let mut sorted = self.ring.clone();
        let (_, nth, _) = sorted.select_nth_unstable(rank - 1);
        Some(Duration::from_micros(*nth))
    }

    /// Everything at once.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let ratio = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
        let failures = self.total - self.successes;
        let lookups = self.cache_hits + self.cache_misses;
        MetricsSnapshot {
            total: self.total,
            successes: self.successes,
            failures,
            client_errors: self.client_errors,
            server_errors: self.server_errors,
            transport_errors: self.transport_errors,
            timeouts: self.timeouts,
            retries: self.retries,
            success_rate: ratio(self.successes, self.total),
            error_rate: ratio(failures, self.total),
            mean_latency: (self.total > 0).then(|| {
                let mean = self.latency_sum_micros / u128::from(self.total);
                Duration::from_micros(u64::try_from(mean).unwrap_or(u64::MAX))
            }),
            p95_latency: self.percentile(95.0),
            max_latency: (self.total > 0).then(|| Duration::from_micros(self.latency_max_micros)),
            cache_hits: self.cache_hits,
            cache_misses: self.cache_misses,
            cache_hit_rate: ratio(self.cache_hits, lookups),
        }
    }

    /// Forgets everything recorded; keeps the window size.
    pub fn reset(&mut self) {
        *self = RequestMetrics::new(self.window);
    }
}

/// `ceil` for the non-negative, finite values [`RequestMetrics::percentile`] needs, as a `usize` (`core` has no
/// `f64::ceil` without `std`).
fn libm_ceil(x: f64) -> usize {
    let floor = x as usize; // truncation = floor for x >= 0
    if (floor as f64) < x { floor + 1 } else { floor }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert_eq, proptest};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn empty_metrics_have_no_rates() {
        let m = RequestMetrics::default();
        let s = m.snapshot();
        assert_eq!(s.total, 0);
        assert_eq!(
            (s.success_rate, s.error_rate, s.cache_hit_rate),
            (None, None, None)
        );
        assert_eq!(
            (s.mean_latency, s.p95_latency, s.max_latency),
            (None, None, None)
        );
        assert_eq!(m.window(), DEFAULT_WINDOW);
    }

    #[test]
    fn counts_rates_and_latencies() {
        let mut m = RequestMetrics::new(100);
        // 1..=20 ms: 16 successes, then a 404, a 503, a transport error and a timeout.
        for i in 1..=16 {
            m.record(ms(i), CallOutcome::Success);
        }
        m.record(ms(17), CallOutcome::Status(404));
        m.record(ms(18), CallOutcome::Status(503));
        m.record(ms(19), CallOutcome::TransportError);
        m.record(ms(20), CallOutcome::Timeout);
        m.record_retry();
        m.record_retry();
        m.record_cache_hit();
        m.record_cache_hit();
        m.record_cache_hit();
        m.record_cache_miss();
        let s = m.snapshot();
        assert_eq!((s.total, s.successes, s.failures), (20, 16, 4));
        assert_eq!(
            (
                s.client_errors,
                s.server_errors,
                s.transport_errors,
                s.timeouts
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(s.retries, 2);
        assert_eq!(s.success_rate, Some(0.8));
        assert_eq!(s.error_rate, Some(0.2));
        assert_eq!(s.cache_hit_rate, Some(0.75));
        assert_eq!(s.mean_latency, Some(Duration::from_micros(10_500)));
        // Nearest rank: ceil(0.95 × 20) = 19th smallest.
        assert_eq!(s.p95_latency, Some(ms(19)));
        assert_eq!(s.max_latency, Some(ms(20)));
        assert_eq!(m.percentile(50.0), Some(ms(10)));
        assert_eq!(m.percentile(100.0), Some(ms(20)));
        assert_eq!(m.percentile(0.0), Some(ms(1)));
        assert_eq!(m.percentile(-5.0), Some(ms(1)));
        assert_eq!(m.percentile(f64::NAN), Some(ms(20)));
        // A 3xx is a failure without a class.
        m.record(ms(1), CallOutcome::Status(302));
        let s = m.snapshot();
        assert_eq!((s.failures, s.client_errors + s.server_errors), (5, 2));
    }

    #[test]
    fn percentiles_cover_only_the_window_but_the_mean_covers_all() {
        let mut m = RequestMetrics::new(10);
        for _ in 0..90 {
            m.record(ms(1000), CallOutcome::Success);
        }
        for i in 1..=10 {
            m.record(ms(i), CallOutcome::Success);
        }
        let s = m.snapshot();
        // The ring holds 1..=10 ms: p95 = ceil(9.5) = 10th = 10 ms; the slow calls are gone from it.
        assert_eq!(s.p95_latency, Some(ms(10)));
        assert_eq!(m.percentile(50.0), Some(ms(5)));
        // But the mean and max remember them: (90 × 1000 + 55) / 100 ms.
        assert_eq!(s.mean_latency, Some(Duration::from_micros(900_550)));
        assert_eq!(s.max_latency, Some(ms(1000)));
        assert_eq!(m.ring.len(), 10);
    }

    #[test]
    fn a_zero_window_keeps_no_latencies() {
        let mut m = RequestMetrics::new(0);
        m.record(ms(5), CallOutcome::Success);
        let s = m.snapshot();
        assert_eq!(s.p95_latency, None);
        assert_eq!(s.mean_latency, Some(ms(5)));
    }

    #[test]
    fn reset_forgets_everything_but_the_window() {
        let mut m = RequestMetrics::new(7);
        m.record(ms(5), CallOutcome::Timeout);
        m.record_cache_miss();
        m.record_retry();
        m.reset();
        assert_eq!(m, RequestMetrics::new(7));
        assert_eq!(m.snapshot().total, 0);
    }

    proptest! {
        /// Against sorting all of the last `window` latencies: the same percentile, for any p.
        #[test]
        fn percentile_matches_sorting(window in 1usize..30, lat in proptest::collection::vec(0u64..1000, 1..100),
                                      p in 0.0f64..=100.0) {
            let mut m = RequestMetrics::new(window);
            for &l in &lat {
                m.record(Duration::from_micros(l), CallOutcome::Success);
            }
            let mut kept: Vec<u64> = lat[lat.len().saturating_sub(window)..].to_vec();
            kept.sort_unstable();
            // The smallest kept value with at least p% of values at or below it.
            let want = kept.iter().copied().find(|&v| {
                let at_or_below = kept.iter().filter(|&&x| x <= v).count();
                at_or_below as f64 * 100.0 >= p * kept.len() as f64
            }).unwrap();
            prop_assert_eq!(m.percentile(p), Some(Duration::from_micros(want)));
        }
    }
}
