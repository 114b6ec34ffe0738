//! Rate limiting of the REST publish route (HTTP 429 with `Retry-After`): one of the core's integer
//! [`TokenBuckets`] per client IP address (streams without an address, such as the in-memory transport, share one
//! bucket), one set for untrusted requests and one for trusted ones (by default unlimited: see
//! [`Trust`]), behind a mutex because every HTTP connection task takes from it.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use switchboard_protocol::server::Trust;
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::token_bucket::TokenBuckets;

/// Addresses with a bucket kept at most per set (full buckets are forgotten first).
const MAX_BUCKETS: usize = 10_000;

/// Token buckets by client address, per trust.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    untrusted: Mutex<TokenBuckets<Option<IpAddr>>>,
    trusted: Mutex<TokenBuckets<Option<IpAddr>>>,
}

/// One limit: requests per second on average (0: no limit) and at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    pub per_sec: u32,
    pub burst: u32,
}

impl RateLimiter {
    /// Untrusted requests are held to `untrusted`, trusted ones to `trusted`.
    pub fn new(untrusted: Rate, trusted: Rate, now: Timestamp) -> RateLimiter {
        let buckets = |r: Rate| Mutex::new(TokenBuckets::new(r.per_sec, r.burst, MAX_BUCKETS, now));
        RateLimiter {
            untrusted: buckets(untrusted),
            trusted: buckets(trusted),
        }
    }

    /// Takes a token for a request of `trust` from `peer`: `Err(wait)` when there is none, with the time until
    /// there is.
    pub fn check(
        &self,
        peer: Option<IpAddr>,
        trust: Trust,
        now: Timestamp,
    ) -> Result<(), Duration> {
        let buckets = match trust {
            Trust::Untrusted => &self.untrusted,
            Trust::Trusted => &self.trusted,
        };
        buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_take(&peer, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF: Rate = Rate {
        per_sec: 0,
        burst: 0,
    };

    #[test]
    fn bursts_then_refills_per_peer() {
        let t0 = Timestamp::from_millis(1_000);
        let limiter = RateLimiter::new(
            Rate {
                per_sec: 10,
                burst: 3,
            },
            OFF,
            t0,
        );
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let b = Some(IpAddr::from([127, 0, 0, 2]));
        let u = Trust::Untrusted;
        for _ in 0..3 {
            assert_eq!(limiter.check(a, u, t0), Ok(()));
        }
        let wait = limiter.check(a, u, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(limiter.check(b, u, t0), Ok(()));
        assert_eq!(limiter.check(a, u, t0 + Duration::from_millis(100)), Ok(()));
        assert!(
            limiter
                .check(a, u, t0 + Duration::from_millis(100))
                .is_err()
        );
    }

    #[test]
    fn zero_rate_is_off() {
        let limiter = RateLimiter::new(OFF, OFF, Timestamp::ZERO);
        for _ in 0..1000 {
            assert_eq!(
                limiter.check(None, Trust::Untrusted, Timestamp::ZERO),
                Ok(())
            );
        }
    }

    /// Trusted requests take from their own buckets: an address whose untrusted bucket is empty still publishes
    /// as a trusted caller, and a trusted limit, when set, is kept.
    #[test]
    fn trust_picks_the_buckets() {
        let t0 = Timestamp::ZERO;
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let tight = Rate {
            per_sec: 1,
            burst: 1,
        };
        let limiter = RateLimiter::new(tight, OFF, t0);
        assert_eq!(limiter.check(a, Trust::Untrusted, t0), Ok(()));
        assert!(limiter.check(a, Trust::Untrusted, t0).is_err());
        for _ in 0..10_000 {
            assert_eq!(limiter.check(a, Trust::Trusted, t0), Ok(()));
        }
        let limiter = RateLimiter::new(
            tight,
            Rate {
                per_sec: 1,
                burst: 2,
            },
            t0,
        );
        let refused = (0..5)
            .filter(|_| limiter.check(a, Trust::Trusted, t0).is_err())
            .count();
        assert_eq!(refused, 3);
    }
}
