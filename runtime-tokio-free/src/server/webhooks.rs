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
//! - The signature is made by [`sign_webhook`] afresh for every attempt (so a retry an hour later is not refused as
//!   stale). Check it with [`WebhookVerifier`](switchboard_protocol::auth::WebhookVerifier).
//! - Any 2xx is a delivery. Transport failures, timeouts, 429 and 5xx are retried under
//!   [`WebhookConfig::retry`] (the protocol's [`RetryState`]: backoff with jitter, `Retry-After` obeyed). Other
//!   statuses, and the last failed attempt, give the event up: a warning is logged and
//!   `switchboard_webhook_failures_total` counts it. Receivers must tolerate duplicates (at least once): an
//!   event is identified by `(epoch, channel, offset)`.
//!
//! # Order and memory
//!
//! There is no queue of events. The delivery state is two numbers per channel with work pending: the last offset
//! handled (delivered or given up) and the newest offset published. Each step reads the next event **from the
//! hub's history** by offset and delivers it; the channel then goes to the back of a ready list, so at most one
//! request per channel is in flight (offset order), while up to [`WebhookConfig::max_concurrent`] channels are
//! delivered at once (a slow channel does not hold the others up). Memory is thus bounded by the hub's history
//! (`history_size` events, `history_ttl` old, per channel), however long the receiver is down. An event that left
//! the history before it could be delivered (the receiver was down for longer than the history keeps) is skipped
//! with a warning and counted in `switchboard_webhook_skipped_total`; raise `history_size`/`history_ttl` to ride
//! out longer outages. Pending deliveries are not persisted: they end with the process.

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_protocol::auth::sign_webhook;
use switchboard_protocol::auth::webhook::SIGNATURE_HEADER;
use switchboard_protocol::backoff::{BackoffConfig, Jitter};
use switchboard_protocol::http_client::{
    Decision, Method, Outcome, RequestParts, RetryBudget, RetryPolicy, RetryState, StatusSet,
};
use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::pattern_matches;
use switchboard_protocol::wire::ChannelName;

use super::driver::Shared;
use crate::Runtime;
use crate::sdk::{ConfigError, Endpoint, H1Transport, HttpTransport};

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

/// Delivery counters, shown on `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct WebhookCounters {
    delivered: AtomicU64,
    failures: AtomicU64,
    skipped: AtomicU64,
    retries: AtomicU64,
}

/// One channel with deliveries pending.
#[derive(Debug)]
struct Cursor {
    /// The last offset delivered or given up on.
    done: u64,
    /// The newest offset published.
    latest: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Channels with deliveries pending. A channel is in `ready` or held by exactly one worker, never both.
    pending: HashMap<ChannelName, Cursor>,
    /// Channels waiting for a worker, in turn.
    ready: VecDeque<ChannelName>,
    /// Running workers.
    workers: usize,
}

/// The delivery side of one server: cursors, the ready list, counters, the transport.
pub(crate) struct Webhooks<R: Runtime> {
    config: WebhookConfig,
    endpoint: Endpoint,
    transport: H1Transport<R>,
    state: Mutex<State>,
    wake: mpsc::Sender<()>,
    rng: Mutex<Rng>,
    pub(crate) counters: WebhookCounters,
}

impl<R: Runtime> fmt::Debug for Webhooks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Webhooks<R> {
    /// The delivery state and the receiver of its wake-ups (for [`dispatcher`]).
    pub(crate) fn new(
        runtime: R,
        config: WebhookConfig,
        endpoint: Endpoint,
        seed: u64,
    ) -> (Webhooks<R>, mpsc::Receiver<()>) {
        let (wake, woken) = mpsc::channel(1);
        let webhooks = Webhooks {
            config,
            endpoint,
            transport: H1Transport::new(runtime),
            state: Mutex::new(State::default()),
            wake,
            rng: Mutex::new(Rng::from_seed(seed ^ 0x7765_6268_6f6f_6b73)),
            counters: WebhookCounters::default(),
        };
        (webhooks, woken)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a publish (called by the driver with the hub locked: it only touches this state and never blocks).
    pub(crate) fn on_published(&self, channel: &ChannelName, offset: u64) {
        if !self.config.matches(channel.as_str()) {
            return;
        }
        let mut state = self.lock();
        match state.pending.get_mut(channel) {
            Some(cursor) => cursor.latest = cursor.latest.max(offset),
            None => {
                state.pending.insert(
                    channel.clone(),
                    Cursor {
                        done: offset.saturating_sub(1),
                        latest: offset,
                    },
                );
                state.ready.push_back(channel.clone());
            }
        }
        drop(state);
        // Full means a wake-up is already pending.
        let _ = self.wake.clone().try_send(());
    }

    /// Events published and not yet handled, over all channels.
    fn backlog(&self) -> u64 {
        self.lock()
            .pending
            .values()
            .map(|c| c.latest.saturating_sub(c.done))
            .sum()
    }

    /// Appends the webhook metrics in the Prometheus text format.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        let c = &self.counters;
        let rows = [
            (
                "switchboard_webhook_deliveries_total",
                "counter",
                "Events delivered to the webhook (2xx).",
                c.delivered.load(Ordering::Relaxed),
            ),
            (
                "switchboard_webhook_failures_total",
                "counter",
                "Events given up on after the retry policy's attempts or a non-retryable answer.",
                c.failures.load(Ordering::Relaxed),
            ),
            (
                "switchboard_webhook_skipped_total",
                "counter",
                "Events that left the history before they could be delivered.",
                c.skipped.load(Ordering::Relaxed),
            ),
            (
                "switchboard_webhook_retries_total",
                "counter",
                "Webhook requests sent again after a failed attempt.",
                c.retries.load(Ordering::Relaxed),
            ),
            (
                "switchboard_webhook_backlog",
                "gauge",
                "Events published on webhook channels and not yet delivered or given up on.",
                self.backlog(),
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }

    /// Takes the next ready channel for a worker; `None` retires the worker.
    fn take_ready(&self) -> Option<(ChannelName, u64, u64)> {
        let mut state = self.lock();
        loop {
            let Some(channel) = state.ready.pop_front() else {
                state.workers -= 1;
                return None;
            };
            if let Some(cursor) = state.pending.get(&channel) {
                return Some((channel.clone(), cursor.done, cursor.latest));
            }
        }
    }

    /// Records that every offset up to `done` is handled; requeues the channel if more is pending.
    fn finish_step(&self, channel: ChannelName, done: u64) {
        let mut state = self.lock();
        let Some(cursor) = state.pending.get_mut(&channel) else {
            return;
        };
        cursor.done = cursor.done.max(done);
        if cursor.done >= cursor.latest {
            state.pending.remove(&channel);
        } else {
            state.ready.push_back(channel);
        }
    }
}

/// Starts workers while channels are ready and fewer than `max_concurrent` run. Ends with the server.
pub(crate) async fn dispatcher<R: Runtime>(shared: Weak<Shared<R>>, mut woken: mpsc::Receiver<()>) {
    while woken.next().await.is_some() {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let Some(webhooks) = strong.webhooks.as_ref() else {
            return;
        };
        let max = webhooks.config.max_concurrent.max(1);
        let mut state = webhooks.lock();
        let start = state.ready.len().min(max.saturating_sub(state.workers));
        state.workers += start;
        drop(state);
        for _ in 0..start {
            strong
                .runtime
                .spawn(Box::pin(worker(Arc::downgrade(&strong))));
        }
    }
}

/// Delivers one event of one ready channel at a time, until no channel is ready or the server is gone.
async fn worker<R: Runtime>(shared: Weak<Shared<R>>) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let Some(webhooks) = strong.webhooks.as_ref() else {
            return;
        };
        let Some((channel, done, latest)) = webhooks.take_ready() else {
            return;
        };
        let (epoch, next) = strong.read(|core, now| {
            let page = core.hub.history(now, &channel, Some(done), 1);
            (page.epoch, page.events.into_iter().next())
        });
        let runtime = strong.runtime.clone();
        let (config, endpoint, transport) = (
            webhooks.config.clone(),
            webhooks.endpoint.clone(),
            webhooks.transport.clone(),
        );
        let rng = webhooks
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fork();
        drop(strong);
        let handled = match next {
            None => {
                // Everything up to `latest` has left the history.
                skipped(&shared, &channel, done + 1, latest);
                latest
            }
            Some((offset, event)) => {
                if offset > done + 1 {
                    skipped(&shared, &channel, done + 1, offset - 1);
                }
                let body = json!({
                    "type": "channel_event",
                    "channel": channel.as_str(),
                    "epoch": epoch,
                    "offset": offset,
                    "event": event,
                });
                let result = deliver(&runtime, &transport, &endpoint, &config, rng, &body).await;
                let Some(strong) = shared.upgrade() else {
                    return;
                };
                let Some(webhooks) = strong.webhooks.as_ref() else {
                    return;
                };
                match result {
                    Ok(retries) => {
                        webhooks
                            .counters
                            .retries
                            .fetch_add(retries, Ordering::Relaxed);
                        webhooks.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err((retries, why)) => {
                        webhooks
                            .counters
                            .retries
                            .fetch_add(retries, Ordering::Relaxed);
                        webhooks.counters.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(channel = %channel, offset, url = %config.url, %why, "webhook delivery given up");
                    }
                }
                offset
            }
        };
        let Some(strong) = shared.upgrade() else {
            return;
        };
        if let Some(webhooks) = strong.webhooks.as_ref() {
            webhooks.finish_step(channel, handled);
        }
    }
}

fn skipped<R: Runtime>(shared: &Weak<Shared<R>>, channel: &ChannelName, from: u64, to: u64) {
    if to < from {
        return;
    }
    if let Some(webhooks) = shared.upgrade().as_ref().and_then(|s| s.webhooks.as_ref()) {
        webhooks
            .counters
            .skipped
            .fetch_add(to - from + 1, Ordering::Relaxed);
    }
    tracing::warn!(channel = %channel, from, to, "webhook events left the history before delivery; skipped");
}

/// POSTs `body` until it is delivered or the retry machine gives up. `Ok(retries)` or `Err((retries, why))`.
async fn deliver<R: Runtime>(
    runtime: &R,
    transport: &H1Transport<R>,
    endpoint: &Endpoint,
    config: &WebhookConfig,
    rng: Rng,
    body: &Value,
) -> Result<u64, (u64, String)> {
    let body = body.to_string();
    // Receivers deduplicate by (epoch, channel, offset): a repeated delivery is harmless, so every failure the
    // policy lists is retried.
    let mut retry = RetryState::new(Method::Post, &config.retry, rng).assume_idempotent(true);
    let mut budget = RetryBudget::unlimited();
    let mut retries = 0;
    loop {
        let t = runtime.now().as_micros() / 1_000_000;
        let target = match endpoint.base_path() {
            "" => "/",
            path => path,
        };
        let request = RequestParts::new(Method::Post, target)
            .with_header(
                SIGNATURE_HEADER,
                sign_webhook(&config.secret, t, body.as_bytes()),
            )
            .with_body("application/json", body.as_bytes());
        let (outcome, why) = match transport.send(endpoint, &request, config.timeout).await {
            Ok(response) => (
                Outcome::from_response(response.status, response.header("Retry-After")),
                format!("status {}", response.status),
            ),
            Err(e) if !e.is_retryable() => return Err((retries, e.to_string())),
            Err(e) => (e.outcome(), e.to_string()),
        };
        match retry.on_outcome(runtime.now(), outcome, &mut budget) {
            Decision::Done => {
                return match outcome {
                    Outcome::Response { status, .. } if (200..300).contains(&status) => Ok(retries),
                    _ => Err((retries, format!("{why}, not retried"))),
                };
            }
            Decision::RetryAt(at) => {
                tracing::debug!(%why, attempt = retry.attempts(), "webhook attempt failed; retrying");
                retries += 1;
                runtime.sleep_until(at).await;
            }
            Decision::GiveUp { reason } => {
                return Err((retries, format!("{why}; {reason}")));
            }
        }
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
