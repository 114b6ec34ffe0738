//! [`ConfigError`]: why an [`ApiConfig`](super::ApiConfig) or a base URL ([`Endpoint`](super::Endpoint)) was
//! refused.

use switchboard_protocol::http_client::RetryPolicyError;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL cannot be used.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An environment variable is malformed.
    #[error("invalid {name}={value:?}: expected {expected}")]
    InvalidEnv {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// A setting is out of range.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The [`ApiConfig`](super::ApiConfig) field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The retry policy is invalid.
    #[error(transparent)]
    Retry(#[from] RetryPolicyError),
}
