//! Whether and when to send a request again: [`RetryPolicy`] (the knobs) and [`RetryState`] (one request's retry
//! machine).
//!
//! The async client makes an attempt, reports how it went with [`RetryState::on_outcome`], and gets a
//! [`Decision`]: hand the response over ([`Decision::Done`]), send again at a given time ([`Decision::RetryAt`]),
//! or stop and report the last failure ([`Decision::GiveUp`], with the reason). The machine never sleeps or reads a
//! clock; delays come from the crate's [`Backoff`] seeded by the caller, so a seed replays a schedule exactly.
//!
//! # The rules, in the order they are applied
//!
//! 1. A **2xx** response is [`Done`](Decision::Done) (and earns the [retry budget](super::RetryBudget) its refund).
//! 2. A response whose status is not in [`RetryPolicy::retry_on`] (429, 500, 502, 503, 504 by default) is
//!    [`Done`](Decision::Done): it is the answer, error or not.
//! 3. Is a retry **safe**? For an [idempotent](Method::is_idempotent) request (`GET`, `HEAD`, `PUT`, `DELETE`,
//!    `OPTIONS`, `TRACE`) always. For `POST`, `PATCH` and `CONNECT` only after a response whose status is in
//!    [`RetryPolicy::non_idempotent_retry_on`]: 429 and 503 by default, the two statuses by which a server says it
//!    did *not* act on the request (rate limited, not available). A transport error, a timeout, a 500, 502 or 504
//!    may come after the server acted, so a non-idempotent request is not resent: [`GiveUpReason::NotIdempotent`].
//!    A request made idempotent some other way (an `Idempotency-Key` header) can say so with
//!    [`RetryState::assume_idempotent`].
//! 4. **Attempts**: [`RetryPolicy::max_attempts`] counts *every* attempt including the first (3 by default: one try
//!    and up to two retries, as in the AWS SDKs). When they are used up: [`GiveUpReason::AttemptsExhausted`].
//! 5. **Delay**: the next [`Backoff`] delay (capped exponential with full jitter by default). If the backoff's own
//!    caps refuse ([`BackoffConfig::max_elapsed`], [`BackoffConfig::max_attempts`]):
//!    [`GiveUpReason::BackoffExhausted`]. If the response carried `Retry-After`, its delay **replaces** the backoff
//!    delay (the backoff still advances, so later retries keep growing). A `Retry-After` longer than
//!    [`RetryPolicy::max_retry_after`] is clamped to it, or given up on, as [`RetryPolicy::overlong_retry_after`]
//!    says.
//! 6. **Budget**: the retry takes its tokens from the shared [`RetryBudget`] (10 after a timeout, 5 otherwise); if
//!    the bucket is short: [`GiveUpReason::BudgetExhausted`]. Tokens are taken last, so a retry refused for any other
//!    reason costs nothing.
//! 7. Otherwise [`RetryAt`](Decision::RetryAt)`(now + delay)`.
//!
//! Once a request has ended (`Done` or `GiveUp`), further outcomes change nothing and get the same decision back.
//!
//! ```
//! use switchboard_protocol::http_client::{Decision, Method, Outcome, RetryBudget, RetryPolicy, RetryState};
//! use switchboard_protocol::rng::Rng;
//! use switchboard_protocol::time::Timestamp;
//!
//! let policy = RetryPolicy::default();
//! let mut budget = RetryBudget::default();
//! let mut retry = RetryState::new(Method::Get, &policy, Rng::from_seed(7));
//! let mut now = Timestamp::from_millis(1_000);
//! // Attempt 1 gets a 503, attempt 2 a 200.
//! let statuses = [503, 200];
//! for status in statuses {
//!     match retry.on_outcome(now, Outcome::status(status), &mut budget) {
//!         Decision::RetryAt(at) => now = at, // the driver sleeps until `at`, then sends again
//!         Decision::Done => break,
//!         Decision::GiveUp { reason } => panic!("gave up: {reason}"),
//!     }
//! }
//! assert_eq!(retry.attempts(), 2);
//! assert_eq!(budget.tokens(), 500); // the retry's 5 tokens came back with the success
//! ```

use core::fmt;
use core::time::Duration;

use crate::backoff::{Backoff, BackoffConfig, BackoffConfigError, Jitter};
use crate::rng::Rng;
use crate::time::Timestamp;

use super::budget::{BudgetExhausted, RetryBudget, RetryKind};
use super::request::Method;
use super::retry_after::RetryAfter;

/// A set of HTTP status codes (0 to 1023; larger codes are never members). `Copy`, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatusSet {
    bits: [u64; 16],
}

impl StatusSet {
    /// The largest status a set can hold.
    pub const MAX_STATUS: u16 = 1023;

    /// The empty set.
    pub const fn empty() -> Self {
        StatusSet { bits: [0; 16] }
    }

    /// The set of `statuses` (codes over [`MAX_STATUS`](Self::MAX_STATUS) are left out).
    pub const fn from_slice(statuses: &[u16]) -> Self {
        let mut set = StatusSet::empty();
        let mut i = 0;
        while i < statuses.len() {
            set = set.with(statuses[i]);
            i += 1;
        }
        set
    }

    /// This set plus `status`.
    pub const fn with(mut self, status: u16) -> Self {
        if status <= Self::MAX_STATUS {
            self.bits[(status / 64) as usize] |= 1 << (status % 64);
        }
        self
    }

    /// This set without `status`.
    pub const fn without(mut self, status: u16) -> Self {
        if status <= Self::MAX_STATUS {
            self.bits[(status / 64) as usize] &= !(1 << (status % 64));
        }
        self
    }

    /// Whether `status` is in the set.
    pub const fn contains(&self, status: u16) -> bool {
        status <= Self::MAX_STATUS && self.bits[(status / 64) as usize] & (1 << (status % 64)) != 0
    }

    /// The members, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=Self::MAX_STATUS).filter(|&s| self.contains(s))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits == [0; 16]
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What to do with a `Retry-After` longer than [`RetryPolicy::max_retry_after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverlongRetryAfter {
    /// Wait `max_retry_after` instead, then retry (the default).
    #[default]
    Clamp,
    /// Do not retry: [`GiveUpReason::RetryAfterTooLong`], so the caller sees the 429/503 with its `Retry-After`.
    GiveUp,
}

/// The retry knobs, shared by every request of a client. [`Default`] gives the values in the field docs.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, **including the first**: 3 means one try and up to two retries (AWS SDK meaning).
    /// 1 disables retries. 0 is refused by [`validate`](Self::validate) and behaves as 1. Default 3.
    pub max_attempts: u32,
    /// The delay schedule. Default: first delay 1 s, factor 2, cap 20 s, full jitter, no caps of its own (the AWS
    /// standard-mode backoff). Its `max_attempts` and `max_elapsed`, if set, are extra limits
    /// ([`GiveUpReason::BackoffExhausted`]); its `reset_after` is not used.
    pub backoff: BackoffConfig,
    /// Response statuses worth retrying. Default 429, 500, 502, 503, 504.
    pub retry_on: StatusSet,
    /// The statuses in `retry_on` after which a non-idempotent request is retried too: those that mean the server
    /// did not act on it. Default 429, 503. Only statuses also in `retry_on` count.
    pub non_idempotent_retry_on: StatusSet,
    /// The longest `Retry-After` obeyed as is. Default 60 s.
    pub max_retry_after: Duration,
    /// What to do with a longer one. Default [`OverlongRetryAfter::Clamp`].
    pub overlong_retry_after: OverlongRetryAfter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff: BackoffConfig {
                first_delay: Duration::from_secs(1),
                factor: 2.0,
                max_delay: Duration::from_secs(20),
                jitter: Jitter::Full,
                max_attempts: None,
                max_elapsed: None,
                ..BackoffConfig::default()
            },
            retry_on: StatusSet::from_slice(&[429, 500, 502, 503, 504]),
            non_idempotent_retry_on: StatusSet::from_slice(&[429, 503]),
            max_retry_after: Duration::from_secs(60),
            overlong_retry_after: OverlongRetryAfter::Clamp,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries (`max_attempts = 1`).
    pub fn no_retries() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Checks what a [`RetryState`] would otherwise silently tame: call it where a policy comes from a user.
    pub fn validate(&self) -> Result<(), RetryPolicyError> {
        if self.max_attempts == 0 {
            return Err(RetryPolicyError::ZeroAttempts);
        }
        self.backoff.validate().map_err(RetryPolicyError::Backoff)
    }
}

/// Why [`RetryPolicy::validate`] refused a policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryPolicyError {
    /// `max_attempts` is 0; it counts the first attempt, so the least is 1.
    #[error("max_attempts counts the first attempt and must be at least 1")]
    ZeroAttempts,
    /// The backoff config is invalid.
    #[error("invalid retry backoff: {0}")]
    Backoff(#[source] BackoffConfigError),
}

/// How one attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete response arrived.
    Response {
        /// Its status code.
        status: u16,
        /// Its `Retry-After`, if it had a valid one ([`Outcome::from_response`] parses the header).
        retry_after: Option<RetryAfter>,
    },
    /// The connection failed before a complete response (refused, reset, TLS, DNS…).
    TransportError,
    /// No complete response within the attempt's timeout.
    Timeout,
}

impl Outcome {
    /// A response with no `Retry-After`.
    pub const fn status(status: u16) -> Self {
        Outcome::Response {
            status,
            retry_after: None,
        }
    }

    /// A response with its raw `Retry-After` header value, if any. A value that does not parse is ignored, as if
    /// absent (the backoff delay is used).
    pub fn from_response(status: u16, retry_after_header: Option<&str>) -> Self {
        Outcome::Response {
            status,
            retry_after: retry_after_header.and_then(|v| RetryAfter::parse(v).ok()),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The response is final: hand it to the caller (a 2xx, or an error status that is not retried).
    Done,
    /// Send the request again at this time.
    RetryAt(Timestamp),
    /// Stop: the last outcome is the result (map it with [`ApiError`](super::ApiError)).
    GiveUp {
        /// Why no retry.
        reason: GiveUpReason,
    },
}

/// Why [`RetryState`] would not retry a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// [`RetryPolicy::max_attempts`] attempts were made.
    #[error("all attempts used")]
    AttemptsExhausted,
    /// The request is not idempotent and the failure does not prove the server did not act on it.
    #[error("not retried: the request is not idempotent")]
    NotIdempotent,
    /// The shared retry budget could not pay for the retry.
    #[error("{0}")]
    BudgetExhausted(BudgetExhausted),
    /// The backoff config's own `max_attempts` or `max_elapsed` refused another delay.
    #[error("retry backoff exhausted")]
    BackoffExhausted,
    /// `Retry-After` asked for longer than [`RetryPolicy::max_retry_after`] and the policy says give up.
    #[error("Retry-After of {wait:?} is longer than allowed")]
    RetryAfterTooLong {
        /// What the server asked for.
        wait: Duration,
    },
}

/// One request's retry machine (see the [module docs](self) for the rules).
///
/// - **Create** one per logical request: [`new`](Self::new), with an [`Rng`] forked from the client's (so each
///   request has its own jitter stream and a client seed replays them all);
///   [`assume_idempotent`](Self::assume_idempotent) to override the method's idempotency.
/// - **After every attempt**: [`on_outcome`](Self::on_outcome) → [`Decision`].
/// - **Look**: [`attempts`](Self::attempts), [`is_finished`](Self::is_finished),
///   [`last_retry_cost`](Self::last_retry_cost).
#[derive(Debug, Clone)]
pub struct RetryState {
    idempotent: bool,
    max_attempts: u32,
    retry_on: StatusSet,
    non_idempotent_retry_on: StatusSet,
    max_retry_after: Duration,
    overlong_retry_after: OverlongRetryAfter,
    backoff: Backoff,
    /// Outcomes reported so far: the number of attempts made.
    attempts: u32,
    /// What the latest retry took from the budget, refunded if the request then succeeds.
    last_retry_cost: Option<u32>,
    /// Set once the request has ended; repeated for any later outcome.
    finished: Option<Decision>,
}

impl RetryState {
    /// A machine for one request with `method`, under `policy`, drawing jitter from `rng`.
    pub fn new(method: Method, policy: &RetryPolicy, rng: Rng) -> Self {
        RetryState {
            idempotent: method.is_idempotent(),
            max_attempts: policy.max_attempts.max(1),
            retry_on: policy.retry_on,
            non_idempotent_retry_on: policy.non_idempotent_retry_on,
            max_retry_after: policy.max_retry_after,
            overlong_retry_after: policy.overlong_retry_after,
            backoff: Backoff::new(policy.backoff.clone(), rng),
            attempts: 0,
            last_retry_cost: None,
            finished: None,
        }
    }

    /// Overrides whether the request counts as idempotent: `true` for a `POST` carrying an idempotency key the
    /// server honours, `false` for a `PUT` with side effects the caller does not want repeated.
    pub fn assume_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Whether the request counts as idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// Attempts reported so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the request has ended (`Done` or `GiveUp` was returned).
    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// The tokens the latest retry took from the budget (`None` before any retry).
    pub fn last_retry_cost(&self) -> Option<u32> {
        self.last_retry_cost
    }

    /// Reports how the attempt just made went, at `now`, and decides what happens next. `budget` is the client's
    /// shared [`RetryBudget`] ([`RetryBudget::unlimited`] to do without one). `now` is also the origin of a
    /// `Retry-After` date (read as unix time) and of the returned retry time.
    pub fn on_outcome(
        &mut self,
        now: Timestamp,
        outcome: Outcome,
        budget: &mut RetryBudget,
    ) -> Decision {
        if let Some(decision) = self.finished {
            return decision;
        }
        self.attempts = self.attempts.saturating_add(1);
        let decision = self.decide(now, outcome, budget);
        if !matches!(decision, Decision::RetryAt(_)) {
            self.finished = Some(decision);
        }
        decision
    }

    fn decide(&mut self, now: Timestamp, outcome: Outcome, budget: &mut RetryBudget) -> Decision {
        let give_up = |reason| Decision::GiveUp { reason };
        // Rules 1 to 3: is this a failure, and is it safe to retry?
        let (retry_after, kind) = match outcome {
            Outcome::Response { status, .. } if (200..300).contains(&status) => {
                budget.on_success(self.last_retry_cost);
                return Decision::Done;
            }
            Outcome::Response { status, .. } if !self.retry_on.contains(status) => {
                return Decision::Done;
            }
            Outcome::Response {
                status,
                retry_after,
            } => {
                if !self.idempotent && !self.non_idempotent_retry_on.contains(status) {
                    return give_up(GiveUpReason::NotIdempotent);
                }
                (retry_after, RetryKind::Other)
            }
            Outcome::TransportError | Outcome::Timeout if !self.idempotent => {
                return give_up(GiveUpReason::NotIdempotent);
            }
            Outcome::TransportError => (None, RetryKind::Other),
            Outcome::Timeout => (None, RetryKind::Timeout),
        };
        // Rule 4: attempts.
        if self.attempts >= self.max_attempts {
            return give_up(GiveUpReason::AttemptsExhausted);
        }
        // Rule 5: the delay.
        let Some(mut delay) = self.backoff.next_delay(now) else {
            return give_up(GiveUpReason::BackoffExhausted);
        };
        if let Some(retry_after) = retry_after {
            let wait = retry_after.delay(now);
            delay = if wait <= self.max_retry_after {
                wait
            } else {
                match self.overlong_retry_after {
                    OverlongRetryAfter::Clamp => self.max_retry_after,
                    OverlongRetryAfter::GiveUp => {
                        return give_up(GiveUpReason::RetryAfterTooLong { wait });
                    }
                }
            };
        }
        // Rule 6: the budget, last.
        match budget.try_acquire(kind) {
            Ok(cost) => self.last_retry_cost = Some(cost),
            Err(exhausted) => return give_up(GiveUpReason::BudgetExhausted(exhausted)),
        }
        Decision::RetryAt(now + delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_client::budget::BudgetConfig;
    use alloc::vec::Vec;
    use proptest::prelude::{
        Just, Strategy, any, prop_assert, prop_assert_eq, prop_oneof, proptest,
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at_ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    fn no_jitter() -> RetryPolicy {
        let mut p = RetryPolicy::default();
        p.backoff.jitter = Jitter::None;
        p
    }

    /// Runs a request through `outcomes` (one per attempt), jumping virtual time to each retry. Returns the
    /// decisions and the retry delays in ms.
    fn run(
        state: &mut RetryState,
        budget: &mut RetryBudget,
        start: Timestamp,
        outcomes: &[Outcome],
    ) -> (Vec<Decision>, Vec<u64>) {
        let mut now = start;
        let mut decisions = Vec::new();
        let mut delays = Vec::new();
        for &outcome in outcomes {
            let d = state.on_outcome(now, outcome, budget);
            decisions.push(d);
            match d {
                Decision::RetryAt(at) => {
                    delays.push((at - now).as_millis() as u64);
                    now = at;
                }
                _ => break,
            }
        }
        (decisions, delays)
    }

    #[test]
    fn defaults() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 3);
        assert_eq!(
            p.retry_on.iter().collect::<Vec<_>>(),
            [429, 500, 502, 503, 504]
        );
        assert_eq!(
            p.non_idempotent_retry_on.iter().collect::<Vec<_>>(),
            [429, 503]
        );
        assert_eq!(p.backoff.first_delay, Duration::from_secs(1));
        assert_eq!(p.backoff.factor, 2.0);
        assert_eq!(p.backoff.max_delay, Duration::from_secs(20));
        assert_eq!(p.backoff.jitter, Jitter::Full);
        assert_eq!(p.max_retry_after, Duration::from_secs(60));
        assert_eq!(p.overlong_retry_after, OverlongRetryAfter::Clamp);
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(RetryPolicy::no_retries().max_attempts, 1);
    }

    #[test]
    fn validate_rejects_zero_attempts_and_bad_backoff() {
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.validate(), Err(RetryPolicyError::ZeroAttempts));
        // ... which a machine treats as 1: no retry at all.
        let mut s = RetryState::new(Method::Get, &zero, Rng::from_seed(1));
        assert_eq!(
            s.on_outcome(at_ms(0), Outcome::status(503), &mut RetryBudget::default()),
            Decision::GiveUp {
                reason: GiveUpReason::AttemptsExhausted
            }
        );
        let mut bad = RetryPolicy::default();
        bad.backoff.factor = -1.0;
        assert_eq!(
            bad.validate(),
            Err(RetryPolicyError::Backoff(
                BackoffConfigError::InvalidFactor(-1.0)
            ))
        );
    }

    #[test]
    fn status_set() {
        let s = StatusSet::from_slice(&[0, 63, 64, 503, 1023, 1024, u16::MAX]);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 63, 64, 503, 1023]);
        assert!(!s.contains(1024) && !s.contains(u16::MAX) && !s.contains(502));
        let s = s.without(63).without(2000).with(502);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 64, 502, 503, 1023]);
        assert!(StatusSet::empty().is_empty() && !s.is_empty());
        assert_eq!(
            alloc::format!("{:?}", StatusSet::from_slice(&[503, 429])),
            "{429, 503}"
        );
    }

    /// Without jitter the schedule is the backoff's base: 1 s, 2 s, then attempts run out.
    #[test]
    fn unjittered_schedule_is_exact() {
        let mut s = RetryState::new(Method::Get, &no_jitter(), Rng::from_seed(0));
        let mut budget = RetryBudget::default();
        let (decisions, delays) = run(
            &mut s,
            &mut budget,
            at_ms(10_000),
            &[Outcome::status(503); 3],
        );
        assert_eq!(delays, [1000, 2000]);
        assert_eq!(
            decisions,
            [
                Decision::RetryAt(at_ms(11_000)),
                Decision::RetryAt(at_ms(13_000)),
                Decision::GiveUp {
                    reason: GiveUpReason::AttemptsExhausted
                }
            ]
        );
        assert_eq!(s.attempts(), 3);
        assert_eq!(budget.tokens(), 490);
    }

    /// Transcript: the jittered delays (µs) for seed 7 under the default policy with 6 attempts. They are exactly
    /// the crate's `Backoff` draws for the same seed and config (checked here too), each within its base.
    #[test]
    fn jittered_schedule_for_a_fixed_seed() {
        let policy = RetryPolicy {
            max_attempts: 6,
            ..RetryPolicy::default()
        };
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(7));
        let mut budget = RetryBudget::default();
        let mut now = at_ms(0);
        let mut got = Vec::new();
        while let Decision::RetryAt(at) = s.on_outcome(now, Outcome::TransportError, &mut budget) {
            got.push((at - now).as_micros() as u64);
            now = at;
        }
        assert_eq!(got, [700_577, 557_502, 3_358_510, 7_848_782, 15_853_765]);
        let mut reference = Backoff::new(policy.backoff.clone(), Rng::from_seed(7));
        for (n, &d) in got.iter().enumerate() {
            assert_eq!(
                reference.next_delay(Timestamp::ZERO),
                Some(Duration::from_micros(d))
            );
            assert!(d <= 1_000_000 << n);
        }
    }

    #[test]
    fn success_and_non_retryable_statuses_are_done() {
        for status in [
            200, 201, 204, 299, 301, 304, 400, 401, 403, 404, 409, 413, 422, 501, 505,
        ] {
            let mut s = RetryState::new(Method::Get, &RetryPolicy::default(), Rng::from_seed(1));
            let mut budget = RetryBudget::default();
            assert_eq!(
                s.on_outcome(at_ms(0), Outcome::status(status), &mut budget),
                Decision::Done,
                "{status}"
            );
            // Only a 2xx on the first attempt earns a token (and the bucket is full, so it stays at 500).
            assert_eq!(budget.tokens(), 500);
            assert!(s.is_finished());
        }
    }

    /// The idempotency rules: POST is resent only after 429 and 503.
    #[test]
    fn non_idempotent_requests_retry_only_when_the_server_did_not_act() {
        let cases: &[(Method, Outcome, bool)] = &[
            (Method::Post, Outcome::TransportError, false),
            (Method::Post, Outcome::Timeout, false),
            (Method::Post, Outcome::status(500), false),
            (Method::Post, Outcome::status(502), false),
            (Method::Post, Outcome::status(504), false),
            (Method::Post, Outcome::status(429), true),
            (Method::Post, Outcome::status(503), true),
            (Method::Patch, Outcome::TransportError, false),
            (Method::Patch, Outcome::status(503), true),
            (Method::Connect, Outcome::Timeout, false),
            (Method::Get, Outcome::TransportError, true),
            (Method::Get, Outcome::Timeout, true),
            (Method::Put, Outcome::status(500), true),
            (Method::Delete, Outcome::status(504), true),
            (Method::Head, Outcome::Timeout, true),
            (Method::Options, Outcome::TransportError, true),
            (Method::Trace, Outcome::status(502), true),
        ];
        for &(method, outcome, retried) in cases {
            let mut s = RetryState::new(method, &no_jitter(), Rng::from_seed(1));
            let d = s.on_outcome(at_ms(0), outcome, &mut RetryBudget::default());
            let want = if retried {
                Decision::RetryAt(at_ms(1000))
            } else {
                Decision::GiveUp {
                    reason: GiveUpReason::NotIdempotent,
                }
            };
            assert_eq!(d, want, "{method} {outcome:?}");
        }
    }

    #[test]
    fn idempotency_can_be_overridden() {
        let mut post =
            RetryState::new(Method::Post, &no_jitter(), Rng::from_seed(1)).assume_idempotent(true);
        assert!(post.is_idempotent());
        assert_eq!(
            post.on_outcome(at_ms(0), Outcome::Timeout, &mut RetryBudget::default()),
            Decision::RetryAt(at_ms(1000))
        );
        let mut put =
            RetryState::new(Method::Put, &no_jitter(), Rng::from_seed(1)).assume_idempotent(false);
        assert_eq!(
            put.on_outcome(at_ms(0), Outcome::status(500), &mut RetryBudget::default()),
            Decision::GiveUp {
                reason: GiveUpReason::NotIdempotent
            }
        );
    }

    /// `Retry-After` replaces the backoff delay, in both forms; the backoff still advances underneath.
    #[test]
    fn retry_after_wins_over_backoff_in_both_forms() {
        let policy = RetryPolicy {
            max_attempts: 4,
            ..no_jitter()
        };
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        let mut budget = RetryBudget::default();
        // now is unix time: 784111770 s, 7 s before the date in the header.
        let now = Timestamp::from_micros(784_111_770_000_000);
        let outcomes = [
            Outcome::from_response(429, Some("5")),
            Outcome::from_response(503, Some("Sun, 06 Nov 1994 08:49:37 GMT")),
            Outcome::from_response(503, Some("not a valid value")),
        ];
        let (_, delays) = run(&mut s, &mut budget, now, &outcomes);
        // 5 s as asked; then until the date: 784111777 - 784111775 = 2 s; then the third backoff step (4 s).
        assert_eq!(delays, [5000, 2000, 4000]);
        // A date already past means retry at once.
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        let past = Outcome::from_response(503, Some("Sun Nov  6 08:49:37 1994"));
        let late = Timestamp::from_micros(800_000_000_000_000);
        assert_eq!(
            s.on_outcome(late, past, &mut budget),
            Decision::RetryAt(late)
        );
        // Retry-After on a status that is not retried changes nothing: the response is final.
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        assert_eq!(
            s.on_outcome(late, Outcome::from_response(301, Some("5")), &mut budget),
            Decision::Done
        );
    }

    #[test]
    fn overlong_retry_after_is_clamped_or_given_up_on() {
        let clamp = RetryPolicy {
            max_retry_after: Duration::from_secs(30),
            ..no_jitter()
        };
        let mut budget = RetryBudget::default();
        let mut s = RetryState::new(Method::Get, &clamp, Rng::from_seed(1));
        assert_eq!(
            s.on_outcome(
                at_ms(0),
                Outcome::from_response(429, Some("31")),
                &mut budget
            ),
            Decision::RetryAt(at_ms(30_000))
        );
        let mut s = RetryState::new(Method::Get, &clamp, Rng::from_seed(1));
        assert_eq!(
            s.on_outcome(
                at_ms(0),
                Outcome::from_response(429, Some("30")),
                &mut budget
            ),
            Decision::RetryAt(at_ms(30_000))
        );
        assert_eq!(budget.tokens(), 490);

        let give_up = RetryPolicy {
            overlong_retry_after: OverlongRetryAfter::GiveUp,
            ..clamp
        };
        let mut s = RetryState::new(Method::Get, &give_up, Rng::from_seed(1));
        assert_eq!(
            s.on_outcome(
                at_ms(0),
                Outcome::from_response(429, Some("3600")),
                &mut budget
            ),
            Decision::GiveUp {
                reason: GiveUpReason::RetryAfterTooLong {
                    wait: Duration::from_secs(3600)
                }
            }
        );
        // Refused before the budget was touched.
        assert_eq!(budget.tokens(), 490);
    }

    #[test]
    fn backoff_caps_still_apply() {
        let mut policy = RetryPolicy {
            max_attempts: 10,
            ..no_jitter()
        };
        policy.backoff.max_elapsed = Some(ms(3500));
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        let (decisions, delays) = run(
            &mut s,
            &mut RetryBudget::default(),
            at_ms(0),
            &[Outcome::Timeout; 10],
        );
        // 1 s (retry at 1 s), 2 s (at 3 s), then 4 s would end at 7 s > 3.5 s.
        assert_eq!(delays, [1000, 2000]);
        assert_eq!(
            decisions.last(),
            Some(&Decision::GiveUp {
                reason: GiveUpReason::BackoffExhausted
            })
        );
    }

    /// With max_attempts 3 every failing request takes two retries (10 tokens): 50 requests drain the default
    /// bucket, and the 51st is refused its first retry with the bucket's numbers.
    #[test]
    fn budget_runs_dry_after_fifty_failing_requests() {
        let policy = no_jitter();
        let mut budget = RetryBudget::default();
        for i in 0..50 {
            let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(i));
            let (decisions, _) = run(&mut s, &mut budget, at_ms(0), &[Outcome::status(500); 3]);
            assert_eq!(
                decisions.last(),
                Some(&Decision::GiveUp {
                    reason: GiveUpReason::AttemptsExhausted
                }),
                "request {i}"
            );
        }
        assert_eq!(budget.tokens(), 0);
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(99));
        assert_eq!(
            s.on_outcome(at_ms(0), Outcome::status(500), &mut budget),
            Decision::GiveUp {
                reason: GiveUpReason::BudgetExhausted(BudgetExhausted {
                    needed: 5,
                    available: 0
                })
            }
        );
        // A success on the first attempt earns one token; five of them pay for one retry again.
        for _ in 0..5 {
            let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
            assert_eq!(
                s.on_outcome(at_ms(0), Outcome::status(200), &mut budget),
                Decision::Done
            );
        }
        assert_eq!(budget.tokens(), 5);
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        assert_eq!(
            s.on_outcome(at_ms(0), Outcome::status(500), &mut budget),
            Decision::RetryAt(at_ms(1000))
        );
        assert_eq!(budget.tokens(), 0);
    }

    /// Timeouts cost 10, other failures 5; a success after retries refunds the last retry's cost only.
    #[test]
    fn budget_costs_and_refunds_follow_aws() {
        let policy = RetryPolicy {
            max_attempts: 5,
            ..no_jitter()
        };
        let mut budget = RetryBudget::default();
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        let outcomes = [
            Outcome::status(503),    // retry: -5
            Outcome::Timeout,        // retry: -10
            Outcome::TransportError, // retry: -5
            Outcome::status(200),    // refund the last 5
        ];
        let (decisions, _) = run(&mut s, &mut budget, at_ms(0), &outcomes);
        assert_eq!(decisions.last(), Some(&Decision::Done));
        assert_eq!(budget.tokens(), 500 - 5 - 10 - 5 + 5);

        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        s.on_outcome(at_ms(0), Outcome::Timeout, &mut budget);
        assert_eq!(s.last_retry_cost(), Some(10));
        s.on_outcome(at_ms(0), Outcome::status(200), &mut budget);
        assert_eq!(budget.tokens(), 485);

        // A retried request that ends in a non-2xx refunds nothing.
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        s.on_outcome(at_ms(0), Outcome::status(503), &mut budget);
        assert_eq!(
            s.on_outcome(at_ms(0), Outcome::status(404), &mut budget),
            Decision::Done
        );
        assert_eq!(budget.tokens(), 480);

        // A small custom bucket: one timeout retry fits, the second does not.
        let mut small = RetryBudget::new(BudgetConfig {
            capacity: 15,
            ..BudgetConfig::default()
        });
        let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(1));
        let (decisions, _) = run(&mut s, &mut small, at_ms(0), &[Outcome::Timeout; 3]);
        assert_eq!(
            decisions,
            [
                Decision::RetryAt(at_ms(1000)),
                Decision::GiveUp {
                    reason: GiveUpReason::BudgetExhausted(BudgetExhausted {
                        needed: 10,
                        available: 5
                    })
                }
            ]
        );
    }

    #[test]
    fn a_finished_request_repeats_its_decision_and_touches_nothing() {
        let mut budget = RetryBudget::default();
        let mut s = RetryState::new(Method::Post, &no_jitter(), Rng::from_seed(1));
        let first = s.on_outcome(at_ms(0), Outcome::Timeout, &mut budget);
        assert_eq!(
            first,
            Decision::GiveUp {
                reason: GiveUpReason::NotIdempotent
            }
        );
        assert_eq!(
            s.on_outcome(at_ms(5), Outcome::status(200), &mut budget),
            first
        );
        assert_eq!(s.attempts(), 1);
        assert_eq!(budget.tokens(), 500);

        let mut budget = RetryBudget::new(BudgetConfig {
            capacity: 500,
            ..BudgetConfig::default()
        });
        budget.try_acquire(RetryKind::Other).unwrap();
        let mut s = RetryState::new(Method::Get, &no_jitter(), Rng::from_seed(1));
        assert_eq!(
            s.on_outcome(at_ms(0), Outcome::status(200), &mut budget),
            Decision::Done
        );
        assert_eq!(
            s.on_outcome(at_ms(0), Outcome::status(200), &mut budget),
            Decision::Done
        );
        assert_eq!(budget.tokens(), 496, "one success, one token");
    }

    fn any_outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::TransportError),
            Just(Outcome::Timeout),
            prop_oneof![
                Just(200u16),
                Just(404),
                Just(429),
                Just(500),
                Just(502),
                Just(503),
                Just(504),
                100u16..600
            ]
            .prop_map(Outcome::status),
            (prop_oneof![Just(429u16), Just(503)], 0u64..120).prop_map(|(s, secs)| {
                Outcome::Response {
                    status: s,
                    retry_after: Some(RetryAfter::Delay(Duration::from_secs(secs))),
                }
            }),
        ]
    }

    proptest! {
        /// Whatever happens: never more than max_attempts attempts, retries strictly after-or-at now and within
        /// the caps, a non-idempotent request never resent after a transport error or timeout, and the budget
        /// never leaves [0, capacity].
        #[test]
        fn invariants(outcomes in proptest::collection::vec(any_outcome(), 1..12), seed: u64,
                      max_attempts in 1u32..6, post: bool, tokens in 0u32..40) {
            let policy = RetryPolicy { max_attempts, ..RetryPolicy::default() };
            let method = if post { Method::Post } else { Method::Get };
            let mut budget = RetryBudget::new(BudgetConfig { capacity: 500, ..BudgetConfig::default() });
            while budget.tokens() > tokens { budget.try_acquire(RetryKind::Other).ok(); }
            let mut s = RetryState::new(method, &policy, Rng::from_seed(seed));
            let mut now = at_ms(1);
            let mut retries = 0;
            for outcome in outcomes {
                let d = s.on_outcome(now, outcome, &mut budget);
                prop_assert!(budget.tokens() <= 500);
                if let Decision::RetryAt(at) = d {
                    retries += 1;
                    prop_assert!(at >= now);
                    prop_assert!(at - now <= Duration::from_secs(60));
                    if post {
                        let safe = matches!(outcome, Outcome::Response { status: 429 | 503, .. });
                        prop_assert!(safe, "POST resent after {:?}", outcome);
                    }
                    now = at;
                } else {
                    prop_assert!(s.is_finished());
                    break;
                }
            }
            prop_assert!(retries < max_attempts);
            prop_assert_eq!(s.attempts(), retries + u32::from(s.is_finished()));
        }

        /// Any policy and seed: a retry's delay never exceeds the backoff cap unless Retry-After set it.
        #[test]
        fn delays_within_cap(seed in any::<u64>(), cap_ms in 0u64..5000) {
            let mut policy = RetryPolicy { max_attempts: 8, ..RetryPolicy::default() };
            policy.backoff.max_delay = ms(cap_ms);
            let mut s = RetryState::new(Method::Get, &policy, Rng::from_seed(seed));
            let mut budget = RetryBudget::unlimited();
            let mut now = at_ms(0);
            while let Decision::RetryAt(at) = s.on_outcome(now, Outcome::status(502), &mut budget) {
                prop_assert!(at - now <= ms(cap_ms));
                now = at;
            }
            prop_assert_eq!(s.attempts(), 8);
        }
    }
}
