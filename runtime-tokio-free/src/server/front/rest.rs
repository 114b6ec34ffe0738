//! The REST and health routes of PROTOCOL §5 and §7, executed: the decisions (route, auth rule, validation, page
//! limits, answer bodies) are [`switchboard_protocol::rest`]'s; this file runs them against the hub and the
//! front's state. What only the runtime knows is built here: `/api/info` (the configuration), `/api/connections`
//! and `/metrics`.

use serde_json::{Value, json};
use switchboard_protocol::rest::{
    self, AuthRule, ErrorReply, MAX_LISTED_APPS, MAX_PAGE_LIMIT, PublishRequest, Reply,
    RequestHead, Route, TokenCheck, answer, authorize,
};
use switchboard_protocol::server::{Action, DialectKind, Permissions, Trust};
use switchboard_protocol::wire::PROTOCOL_VERSION;

use super::Front;
use super::call;
use super::dashboard;
use super::metrics;
use super::verifier::TokenRefusal;
use crate::Runtime;
use crate::server::hub::driver::cluster_counts::cluster_counts;

/// Answers a non-WebSocket route.
pub(crate) async fn handle<R: Runtime>(
    front: &Front<R>,
    route: &Route,
    head: &RequestHead,
    body: &[u8],
    peer: Option<std::net::IpAddr>,
) -> Reply {
    match execute(front, route, head, body, peer).await {
        Ok(reply) => reply,
        Err(error) => Reply::error(&error),
    }
}

async fn execute<R: Runtime>(
    front: &Front<R>,
    route: &Route,
    head: &RequestHead,
    body: &[u8],
    peer: Option<std::net::IpAddr>,
) -> Result<Reply, ErrorReply> {
    let rule = route.auth_rule();
    // The permissions and trust of a route that needs a token, for the routes that act with them.
    let mut granted: Option<(Permissions, Trust)> = None;
    if let AuthRule::Allowed { .. } | AuthRule::Token = rule {
        let check = check_token(front, head)?;
        let loopback = peer.is_some_and(|ip| ip.is_loopback());
        let trust = check.trust(loopback);
        if let Route::PublishEvent { .. } | Route::CallChannel { .. } = route {
            // Before the permission check: an untrusted flood is refused with 429 whatever its token says.
            if let Err(wait) = front.rate.check(peer, trust, front.runtime.now()) {
                return Err(ErrorReply::rate_limited(
                    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                ));
            }
        }
        granted = Some((authorize(rule, check)?, trust));
    }
    let hub = &front.hub;
    match route {
        Route::Health => Ok(answer::health(env!("CARGO_PKG_VERSION"))),
        Route::Live => Ok(answer::live()),
        Route::Ready => {
            let stats = hub.read(|core, _| core.hub.stats());
            // A node cut off from Redis can publish nothing and deliver nothing new: a load balancer should send
            // new clients elsewhere until it is back (its open connections stay; they resume then).
            let not_ready = if front.is_draining() {
                Some(answer::NotReady::ShuttingDown)
            } else if hub.engine().is_some_and(|engine| !engine.is_connected()) {
                Some(answer::NotReady::StorageUnavailable)
            } else {
                None
            };
            Ok(answer::ready(not_ready, stats.connections, stats.channels))
        }
        Route::Info => {
            let mut info = info(front);
            if let Some(members) = hub.members() {
                let (_, nodes) = cluster_counts(hub, members).await;
                info["cluster"]["nodes"] = json!(nodes);
            }
            Ok(Reply::json(200, &info))
        }
        Route::Connections => {
            if let Some(members) = hub.members() {
                let (sum, nodes) = cluster_counts(hub, members).await;
                return Ok(Reply::json(
                    200,
                    &json!({"active_connections": sum.connections, "by_dialect": sum.by_dialect,
                            "apps": sum.apps, "nodes": nodes}),
                ));
            }
            let (stats, apps) = hub.read(|core, _| {
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
            Ok(Reply::json(
                200,
                &json!({"active_connections": stats.connections, "by_dialect": by_dialect, "apps": apps}),
            ))
        }
        Route::ProjectConnections {
            project_id,
            channel,
        } => {
            let n = match hub.members() {
                Some(members) => {
                    let (sum, _) = cluster_counts(hub, members).await;
                    sum.subscribers.get(channel.as_str()).copied().unwrap_or(0) as usize
                }
                None => hub.read(|core, _| core.hub.subscriber_count(channel)),
            };
            Ok(answer::project_connections(project_id, n))
        }
        Route::Metrics => {
            let stats = hub.read(|core, _| core.hub.stats());
            let mut text = metrics::render(&stats, stats.by_dialect, &front.metrics);
            front.accept_errors.render_metrics(&mut text);
            hub.read(|core, _| {
                if let Some(writer) = &core.writer {
                    crate::server::storage::render_metrics(&mut text, writer.state());
                }
            });
            if let Some(webhooks) = &front.webhooks {
                webhooks.render_metrics(&mut text);
            }
            Ok(Reply::text(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            ))
        }
        Route::PublishEvent { channel } => match rest::publish_request(body)? {
            PublishRequest::One(body) => {
                let key = rest::idempotency_key(head, body.idempotency_key)?;
                match hub.publish(channel, body.event, body.retain, key).await {
                    Ok(Ok(stored)) if stored.duplicate => {
                        Ok(answer::duplicate(channel, stored.first))
                    }
                    Ok(stored) => answer::stored(channel, stored.map(|s| s.first)),
                    Err(refused) => answer::published(channel, Err(refused)),
                }
            }
            PublishRequest::Batch(batch) => {
                let count = batch.events.len();
                let key = rest::idempotency_key(head, batch.idempotency_key)?;
                match hub
                    .publish_batch(channel, batch.events, batch.retain_last, key)
                    .await
                {
                    Ok(Ok(stored)) if stored.duplicate => {
                        Ok(answer::duplicate_batch(channel, stored.first, stored.last))
                    }
                    Ok(stored) => answer::stored_batch(channel, count, stored.map(|s| s.first)),
                    Err(refused) => answer::published_batch(channel, count, Err(refused)),
                }
            }
        },
        Route::ListEvents { channel } => {
            let query = rest::history_query(head)?;
            let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
            // The page holds the stored events themselves; they are written into the body off the hub's lock.
            let page = match hub
                .engine()
                .filter(|_| !hub.read(|core, _| core.hub.follows(channel)))
            {
                Some(engine) => {
                    let ttl = hub.read(|core, _| core.hub.config().history_ttl);
                    crate::server::hub::driver::cluster_link::read_page(
                        engine,
                        channel,
                        query.since,
                        limit,
                        ttl,
                    )
                    .await
                    .map_err(|e| engine_unavailable(&e))?
                }
                None => {
                    hub.read(|core, now| core.hub.history(now, channel, Some(query.since), limit))
                }
            };
            Ok(answer::history_page(
                channel,
                &page.epoch,
                page.events
                    .iter()
                    .map(|(offset, event)| (*offset, &**event)),
                page.next_since,
            ))
        }
        Route::ChannelState { channel } => {
            let state = match hub
                .engine()
                .filter(|_| !hub.read(|core, _| core.hub.follows(channel)))
            {
                Some(engine) => {
                    crate::server::hub::driver::cluster_link::read_state(engine, channel)
                        .await
                        .map_err(|e| engine_unavailable(&e))?
                }
                None => hub.read(|core, _| core.hub.state(channel)),
            };
            Ok(answer::channel_state(
                channel,
                &state.epoch,
                state.offset,
                state.state.as_ref(),
            ))
        }
        Route::ChannelPresence { channel } => {
            let presence = hub.read(|core, _| core.hub.presence(channel));
            Ok(answer::presence(channel, &presence))
        }
        Route::Dashboard if front.config.dashboard => Ok(dashboard::reply()),
        Route::Dashboard => Err(ErrorReply::not_found()),
        Route::ListChannels => {
            let permissions = granted
                .map(|(p, _)| p)
                .unwrap_or_else(Permissions::allow_all);
            let list = hub.read(|core, _| {
                core.hub.channel_list(MAX_LISTED_APPS, |name| {
                    permissions.allows(Action::Subscribe, name)
                })
            });
            let channels: Vec<Value> = list
                .iter()
                .map(|c| json!({"channel": c.channel.as_str(), "offset": c.offset, "subscribers": c.subscribers, "serving": c.served}))
                .collect();
            Ok(Reply::json(200, &json!({ "channels": channels })))
        }
        Route::CallChannel { channel } => {
            let (permissions, trust) =
                granted.unwrap_or_else(|| (Permissions::allow_all(), Trust::Trusted));
            call::call(front, channel, body, permissions, trust).await
        }
        Route::NativeSocket | Route::ProjectSocket { .. } | Route::ChannelPayloadSocket => Err(
            ErrorReply::bad_request("this endpoint needs a WebSocket upgrade"),
        ),
        other => {
            tracing::warn!(?other, "route without a handler");
            Err(ErrorReply::not_found())
        }
    }
}

/// A read of the engine failed: 503, as for a store that cannot answer.
fn engine_unavailable(error: &crate::redis::engine::EngineError) -> ErrorReply {
    tracing::warn!(%error, "a read of the engine failed");
    ErrorReply::new(
        503,
        "STORAGE_UNAVAILABLE",
        "the engine could not be read; try again",
    )
    .with_header("Retry-After", "1")
}

/// Runs the verifier, if any, on the request's token. The verifier's own words stay in the server's log: the
/// client learns only that it was refused.
pub(crate) fn check_token<R: Runtime>(
    front: &Front<R>,
    head: &RequestHead,
) -> Result<TokenCheck, ErrorReply> {
    let Some(verifier) = &front.config.verifier else {
        return Ok(TokenCheck::NoVerifier);
    };
    let token = head.bearer_token()?;
    Ok(match verifier.verify(token.as_deref(), head) {
        Ok(permissions) => TokenCheck::Accepted(permissions),
        Err(e) => {
            tracing::debug!(error = %e, path = %head.path, "unauthorized");
            match e {
                TokenRefusal::Missing => TokenCheck::Missing,
                _ => TokenCheck::Refused,
            }
        }
    })
}

/// The permissions of a WebSocket upgrade request from a peer on a loopback address (or not), and the trust
/// they earn (which picks the connection's rate limit); or its 401.
pub(crate) fn socket_permissions<R: Runtime>(
    front: &Front<R>,
    head: &RequestHead,
    loopback: bool,
) -> Result<(Permissions, Trust), ErrorReply> {
    let check = check_token(front, head)?;
    let trust = check.trust(loopback);
    Ok((authorize(AuthRule::Token, check)?, trust))
}

fn info<R: Runtime>(front: &Front<R>) -> Value {
    let c = &front.config;
    let hub = &c.hub;
    json!({
        "name": "switchboard",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": PROTOCOL_VERSION,
        "cluster": c.cluster.as_ref().map(|cluster| json!({
            "node_id": cluster.node_id,
            "engine": "redis",
            "prefix": cluster.prefix,
        })),
        "dialects": [
            {"name": "native", "path": "/api/ws"},
            {"name": "project_stream", "path": "/api/v1/ws/projects/{project_id}/stream"},
            {"name": "channel_payload", "path": "/ws"},
            {"name": "sse", "path": "/api/v1/channels/{channel}/sse"},
            {"name": "project_stream_sse", "path": "/api/v1/projects/{project_id}/sse"},
        ],
        "limits": {
            "max_message_bytes": hub.max_message_bytes,
            "heartbeat_ms": hub.heartbeat.as_millis() as u64,
            "heartbeat_timeout_ms": hub.heartbeat_timeout.as_millis() as u64,
            "history_size": hub.history_size,
            "history_ttl_ms": hub.history_ttl.as_millis() as u64,
            "history_bytes": hub.history_bytes,
            "history_total_bytes": hub.history_total_bytes,
            "max_channels": hub.max_channels,
            "max_presence_members": hub.max_presence_members,
            "dedupe_window_ms": hub.dedupe_window.as_millis() as u64,
            "dedupe_keys_per_channel": hub.dedupe_keys_per_channel,
            "dedupe_keys": hub.dedupe_keys,
            "request_timeout_ms": hub.request_timeout.as_millis() as u64,
            "rate_per_sec": hub.rate_per_sec,
            "rate_burst": hub.rate_burst,
            "trusted_rate_per_sec": hub.trusted_rate_per_sec,
            "trusted_rate_burst": hub.trusted_rate_burst,
            "http_rate_per_sec": c.http_rate_per_sec,
            "http_rate_burst": c.http_rate_burst,
            "trusted_http_rate_per_sec": c.trusted_http_rate_per_sec,
            "trusted_http_rate_burst": c.trusted_http_rate_burst,
            "max_connections": c.max_connections,
            "max_connections_per_ip": c.max_connections_per_ip,
            "max_subscriptions": hub.max_subscriptions,
            "max_patterns": hub.max_patterns,
            "max_queued_bytes": hub.max_queued_bytes,
            "max_sessions": hub.max_sessions,
            "max_http_head_bytes": c.max_head_bytes,
            "max_http_body_bytes": c.max_body_bytes,
            "max_history_page": MAX_PAGE_LIMIT,
        },
        "features": ["history", "recovery", "retained_state", "sessions", "server_requests", "call_routing",
                     "rate_limit", "token_auth", "rest", "metrics", "presence", "sse",
                     "idempotent_publish", "pattern_subscriptions"],
        "auth_required": c.verifier.is_some(),
        "storage": crate::server::storage::info(c),
    })
}
