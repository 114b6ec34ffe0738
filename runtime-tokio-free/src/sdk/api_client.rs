//! [`ApiClient`]: the async REST client. It runs every call through the `switchboard_protocol::http_client` machines
//! and a [`HttpTransport`]:
//!
//! 1. **Cache** (`GET` only, when configured): a fresh [`ResponseCache`] entry is the answer.
//! 2. **Rate limit** (when configured): wait until the [`SlidingWindow`] has a slot. Every attempt takes one,
//!    retries included, since each reaches the server.
//! 3. **Send** with the per-attempt timeout, and report the outcome to the call's [`RetryState`] with the
//!    client-wide [`RetryBudget`].
//! 4. **Retry** at the time the decision names (the `Retry-After` of a 429 or 503, or the jittered backoff), going
//!    back to 2; or **finish**: a 2xx is the answer (cached if it was a `GET`), anything else becomes an
//!    [`ApiError`].
//! 5. **Record** the call in [`RequestMetrics`]; a write (`POST`, `PUT`, `PATCH`, `DELETE`) invalidates the cached
//!    responses it can have changed ([`ResponseCache::invalidate_write`]) whatever its outcome, since even a
//!    failed write may have been applied.
//!
//! Transport failures that would fail again the same way (an invalid request, an oversized or malformed response,
//! `https` on a transport without TLS) end the call at once, unretried.
//!
//! Routes are origin-form paths (`/api/v1/channels/x/events?limit=10`) under the base URL's path; encode dynamic
//! segments with [`encode_path_segment`](switchboard_protocol::http_client::encode_path_segment).
//!
//! # Errors
//!
//! Every call fails with the core's [`ApiError`]: the class of an error status, [`ApiError::Transport`] or
//! [`ApiError::Timeout`] when there was no response. A 2xx response whose body is not the JSON the caller asked
//! for is [`ApiError::Other`] with its status, the code [`INVALID_RESPONSE`] and serde's message. A request body that
//! cannot be encoded as JSON (a map with non-string keys) fails before anything is sent, as
//! [`ApiError::Transport`] with serde's message.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::http_client::{
    ApiError, CacheStats, CallOutcome, Decision, ErrorResponse, Method, MetricsSnapshot, Outcome,
    RequestMetrics, RequestParts, ResponseCache, RetryAfter, RetryBudget, RetryPolicy, RetryState,
    SlidingWindow,
};
use switchboard_protocol::rng::Rng;

use super::config::ApiConfig;
use super::config_error::ConfigError;
use super::endpoint::Endpoint;
use super::h1::H1Transport;
use super::health::HealthReport;
use super::transport::{HttpTransport, Response};
use crate::runtime::Runtime;

/// The header carrying a write's idempotency key ([`ApiClient::idempotency_key`]).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// A seed from std's per-process random hash keys, mixed with the time.
fn process_seed() -> u64 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::collections::hash_map::RandomState::new().hash_one(nanos)
}

/// The error code of a 2xx response whose body did not decode as the expected JSON (see the
/// [module docs](self)).
pub const INVALID_RESPONSE: &str = "invalid_response";

/// The async REST client (see the [module docs](self)). Cheap to clone: clones share the transport, budget,
/// limiter, cache and metrics.
///
/// - **Build**: [`new`](Self::new) (the [`H1Transport`]), [`with_transport`](Self::with_transport).
/// - **JSON calls**: [`get`](Self::get), [`post`](Self::post), [`put`](Self::put), [`patch`](Self::patch),
///   [`delete`](Self::delete); any request: [`send`](Self::send), [`send_json`](Self::send_json).
/// - **APIs on top**: [`channels`](Self::channels), [`resource`](Self::resource),
///   [`health_check`](Self::health_check).
/// - **Look**: [`metrics`](Self::metrics), [`cache_stats`](Self::cache_stats),
///   [`budget_tokens`](Self::budget_tokens), [`limiter_waits`](Self::limiter_waits).
pub struct ApiClient<R: Runtime> {
    inner: Arc<Inner<R>>,
}

struct Inner<R> {
    runtime: R,
    transport: Arc<dyn HttpTransport>,
    endpoint: Endpoint,
    config: ApiConfig,
    state: Mutex<State>,
    limiter_waits: AtomicU64,
}

/// Everything calls share, behind one lock that is never held across an await.
struct State {
    budget: RetryBudget,
    limiter: Option<SlidingWindow>,
    cache: Option<ResponseCache<Response>>,
    metrics: RequestMetrics,
    rng: Rng,
    /// Draws idempotency keys. Seeded from the process's randomness, never from [`ApiConfig::seed`]: two clients
    /// with the same seed (the default one) must not send the same keys.
    keys: Rng,
}

/// How one call uses the shared machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallMode {
    /// Answer from the cache when fresh (the response is cached either way, if it is a `GET`).
    pub read_cache: bool,
    /// Apply the retry policy (else one attempt).
    pub retry: bool,
}

impl CallMode {
    pub(crate) const NORMAL: CallMode = CallMode {
        read_cache: true,
        retry: true,
    };
    pub(crate) const FRESH: CallMode = CallMode {
        read_cache: false,
        retry: true,
    };
    pub(crate) const PROBE: CallMode = CallMode {
        read_cache: false,
        retry: false,
    };
}

impl<R: Runtime> Clone for ApiClient<R> {
    fn clone(&self) -> Self {
        ApiClient {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R: Runtime> fmt::Debug for ApiClient<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("endpoint", &self.inner.endpoint.to_string())
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> ApiClient<R> {
    /// A client for `config` over the SDK's own HTTP/1.1 transport on `runtime`.
    pub fn new(runtime: R, config: ApiConfig) -> Result<Self, ConfigError> {
        let transport = H1Transport::new(runtime.clone());
        ApiClient::with_transport(runtime, config, transport)
    }

    /// A client for `config` over `transport` (time and sleeping still come from `runtime`).
    pub fn with_transport(
        runtime: R,
        config: ApiConfig,
        transport: impl HttpTransport,
    ) -> Result<Self, ConfigError> {
        ApiClient::with_shared_transport(runtime, config, Arc::new(transport))
    }

    /// [`with_transport`](Self::with_transport) with a transport already shared.
    pub fn with_shared_transport(
        runtime: R,
        config: ApiConfig,
        transport: Arc<dyn HttpTransport>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let endpoint = config.endpoint()?;
        let state = State {
            budget: config
                .budget
                .map_or_else(RetryBudget::unlimited, RetryBudget::new),
            limiter: config
                .rate_limit
                .map(|l| SlidingWindow::new(l.requests, l.window)),
            cache: config.cache.map(|c| ResponseCache::new(c.capacity)),
            metrics: RequestMetrics::new(config.metrics_window),
            rng: Rng::from_seed(config.seed),
            keys: Rng::from_seed(process_seed()),
        };
        Ok(ApiClient {
            inner: Arc::new(Inner {
                runtime,
                transport,
                endpoint,
                config,
                state: Mutex::new(state),
                limiter_waits: AtomicU64::new(0),
            }),
        })
    }

    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.inner.runtime
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The parsed base URL.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// `GET route`, decoded from JSON.
    pub async fn get<T: DeserializeOwned>(&self, route: &str) -> Result<T, ApiError> {
        self.send_json(RequestParts::new(Method::Get, route)).await
    }

    /// `POST route` with `body` as JSON, the answer decoded from JSON.
    pub async fn post<B, T>(&self, route: &str, body: &B) -> Result<T, ApiError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.send_json(json_request(Method::Post, route, body)?)
            .await
    }

    /// `PUT route` with `body` as JSON, the answer decoded from JSON.
    pub async fn put<B, T>(&self, route: &str, body: &B) -> Result<T, ApiError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.send_json(json_request(Method::Put, route, body)?)
            .await
    }

    /// `PATCH route` with `body` as JSON, the answer decoded from JSON.
    pub async fn patch<B, T>(&self, route: &str, body: &B) -> Result<T, ApiError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.send_json(json_request(Method::Patch, route, body)?)
            .await
    }

    /// `DELETE route`, the answer decoded from JSON (an empty body decodes as `null`: ask for `()`,
    /// `Option<_>` or a `Value`).
    pub async fn delete<T: DeserializeOwned>(&self, route: &str) -> Result<T, ApiError> {
        self.send_json(RequestParts::new(Method::Delete, route))
            .await
    }

    /// Sends `request` (its target a route under the base URL) and decodes the 2xx answer from JSON.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        request: RequestParts,
    ) -> Result<T, ApiError> {
        let response = self.send(request).await?;
        decode(&response)
    }

    /// Sends `request` (its target a route under the base URL) through the whole pipeline (see the
    /// [module docs](self)) and returns the 2xx response.
    pub async fn send(&self, request: RequestParts) -> Result<Response, ApiError> {
        self.call(request, CallMode::NORMAL).await
    }

    /// `GET /health` once: no cache, no retry, so it tells how the server is now.
    pub async fn health_check(&self) -> Result<HealthReport, ApiError> {
        let response = self
            .call(RequestParts::new(Method::Get, "/health"), CallMode::PROBE)
            .await?;
        decode(&response)
    }

    /// The request metrics: counts, rates, latencies, retries, cache hits.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.state().metrics.snapshot()
    }

    /// The response cache's counters, `None` without a cache.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.state().cache.as_ref().map(ResponseCache::stats)
    }

    /// Tokens left in the retry budget (`u32::MAX` when unlimited).
    pub fn budget_tokens(&self) -> u32 {
        self.state().budget.tokens()
    }

    /// Attempts that had to wait for the rate limiter.
    pub fn limiter_waits(&self) -> u64 {
        self.inner.limiter_waits.load(Ordering::Relaxed)
    }

    /// Drops cached responses for `route` and everything under it (see
    /// [`ResponseCache::invalidate_prefix`]); returns how many.
    pub fn invalidate(&self, route: &str) -> usize {
        let target = self.inner.endpoint.target(route);
        self.state()
            .cache
            .as_mut()
            .map_or(0, |c| c.invalidate_prefix(&target))
    }

    /// Drops every cached response.
    pub fn clear_cache(&self) {
        if let Some(cache) = self.state().cache.as_mut() {
            cache.clear();
        }
    }

    /// A fresh idempotency key (a random UUID) for one logical write: send it in the [`IDEMPOTENCY_KEY`] header,
    /// and the client retries the write even after a timeout or a 5xx, since the server publishes it once.
    pub fn idempotency_key(&self) -> String {
        switchboard_protocol::wire::MessageId::random(&mut self.state().keys).into_string()
    }

    /// Forgets the recorded metrics.
    pub fn reset_metrics(&self) {
        self.state().metrics.reset();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pipeline of the [module docs](self).
    pub(crate) async fn call(
        &self,
        mut request: RequestParts,
        mode: CallMode,
    ) -> Result<Response, ApiError> {
        let inner = &*self.inner;
        request.target = inner.endpoint.target(&request.target);
        self.add_default_headers(&mut request);
        let started = inner.runtime.now();

        // 1. The cache.
        let cache_key = request.cache_key();
        if let Some(key) = &cache_key {
            let mut state = self.state();
            let state = &mut *state;
            if let Some(cache) = state.cache.as_mut() {
                if mode.read_cache
                    && let Some(hit) = cache.get(started, key)
                {
                    let hit = hit.clone();
                    state.metrics.record_cache_hit();
                    return Ok(hit);
                }
                state.metrics.record_cache_miss();
            }
        }

        let policy;
        let policy = if mode.retry {
            &inner.config.retry
        } else {
            policy = RetryPolicy::no_retries();
            &policy
        };
        // A request with an idempotency key may be resent whatever happened to it: the server answers a resend with
        // what the first one did.
        let keyed = request.header(IDEMPOTENCY_KEY).is_some();
        let mut retry = RetryState::new(request.method, policy, self.state().rng.fork())
            .assume_idempotent(request.method.is_idempotent() || keyed);
        let result = loop {
            // 2. The limiter.
            self.acquire_slot().await;
            // 3. Send and decide.
            let sent = inner
                .transport
                .send(&inner.endpoint, &request, inner.config.timeout)
                .await;
            let outcome = match &sent {
                Ok(response) => {
                    Outcome::from_response(response.status, response.header("retry-after"))
                }
                Err(e) if e.is_retryable() => e.outcome(),
                Err(_) => break sent,
            };
            let now = inner.runtime.now();
            let decision = {
                let mut state = self.state();
                let decision = retry.on_outcome(now, outcome, &mut state.budget);
                if matches!(decision, Decision::RetryAt(_)) {
                    state.metrics.record_retry();
                }
                decision
            };
            // 4. Retry or finish.
            match decision {
                Decision::RetryAt(at) => inner.runtime.sleep_until(at).await,
                Decision::Done | Decision::GiveUp { .. } => break sent,
            }
        };

        // 5. Record, cache, invalidate.
        let now = inner.runtime.now();
        let latency = now.saturating_duration_since(started);
        let mut state = self.state();
        let state = &mut *state;
        if let (Some(cache), Some(path)) = (state.cache.as_mut(), request.invalidates()) {
            cache.invalidate_write(path);
        }
        match result {
            Ok(response) if response.is_success() => {
                state.metrics.record(latency, CallOutcome::Success);
                if let (Some(cache), Some(key), Some(config)) =
                    (state.cache.as_mut(), cache_key, inner.config.cache)
                {
                    cache.insert(now, key, response.clone(), config.ttl);
                }
                Ok(response)
            }
            Ok(response) => {
                state
                    .metrics
                    .record(latency, CallOutcome::Status(response.status));
                let retry_after = response
                    .header("retry-after")
                    .and_then(|v| RetryAfter::parse(v).ok());
                Err(ApiError::from_response(
                    response.status,
                    &response.body,
                    retry_after,
                ))
            }
            Err(e) => {
                let outcome = match e.outcome() {
                    Outcome::Timeout => CallOutcome::Timeout,
                    _ => CallOutcome::TransportError,
                };
                state.metrics.record(latency, outcome);
                Err(match outcome {
                    CallOutcome::Timeout => ApiError::Timeout,
                    _ => ApiError::transport(e),
                })
            }
        }
    }

    fn add_default_headers(&self, request: &mut RequestParts) {
        let config = &self.inner.config;
        let mut add = |name: &str, value: &str| {
            if request.header(name).is_none() {
                request.headers.push((name.to_owned(), value.to_owned()));
            }
        };
        add("accept", "application/json");
        add("user-agent", &config.user_agent);
        if let Some(token) = &config.token {
            add("authorization", &format!("Bearer {token}"));
        }
    }

    /// Waits until the rate limiter lets one attempt through (at once without a limiter).
    async fn acquire_slot(&self) {
        let mut waited = false;
        loop {
            let now = self.inner.runtime.now();
            let wait = match self.state().limiter.as_mut() {
                None => return,
                Some(limiter) => match limiter.try_acquire(now) {
                    Ok(()) => return,
                    Err(wait) => wait.0,
                },
            };
            if !waited {
                waited = true;
                self.inner.limiter_waits.fetch_add(1, Ordering::Relaxed);
            }
            self.inner.runtime.sleep_until(wait).await;
        }
    }
}

/// A request with `body` as JSON.
pub(crate) fn json_request<B: Serialize + ?Sized>(
    method: Method,
    route: &str,
    body: &B,
) -> Result<RequestParts, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(|e| {
        ApiError::transport(format_args!("request body cannot be encoded as JSON: {e}"))
    })?;
    Ok(RequestParts::new(method, route).with_body("application/json", bytes))
}

/// Decodes a 2xx response's JSON body; an empty body reads as `null`.
pub(crate) fn decode<T: DeserializeOwned>(response: &Response) -> Result<T, ApiError> {
    let body: &[u8] = if response.body.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &response.body
    };
    serde_json::from_slice(body).map_err(|e| invalid_response(response, &e))
}

/// The [`ApiError`] of a 2xx response the SDK could not use (see the [module docs](self)).
pub(crate) fn invalid_response(response: &Response, why: &dyn fmt::Display) -> ApiError {
    let mut error = ErrorResponse::parse(response.status, &response.body);
    error.code = Some(INVALID_RESPONSE.to_owned());
    error.message = Some(why.to_string());
    error.details = None;
    ApiError::Other(error)
}
