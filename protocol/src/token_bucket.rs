//! Token buckets: a rate limit refilled at `rate_per_sec`, holding at most `burst` tokens, in integer arithmetic.
//!
//! Levels are kept in millionths of a token, so refills are exact at microsecond resolution and nothing drifts.
//! [`TokenBucket`] is one limit (a WebSocket connection's frames); [`TokenBuckets`] keeps one bucket per key (the
//! HTTP front's per-address limits) with a bounded number of keys.

use alloc::collections::BTreeMap;
use core::time::Duration;

use crate::time::Timestamp;

/// One token, in the bucket's unit (millionths of a token).
const TOKEN: u64 = 1_000_000;

/// A token bucket. `rate_per_sec == 0` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
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
    /// A full bucket of `burst` tokens (at least 1), refilled at `rate_per_sec`.
    pub fn new(rate_per_sec: u32, burst: u32, now: Timestamp) -> Self {
        let capacity = u64::from(burst.max(1)) * TOKEN;
        TokenBucket {
            level: capacity,
            capacity,
            rate: u64::from(rate_per_sec),
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is there. Time going backwards refills nothing.
    pub fn try_take(&mut self, now: Timestamp) -> Result<(), Duration> {
        if self.rate == 0 {
            return Ok(());
        }
        self.refill(now);
        if self.level >= TOKEN {
            self.level -= TOKEN;
            Ok(())
        } else {
            let missing = TOKEN - self.level;
            Err(Duration::from_micros(missing.div_ceil(self.rate)))
        }
    }

    /// Whether the bucket would be full at `now` (a full bucket is the same as a new one).
    pub fn is_full(&self, now: Timestamp) -> bool {
        let mut at_now = self.clone();
        at_now.refill(now);
        at_now.level >= at_now.capacity
    }

    fn refill(&mut self, now: Timestamp) {
        if now > self.updated {
            let elapsed = now.as_micros() - self.updated.as_micros();
            self.level = self
                .level
                .saturating_add(elapsed.saturating_mul(self.rate))
                .min(self.capacity);
            self.updated = now;
        }
    }
}

/// One [`TokenBucket`] per key, all with the same rate and burst. At most `max_keys` buckets are kept: when a new
/// key would go past it, the full buckets are forgotten first (they are the same as new ones). Keys whose bucket is
/// not full are never forgotten, so a flood from many keys cannot reset anyone's limit; past `max_keys` such keys,
/// new keys share one overflow bucket.
#[derive(Debug, Clone)]
pub struct TokenBuckets<K: Ord + Clone> {
    rate_per_sec: u32,
    burst: u32,
    max_keys: usize,
    buckets: BTreeMap<K, TokenBucket>,
    overflow: TokenBucket,
}

impl<K: Ord + Clone> TokenBuckets<K> {
    /// Buckets of `burst` tokens refilled at `rate_per_sec` (0: unlimited), at most `max_keys` of them.
    pub fn new(rate_per_sec: u32, burst: u32, max_keys: usize, now: Timestamp) -> Self {
        TokenBuckets {
            rate_per_sec,
            burst,
            max_keys: max_keys.max(1),
            buckets: BTreeMap::new(),
            overflow: TokenBucket::new(rate_per_sec, burst, now),
        }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is there.
    pub fn try_take(&mut self, key: &K, now: Timestamp) -> Result<(), Duration> {
        if self.rate_per_sec == 0 {
            return Ok(());
        }
        if let Some(bucket) = self.buckets.get_mut(key) {
            return bucket.try_take(now);
        }
        if self.buckets.len() >= self.max_keys {
            self.buckets.retain(|_, b| !b.is_full(now));
        }
        if self.buckets.len() >= self.max_keys {
            return self.overflow.try_take(now);
        }
        let mut bucket = TokenBucket::new(self.rate_per_sec, self.burst, now);
        let taken = bucket.try_take(now);
        self.buckets.insert(key.clone(), bucket);
        taken
    }

    /// How many keys have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key has a bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
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
    fn fullness() {
        let mut b = TokenBucket::new(10, 2, ms(0));
        assert!(b.is_full(ms(0)));
        b.try_take(ms(0)).unwrap();
        assert!(!b.is_full(ms(0)));
        assert!(!b.is_full(ms(99)));
        assert!(b.is_full(ms(100)));
    }

    #[test]
    fn per_key_buckets_burst_then_refill() {
        let mut buckets = TokenBuckets::new(10, 3, 100, ms(1_000));
        for _ in 0..3 {
            assert_eq!(buckets.try_take(&'a', ms(1_000)), Ok(()));
        }
        assert_eq!(
            buckets.try_take(&'a', ms(1_000)),
            Err(Duration::from_millis(100))
        );
        assert_eq!(buckets.try_take(&'b', ms(1_000)), Ok(()));
        assert_eq!(buckets.try_take(&'a', ms(1_100)), Ok(()));
        assert!(buckets.try_take(&'a', ms(1_100)).is_err());
        assert_eq!(buckets.len(), 2);
    }

    #[test]
    fn per_key_buckets_forget_full_ones_and_keep_busy_ones() {
        let mut buckets = TokenBuckets::new(1, 1, 2, ms(0));
        assert_eq!(buckets.try_take(&1, ms(0)), Ok(()));
        assert_eq!(buckets.try_take(&2, ms(0)), Ok(()));
        // Both buckets are empty: a third key goes to the shared overflow bucket, and nobody's limit is reset.
        assert_eq!(buckets.try_take(&3, ms(0)), Ok(()));
        assert!(buckets.try_take(&4, ms(0)).is_err(), "overflow is shared");
        assert!(buckets.try_take(&1, ms(0)).is_err());
        assert_eq!(buckets.len(), 2);
        // A second later both are full again: they are forgotten to make room.
        assert_eq!(buckets.try_take(&5, ms(1_000)), Ok(()));
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn per_key_unlimited_keeps_nothing() {
        let mut buckets = TokenBuckets::new(0, 0, 1, ms(0));
        for k in 0..1000 {
            assert_eq!(buckets.try_take(&k, ms(0)), Ok(()));
        }
        assert!(buckets.is_empty());
    }
}
