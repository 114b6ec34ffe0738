//! A client-side rate limiter: at most `requests` requests in any `window`, as an exact sliding log.
//!
//! [`SlidingWindow`] remembers when each of the last `requests` accepted requests was let through. A request at `now`
//! is let through when fewer than `requests` of them happened in `(now - window, now]`; otherwise the caller must
//! wait until the oldest of those leaves the window, which is exactly `oldest + window`
//! ([`WaitUntil`]). The window is half-open: a request let through at `t` counts until just before `t + window` and
//! no longer at `t + window`.
//!
//! Memory is bounded by `requests` timestamps (older ones can never matter again and are dropped). There is no
//! approximation: over any window of length `window`, at most `requests` requests are let through.

use alloc::collections::VecDeque;
use core::time::Duration;

use crate::time::Timestamp;

/// A request was refused: try again at this time, when the oldest request in the window leaves it.
/// [`Timestamp::MAX`] when the limiter lets nothing through (`requests == 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
#[error("rate limited until {0}")]
#[non_exhaustive]
pub struct WaitUntil(pub Timestamp);

/// At most [`requests`](Self::requests) acquisitions in any [`window`](Self::window) (see the
/// [module docs](self)).
///
/// - **Before each request**: [`try_acquire`](Self::try_acquire); on `Err(WaitUntil(at))` sleep until `at` and
///   try again.
/// - **Look without taking**: [`next_free`](Self::next_free), [`in_window`](Self::in_window).
///
/// `now` must not go backwards between calls; an earlier `now` is treated as the latest one seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlidingWindow {
    requests: u32,
    window: Duration,
    /// When each request still in the window was let through, oldest first; never longer than `requests`.
    log: VecDeque<Timestamp>,
    /// The latest `now` seen, so time never runs backwards.
    latest: Timestamp,
}

impl SlidingWindow {
    /// A limiter letting `requests` requests through per `window`. `requests == 0` lets nothing through; a zero
    /// `window` lets everything through.
    pub fn new(requests: u32, window: Duration) -> Self {
        SlidingWindow {
            requests,
            window,
            log: VecDeque::new(),
            latest: Timestamp::ZERO,
        }
    }

    /// Requests allowed per window.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Lets one request through at `now` and records it, or says when to try again (and records nothing).
    pub fn try_acquire(&mut self, now: Timestamp) -> Result<(), WaitUntil> {
        let now = self.advance(now);
        match self.wait_until(now) {
            Some(at) => Err(WaitUntil(at)),
            None => {
                if self.window > Duration::ZERO {
                    self.log.push_back(now);
                }
                Ok(())
            }
        }
    }

    /// When a request could next be let through: `now` if it could be now. Changes nothing but forgetting
    /// requests that have left the window.
    pub fn next_free(&mut self, now: Timestamp) -> Timestamp {
        let now = self.advance(now);
        self.wait_until(now).unwrap_or(now)
    }

    /// How many requests let through in `(now - window, now]` count against the limit.
    pub fn in_window(&mut self, now: Timestamp) -> usize {
        self.advance(now);
        self.log.len()
    }

    /// Forgets every request (as if none had been made).
    pub fn reset(&mut self) {
        self.log.clear();
    }

    /// Takes `now` forward only, and drops requests that have left the window.
    fn advance(&mut self, now: Timestamp) -> Timestamp {
        self.latest = self.latest.max(now);
        let now = self.latest;
        while self.log.front().is_some_and(|&t| t + self.window <= now) {
            self.log.pop_front();
        }
        now
    }

    /// `None` if a request fits now, else when it will.
    fn wait_until(&self, now: Timestamp) -> Option<Timestamp> {
        if self.requests == 0 {
            return Some(Timestamp::MAX);
        }
        if self.log.len() < self.requests as usize {
            return None;
        }
        // Full: `log.len() == requests`, so the front is the oldest that must leave.
        self.log
            .front()
            .map(|&oldest| oldest + self.window)
            .filter(|&at| at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::{prop_assert_eq, proptest};

    fn at_ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    #[test]
    fn waits_exactly_until_the_oldest_leaves() {
        let mut l = SlidingWindow::new(3, Duration::from_secs(1));
        assert_eq!(l.try_acquire(at_ms(0)), Ok(()));
        assert_eq!(l.try_acquire(at_ms(100)), Ok(()));
        assert_eq!(l.try_acquire(at_ms(250)), Ok(()));
        assert_eq!(l.try_acquire(at_ms(300)), Err(WaitUntil(at_ms(1000))));
        assert_eq!(l.next_free(at_ms(300)), at_ms(1000));
        // One microsecond early is still too early; exactly at the boundary it fits.
        assert_eq!(
            l.try_acquire(Timestamp::from_micros(999_999)),
            Err(WaitUntil(at_ms(1000)))
        );
        assert_eq!(l.try_acquire(at_ms(1000)), Ok(()));
        // Now the window (0 s, 1 s] holds 100, 250 and 1000: the next slot opens when 100 leaves.
        assert_eq!(l.in_window(at_ms(1000)), 3);
        assert_eq!(l.try_acquire(at_ms(1000)), Err(WaitUntil(at_ms(1100))));
        assert_eq!(l.try_acquire(at_ms(1100)), Ok(()));
        // After a long pause everything has left.
        assert_eq!(l.in_window(at_ms(5000)), 0);
        assert_eq!(l.next_free(at_ms(5000)), at_ms(5000));
    }

    #[test]
    fn a_refusal_records_nothing() {
        let mut l = SlidingWindow::new(1, Duration::from_secs(10));
        assert_eq!(l.try_acquire(at_ms(0)), Ok(()));
        for t in 1..100 {
            assert_eq!(l.try_acquire(at_ms(t)), Err(WaitUntil(at_ms(10_000))));
        }
        assert_eq!(l.try_acquire(at_ms(10_000)), Ok(()));
    }

    #[test]
    fn edge_configs() {
        let mut none = SlidingWindow::new(0, Duration::from_secs(1));
        assert_eq!(none.try_acquire(at_ms(0)), Err(WaitUntil(Timestamp::MAX)));
        assert_eq!(none.next_free(at_ms(7)), Timestamp::MAX);

        let mut all = SlidingWindow::new(1, Duration::ZERO);
        for _ in 0..1000 {
            assert_eq!(all.try_acquire(at_ms(0)), Ok(()));
        }
        assert_eq!(all.in_window(at_ms(0)), 0);

        let mut huge = SlidingWindow::new(2, Duration::MAX);
        assert_eq!(huge.try_acquire(at_ms(5)), Ok(()));
        assert_eq!(huge.try_acquire(at_ms(6)), Ok(()));
        assert_eq!(huge.try_acquire(at_ms(7)), Err(WaitUntil(Timestamp::MAX)));
        assert_eq!(huge.requests(), 2);
        assert_eq!(huge.window(), Duration::MAX);
        huge.reset();
        assert_eq!(huge.try_acquire(at_ms(8)), Ok(()));
    }

    #[test]
    fn time_never_runs_backwards() {
        let mut l = SlidingWindow::new(1, Duration::from_secs(1));
        assert_eq!(l.try_acquire(at_ms(5000)), Ok(()));
        // An earlier `now` counts as 5000: still inside the window.
        assert_eq!(l.try_acquire(at_ms(0)), Err(WaitUntil(at_ms(6000))));
        assert_eq!(l.try_acquire(at_ms(6000)), Ok(()));
    }

    #[test]
    fn memory_is_bounded_by_requests() {
        let mut l = SlidingWindow::new(5, Duration::from_secs(3600));
        for t in 0..10_000 {
            let _ = l.try_acquire(at_ms(t));
        }
        assert_eq!(l.log.len(), 5);
    }

    proptest! {
        /// Against a reference that keeps every accepted timestamp: the same answers, and never more than
        /// `requests` accepted in any window.
        #[test]
        fn matches_reference_model(requests in 0u32..6, window_ms in 0u64..50,
                                   steps in proptest::collection::vec(0u64..20, 1..200)) {
            let window = Duration::from_millis(window_ms);
            let mut l = SlidingWindow::new(requests, window);
            let mut accepted: Vec<Timestamp> = Vec::new();
            let mut now = at_ms(0);
            for step in steps {
                now += Duration::from_millis(step);
                let live: Vec<Timestamp> = accepted.iter().copied().filter(|&t| t + window > now).collect();
                let want = if requests == 0 {
                    Err(WaitUntil(Timestamp::MAX))
                } else if live.len() < requests as usize {
                    Ok(())
                } else {
                    Err(WaitUntil(live[live.len() - requests as usize] + window))
                };
                let got = l.try_acquire(now);
                prop_assert_eq!(got, want);
                if got.is_ok() {
                    accepted.push(now);
                }
                let in_window = accepted.iter().filter(|&&t| t + window > now).count();
                prop_assert_eq!(l.in_window(now), in_window);
            }
            // The guarantee itself: no half-open window of length `window` holds more than `requests`.
            for &start in &accepted {
                let n = accepted.iter().filter(|&&t| t >= start && t < start + window).count();
                proptest::prop_assert!(n <= requests as usize, "{} in the window from {}", n, start);
            }
        }
    }
}
