//! The machine's [`ClientEvent`]s as JSON objects with a `kind`, the form the Python driver reads them in.
//!
//! Plain Rust with no Python in it, so the mapping is unit-tested without an interpreter. Every field keeps the
//! wire's name; durations become milliseconds.

use serde_json::{Map, Value, json};
use switchboard_protocol::client::{ClientEvent, FailReason, ReconnectGiveUpReason};

/// One event as `{"kind": ..., ...}`.
pub fn event_json(event: ClientEvent) -> Value {
    match event {
        ClientEvent::Connected { app_id } => json!({"kind": "connected", "app_id": app_id}),
        ClientEvent::Response { id, message } => json!({
            "kind": "response",
            "id": id.as_str(),
            "type": message.type_name(),
            // The message is `#[serde(untagged)]`: its value is the frame's `data`.
            "data": serde_json::to_value(&message).unwrap_or(Value::Null),
        }),
        ClientEvent::RequestFailed { id, reason } => json!({
            "kind": "request_failed",
            "id": id.as_str(),
            "reason": fail_reason_json(&reason),
        }),
        ClientEvent::ChannelEvent {
            channel,
            epoch,
            offset,
            event,
        } => json!({
            "kind": "channel_event",
            "channel": channel.as_str(),
            "epoch": epoch,
            "offset": offset,
            "event": event,
        }),
        ClientEvent::Resync { channel } => json!({"kind": "resync", "channel": channel.as_str()}),
        ClientEvent::SubscriptionLost { channel, reason } => json!({
            "kind": "subscription_lost",
            "channel": channel.as_str(),
            "reason": fail_reason_json(&reason),
        }),
        ClientEvent::ServeLost { channel, reason } => json!({
            "kind": "serve_lost",
            "channel": channel.as_str(),
            "reason": fail_reason_json(&reason),
        }),
        ClientEvent::TokenExpiring { expires_in } => json!({
            "kind": "token_expiring",
            "expires_in_ms": millis(expires_in),
        }),
        ClientEvent::ServerRequest {
            id,
            request_type,
            data,
        } => json!({
            "kind": "server_request",
            "id": id.as_str(),
            "request_type": request_type,
            "data": Value::Object(data),
        }),
        ClientEvent::CallRequest {
            id,
            channel,
            method,
            params,
            caller,
        } => json!({
            "kind": "call_request",
            "id": id.as_str(),
            "channel": channel.as_str(),
            "method": method,
            "params": params,
            "caller": caller.map_or(Value::Null, |c| c.to_value()),
        }),
        ClientEvent::Notification {
            notification_type,
            message,
            additional_data,
        } => json!({
            "kind": "notification",
            "notification_type": notification_type,
            "message": message,
            "additional_data": additional_data,
        }),
        ClientEvent::ServerError {
            id,
            code,
            message,
            details,
        } => json!({
            "kind": "server_error",
            "id": id.as_ref().map(|id| id.as_str()),
            "code": code.as_str(),
            "message": message,
            "details": details,
        }),
        ClientEvent::Disconnected { code, reason } => json!({
            "kind": "disconnected",
            "code": code.as_u16(),
            "reason": reason,
        }),
        ClientEvent::Reconnecting { attempt, delay } => json!({
            "kind": "reconnecting",
            "attempt": attempt,
            "delay_ms": millis(delay),
        }),
        ClientEvent::GaveUp { reason } => json!({
            "kind": "gave_up",
            "reason": give_up_json(&reason),
        }),
        ClientEvent::ProtocolViolation { violation } => json!({
            "kind": "protocol_violation",
            "description": format!("{violation:?}"),
        }),
        other => json!({"kind": "other", "description": format!("{other:?}")}),
    }
}

/// Why a request ended without an answer: `{"kind": "timed_out" | "disconnected" | "queue_full" | "closed"}`, or
/// `{"kind": "error", "code", "message", "details"}` for the server's refusal.
pub fn fail_reason_json(reason: &FailReason) -> Value {
    match reason {
        FailReason::TimedOut => json!({"kind": "timed_out"}),
        FailReason::Disconnected => json!({"kind": "disconnected"}),
        FailReason::Error {
            code,
            message,
            details,
        } => json!({
            "kind": "error",
            "code": code.as_str(),
            "message": message,
            "details": details,
        }),
        FailReason::QueueFull => json!({"kind": "queue_full"}),
        FailReason::Closed => json!({"kind": "closed"}),
        other => json!({"kind": "other", "description": format!("{other:?}")}),
    }
}

/// Why the machine stopped reconnecting.
fn give_up_json(reason: &ReconnectGiveUpReason) -> Value {
    let (kind, text) = match reason {
        ReconnectGiveUpReason::PolicyViolation { reason } => ("policy_violation", reason.clone()),
        ReconnectGiveUpReason::Rejected { reason } => ("rejected", reason.clone()),
        ReconnectGiveUpReason::RetriesExhausted => (
            "retries_exhausted",
            String::from("the reconnect schedule ran out"),
        ),
        other => ("other", format!("{other:?}")),
    };
    let mut out = Map::new();
    out.insert("kind".into(), Value::from(kind));
    out.insert("reason".into(), Value::from(text));
    Value::Object(out)
}

fn millis(d: core::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
