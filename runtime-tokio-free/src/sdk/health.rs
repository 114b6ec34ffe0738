//! Server health: the [`HealthReport`] of `GET /health` ([`ApiClient::health_check`]) and a [`HealthMonitor`]
//! that checks it at an interval and calls back on transitions.
//!
//! The monitor's states are *unknown* (before the first check), *healthy* and *unhealthy*. A check passes when
//! `/health` answers 2xx with `"status": "healthy"`; it fails on any error or another status. The monitor turns
//! unhealthy after [`failure_threshold`](HealthMonitor::failure_threshold) failures in a row (1 by default; more
//! rides out a single lost request) and healthy after one pass. Callbacks run only on transitions, including the
//! first from *unknown*: `on_healthy` with the report, `on_unhealthy` with the last error.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_channel::oneshot;
use serde::Deserialize;
use switchboard_protocol::http_client::ApiError;

use super::api_client::ApiClient;
use crate::runtime::Runtime;

/// The body of `GET /health` (PROTOCOL §7: `{"status":"healthy","version":…}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// `"healthy"` when all is well.
    pub status: String,
    /// The server's version, when it says.
    #[serde(default)]
    pub version: Option<String>,
}

impl HealthReport {
    /// Whether the status is `"healthy"`.
    pub fn is_healthy(&self) -> bool {
        self.status == "healthy"
    }
}

/// Why a health check failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// The check got no usable answer.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The server answered with another status than `"healthy"`.
    #[error("server reports status {0:?}")]
    NotHealthy(String),
}

type OnHealthy = Box<dyn FnMut(&HealthReport) + Send>;
type OnUnhealthy = Box<dyn FnMut(&HealthError) + Send>;

/// Checks `/health` at an interval on a background task (see the [module docs](self)).
///
/// Configure with [`interval`](Self::interval), [`failure_threshold`](Self::failure_threshold),
/// [`on_healthy`](Self::on_healthy), [`on_unhealthy`](Self::on_unhealthy), then [`start`](Self::start); the
/// returned [`HealthMonitorHandle`] stops the task when stopped or dropped.
pub struct HealthMonitor<R: Runtime> {
    client: ApiClient<R>,
    interval: Duration,
    failure_threshold: u32,
    on_healthy: Option<OnHealthy>,
    on_unhealthy: Option<OnUnhealthy>,
}

impl<R: Runtime> fmt::Debug for HealthMonitor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthMonitor")
            .field("interval", &self.interval)
            .field("failure_threshold", &self.failure_threshold)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> HealthMonitor<R> {
    /// A monitor of `client`'s server: every 30 s, unhealthy after one failure, no callbacks yet.
    pub fn new(client: ApiClient<R>) -> Self {
        HealthMonitor {
            client,
            interval: Duration::from_secs(30),
            failure_threshold: 1,
            on_healthy: None,
            on_unhealthy: None,
        }
    }

    /// Time between the end of one check and the start of the next.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Failures in a row before turning unhealthy (0 is taken as 1).
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures.max(1);
        self
    }

    /// Called when the server turns healthy.
    pub fn on_healthy(mut self, callback: impl FnMut(&HealthReport) + Send + 'static) -> Self {
        self.on_healthy = Some(Box::new(callback));
        self
    }

    /// Called when the server turns unhealthy, with the failure that tipped it.
    pub fn on_unhealthy(mut self, callback: impl FnMut(&HealthError) + Send + 'static) -> Self {
        self.on_unhealthy = Some(Box::new(callback));
        self
    }

    /// Starts checking on a task of the client's runtime.
    pub fn start(self) -> HealthMonitorHandle {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let healthy = Arc::new(AtomicBool::new(false));
        let runtime = self.client.runtime().clone();
        runtime.spawn(Box::pin(self.run(stop_rx, Arc::clone(&healthy))));
        HealthMonitorHandle {
            stop: Some(stop_tx),
            healthy,
        }
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>, healthy_flag: Arc<AtomicBool>) {
        let mut state: Option<bool> = None;
        let mut failures = 0u32;
        loop {
            let check =
                futures_lite::future::or(async { Some(check(&self.client).await) }, async {
                    let _ = (&mut stop).await;
                    None
                });
            let Some(result) = check.await else { return };
            match result {
                Ok(report) => {
                    failures = 0;
                    if state != Some(true) {
                        state = Some(true);
                        healthy_flag.store(true, Ordering::Relaxed);
                        if let Some(cb) = self.on_healthy.as_mut() {
                            cb(&report);
                        }
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if failures >= self.failure_threshold && state != Some(false) {
                        state = Some(false);
                        healthy_flag.store(false, Ordering::Relaxed);
                        if let Some(cb) = self.on_unhealthy.as_mut() {
                            cb(&error);
                        }
                    }
                }
            }
            let rt = self.client.runtime();
            let wake = rt.now().saturating_add(self.interval);
            let sleep = rt.sleep_until(wake);
            let stopped = futures_lite::future::or(
                async {
                    sleep.await;
                    false
                },
                async {
                    let _ = (&mut stop).await;
                    true
                },
            );
            if stopped.await {
                return;
            }
        }
    }
}

async fn check<R: Runtime>(client: &ApiClient<R>) -> Result<HealthReport, HealthError> {
    let report = client.health_check().await?;
    if report.is_healthy() {
        Ok(report)
    } else {
        Err(HealthError::NotHealthy(report.status))
    }
}

/// Controls a started [`HealthMonitor`]; dropping it stops the monitor.
#[derive(Debug)]
pub struct HealthMonitorHandle {
    stop: Option<oneshot::Sender<()>>,
    healthy: Arc<AtomicBool>,
}

impl HealthMonitorHandle {
    /// Whether the last transition was to healthy (`false` before the first check completes).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Stops the monitor: no check starts and no callback runs after the one in progress, if any.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for HealthMonitorHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}
