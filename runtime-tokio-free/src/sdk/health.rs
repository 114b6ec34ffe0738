//! Server health as `GET /health` reports it: the [`HealthReport`]
//! ([`ApiClient::health_check`](super::ApiClient::health_check)) and the [`HealthError`] of a check that did not
//! pass. The [`HealthMonitor`](super::HealthMonitor) repeats the check.

use serde::Deserialize;
use switchboard_protocol::http_client::ApiError;

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
