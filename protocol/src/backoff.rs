//! Reconnect and retry delays: capped exponential backoff with jitter, attempt and elapsed-time caps.
//!
//! [`Backoff`] is a small state machine. The caller reports what happened and asks for the next delay; it never
//! sleeps, reads a clock or draws OS randomness. Time comes in as [`Timestamp`]s and randomness from the [`Rng`] it
//! was built with, so the same seed and inputs always give the same schedule.
//!
//! The un-jittered delay for retry `n` of a streak (counting from 0) is
//! `base(n) = min(max_delay, first_delay * factor^n)`; [`Jitter`] says how the actual delay is drawn around it.
//! The defaults ([`BackoffConfig::default`]) are those of PROTOCOL §4: first delay 500 ms, factor 2, cap 30 s, full
//! jitter, attempts unlimited, no elapsed cap, and a streak that resets once a connection has stayed up 10 s.
//!
//! # Using it
//!
//! - After each failure (a connect that failed, a connection that dropped), call [`Backoff::next_delay`] and wait
//!   that long before trying again; `None` means give up.
//! - Call [`Backoff::on_connected`] when a connection comes up and [`Backoff::on_disconnected`] when it goes down:
//!   a connection that stayed up at least [`BackoffConfig::reset_after`] starts a fresh streak, so a flapping
//!   server keeps backing off while a long-lived connection that drops retries quickly.
//! - For request retries, where success is not a connection, call [`Backoff::reset`] after a success.

use core::time::Duration;

use crate::rng::{Rng, duration_micros};
use crate::time::Timestamp;

/// How the actual delay is drawn around the capped exponential `base` (see the [module docs](self)).
///
/// Every mode yields a delay in `[0, max_delay]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Jitter {
    /// Exactly `base`. Deterministic, and every client that failed together retries together.
    None,
    /// Uniform in `[0, base]` (AWS "full jitter"). The best spread; the default.
    #[default]
    Full,
    /// `base / 2` plus uniform in `[0, base / 2]` (AWS "equal jitter"): never less than half the base.
    Equal,
    /// `min(max_delay, uniform[first_delay, previous * 3])`, starting from `previous = first_delay` (AWS
    /// "decorrelated jitter"). Grows from the previous *drawn* delay, so `factor` is not used.
    Decorrelated,
    /// `base * (1 ± fraction)`, uniform, clamped to `[0, max_delay]` (gRPC style; gRPC uses `0.2`). A negative
    /// fraction counts as its absolute value, a non-finite one as `0`.
    Proportional(f64),
}

/// The knobs of a [`Backoff`]. [`Default`] gives the PROTOCOL §4 defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// The base delay before the first retry of a streak.
    pub first_delay: Duration,
    /// Multiplier applied to the base delay after each retry: `2.0` doubles it, `1.0` keeps it constant and values
    /// below `1.0` shrink it. A float (not an integer ratio) so gentle growth like `1.6` can be said directly; the
    /// base is computed by repeated multiplication, saturating at `max_delay`. Must be finite and `>= 0`
    /// ([`validate`](Self::validate)); other values still give delays within `[0, max_delay]`.
    pub factor: f64,
    /// The cap: no delay is ever longer than this, whatever the jitter.
    pub max_delay: Duration,
    /// How the actual delay is drawn around the base.
    pub jitter: Jitter,
    /// Give up after this many retries in one streak (`Some(0)`: never retry). `None`: unlimited.
    pub max_attempts: Option<u32>,
    /// Give up rather than schedule a retry later than this after the first failure of the streak. `None`: no cap.
    pub max_elapsed: Option<Duration>,
    /// A connection that stays up at least this long ends the streak: the next failure starts from `first_delay`.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            first_delay: Duration::from_millis(500),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: Jitter::Full,
            max_attempts: None,
            max_elapsed: None,
            reset_after: Duration::from_secs(10),
        }
    }
}

impl BackoffConfig {
    /// Checks the values a [`Backoff`] would otherwise silently tame: call it where a config comes from a user.
    pub fn validate(&self) -> Result<(), BackoffConfigError> {
        if !self.factor.is_finite() || self.factor < 0.0 {
            return Err(BackoffConfigError::InvalidFactor(self.factor));
        }
        if let Jitter::Proportional(fraction) = self.jitter
            && !(0.0..=1.0).contains(&fraction)
        {
            return Err(BackoffConfigError::InvalidJitterFraction(fraction));
        }
        Ok(())
    }
}

/// Why [`BackoffConfig::validate`] refused a config.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BackoffConfigError {
    /// `factor` is negative, infinite or NaN.
    #[error("backoff factor must be finite and at least 0, got {0}")]
    InvalidFactor(f64),
    /// The fraction of [`Jitter::Proportional`] is outside `[0, 1]` or NaN.
    #[error("proportional jitter fraction must be within [0, 1], got {0}")]
    InvalidJitterFraction(f64),
}

/// The backoff state machine: which retry of the current streak comes next, and whether to give up.
///
/// See the [module docs](self) for when to call what.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    rng: Rng,
    /// Retries handed out in this streak.
    attempt: u32,
    /// `first_delay * factor^attempt` in microseconds, uncapped (it may grow to infinity or shrink to zero).
    exp_micros: f64,
    /// The previous drawn delay in microseconds, for [`Jitter::Decorrelated`].
    prev_micros: u64,
    /// When the first failure of this streak was reported.
    streak_start: Option<Timestamp>,
    /// Set once [`Backoff::next_delay`] has returned `None`, until the streak resets.
    gave_up: bool,
    /// When the current connection came up, if it is up.
    up_since: Option<Timestamp>,
}

impl Backoff {
    /// A fresh machine: no failures yet, connection not up. `rng` draws the jitter.
    pub fn new(config: BackoffConfig, rng: Rng) -> Self {
        let mut backoff = Backoff {
            config,
            rng,
            attempt: 0,
            exp_micros: 0.0,
            prev_micros: 0,
            streak_start: None,
            gave_up: false,
            up_since: None,
        };
        backoff.reset();
        backoff
    }

    /// The config this machine runs on.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// How many retries [`next_delay`](Self::next_delay) has handed out in the current streak.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay to wait before the next retry, or `None` to give up. Call it once per failure, at the failure.
    ///
    /// The first call of a streak marks `now` as the streak's start for [`BackoffConfig::max_elapsed`]. Gives up
    /// when the streak has used [`BackoffConfig::max_attempts`] retries, or when the drawn delay would put the retry
    /// later than `max_elapsed` after the start. Once it has returned `None` it keeps doing so until the streak
    /// resets ([`reset`](Self::reset), or [`on_disconnected`](Self::on_disconnected) after a long enough connection).
    pub fn next_delay(&mut self, now: Timestamp) -> Option<Duration> {
        if self.gave_up {
            return None;
        }
        let start = *self.streak_start.get_or_insert(now);
        if self
            .config
            .max_attempts
            .is_some_and(|max| self.attempt >= max)
        {
            self.gave_up = true;
            return None;
        }
        let delay = self.draw();
        if let Some(max_elapsed) = self.config.max_elapsed {
            let retry_at = duration_micros(now - start).saturating_add(delay);
            if retry_at > duration_micros(max_elapsed) {
                self.gave_up = true;
                return None;
            }
        }
        self.attempt = self.attempt.saturating_add(1);
        self.exp_micros *= self.config.factor;
        self.prev_micros = delay;
        Some(Duration::from_micros(delay))
    }

    /// The connection came up at `now`.
    pub fn on_connected(&mut self, now: Timestamp) {
        self.up_since = Some(now);
    }

    /// The connection went down at `now`. If it had been up at least [`BackoffConfig::reset_after`], the streak
    /// resets, so the [`next_delay`](Self::next_delay) that follows starts again from `first_delay`.
    pub fn on_disconnected(&mut self, now: Timestamp) {
        if let Some(up_since) = self.up_since.take()
            && now - up_since >= self.config.reset_after
        {
            self.reset();
        }
    }

    /// Starts a fresh streak: attempt 0, no elapsed time, not given up. Leaves the up/down state alone.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.exp_micros = duration_micros(self.config.first_delay) as f64;
        self.prev_micros = duration_micros(self.config.first_delay);
        self.streak_start = None;
        self.gave_up = false;
    }

    /// Draws the delay for the current attempt, in microseconds, within `[0, max_delay]`.
    fn draw(&mut self) -> u64 {
        let cap = duration_micros(self.config.max_delay);
        // `as` saturates: NaN → 0, negative → 0, ∞ → u64::MAX.
        let base = (self.exp_micros as u64).min(cap);
        match self.config.jitter {
            Jitter::None => base,
            Jitter::Full => self.rng.below_inclusive(base),
            Jitter::Equal => {
                let half = base / 2;
                half + self.rng.below_inclusive(base - half)
            }
            Jitter::Decorrelated => {
                let first = duration_micros(self.config.first_delay);
                let hi = self.prev_micros.saturating_mul(3);
                self.rng.range_inclusive(first, hi).min(cap)
            }
            Jitter::Proportional(fraction) => {
                let fraction = if fraction.is_finite() {
                    fraction.abs()
                } else {
                    0.0
                };
                let spread = self.rng.next_f64() * 2.0 - 1.0;
                ((base as f64 * (1.0 + fraction * spread)) as u64).min(cap)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn config(jitter: Jitter) -> BackoffConfig {
        BackoffConfig {
            jitter,
            ..BackoffConfig::default()
        }
    }

    fn schedule(config: BackoffConfig, seed: u64, n: usize) -> Vec<u64> {
        let mut b = Backoff::new(config, Rng::from_seed(seed));
        (0..n)
            .map(|_| {
                b.next_delay(Timestamp::ZERO)
                    .map_or(u64::MAX, |d| d.as_millis() as u64)
            })
            .collect()
    }

    #[test]
    fn defaults_are_protocol_section_4() {
        let c = BackoffConfig::default();
        assert_eq!(c.first_delay, ms(500));
        assert_eq!(c.factor, 2.0);
        assert_eq!(c.max_delay, Duration::from_secs(30));
        assert_eq!(c.jitter, Jitter::Full);
        assert_eq!(c.max_attempts, None);
        assert_eq!(c.max_elapsed, None);
        assert_eq!(c.reset_after, Duration::from_secs(10));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn no_jitter_is_capped_exponential() {
        let got = schedule(config(Jitter::None), 0, 10);
        assert_eq!(
            got,
            [
                500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000
            ]
        );
    }

    /// Transcripts: the schedule (in whole ms) of every jitter mode for seed 7 and the default config. A change here
    /// changes every recorded replay, so make it on purpose.
    #[test]
    fn transcript_for_a_fixed_seed() {
        let cases: &[(Jitter, [u64; 10])] = &[
            (
                Jitter::Full,
                [350, 278, 1679, 3924, 7926, 13964, 1822, 3133, 12111, 4554],
            ),
            (
                Jitter::Equal,
                [
                    425, 639, 1839, 3962, 7963, 14982, 15911, 16566, 21055, 17277,
                ],
            ),
            (
                Jitter::Decorrelated,
                [
                    1200, 1364, 3517, 10362, 30000, 30000, 5937, 2307, 3093, 1832,
                ],
            ),
            (
                Jitter::Proportional(0.2),
                [
                    540, 911, 2271, 4769, 9570, 18385, 24729, 25253, 28844, 25821,
                ],
            ),
        ];
        for (jitter, want) in cases {
            assert_eq!(schedule(config(*jitter), 7, 10), want, "{jitter:?}");
        }
    }

    #[test]
    fn attempts_are_honoured_and_giving_up_sticks() {
        let mut b = Backoff::new(
            BackoffConfig {
                max_attempts: Some(3),
                ..config(Jitter::None)
            },
            Rng::from_seed(1),
        );
        assert_eq!(b.next_delay(at_ms(0)), Some(ms(500)));
        assert_eq!(b.next_delay(at_ms(500)), Some(ms(1000)));
        assert_eq!(b.next_delay(at_ms(1500)), Some(ms(2000)));
        assert_eq!(b.attempt(), 3);
        assert_eq!(b.next_delay(at_ms(3500)), None);
        assert_eq!(b.next_delay(at_ms(9999)), None);
        assert_eq!(b.attempt(), 3);
        b.reset();
        assert_eq!(b.next_delay(at_ms(10_000)), Some(ms(500)));

        let mut never = Backoff::new(
            BackoffConfig {
                max_attempts: Some(0),
                ..config(Jitter::Full)
            },
            Rng::from_seed(1),
        );
        assert_eq!(never.next_delay(at_ms(0)), None);
    }

    #[test]
    fn elapsed_cap_counts_from_the_first_failure() {
        let cfg = BackoffConfig {
            max_elapsed: Some(ms(4000)),
            ..config(Jitter::None)
        };
        let mut b = Backoff::new(cfg, Rng::from_seed(1));
        // The streak starts at 1000, so no retry may be scheduled after 5000.
        assert_eq!(b.next_delay(at_ms(1000)), Some(ms(500))); // retry at 1500
        assert_eq!(b.next_delay(at_ms(1500)), Some(ms(1000))); // retry at 2500
        assert_eq!(b.next_delay(at_ms(2500)), Some(ms(2000))); // retry at 4500
        assert_eq!(b.next_delay(at_ms(4500)), None); // 4500 + 4000 is past 5000
        assert_eq!(b.next_delay(at_ms(4500)), None);
    }

    #[test]
    fn a_short_connection_keeps_the_streak() {
        let mut b = Backoff::new(config(Jitter::None), Rng::from_seed(1));
        assert_eq!(b.next_delay(at_ms(0)), Some(ms(500)));
        b.on_connected(at_ms(500));
        b.on_disconnected(at_ms(10_499)); // up 9.999 s
        assert_eq!(b.attempt(), 1);
        assert_eq!(b.next_delay(at_ms(10_499)), Some(ms(1000)));
    }

    #[test]
    fn a_long_connection_resets_the_streak() {
        let cfg = BackoffConfig {
            max_attempts: Some(2),
            ..config(Jitter::None)
        };
        let mut b = Backoff::new(cfg, Rng::from_seed(1));
        assert_eq!(b.next_delay(at_ms(0)), Some(ms(500)));
        assert_eq!(b.next_delay(at_ms(500)), Some(ms(1000)));
        assert_eq!(b.next_delay(at_ms(1500)), None);
        b.on_connected(at_ms(2000));
        b.on_disconnected(at_ms(12_000)); // up exactly 10 s
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.next_delay(at_ms(12_000)), Some(ms(500)));
        // A disconnect without a connect does not reset.
        b.on_disconnected(at_ms(99_000));
        assert_eq!(b.next_delay(at_ms(99_000)), Some(ms(1000)));
    }

    #[test]
    fn attempt_10_000_does_not_overflow() {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::Proportional(0.5),
        ] {
            let cfg = BackoffConfig {
                first_delay: Duration::MAX,
                max_delay: Duration::MAX,
                jitter,
                ..Default::default()
            };
            let mut b = Backoff::new(cfg, Rng::from_seed(3));
            for _ in 0..10_000 {
                assert!(b.next_delay(Timestamp::MAX).is_some());
            }
            assert_eq!(b.attempt(), 10_000);
        }
        let mut b = Backoff::new(config(Jitter::None), Rng::from_seed(3));
        let last = (0..10_000)
            .filter_map(|_| b.next_delay(Timestamp::ZERO))
            .last();
        assert_eq!(last, Some(Duration::from_secs(30)));
    }

    #[test]
    fn validate_rejects_nonsense() {
        let bad = |factor| {
            BackoffConfig {
                factor,
                ..BackoffConfig::default()
            }
            .validate()
        };
        assert!(matches!(bad(f64::NAN), Err(BackoffConfigError::InvalidFactor(f)) if f.is_nan()));
        assert_eq!(bad(-1.0), Err(BackoffConfigError::InvalidFactor(-1.0)));
        assert_eq!(
            bad(f64::INFINITY),
            Err(BackoffConfigError::InvalidFactor(f64::INFINITY))
        );
        assert_eq!(bad(0.5), Ok(()));
        assert_eq!(
            config(Jitter::Proportional(1.5)).validate(),
            Err(BackoffConfigError::InvalidJitterFraction(1.5))
        );
        assert_eq!(config(Jitter::Proportional(0.0)).validate(), Ok(()));
    }

    fn any_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
            any::<f64>().prop_map(Jitter::Proportional),
            (0.0..=1.0f64).prop_map(Jitter::Proportional),
        ]
    }

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            (0u64..120_000_000).prop_map(Duration::from_micros),
            Just(Duration::MAX)
        ]
    }

    fn any_config() -> impl Strategy<Value = BackoffConfig> {
        let factor = prop_oneof![0.0..4.0f64, any::<f64>(), Just(0.0), Just(1.0), Just(2.0)];
        (any_duration(), factor, any_duration(), any_jitter()).prop_map(
            |(first_delay, factor, max_delay, jitter)| BackoffConfig {
                first_delay,
                factor,
                max_delay,
                jitter,
                ..BackoffConfig::default()
            },
        )
    }

    proptest! {
        /// Whatever the config, every delay lies in `[0, max_delay]`, and each jitter mode keeps its own bounds.
        #[test]
        fn delays_stay_within_bounds(cfg in any_config(), seed: u64) {
            let cap = duration_micros(cfg.max_delay);
            let first = duration_micros(cfg.first_delay);
            let mut b = Backoff::new(cfg.clone(), Rng::from_seed(seed));
            let mut exp = first as f64;
            for n in 0..40u32 {
                let base = (exp as u64).min(cap);
                let d = duration_micros(b.next_delay(Timestamp::ZERO).expect("no caps set"));
                prop_assert!(d <= cap, "attempt {n}: {d} > cap {cap}");
                match cfg.jitter {
                    Jitter::None => prop_assert_eq!(d, base),
                    Jitter::Full => prop_assert!(d <= base),
                    Jitter::Equal => prop_assert!(d >= base / 2 && d <= base),
                    Jitter::Decorrelated => prop_assert!(d >= first.min(cap)),
                    Jitter::Proportional(f) if (0.0..=1.0).contains(&f) => {
                        let slack = base as f64 * f + 1.0;
                        prop_assert!((d as f64 - base as f64).abs() <= slack);
                    }
                    Jitter::Proportional(_) => {}
                }
                exp *= cfg.factor;
            }
            prop_assert_eq!(b.attempt(), 40);
        }

        /// A doubling schedule without jitter is exactly `min(cap, first * 2^n)`.
        #[test]
        fn doubling_matches_closed_form(first_ms in 0u64..10_000, cap_ms in 0u64..100_000) {
            let cfg = BackoffConfig { first_delay: ms(first_ms), max_delay: ms(cap_ms), ..config(Jitter::None) };
            let mut b = Backoff::new(cfg, Rng::from_seed(0));
            for n in 0..20u32 {
                let want = first_ms.saturating_mul(1 << n).min(cap_ms);
                prop_assert_eq!(b.next_delay(Timestamp::ZERO), Some(ms(want)));
            }
        }

        /// `max_attempts` retries, then `None` for good; no retry is scheduled past `max_elapsed`.
        #[test]
        fn caps_are_honoured(cfg in any_config(), seed: u64, max_attempts in 0u32..20, max_elapsed_ms in 0u64..60_000) {
            let cfg = BackoffConfig { max_attempts: Some(max_attempts), max_elapsed: Some(ms(max_elapsed_ms)), ..cfg };
            let mut b = Backoff::new(cfg, Rng::from_seed(seed));
            let start = at_ms(5);
            let mut now = start;
            let mut given = 0u32;
            while let Some(d) = b.next_delay(now) {
                given += 1;
                now += d;
                prop_assert!(now - start <= ms(max_elapsed_ms));
            }
            prop_assert!(given <= max_attempts);
            prop_assert_eq!(b.attempt(), given);
            prop_assert_eq!(b.next_delay(now), None);
        }
    }
}
