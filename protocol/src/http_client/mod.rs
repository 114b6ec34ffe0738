//! Sans-IO HTTP client logic: every decision a REST client makes, none of its IO.
//!
//! The async `HttpClient` (in the runtime crate) moves bytes and sleeps; these machines decide. Like the rest of the
//! crate they read no clock (`now: Timestamp` comes in), draw no OS randomness (an [`Rng`](crate::rng::Rng) seeded
//! from config comes in) and do no IO, so a client's whole behaviour replays from its inputs.
//!
//! | piece | decides |
//! |---|---|
//! | [`RequestParts`], [`Method`] | what a request is before it is bytes; idempotency; cache keys; encoded paths |
//! | [`RetryPolicy`], [`RetryState`] | whether and when to resend a request (backoff from [`crate::backoff`]) |
//! | [`RetryAfter`] | the delay a `Retry-After` header asks for (delta-seconds or any HTTP-date form) |
//! | [`RetryBudget`] | when a client has retried too much (AWS standard-mode token bucket) |
//! | [`SlidingWindow`] | when the next request may go (N per window, exact) |
//! | [`ResponseCache`] | which `GET` responses are still fresh, and what a write makes stale |
//! | [`PagePaginator`], [`CursorPaginator`] | which page to fetch next and when the walk ends |
//! | [`ApiError`] | what a failed response means, from its status and body |
//! | [`RequestMetrics`] | counts, rates, mean and p95 latency, cache hit rate |
//!
//! Each piece is its own module, whose docs state its rules exactly; every public item is also re-exported here.
//!
//! # One call, step by step
//!
//! What the async client does for `GET` (this example runs it against a scripted server in virtual time):
//!
//! 1. Look in the [`ResponseCache`]; a fresh entry is the answer.
//! 2. Ask the [`SlidingWindow`] for a slot; if refused, sleep until the time it gives.
//! 3. Send. Report the outcome to the [`RetryState`] (with the shared [`RetryBudget`]).
//! 4. On [`Decision::RetryAt`], sleep until then and go back to 2. On [`Decision::Done`] with a 2xx, cache and return
//!    the body; otherwise return the [`ApiError`] of the last outcome.
//! 5. Record the call in [`RequestMetrics`].
//!
//! ```
//! use core::time::Duration;
//! use switchboard_protocol::http_client::{
//!     ApiError, CallOutcome, Decision, Method, Outcome, RequestMetrics, RequestParts, ResponseCache,
//!     RetryBudget, RetryPolicy, RetryState, SlidingWindow,
//! };
//! use switchboard_protocol::rng::Rng;
//! use switchboard_protocol::time::Timestamp;
//!
//! let policy = RetryPolicy::default();
//! let mut budget = RetryBudget::default();
//! let mut limiter = SlidingWindow::new(10, Duration::from_secs(1));
//! let mut cache = ResponseCache::new(100);
//! let mut metrics = RequestMetrics::default();
//! let mut client_rng = Rng::from_seed(42);
//!
//! // The scripted server: a 503 asking for 2 s, then the answer.
//! let mut replies = vec![(503, Some("2"), &b""[..]), (200, None, &br#"{"name":"switchboard"}"#[..])].into_iter();
//!
//! let request = RequestParts::new(Method::Get, "/api/info");
//! let key = request.cache_key().expect("GET is cacheable");
//! let start = Timestamp::from_millis(1_000);
//! let mut now = start;
//!
//! // 1. The cache.
//! assert!(cache.get(now, &key).is_none());
//! metrics.record_cache_miss();
//!
//! let mut retry = RetryState::new(request.method, &policy, client_rng.fork());
//! let result: Result<Vec<u8>, ApiError> = loop {
//!     // 2. The limiter.
//!     if let Err(wait) = limiter.try_acquire(now) {
//!         now = wait.0;
//!         continue;
//!     }
//!     // 3. Send (here: take the next scripted reply) and decide.
//!     let (status, retry_after, body) = replies.next().expect("the script has a reply");
//!     match retry.on_outcome(now, Outcome::from_response(status, retry_after), &mut budget) {
//!         // 4.
//!         Decision::RetryAt(at) => {
//!             metrics.record_retry();
//!             now = at;
//!         }
//!         Decision::Done if (200..300).contains(&status) => break Ok(body.to_vec()),
//!         Decision::Done | Decision::GiveUp { .. } => {
//!             let retry_after = retry_after.and_then(|v| v.parse().ok());
//!             break Err(ApiError::from_response(status, body, retry_after));
//!         }
//!     }
//! };
//!
//! let body = result.expect("the second attempt succeeds");
//! assert_eq!(now - start, Duration::from_secs(2)); // Retry-After, not the backoff, set the wait
//! cache.insert(now, key.clone(), body, Duration::from_secs(30));
//! // 5.
//! metrics.record(now - start, CallOutcome::Success);
//!
//! // The next identical call within 30 s is answered from the cache.
//! assert!(cache.get(now + Duration::from_secs(29), &key).is_some());
//! metrics.record_cache_hit();
//! let s = metrics.snapshot();
//! assert_eq!((s.total, s.retries, s.cache_hit_rate), (1, 1, Some(0.5)));
//! assert_eq!(budget.tokens(), 500); // the retry's tokens were refunded by the success
//! ```

pub mod budget;
pub mod cache;
pub mod error;
pub mod metrics;
pub mod pagination;
pub mod rate_limit;
pub mod request;
pub mod retry;
pub mod retry_after;

pub use budget::{BudgetConfig, BudgetExhausted, RetryBudget, RetryKind};
pub use cache::{CacheStats, ResponseCache};
pub use error::{ApiError, ErrorResponse, MAX_MESSAGE_BYTES};
pub use metrics::{CallOutcome, DEFAULT_WINDOW, MetricsSnapshot, RequestMetrics};
pub use pagination::{
    CursorPage, CursorPaginator, CursorRequest, PagePaginator, PageRequest, PaginationError,
};
pub use rate_limit::{SlidingWindow, WaitUntil};
pub use request::{Method, RequestParts, UnknownMethod, cache_key, encode_path_segment};
pub use retry::{
    Decision, GiveUpReason, Outcome, OverlongRetryAfter, RetryPolicy, RetryPolicyError, RetryState,
    StatusSet,
};
pub use retry_after::{DateForm, HttpDate, RetryAfter, RetryAfterError};
