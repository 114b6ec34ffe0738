//! Watching a resource until it reaches a terminal state: [`Watch`] polls `GET route` at an interval, calls
//! back when the resource changes, and returns it once a predicate says it is done.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use switchboard_runtime::Runtime;
//! # use switchboard_runtime::sdk::{ApiClient, WatchError};
//! #[derive(serde::Deserialize, Debug)]
//! struct Job { status: String }
//!
//! # async fn demo<R: Runtime>(client: ApiClient<R>) -> Result<(), WatchError> {
//! let job: Job = client
//!     .watch("/api/v1/jobs/7")
//!     .interval(Duration::from_millis(500))
//!     .until(|job: &Job| job.status == "succeeded" || job.status == "failed")
//!     .on_change(|job: &Job| println!("now {}", job.status))
//!     .wait_for_completion(Duration::from_secs(60))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The rules:
//!
//! - Every poll asks the server (the response cache is not read), through the client's retries and limiter.
//! - `on_change` runs for the first answer and for every answer whose JSON differs from the previous one, before
//!   the terminal check, so it also sees the terminal state.
//! - A poll that fails with a [retryable](ApiError::is_retryable) error, after the client's own retries, is
//!   tolerated up to [`max_consecutive_errors`](Watch::max_consecutive_errors) times in a row (3 by default); any
//!   other error, or one too many, ends the watch with [`WatchError::Api`].
//! - [`wait_for_completion`](Watch::wait_for_completion) stops at its timeout, also in the middle of a request, with
//!   [`WatchError::TimedOut`]; [`run`](Watch::run) has no timeout of its own.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_protocol::http_client::{ApiError, Method, RequestParts};
use switchboard_protocol::time::Timestamp;

use super::api_client::{ApiClient, CallMode, decode, invalid_response};
use crate::runtime::Runtime;

/// Why a watch ended without a terminal state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// A poll failed (see the [module docs](self) for which failures are tolerated).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The timeout passed first.
    #[error("no terminal state after {polls} polls in {timeout:?}")]
    TimedOut {
        /// The timeout.
        timeout: Duration,
        /// Polls that got an answer.
        polls: u32,
        /// The last answer, if any.
        last: Option<Value>,
    },
}

type Predicate<T> = Box<dyn FnMut(&T) -> bool + Send>;
type Callback<T> = Box<dyn FnMut(&T) + Send>;

/// A poll loop over one resource (see the [module docs](self)).
pub struct Watch<R: Runtime, T> {
    client: ApiClient<R>,
    route: String,
    interval: Duration,
    max_consecutive_errors: u32,
    is_terminal: Predicate<T>,
    on_change: Option<Callback<T>>,
    _t: PhantomData<fn() -> T>,
}

impl<R: Runtime, T> fmt::Debug for Watch<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("route", &self.route)
            .field("interval", &self.interval)
            .field("max_consecutive_errors", &self.max_consecutive_errors)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> ApiClient<R> {
    /// A watch of `GET route`: every second, never terminal until [`until`](Watch::until) says.
    pub fn watch<T: DeserializeOwned + Send + 'static>(
        &self,
        route: impl Into<String>,
    ) -> Watch<R, T> {
        Watch {
            client: self.clone(),
            route: route.into(),
            interval: Duration::from_secs(1),
            max_consecutive_errors: 3,
            is_terminal: Box::new(|_| false),
            on_change: None,
            _t: PhantomData,
        }
    }
}

impl<R: Runtime, T: DeserializeOwned + Send + 'static> Watch<R, T> {
    /// Time from the end of one poll to the start of the next.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The terminal-state test.
    pub fn until(mut self, is_terminal: impl FnMut(&T) -> bool + Send + 'static) -> Self {
        self.is_terminal = Box::new(is_terminal);
        self
    }

    /// Called with every changed answer (see the [module docs](self)).
    pub fn on_change(mut self, callback: impl FnMut(&T) + Send + 'static) -> Self {
        self.on_change = Some(Box::new(callback));
        self
    }

    /// Retryable failures in a row that are tolerated (0: none).
    pub fn max_consecutive_errors(mut self, errors: u32) -> Self {
        self.max_consecutive_errors = errors;
        self
    }

    /// Polls until the terminal state, with no timeout of its own.
    pub async fn run(self) -> Result<T, WatchError> {
        self.poll_until(None).await
    }

    /// Polls until the terminal state or until `timeout` has passed.
    pub async fn wait_for_completion(self, timeout: Duration) -> Result<T, WatchError> {
        let deadline = self.client.runtime().now().saturating_add(timeout);
        self.poll_until(Some((deadline, timeout))).await
    }

    async fn poll_until(
        mut self,
        deadline: Option<(Timestamp, Duration)>,
    ) -> Result<T, WatchError> {
        let runtime = self.client.runtime().clone();
        let mut last: Option<Value> = None;
        let mut polls = 0u32;
        let mut errors = 0u32;
        let timed_out = |polls, last| {
            let (_, timeout) = deadline.expect("only with a deadline");
            WatchError::TimedOut {
                timeout,
                polls,
                last,
            }
        };
        loop {
            let request = RequestParts::new(Method::Get, self.route.clone());
            let poll = self.client.call(request, CallMode::FRESH);
            let answer = match deadline {
                None => Some(poll.await),
                Some((at, _)) => {
                    let timer = runtime.sleep_until(at);
                    futures_lite::future::or(async { Some(poll.await) }, async {
                        timer.await;
                        None
                    })
                    .await
                }
            };
            let Some(answer) = answer else {
                return Err(timed_out(polls, last));
            };
            match answer.and_then(|response| {
                let value: Value = decode(&response)?;
                let typed = serde_json::from_value::<T>(value.clone())
                    .map_err(|e| invalid_response(&response, &e))?;
                Ok((value, typed))
            }) {
                Ok((value, typed)) => {
                    polls += 1;
                    errors = 0;
                    if last.as_ref() != Some(&value) {
                        if let Some(cb) = self.on_change.as_mut() {
                            cb(&typed);
                        }
                        last = Some(value);
                    }
                    if (self.is_terminal)(&typed) {
                        return Ok(typed);
                    }
                }
                Err(e) if e.is_retryable() && errors < self.max_consecutive_errors => errors += 1,
                Err(e) => return Err(e.into()),
            }
            let next = runtime.now().saturating_add(self.interval);
            match deadline {
                Some((at, _)) if at <= next => {
                    runtime.sleep_until(at).await;
                    return Err(timed_out(polls, last));
                }
                _ => runtime.sleep_until(next).await,
            }
        }
    }
}
