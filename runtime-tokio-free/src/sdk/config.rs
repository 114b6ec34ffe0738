//! [`ApiConfig`]: everything an [`ApiClient`](super::ApiClient) is built from, its three presets, and
//! [`ApiConfig::from_env`].
//!
//! # Presets
//!
//! | | [`development`](ApiConfig::development) | [`production`](ApiConfig::production) | [`testing`](ApiConfig::testing) |
//! |---|---|---|---|
//! | base URL | `http://localhost:8080` | `http://localhost:8080` | `http://127.0.0.1:8080` |
//! | timeout | 60 s | 30 s | 5 s |
//! | attempts (first + retries) | 2 | 3 | 3 |
//! | backoff | 200 ms doubling to 2 s | 1 s doubling to 20 s (AWS standard) | 10 ms doubling to 100 ms |
//! | retry budget | unlimited | 500 tokens (AWS standard) | 500 tokens |
//! | rate limit | none | 100 requests per second | none |
//! | response cache | off | 30 s, 1000 entries | off |
//!
//! Jitter is full jitter everywhere, from an [`Rng`](switchboard_protocol::rng::Rng) seeded with
//! [`ApiConfig::seed`], so a seed replays a client's retry schedule.
//!
//! # Environment
//!
//! [`ApiConfig::from_env`] starts from [`production`](ApiConfig::production) and overrides what these variables set
//! (an unset or empty variable changes nothing; a malformed one is an error, never ignored):
//!
//! | variable | meaning | unit / format |
//! |---|---|---|
//! | `SWITCHBOARD_API_URL` | base URL | `http[s]://host[:port][/path]` |
//! | `SWITCHBOARD_API_TOKEN` | bearer token | text |
//! | `SWITCHBOARD_TIMEOUT` | per-attempt timeout | seconds, decimals allowed (`2.5`), more than 0 |
//! | `SWITCHBOARD_MAX_RETRIES` | retries **after** the first attempt (attempts = this + 1) | whole number, 0 disables |
//! | `SWITCHBOARD_RATE_LIMIT_REQUESTS` | requests allowed per window | whole number, 0 disables the limiter |
//! | `SWITCHBOARD_RATE_LIMIT_WINDOW` | the window | seconds, decimals allowed, more than 0 |
//! | `SWITCHBOARD_ENABLE_CACHING` | cache `GET` responses | `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` |
//! | `SWITCHBOARD_CACHE_TTL` | how long a cached response stays fresh | seconds, decimals allowed, more than 0 |
//!
//! The rate-limit variables may be set one without the other: the missing one keeps the preset's value (100
//! requests, 1 s).

use std::time::Duration;

use switchboard_protocol::backoff::Jitter;
use switchboard_protocol::http_client::{BudgetConfig, RetryPolicy};

use super::config_error::ConfigError;
use super::endpoint::Endpoint;

/// At most `requests` requests in any `window` (enforced by the client before each attempt, retries included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

/// Caching of `GET` responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a response stays fresh.
    pub ttl: Duration,
    /// The most responses kept.
    pub capacity: usize,
}

/// Everything an [`ApiClient`](super::ApiClient) needs (see the [module docs](self) for presets and environment).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiConfig {
    /// Base URL every route is put under, e.g. `http://localhost:8080`.
    pub base_url: String,
    /// Bearer token sent as `Authorization: Bearer …`; `None` sends none.
    pub token: Option<String>,
    /// Timeout of one attempt (connect, send and receive); retries get a fresh one each.
    pub timeout: Duration,
    /// Which failures are retried, how often and after what delay.
    pub retry: RetryPolicy,
    /// The client-wide retry budget; `None` for unlimited (only `retry.max_attempts` limits retries).
    pub budget: Option<BudgetConfig>,
    /// The client-side rate limit; `None` for none.
    pub rate_limit: Option<RateLimit>,
    /// `GET` response caching; `None` for none.
    pub cache: Option<CacheConfig>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Seed of the jitter randomness.
    pub seed: u64,
    /// Calls kept for latency percentiles in the metrics.
    pub metrics_window: usize,
}

impl Default for ApiConfig {
    /// [`ApiConfig::production`].
    fn default() -> Self {
        ApiConfig::production()
    }
}

impl ApiConfig {
    /// For a service in production: the AWS standard retry mode and budget, 100 requests per second, a 30 s
    /// response cache (see the [module docs](self)).
    pub fn production() -> Self {
        ApiConfig {
            base_url: "http://localhost:8080".into(),
            token: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            budget: Some(BudgetConfig::default()),
            rate_limit: Some(RateLimit {
                requests: 100,
                window: Duration::from_secs(1),
            }),
            cache: Some(CacheConfig {
                ttl: Duration::from_secs(30),
                capacity: 1000,
            }),
            user_agent: concat!("switchboard-sdk/", env!("CARGO_PKG_VERSION")).into(),
            seed: 0x5b0a_7d5e_ed00_0001,
            metrics_window: switchboard_protocol::http_client::DEFAULT_WINDOW,
        }
    }

    /// For working against a local server: one quick retry, no budget, no limiter and no cache (every call shows
    /// the server's current answer), a long timeout for stepping through a debugger.
    pub fn development() -> Self {
        let mut config = ApiConfig::production();
        config.timeout = Duration::from_secs(60);
        config.retry.max_attempts = 2;
        config.retry.backoff.first_delay = Duration::from_millis(200);
        config.retry.backoff.max_delay = Duration::from_secs(2);
        config.budget = None;
        config.rate_limit = None;
        config.cache = None;
        config
    }

    /// For tests: short timeout and millisecond backoff so failure paths run fast; no limiter or cache unless a
    /// test turns them on.
    pub fn testing() -> Self {
        let mut config = ApiConfig::production();
        config.base_url = "http://127.0.0.1:8080".into();
        config.timeout = Duration::from_secs(5);
        config.retry.backoff.first_delay = Duration::from_millis(10);
        config.retry.backoff.max_delay = Duration::from_millis(100);
        config.retry.backoff.jitter = Jitter::Full;
        config.rate_limit = None;
        config.cache = None;
        config
    }

    /// [`production`](Self::production) with the `SWITCHBOARD_*` environment variables applied (see the
    /// [module docs](self)).
    pub fn from_env() -> Result<Self, ConfigError> {
        ApiConfig::production().with_env(|name| std::env::var(name).ok())
    }

    /// `self` with the `SWITCHBOARD_*` variables applied, read through `lookup` (a test passes a map; a program
    /// passes `std::env::var`).
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = get("SWITCHBOARD_API_URL") {
            self.base_url = url.trim().to_owned();
        }
        if let Some(token) = get("SWITCHBOARD_API_TOKEN") {
            self.token = Some(token.trim().to_owned());
        }
        if let Some(v) = get("SWITCHBOARD_TIMEOUT") {
            self.timeout = seconds("SWITCHBOARD_TIMEOUT", &v)?;
        }
        if let Some(v) = get("SWITCHBOARD_MAX_RETRIES") {
            let retries: u32 = whole("SWITCHBOARD_MAX_RETRIES", &v)?;
            self.retry.max_attempts = retries.saturating_add(1);
        }
        let requests = get("SWITCHBOARD_RATE_LIMIT_REQUESTS")
            .map(|v| whole("SWITCHBOARD_RATE_LIMIT_REQUESTS", &v))
            .transpose()?;
        let window = get("SWITCHBOARD_RATE_LIMIT_WINDOW")
            .map(|v| seconds("SWITCHBOARD_RATE_LIMIT_WINDOW", &v))
            .transpose()?;
        if requests.is_some() || window.is_some() {
            let base = self.rate_limit.unwrap_or(RateLimit {
                requests: 100,
                window: Duration::from_secs(1),
            });
            let requests = requests.unwrap_or(base.requests);
            self.rate_limit = (requests > 0).then(|| RateLimit {
                requests,
                window: window.unwrap_or(base.window),
            });
        }
        let enable = get("SWITCHBOARD_ENABLE_CACHING")
            .map(|v| boolean("SWITCHBOARD_ENABLE_CACHING", &v))
            .transpose()?;
        let ttl = get("SWITCHBOARD_CACHE_TTL")
            .map(|v| seconds("SWITCHBOARD_CACHE_TTL", &v))
            .transpose()?;
        let base = self.cache.unwrap_or(CacheConfig {
            ttl: Duration::from_secs(30),
            capacity: 1000,
        });
        match enable {
            Some(false) => self.cache = None,
            Some(true) => self.cache = Some(base),
            None => {}
        }
        if let (Some(ttl), Some(cache)) = (ttl, self.cache.as_mut()) {
            cache.ttl = ttl;
        }
        self.validate()?;
        Ok(self)
    }

    /// `self` with another base URL.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// `self` with a bearer token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The parsed base URL.
    pub fn endpoint(&self) -> Result<Endpoint, ConfigError> {
        Endpoint::parse(&self.base_url)
    }

    /// Checks every setting: the URL parses, the timeout and windows are non-zero, the retry policy is valid.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.endpoint()?;
        if self.timeout.is_zero() {
            return Err(ConfigError::InvalidValue {
                field: "timeout",
                reason: "must be more than zero",
            });
        }
        if let Some(limit) = self.rate_limit
            && (limit.requests == 0 || limit.window.is_zero())
        {
            return Err(ConfigError::InvalidValue {
                field: "rate_limit",
                reason: "needs at least one request per non-zero window (use None for no limit)",
            });
        }
        if let Some(cache) = self.cache
            && (cache.ttl.is_zero() || cache.capacity == 0)
        {
            return Err(ConfigError::InvalidValue {
                field: "cache",
                reason: "needs a non-zero ttl and capacity (use None for no cache)",
            });
        }
        if let Some(token) = &self.token
            && token.bytes().any(|b| b.is_ascii_control())
        {
            return Err(ConfigError::InvalidValue {
                field: "token",
                reason: "must not contain control characters",
            });
        }
        self.retry.validate()?;
        Ok(())
    }
}

fn seconds(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| ConfigError::InvalidEnv {
            name,
            value: value.to_owned(),
            expected: "a number of seconds greater than 0",
        })
}

fn whole(name: &'static str, value: &str) -> Result<u32, ConfigError> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| ConfigError::InvalidEnv {
            name,
            value: value.to_owned(),
            expected: "a whole number",
        })
}

fn boolean(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::InvalidEnv {
            name,
            value: value.to_owned(),
            expected: "true or false",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn presets_are_valid_and_differ_where_documented() {
        for c in [
            ApiConfig::development(),
            ApiConfig::production(),
            ApiConfig::testing(),
        ] {
            c.validate().unwrap();
        }
        let (d, p, t) = (
            ApiConfig::development(),
            ApiConfig::production(),
            ApiConfig::testing(),
        );
        assert_eq!(
            (
                d.retry.max_attempts,
                p.retry.max_attempts,
                t.retry.max_attempts
            ),
            (2, 3, 3)
        );
        assert!(d.cache.is_none() && p.cache.is_some() && t.cache.is_none());
        assert!(d.budget.is_none() && p.budget.is_some());
        assert_eq!(
            p.rate_limit,
            Some(RateLimit {
                requests: 100,
                window: Duration::from_secs(1)
            })
        );
        assert_eq!(ApiConfig::default(), p);
    }

    #[test]
    fn every_variable_is_read_with_its_unit() {
        let c = ApiConfig::production()
            .with_env(env(&[
                ("SWITCHBOARD_API_URL", " http://example.test:9000/sb "),
                ("SWITCHBOARD_API_TOKEN", "tok"),
                ("SWITCHBOARD_TIMEOUT", "2.5"),
                ("SWITCHBOARD_MAX_RETRIES", "4"),
                ("SWITCHBOARD_RATE_LIMIT_REQUESTS", "7"),
                ("SWITCHBOARD_RATE_LIMIT_WINDOW", "60"),
                ("SWITCHBOARD_ENABLE_CACHING", "yes"),
                ("SWITCHBOARD_CACHE_TTL", "0.5"),
            ]))
            .unwrap();
        assert_eq!(c.base_url, "http://example.test:9000/sb");
        assert_eq!(c.token.as_deref(), Some("tok"));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.retry.max_attempts, 5);
        assert_eq!(
            c.rate_limit,
            Some(RateLimit {
                requests: 7,
                window: Duration::from_secs(60)
            })
        );
        assert_eq!(
            c.cache,
            Some(CacheConfig {
                ttl: Duration::from_millis(500),
                capacity: 1000
            })
        );
    }

    #[test]
    fn zero_and_off_disable_and_unset_changes_nothing() {
        let c = ApiConfig::production()
            .with_env(env(&[
                ("SWITCHBOARD_MAX_RETRIES", "0"),
                ("SWITCHBOARD_RATE_LIMIT_REQUESTS", "0"),
                ("SWITCHBOARD_ENABLE_CACHING", "off"),
                ("SWITCHBOARD_API_TOKEN", "  "),
            ]))
            .unwrap();
        assert_eq!(c.retry.max_attempts, 1);
        assert_eq!((c.rate_limit, c.cache, c.token), (None, None, None));
        assert_eq!(
            ApiConfig::testing().with_env(env(&[])).unwrap(),
            ApiConfig::testing()
        );
        // Caching turned on over a preset without a cache gets the default size.
        let c = ApiConfig::testing()
            .with_env(env(&[("SWITCHBOARD_ENABLE_CACHING", "1")]))
            .unwrap();
        assert_eq!(c.cache.map(|c| c.capacity), Some(1000));
    }

    #[test]
    fn malformed_values_are_errors() {
        for (name, value) in [
            ("SWITCHBOARD_TIMEOUT", "0"),
            ("SWITCHBOARD_TIMEOUT", "-1"),
            ("SWITCHBOARD_TIMEOUT", "soon"),
            ("SWITCHBOARD_TIMEOUT", "inf"),
            ("SWITCHBOARD_MAX_RETRIES", "-1"),
            ("SWITCHBOARD_MAX_RETRIES", "1.5"),
            ("SWITCHBOARD_RATE_LIMIT_WINDOW", "0"),
            ("SWITCHBOARD_ENABLE_CACHING", "maybe"),
            ("SWITCHBOARD_CACHE_TTL", "x"),
        ] {
            let err = ApiConfig::production()
                .with_env(env(&[(name, value)]))
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidEnv { name: n, .. } if n == name),
                "{name}={value}: {err}"
            );
        }
        let err = ApiConfig::production()
            .with_env(env(&[("SWITCHBOARD_API_URL", "localhost")]))
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidUrl { .. }));
    }

    #[test]
    fn validate_refuses_out_of_range_settings() {
        let mut c = ApiConfig::testing();
        c.timeout = Duration::ZERO;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InvalidValue {
                field: "timeout",
                ..
            })
        ));
        let mut c = ApiConfig::testing();
        c.retry.max_attempts = 0;
        assert!(matches!(c.validate(), Err(ConfigError::Retry(_))));
        let c = ApiConfig::testing().with_token("a\nb");
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InvalidValue { field: "token", .. })
        ));
        let mut c = ApiConfig::testing();
        c.cache = Some(CacheConfig {
            ttl: Duration::ZERO,
            capacity: 1,
        });
        assert!(c.validate().is_err());
    }
}
