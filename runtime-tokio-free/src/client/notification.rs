//! [`Notification`]: a `notification` the server sent this client, as every [`Feed`](super::Feed) of them yields it.

use serde_json::Value;

/// A `notification` from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// What kind.
    pub notification_type: String,
    /// Human text.
    pub message: Option<String>,
    /// Anything else.
    pub additional_data: Option<Value>,
}
