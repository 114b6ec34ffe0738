//! Webhook delivery: every event published on a matching channel is `POST`ed, signed, to one URL — at least once,
//! in offset order per channel.
//!
//! # The request
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
//!
//! {"type":"channel_event","channel":"jobs/7","epoch":"…","offset":42,"event":{…}}
//! ```
//!
//! - `type` is always `"channel_event"` (so the SDK's [`WebhookHandler`](crate::sdk::WebhookHandler) can dispatch
//!   it); `channel` the channel's name; `epoch` the hub's epoch (offsets of different epochs are unrelated: a
//!   restarted server starts a new one); `offset` the event's offset in the channel; `event` the event as published.
//! - The signature is made by [`sign_webhook`](switchboard_protocol::auth::sign_webhook) afresh for every
//!   attempt (so a retry an hour later is not refused as stale). Check it with
//!   [`WebhookVerifier`](switchboard_protocol::auth::WebhookVerifier).
//! - Any 2xx is a delivery. Transport failures, timeouts, 429 and 5xx are retried under [`WebhookConfig::retry`]
//!   (the protocol's [`RetryState`](switchboard_protocol::http_client::RetryState): backoff with jitter,
//!   `Retry-After` obeyed). Other statuses, and the last failed attempt, give the event up: a warning is logged and
//!   `switchboard_webhook_failures_total` counts it. Receivers must tolerate duplicates (at least once): an
//!   event is identified by `(epoch, channel, offset)`.
//!
//! # Order and memory
//!
//! There is no queue of events. What to deliver next, when to retry and when to give up is decided by the protocol
//! crate's [`DeliveryScheduler`](switchboard_protocol::webhook::DeliveryScheduler): two numbers per channel with
//! work pending (the last offset handled, delivered or given up, and the newest offset published). Each step reads
//! the next event **from the hub's history** by offset and delivers it; the channel then goes to the back of a
//! ready list, so at most one request per channel is in flight (offset order), while up to
//! [`WebhookConfig::max_concurrent`] channels are delivered at once (a slow channel does not hold the others up).
//! The sender task here only reads history, sends the requests and sleeps until the next retry. Memory is thus
//! bounded by the hub's history (`history_size` events, `history_ttl` old, `history_bytes` per channel and
//! `history_total_bytes` in all), however long the receiver is
//! down. An event that left the history before it could be delivered (the receiver was down for longer than the history
//! keeps) is skipped with a warning and counted in `switchboard_webhook_skipped_total`; raise
//! `history_size`/`history_ttl` (and the byte budgets) to ride out longer outages. In memory, pending deliveries end with the process; with
//! a [data directory](super::ServerConfig::data_dir) the sender keeps its place per channel in the store and resumes
//! from it after a restart (at least once, in offset order).
//!
//! On a node of a cluster (`ServerConfig::cluster`) each node sends the webhooks of the events it published
//! itself, from the engine's answers, holding them until delivered (at most `history_size` per channel): each
//! event's webhook goes out once across the cluster (docs/SCALING.md, "Webhooks from a cluster").

mod own_events;
pub(crate) mod sender;

use std::fmt;
use std::time::Duration;

use switchboard_protocol::backoff::{BackoffConfig, Jitter};
use switchboard_protocol::http_client::{RetryPolicy, StatusSet};
use switchboard_protocol::server::pattern_matches;
use switchboard_protocol::webhook::SchedulerConfig;

use crate::sdk::{ConfigError, Endpoint};

/// Where and how a [`Server`](super::Server) delivers webhooks (see the [module docs](self)).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The receiver's URL (`http://` or `https://`, no query).
    pub url: String,
    /// The secret the requests are signed with.
    pub secret: Vec<u8>,
    /// Channel patterns, as in permissions: `*` is one segment, a trailing `**` the rest of the name. Empty: every
    /// channel.
    pub channels: Vec<String>,
    /// The retry machine's policy. Default: 8 attempts, backoff from 500 ms doubling to 30 s with full jitter,
    /// retrying 429 and every 5xx (and transport failures and timeouts), `Retry-After` obeyed up to 60 s.
    pub retry: RetryPolicy,
    /// Timeout of one attempt (default 10 s).
    pub timeout: Duration,
    /// Channels delivered at the same time (default 8; at least 1).
    pub max_concurrent: usize,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"…")
            .field("channels", &self.channels)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("max_concurrent", &self.max_concurrent)
            .finish()
    }
}

impl WebhookConfig {
    /// Delivery of every channel's events to `url`, signed with `secret`, with the default retries.
    pub fn new(url: impl Into<String>, secret: impl Into<Vec<u8>>) -> WebhookConfig {
        let mut retry_on = StatusSet::empty().with(429);
        for status in 500..600 {
            retry_on = retry_on.with(status);
        }
        WebhookConfig {
            url: url.into(),
            secret: secret.into(),
            channels: Vec::new(),
            retry: RetryPolicy {
                max_attempts: 8,
                backoff: BackoffConfig {
                    first_delay: Duration::from_millis(500),
                    factor: 2.0,
                    max_delay: Duration::from_secs(30),
                    jitter: Jitter::Full,
                    max_attempts: None,
                    max_elapsed: None,
                    ..BackoffConfig::default()
                },
                retry_on,
                non_idempotent_retry_on: retry_on,
                ..RetryPolicy::default()
            },
            timeout: Duration::from_secs(10),
            max_concurrent: 8,
        }
    }

    /// `self` delivering only channels matching one of `patterns` (empty: all).
    pub fn with_channels(mut self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.channels = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// `self` with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Whether events of `channel` are delivered.
    pub fn matches(&self, channel: &str) -> bool {
        self.channels.is_empty() || self.channels.iter().any(|p| pattern_matches(p, channel))
    }

    /// The delivery scheduler's configuration, its jitter seeded with `seed`.
    pub(crate) fn scheduler_config(&self, seed: u64) -> SchedulerConfig {
        SchedulerConfig::new(self.retry.clone(), self.max_concurrent.max(1), seed)
            .with_channels(self.channels.clone())
    }

    /// Checks the retry policy, that the secret is not empty and the URL (returned parsed).
    pub fn validate(&self) -> Result<Endpoint, ConfigError> {
        self.retry.validate()?;
        if self.secret.is_empty() {
            return Err(ConfigError::InvalidValue {
                field: "secret",
                reason: "the webhook secret must not be empty",
            });
        }
        Endpoint::parse(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_filter_channels() {
        let all = WebhookConfig::new("http://127.0.0.1:1/hook", "s");
        assert!(all.matches("any/thing"));
        let some = all.clone().with_channels(["jobs/*", "audit/**"]);
        assert!(some.matches("jobs/7"));
        assert!(!some.matches("jobs/7/logs"));
        assert!(some.matches("audit/a/b"));
        assert!(!some.matches("audit"));
        assert!(!some.matches("news"));
    }

    #[test]
    fn the_default_policy_retries_429_and_every_5xx() {
        let config = WebhookConfig::new("http://127.0.0.1:1/hook", "s");
        for status in [429, 500, 501, 503, 599] {
            assert!(config.retry.retry_on.contains(status), "{status}");
            assert!(config.retry.non_idempotent_retry_on.contains(status));
        }
        for status in [400, 401, 404, 409] {
            assert!(!config.retry.retry_on.contains(status), "{status}");
        }
        assert!(config.validate().is_ok());
        assert!(WebhookConfig::new("ftp://x", "s").validate().is_err());
        assert!(WebhookConfig::new("http://x", "").validate().is_err());
        assert!(!format!("{config:?}").contains("\"s\""));
    }
}
