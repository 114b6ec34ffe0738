//! The link between a node's hub and the cluster: the hub's [`EngineCommand`]s carried out on the Redis engine and
//! registry, and the engine's feed and inbox fed back as hub inputs; REST reads of channels the node does not
//! follow.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_channel::mpsc;
use futures_util::StreamExt;
use serde_json::Value;
use switchboard_protocol::redis::engine::{InboxMessage, Published};
use switchboard_protocol::rest::limits::MAX_PAGE_BYTES;
use switchboard_protocol::server::{
    ChannelState, EngineCommand, EngineFailure, EngineTicket, HistoryPage,
};
use switchboard_protocol::wire::ChannelName;

use super::HubHandle;
use crate::Runtime;
use crate::redis::RedisError;
use crate::redis::engine::{Engine, EngineError, EngineEvent, Members, Registry};

/// The longest a publish waits for Redis before its publisher is answered `STORAGE_UNAVAILABLE`: long enough to
/// ride out a reconnection (a Redis restart, a failover, a dropped connection), short enough for a publisher to
/// hear of an outage within seconds. The Redis connection alone answers within its own timeouts (5 s waiting for a
/// connection, 5 s for a reply), but a publish may chain two commands (loading the script again after a Redis
/// restart) and wait for a connection that comes up only to go silent: this bounds the whole. A publish cut off
/// here may still run later (it is on its way to Redis): its outcome is unknown, like a command lost with its
/// connection. Once Redis has been unreachable for this long, publishes are refused at once, without waiting.
pub(crate) const PUBLISH_DEADLINE: Duration = Duration::from_secs(5);

/// A node's way to the cluster: the engine (channels), the registry (who serves what, the nodes' inboxes) and the
/// members (the live nodes and their counts).
#[derive(Debug, Clone)]
pub(crate) struct ClusterLink {
    pub(crate) engine: Engine,
    pub(crate) registry: Registry,
    pub(crate) members: Members,
    /// Told of every publish this node took (the webhook sender's intake on a node of a cluster).
    pub(crate) on_published: Option<PublishTap>,
}

/// Told of a publish this node took, once the engine has given it offsets: the channel, its epoch, the first
/// event's offset and the events (at consecutive offsets). Called off the hub's lock; it must not block.
#[derive(Clone)]
pub(crate) struct PublishTap(Arc<PublishTapFn>);

type PublishTapFn = dyn Fn(&ChannelName, &str, u64, &[Arc<Value>]) + Send + Sync;

impl PublishTap {
    pub(crate) fn new(
        tap: impl Fn(&ChannelName, &str, u64, &[Arc<Value>]) + Send + Sync + 'static,
    ) -> PublishTap {
        PublishTap(Arc::new(tap))
    }
}

impl std::fmt::Debug for PublishTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublishTap")
    }
}

/// Carries out one of the hub's engine commands; answers come back to the hub through `hub`.
pub(crate) fn carry_out<R: Runtime>(
    runtime: &R,
    link: &ClusterLink,
    hub: Weak<HubHandle<R>>,
    command: EngineCommand,
) {
    let engine = &link.engine;
    match command {
        EngineCommand::Register { channel } => link.registry.register(&channel),
        EngineCommand::Unregister { channel } => link.registry.unregister(&channel),
        EngineCommand::Call {
            call,
            channel,
            method,
            params,
            caller,
        } => {
            let registry = link.registry.clone();
            runtime.spawn(Box::pin(async move {
                let message = InboxMessage::Call {
                    from: registry.node().to_owned(),
                    call: call.clone(),
                    channel: channel.clone(),
                    method,
                    params,
                    caller,
                };
                let delivered = match registry.lookup(&channel).await {
                    // This node holds the registration but no server any more (it just left): nobody serves it.
                    Ok(Some(node)) if node != registry.node() => {
                        registry.send(&node, &message).await.unwrap_or(false)
                    }
                    Ok(_) => false,
                    Err(error) => {
                        tracing::warn!(%channel, %error, "could not look up the channel's server");
                        false
                    }
                };
                if !delivered && let Some(hub) = hub.upgrade() {
                    hub.with(|core, now| core.hub.handle_remote_unreachable(now, &call));
                }
            }));
        }
        EngineCommand::Answer { node, call, data } => {
            let registry = link.registry.clone();
            runtime.spawn(Box::pin(async move {
                let message = InboxMessage::Answer { call, data };
                match registry.send(&node, &message).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(%node, "a call's answer went to a node that is gone")
                    }
                    Err(error) => tracing::warn!(%node, %error, "could not send a call's answer"),
                }
            }));
        }
        EngineCommand::Follow { channel } => engine.follow(&channel),
        EngineCommand::Unfollow { channel } => engine.unfollow(&channel),
        EngineCommand::Publish {
            ticket,
            channel,
            events,
            retain_last,
            fresh_epoch,
            idempotency_key,
            dedupe_window,
        } => {
            let now = runtime.now();
            // Redis has been unreachable for longer than a publish may wait: this one would only wait the whole
            // deadline too. Answer at once (it was never sent, so it is not stored) until the connection is back.
            if let Some(since) = engine.commands_down_since()
                && now - since >= PUBLISH_DEADLINE
            {
                let error = EngineError::Redis(RedisError::Unavailable(now - since));
                let outcome = Err(failure(&channel, &error));
                // Not from here: the hub is busy handing out this very command.
                runtime.spawn(Box::pin(async move { report(&hub, ticket, outcome) }));
                return;
            }
            let engine = engine.clone();
            let tap = link.on_published.clone();
            let now_ms = now.as_millis();
            let deadline = runtime.sleep_until(now + PUBLISH_DEADLINE);
            runtime.spawn(Box::pin(async move {
                let encoded: Vec<Vec<u8>> = events
                    .iter()
                    .map(|event| serde_json::to_vec(&**event).unwrap_or_default())
                    .collect();
                let key = idempotency_key.as_ref().map(|key| (key, dedupe_window));
                let publish = async {
                    engine
                        .publish_keyed(&channel, &encoded, retain_last, &fresh_epoch, now_ms, key)
                        .await
                };
                let outcome = futures_util::future::select(Box::pin(publish), deadline).await;
                let outcome = match outcome {
                    futures_util::future::Either::Left((result, _)) => result,
                    futures_util::future::Either::Right(((), _)) => Err(EngineError::Redis(
                        RedisError::Unavailable(PUBLISH_DEADLINE),
                    )),
                };
                match outcome.map_err(|error| failure(&channel, &error)) {
                    // Nothing new was stored: no webhook either.
                    Ok(published) if published.duplicate => {
                        report_duplicate(&hub, ticket, &published)
                    }
                    Ok(published) => {
                        // This node took the publish: it alone tells the webhook sender (every node delivers
                        // the events from the feed, so the hub's own publish events would fire on each).
                        if let Some(tap) = &tap {
                            (tap.0)(&channel, &published.epoch, published.first_offset, &events);
                        }
                        report(
                            &hub,
                            ticket,
                            Ok((published.first_offset, published.last_offset)),
                        );
                    }
                    Err(failure) => report(&hub, ticket, Err(failure)),
                }
            }));
        }
        #[allow(unreachable_patterns)]
        other => tracing::warn!(?other, "unknown engine command ignored"),
    }
}

fn failure(channel: &ChannelName, error: &EngineError) -> EngineFailure {
    // Every failure is answered STORAGE_UNAVAILABLE: a publish cut off after it was written (`Lost`, or past the
    // deadline) may have been stored all the same, which the answer's message and PROTOCOL.md say.
    match error {
        // Redis being unreachable is logged once by its connection; each publish it fails only at debug level.
        EngineError::Redis(RedisError::Unavailable(_) | RedisError::Backlog(_)) => {
            tracing::debug!(%channel, %error, "a publish through the engine failed: answered STORAGE_UNAVAILABLE")
        }
        _ => {
            tracing::warn!(%channel, %error, "a publish through the engine failed: answered STORAGE_UNAVAILABLE")
        }
    }
    match error {
        EngineError::Redis(_) => EngineFailure::Unavailable,
        _ => EngineFailure::Refused,
    }
}

fn report<R: Runtime>(
    hub: &Weak<HubHandle<R>>,
    ticket: EngineTicket,
    outcome: Result<(u64, u64), EngineFailure>,
) {
    if let Some(hub) = hub.upgrade() {
        hub.with(|core, now| core.hub.handle_engine_published(now, ticket, outcome));
    }
}

/// The engine held the publish's idempotency key: nothing was published.
fn report_duplicate<R: Runtime>(
    hub: &Weak<HubHandle<R>>,
    ticket: EngineTicket,
    published: &Published,
) {
    let (first, last) = (published.first_offset, published.last_offset);
    if let Some(hub) = hub.upgrade() {
        hub.with(|core, now| core.hub.handle_engine_duplicate(now, ticket, first, last));
    }
}

/// Feeds the engine's live feed to the hub until the server or the engine is gone.
pub(crate) async fn feed_task<R: Runtime>(
    hub: Weak<HubHandle<R>>,
    mut events: mpsc::UnboundedReceiver<EngineEvent>,
) {
    while let Some(event) = events.next().await {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.with(|core, now| match event {
            EngineEvent::Deliver {
                channel,
                epoch,
                offset,
                retained,
                event,
            } => core
                .hub
                .handle_engine_delivery(now, &channel, &epoch, offset, retained, &event),
            EngineEvent::Following {
                channel,
                epoch,
                offset,
                state,
                events,
            } => core
                .hub
                .handle_engine_following(now, &channel, epoch, offset, state, events),
            EngineEvent::Resync {
                channel,
                epoch,
                offset,
                state,
            } => core
                .hub
                .handle_engine_resync(now, &channel, epoch, offset, state),
            EngineEvent::Inbox(payload) => match InboxMessage::parse(&payload) {
                Ok(InboxMessage::Call {
                    from,
                    call,
                    channel,
                    method,
                    params,
                    caller,
                }) => core
                    .hub
                    .handle_remote_call(now, from, call, &channel, method, params, caller),
                Ok(InboxMessage::Answer { call, data }) => {
                    core.hub.handle_remote_answer(now, &call, data)
                }
                Err(error) => tracing::warn!(%error, "a message on this node's inbox no node sent"),
            },
            // The connection logs its own going and coming back once each; every failed dial comes here too.
            EngineEvent::Up => {
                tracing::info!("engine: Redis pub/sub connection up; the feed reads what it missed")
            }
            EngineEvent::Down(reason) => {
                tracing::debug!(%reason, "engine: Redis pub/sub connection down; the feed fills the gap when it is back")
            }
            #[allow(unreachable_patterns)]
            _ => {}
        });
    }
}

/// A channel's position and retained state, read from the engine (a channel this node does not follow).
pub(crate) async fn read_state(
    engine: &Engine,
    channel: &ChannelName,
) -> Result<ChannelState, EngineError> {
    let read = engine.read(channel, None, 0, true).await?;
    Ok(ChannelState {
        epoch: read.epoch.unwrap_or_default(),
        offset: read.offset,
        state: read
            .state
            .and_then(|(_, event)| serde_json::from_slice(&event).ok()),
    })
}

/// A page of a channel's history after `since`, read from the engine, at most `limit` events and about
/// [`MAX_PAGE_BYTES`] (a page always holds one event when there is one).
pub(crate) async fn read_page(
    engine: &Engine,
    channel: &ChannelName,
    since: u64,
    limit: usize,
    history_ttl: Duration,
) -> Result<HistoryPage, EngineError> {
    let read = engine
        .read(channel, Some(since), limit.clamp(1, 1000), false)
        .await?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let cutoff = if history_ttl.is_zero() {
        0
    } else {
        now_ms.saturating_sub(u64::try_from(history_ttl.as_millis()).unwrap_or(u64::MAX))
    };
    let mut events = Vec::new();
    let mut bytes = 0usize;
    for stored in &read.events {
        if stored.published_ms < cutoff {
            continue;
        }
        if !events.is_empty() && bytes + stored.event.len() > MAX_PAGE_BYTES {
            break;
        }
        let Ok(event) = serde_json::from_slice::<Value>(&stored.event) else {
            continue;
        };
        bytes += stored.event.len();
        events.push((stored.offset, Arc::new(event)));
    }
    let next_since = match events.last() {
        Some((last, _)) if *last < read.offset => Some(*last),
        _ => None,
    };
    Ok(HistoryPage {
        epoch: read.epoch.unwrap_or_default(),
        events,
        next_since,
    })
}
