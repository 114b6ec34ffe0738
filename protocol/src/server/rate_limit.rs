//! The per-connection rate limit: a token bucket refilled at `rate_per_sec`, holding at most `rate_burst` tokens.
//! Every received frame takes one token; a frame that finds the bucket empty is dropped and answered with
//! `RATE_LIMITED` and `retry_after_ms`: when the next token will be there.
//!
//! Integer arithmetic in millionths of a token, so refills are exact at microsecond resolution and nothing drifts.

use core::time::Duration;

use crate::time::Timestamp;

/// One token, in the bucket's unit (millionths of a token).
const TOKEN: u64 = 1_000_000;

/// A token bucket. `rate == 0` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenBucket {
    /// Current fill, in millionths of a token.
    level: u64,
    /// Capacity, in millionths of a token.
    capacity: u64,
    /// Tokens per second, which is millionths of a token per microsecond.
    rate: u64,
    /// When `level` was last brought up to date.
    updated: Timestamp,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate_per_sec: u32, burst: u32, now: Timestamp) -> Self {
        let capacity = u64::from(burst.max(1)) * TOKEN;
        TokenBucket {
            level: capacity,
            capacity,
            rate: u64::from(rate_per_sec),
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is there.
    pub(crate) fn try_take(&mut self, now: Timestamp) -> Result<(), Duration> {
        if self.rate == 0 {
            return Ok(());
        }
        if now > self.updated {
            let elapsed = now.as_micros() - self.updated.as_micros();
            self.level = self
                .level
                .saturating_add(elapsed.saturating_mul(self.rate))
                .min(self.capacity);
            self.updated = now;
        }
        if self.level >= TOKEN {
            self.level -= TOKEN;
            Ok(())
        } else {
            let missing = TOKEN - self.level;
            Err(Duration::from_micros(missing.div_ceil(self.rate)))
        }
    }
}

/// `retry_after_ms` for a wait: whole milliseconds, rounded up, at least 1.
pub(crate) fn retry_after_ms(wait: Duration) -> u64 {
    let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
    micros.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(100, 200, ms(0));
        for i in 0..200 {
            assert_eq!(b.try_take(ms(0)), Ok(()), "token {i}");
        }
        assert_eq!(b.try_take(ms(0)), Err(Duration::from_millis(10)));
        assert_eq!(b.try_take(ms(5)), Err(Duration::from_millis(5)));
        assert_eq!(b.try_take(ms(10)), Ok(()));
        assert_eq!(b.try_take(ms(10)), Err(Duration::from_millis(10)));
        // A long quiet spell refills up to the burst, no more.
        for _ in 0..200 {
            assert_eq!(b.try_take(ms(100_000)), Ok(()));
        }
        assert!(b.try_take(ms(100_000)).is_err());
    }

    #[test]
    fn unlimited_and_backwards_time() {
        let mut b = TokenBucket::new(0, 0, ms(0));
        for _ in 0..10_000 {
            assert_eq!(b.try_take(ms(0)), Ok(()));
        }
        let mut b = TokenBucket::new(1, 1, ms(1000));
        assert_eq!(b.try_take(ms(1000)), Ok(()));
        assert_eq!(
            b.try_take(ms(10)),
            Err(Duration::from_secs(1)),
            "time going back refills nothing"
        );
        assert_eq!(b.try_take(ms(2000)), Ok(()));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_ms(Duration::from_micros(1)), 1);
        assert_eq!(retry_after_ms(Duration::from_micros(1000)), 1);
        assert_eq!(retry_after_ms(Duration::from_micros(1001)), 2);
        assert_eq!(retry_after_ms(Duration::ZERO), 1);
    }
}
