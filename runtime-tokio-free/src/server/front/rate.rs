//! Rate limiting of the REST publish route (HTTP 429 with `Retry-After`): one of the core's integer
//! [`TokenBuckets`] per client IP address (streams without an address, such as the in-memory transport, share one
//! bucket), behind a mutex because every HTTP connection task takes from it.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use switchboard_protocol::time::Timestamp;
use switchboard_protocol::token_bucket::TokenBuckets;

/// Addresses with a bucket kept at most (full buckets are forgotten first).
const MAX_BUCKETS: usize = 10_000;

/// Token buckets by client address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    buckets: Mutex<TokenBuckets<Option<IpAddr>>>,
}

impl RateLimiter {
    /// `rate_per_sec` requests per second on average, `burst` at once; a zero rate turns limiting off.
    pub fn new(rate_per_sec: u32, burst: u32, now: Timestamp) -> RateLimiter {
        RateLimiter {
            buckets: Mutex::new(TokenBuckets::new(rate_per_sec, burst, MAX_BUCKETS, now)),
        }
    }

    /// Takes a token for `peer`: `Err(wait)` when there is none, with the time until there is.
    pub fn check(&self, peer: Option<IpAddr>, now: Timestamp) -> Result<(), Duration> {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_take(&peer, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_per_peer() {
        let t0 = Timestamp::from_millis(1_000);
        let limiter = RateLimiter::new(10, 3, t0);
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let b = Some(IpAddr::from([127, 0, 0, 2]));
        for _ in 0..3 {
            assert_eq!(limiter.check(a, t0), Ok(()));
        }
        let wait = limiter.check(a, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(limiter.check(b, t0), Ok(()));
        assert_eq!(limiter.check(a, t0 + Duration::from_millis(100)), Ok(()));
        assert!(limiter.check(a, t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn zero_rate_is_off() {
        let limiter = RateLimiter::new(0, 0, Timestamp::ZERO);
        for _ in 0..1000 {
            assert_eq!(limiter.check(None, Timestamp::ZERO), Ok(()));
        }
    }
}
