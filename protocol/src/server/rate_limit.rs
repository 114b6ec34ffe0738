//! The per-connection rate limit: a token bucket refilled at `rate_per_sec`, holding at most `rate_burst` tokens.
//! Every received frame takes one token; a frame that finds the bucket empty is dropped and answered with
//! `RATE_LIMITED` and `retry_after_ms`: when the next token will be there.
//!
//! The bucket itself is [`crate::token_bucket::TokenBucket`], shared with the HTTP front's per-address limits.

use core::time::Duration;

pub(crate) use crate::token_bucket::TokenBucket;

/// `retry_after_ms` for a wait: whole milliseconds, rounded up, at least 1.
pub(crate) fn retry_after_ms(wait: Duration) -> u64 {
    let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
    micros.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_ms(Duration::from_micros(1)), 1);
        assert_eq!(retry_after_ms(Duration::from_micros(1000)), 1);
        assert_eq!(retry_after_ms(Duration::from_micros(1001)), 2);
        assert_eq!(retry_after_ms(Duration::ZERO), 1);
    }
}
