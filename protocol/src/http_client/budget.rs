//! The retry budget: a token bucket shared by every request of one client, so that when a server is down the
//! client stops multiplying its load by `max_attempts` (AWS SDK "standard" retry mode, the retry quota).
//!
//! The rules, exactly as the AWS SDKs' standard mode (botocore `retries/standard.py`, `RetryQuotaChecker`):
//!
//! - The bucket starts full: [`BudgetConfig::capacity`] tokens (500).
//! - A first attempt is free. Every **retry** must first take tokens: [`BudgetConfig::timeout_retry_cost`] (10)
//!   when the failure being retried was a timeout, [`BudgetConfig::retry_cost`] (5) for anything else (a retryable
//!   status, a transport error). If the bucket holds fewer tokens, the retry does not happen and the request fails
//!   with the error it had ([`GiveUpReason::BudgetExhausted`](super::GiveUpReason::BudgetExhausted)).
//! - When a request ends in a **2xx** response:
//!   - if it never retried, [`BudgetConfig::success_increment`] (1) token is added;
//!   - if it did retry, the tokens taken by its **last** retry are given back (earlier retries' tokens stay spent).
//! - Nothing is returned when a request ends in anything else (a non-2xx response, giving up).
//! - The bucket never holds more than `capacity`.
//!
//! So with the defaults, a dead server costs a client at most 100 plain retries (or 50 timeout retries) before it
//! stops retrying; each success afterwards earns one more token, and retries that work pay for themselves.
//! [`RetryState`](super::RetryState) does all of this when handed the budget; the methods here are for callers that
//! keep their own retry loop.

/// The knobs of a [`RetryBudget`]. [`Default`] gives the AWS standard-mode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Tokens in a full bucket, and in a new one. Default 500.
    pub capacity: u32,
    /// Tokens a retry after a non-timeout failure takes. Default 5.
    pub retry_cost: u32,
    /// Tokens a retry after a timeout takes. Default 10.
    pub timeout_retry_cost: u32,
    /// Tokens a request that succeeds on its first attempt adds. Default 1.
    pub success_increment: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            capacity: 500,
            retry_cost: 5,
            timeout_retry_cost: 10,
            success_increment: 1,
        }
    }
}

/// What kind of failure a retry is retrying: it decides the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// The attempt timed out: costs [`BudgetConfig::timeout_retry_cost`].
    Timeout,
    /// Anything else retryable (a 429/5xx response, a transport error): costs [`BudgetConfig::retry_cost`].
    Other,
}

/// The bucket lacked the tokens a retry needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("retry budget exhausted: {needed} tokens needed, {available} available")]
#[non_exhaustive]
pub struct BudgetExhausted {
    /// What the retry would have cost.
    pub needed: u32,
    /// What the bucket held.
    pub available: u32,
}

/// The shared retry token bucket (see the [module docs](self) for the rules).
///
/// - **Before a retry**: [`try_acquire`](Self::try_acquire); keep the returned cost.
/// - **When a request ends in 2xx**: [`on_success`](Self::on_success) with the cost of its last retry, if any.
/// - **Look**: [`tokens`](Self::tokens), [`config`](Self::config), [`is_unlimited`](Self::is_unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryBudget {
    /// `None`: unlimited.
    config: Option<BudgetConfig>,
    tokens: u32,
}

impl Default for RetryBudget {
    /// [`RetryBudget::new`] with the AWS defaults.
    fn default() -> Self {
        RetryBudget::new(BudgetConfig::default())
    }
}

impl RetryBudget {
    /// A full bucket.
    pub fn new(config: BudgetConfig) -> Self {
        RetryBudget {
            tokens: config.capacity,
            config: Some(config),
        }
    }

    /// A budget that never runs out and never changes: every retry is allowed (only the policy's attempt limit
    /// applies).
    pub fn unlimited() -> Self {
        RetryBudget {
            config: None,
            tokens: u32::MAX,
        }
    }

    /// Whether this is [`RetryBudget::unlimited`].
    pub fn is_unlimited(&self) -> bool {
        self.config.is_none()
    }

    /// The config, `None` when unlimited.
    pub fn config(&self) -> Option<&BudgetConfig> {
        self.config.as_ref()
    }

    /// Tokens in the bucket now (`u32::MAX` when unlimited).
    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    /// What a retry of this kind costs (0 when unlimited).
    pub fn cost(&self, kind: RetryKind) -> u32 {
        match (self.config, kind) {
            (None, _) => 0,
            (Some(c), RetryKind::Timeout) => c.timeout_retry_cost,
            (Some(c), RetryKind::Other) => c.retry_cost,
        }
    }

    /// Takes the tokens a retry of this kind costs and returns how many were taken (to hand back to
    /// [`on_success`](Self::on_success) if the request then succeeds). Takes nothing when the bucket is short.
    pub fn try_acquire(&mut self, kind: RetryKind) -> Result<u32, BudgetExhausted> {
        let needed = self.cost(kind);
        if self.config.is_none() {
            return Ok(0);
        }
        match self.tokens.checked_sub(needed) {
            Some(left) => {
                self.tokens = left;
                Ok(needed)
            }
            None => Err(BudgetExhausted {
                needed,
                available: self.tokens,
            }),
        }
    }

    /// A request ended in a 2xx response. `last_retry_cost` is what its last retry's
    /// [`try_acquire`](Self::try_acquire) returned, or `None` if it succeeded on its first attempt: that refunds the
    /// cost, or adds [`BudgetConfig::success_increment`], never past capacity.
    pub fn on_success(&mut self, last_retry_cost: Option<u32>) {
        let Some(config) = self.config else {
            return;
        };
        let refund = last_retry_cost.unwrap_or(config.success_increment);
        self.tokens = self.tokens.saturating_add(refund).min(config.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_aws_standard_mode() {
        let c = BudgetConfig::default();
        assert_eq!(
            (
                c.capacity,
                c.retry_cost,
                c.timeout_retry_cost,
                c.success_increment
            ),
            (500, 5, 10, 1)
        );
        let b = RetryBudget::default();
        assert_eq!(b.tokens(), 500);
        assert!(!b.is_unlimited());
    }

    /// 500 tokens pay for exactly 100 plain retries or 50 timeout retries, and a refused retry takes nothing.
    #[test]
    fn runs_dry_after_exactly_the_affordable_retries() {
        let mut b = RetryBudget::default();
        for i in 0..100 {
            assert_eq!(b.try_acquire(RetryKind::Other), Ok(5), "retry {i}");
        }
        assert_eq!(b.tokens(), 0);
        assert_eq!(
            b.try_acquire(RetryKind::Other),
            Err(BudgetExhausted {
                needed: 5,
                available: 0
            })
        );

        let mut b = RetryBudget::default();
        for _ in 0..50 {
            assert_eq!(b.try_acquire(RetryKind::Timeout), Ok(10));
        }
        assert!(b.try_acquire(RetryKind::Timeout).is_err());

        // 7 tokens: a timeout retry (10) is refused and leaves them; a plain one (5) still fits.
        let mut b = RetryBudget::new(BudgetConfig {
            capacity: 7,
            ..BudgetConfig::default()
        });
        assert_eq!(
            b.try_acquire(RetryKind::Timeout),
            Err(BudgetExhausted {
                needed: 10,
                available: 7
            })
        );
        assert_eq!(b.tokens(), 7);
        assert_eq!(b.try_acquire(RetryKind::Other), Ok(5));
        assert_eq!(b.tokens(), 2);
    }

    #[test]
    fn successes_refill_by_the_aws_rules() {
        let mut b = RetryBudget::default();
        b.try_acquire(RetryKind::Timeout).unwrap();
        b.try_acquire(RetryKind::Other).unwrap();
        assert_eq!(b.tokens(), 485);
        // A request whose last retry cost 5 succeeds: those 5 come back, not the earlier 10.
        b.on_success(Some(5));
        assert_eq!(b.tokens(), 490);
        // First-attempt successes add 1 each.
        b.on_success(None);
        b.on_success(None);
        assert_eq!(b.tokens(), 492);
        // Never past capacity.
        for _ in 0..100 {
            b.on_success(None);
        }
        assert_eq!(b.tokens(), 500);
        b.on_success(Some(10));
        assert_eq!(b.tokens(), 500);
    }

    #[test]
    fn unlimited_never_changes() {
        let mut b = RetryBudget::unlimited();
        for _ in 0..10_000 {
            assert_eq!(b.try_acquire(RetryKind::Timeout), Ok(0));
        }
        b.on_success(None);
        assert_eq!(b.tokens(), u32::MAX);
        assert!(b.is_unlimited());
        assert_eq!(b.config(), None);
        assert_eq!(b.cost(RetryKind::Other), 0);
    }
}
