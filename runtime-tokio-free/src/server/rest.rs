//! The REST and health routes of PROTOCOL §5 and §7, answered from the hub.
//!
//! Choices where the contract is silent: the channel routes need a token when a verifier is configured (401
//! without, 403 when its permissions do not cover the channel: publish for `POST …/events`, subscribe for reading);
//! health, info, connections and metrics are open. `limit` defaults to 100 and is clamped to 1000; `since`
//! defaults to 0 (the oldest kept event).

use serde_json::{Value, json};
use switchboard_protocol::server::{Action, DialectKind, HubError, Permissions};
use switchboard_protocol::wire::{ChannelName, PROTOCOL_VERSION};

use super::driver::Shared;
use super::metrics;
use super::verifier::AuthError;
use switchboard_protocol::auth::AuthError as CoreAuthError;

/// The 401 text for every refused token, whatever the verifier said.
const PUBLIC_AUTH_MESSAGE: &str = CoreAuthError::PUBLIC_MESSAGE;
use crate::Runtime;
use crate::http::{ApiError, RequestHead, Response, Route};

/// Most events one history page holds.
pub const MAX_PAGE: usize = 1000;
/// Events per history page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 100;
/// Most app ids listed by `/api/connections`.
pub const MAX_LISTED_APPS: usize = 1000;

/// Answers a non-WebSocket route.
pub(crate) fn handle<R: Runtime>(
    shared: &Shared<R>,
    route: &Route,
    head: &RequestHead,
    body: &[u8],
    peer: Option<std::net::IpAddr>,
) -> Response {
    match answer(shared, route, head, body, peer) {
        Ok(response) => response,
        Err(error) => Response::error(&error),
    }
}

fn answer<R: Runtime>(
    shared: &Shared<R>,
    route: &Route,
    head: &RequestHead,
    body: &[u8],
    peer: Option<std::net::IpAddr>,
) -> Result<Response, ApiError> {
    let ok = |v: Value| Ok(Response::json(200, &v));
    match route {
        Route::Health => ok(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")})),
        Route::Live => ok(json!({"status": "alive"})),
        Route::Ready => {
            let stats = shared.read(|core, _| core.hub.stats());
            let counts = json!({"connections": stats.connections, "channels": stats.channels});
            if shared.is_draining() {
                Ok(Response::json(
                    503,
                    &json!({"status": "not_ready", "reason": "shutting_down", "connections": counts["connections"], "channels": counts["channels"]}),
                ))
            } else {
                ok(
                    json!({"status": "ready", "connections": counts["connections"], "channels": counts["channels"]}),
                )
            }
        }
        Route::Info => ok(info(shared)),
        Route::Connections => {
            let (stats, apps) = shared.read(|core, _| {
                let apps: Vec<String> = core
                    .hub
                    .connections()
                    .map(|(_, c)| c.app_id().to_owned())
                    .take(MAX_LISTED_APPS)
                    .collect();
                (core.hub.stats(), apps)
            });
            let mut by_dialect = serde_json::Map::new();
            for kind in DialectKind::ALL {
                by_dialect.insert(kind.as_str().into(), json!(stats.by_dialect.get(kind)));
            }
            ok(
                json!({"active_connections": stats.connections, "by_dialect": by_dialect, "apps": apps}),
            )
        }
        Route::ProjectConnections { project_id } => {
            let channel = ChannelName::new(&format!("projects/{project_id}"))
                .map_err(|e| ApiError::invalid_channel(e.to_string()))?;
            let n = shared.read(|core, _| core.hub.subscriber_count(&channel));
            ok(json!({"project_id": project_id, "active_connections": n}))
        }
        Route::Metrics => {
            let (stats, by_dialect) = shared.read(|core, _| {
                let s = core.hub.stats();
                let d = s.by_dialect;
                (s, d)
            });
            Ok(Response::text(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                {
                    let mut text = metrics::render(&stats, by_dialect, &shared.metrics);
                    if let Some(webhooks) = &shared.webhooks {
                        webhooks.render_metrics(&mut text);
                    }
                    text
                },
            ))
        }
        Route::PublishEvent { channel } => {
            require(shared, head, Action::Publish, channel)?;
            if let Err(wait) = shared.rate.check(peer, shared.runtime.now()) {
                return Err(ApiError::rate_limited(
                    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                ));
            }
            let (event, retain) = parse_publish_body(body)?;
            let offset = shared
                .with(|core, now| core.hub.publish(now, channel, event, retain))
                .map_err(|e| match e {
                    HubError::Limit(l) => ApiError::new(413, "PAYLOAD_TOO_LARGE", l.to_string()),
                    other => ApiError::validation(other.to_string()),
                })?;
            Ok(Response::json(
                201,
                &json!({"channel": channel, "offset": offset}),
            ))
        }
        Route::ListEvents { channel } => {
            require(shared, head, Action::Subscribe, channel)?;
            let since = match head.query_param("since")? {
                None => 0,
                Some(s) => s
                    .parse::<u64>()
                    .map_err(|_| ApiError::validation("since must be a non-negative integer"))?,
            };
            let limit = match head.query_param("limit")? {
                None => DEFAULT_PAGE,
                Some(s) => match s.parse::<usize>() {
                    Ok(n) if n >= 1 => n.min(MAX_PAGE),
                    _ => {
                        return Err(ApiError::validation(
                            "limit must be an integer from 1 to 1000",
                        ));
                    }
                },
            };
            let page = shared.read(|core, now| core.hub.history(now, channel, Some(since), limit));
            let events: Vec<Value> = page
                .events
                .into_iter()
                .map(|(offset, event)| json!({"offset": offset, "event": event}))
                .collect();
            ok(
                json!({"channel": channel, "epoch": page.epoch, "events": events, "next_since": page.next_since}),
            )
        }
        Route::ChannelState { channel } => {
            require(shared, head, Action::Subscribe, channel)?;
            let state = shared.read(|core, _| core.hub.state(channel));
            ok(
                json!({"channel": channel, "epoch": state.epoch, "offset": state.offset, "state": state.state}),
            )
        }
        Route::NativeSocket | Route::ProjectSocket { .. } | Route::ChannelPayloadSocket => Err(
            ApiError::bad_request("this endpoint needs a WebSocket upgrade"),
        ),
    }
}

/// Runs the verifier, if any: the request's permissions, or 401.
pub(crate) fn authenticate<R: Runtime>(
    shared: &Shared<R>,
    head: &RequestHead,
) -> Result<Permissions, ApiError> {
    match &shared.config.verifier {
        None => Ok(Permissions::allow_all()),
        Some(verifier) => {
            let token = head.bearer_token()?;
            // The verifier's own words stay in the server's log: the client learns only that it was refused.
            verifier.verify(token.as_deref(), head).map_err(|e| {
                tracing::debug!(error = %e, path = %head.path, "unauthorized");
                match e {
                    AuthError::Missing => ApiError::unauthorized("a token is required"),
                    _ => ApiError::unauthorized(PUBLIC_AUTH_MESSAGE),
                }
            })
        }
    }
}

fn require<R: Runtime>(
    shared: &Shared<R>,
    head: &RequestHead,
    action: Action,
    channel: &ChannelName,
) -> Result<(), ApiError> {
    let permissions = authenticate(shared, head)?;
    if permissions.allows(action, channel) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "the token does not allow {action:?} on {channel}"
        )))
    }
}

/// Parses `{event, retain?}`: a JSON object whose `event` is present and not null, and whose `retain` is a
/// boolean when present.
pub(crate) fn parse_publish_body(body: &[u8]) -> Result<(Value, bool), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_json(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(ApiError::invalid_json("the body must be a JSON object"));
    };
    let event = match obj.remove("event") {
        None | Some(Value::Null) => return Err(ApiError::validation("event is required")),
        Some(e) => e,
    };
    let retain = match obj.remove("retain") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::validation("retain must be a boolean")),
    };
    Ok((event, retain))
}

fn info<R: Runtime>(shared: &Shared<R>) -> Value {
    let hub = &shared.config.hub;
    let c = &shared.config;
    json!({
        "name": "switchboard",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": PROTOCOL_VERSION,
        "dialects": [
            {"name": "native", "path": "/api/ws"},
            {"name": "project_stream", "path": "/api/v1/ws/projects/{project_id}/stream"},
            {"name": "channel_payload", "path": "/ws"},
        ],
        "limits": {
            "max_message_bytes": hub.max_message_bytes,
            "heartbeat_ms": hub.heartbeat.as_millis() as u64,
            "heartbeat_timeout_ms": hub.heartbeat_timeout.as_millis() as u64,
            "history_size": hub.history_size,
            "history_ttl_ms": hub.history_ttl.as_millis() as u64,
            "request_timeout_ms": hub.request_timeout.as_millis() as u64,
            "rate_per_sec": hub.rate_per_sec,
            "rate_burst": hub.rate_burst,
            "max_subscriptions": hub.max_subscriptions,
            "max_queued_bytes": hub.max_queued_bytes,
            "max_sessions": hub.max_sessions,
            "max_http_head_bytes": c.max_head_bytes,
            "max_http_body_bytes": c.max_body_bytes,
            "max_history_page": MAX_PAGE,
        },
        "features": ["history", "recovery", "retained_state", "sessions", "server_requests", "call_routing",
                     "rate_limit", "token_auth", "rest", "metrics"],
        "auth_required": c.verifier.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bodies() {
        assert_eq!(
            parse_publish_body(br#"{"event":{"a":1},"retain":true}"#).unwrap(),
            (json!({"a": 1}), true)
        );
        assert_eq!(
            parse_publish_body(br#"{"event":3}"#).unwrap(),
            (json!(3), false)
        );
        assert_eq!(
            parse_publish_body(b"nope").unwrap_err().code,
            "INVALID_JSON"
        );
        assert_eq!(parse_publish_body(b"[1]").unwrap_err().code, "INVALID_JSON");
        assert_eq!(
            parse_publish_body(b"{}").unwrap_err().code,
            "VALIDATION_ERROR"
        );
        assert_eq!(
            parse_publish_body(br#"{"event":null}"#).unwrap_err().code,
            "VALIDATION_ERROR"
        );
        assert_eq!(
            parse_publish_body(br#"{"event":1,"retain":"yes"}"#)
                .unwrap_err()
                .code,
            "VALIDATION_ERROR"
        );
    }
}
