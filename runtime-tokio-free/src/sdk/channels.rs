//! [`ChannelsApi`]: Switchboard's own REST routes (PROTOCOL §7) — publish, history, retained state and
//! connection counts.
//!
//! | call | route |
//! |---|---|
//! | [`publish`](ChannelsApi::publish) | `POST /api/v1/channels/{channel}/events` `{event, retain?}` → 201 `{channel, offset}` |
//! | [`history`](ChannelsApi::history) | `GET /api/v1/channels/{channel}/events?since=&limit=`, page after page |
//! | [`history_page`](ChannelsApi::history_page) | one page of it |
//! | [`state`](ChannelsApi::state) | `GET /api/v1/channels/{channel}/state` |
//! | [`connections`](ChannelsApi::connections) | `GET /api/connections` |
//! | [`project_connections`](ChannelsApi::project_connections) | `GET /api/v1/projects/{id}/connections` |
//!
//! Channel names and project ids are percent-encoded into the path. History is walked with the core's
//! [`CursorPaginator`]: `since` is the offset after which to start (`None`: the oldest kept event), `next_since` from
//! each page is the next `since`, and the walk ends when the server has no more. History offsets only mean something
//! within one epoch, so if the epoch changes between pages (the server restarted its history) the stream ends with
//! [`HistoryError::Pagination`]`(`[`EpochChanged`](PaginationError::EpochChanged)`)` rather than mixing two
//! histories; re-read [`state`](ChannelsApi::state) and start again.

use std::collections::{BTreeMap, VecDeque};

use futures_util::stream::{self, BoxStream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_protocol::http_client::{
    ApiError, CursorPage, CursorPaginator, Method, PaginationError, RequestParts,
    encode_path_segment,
};
use switchboard_protocol::rest::MAX_PAGE_LIMIT;

use super::api_client::{ApiClient, IDEMPOTENCY_KEY, json_request};
use super::bulk::{BulkReport, bulk};
use crate::runtime::Runtime;

/// The answer to a publish.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Published {
    /// The channel published to.
    pub channel: String,
    /// The event's offset in the channel's history.
    pub offset: u64,
    /// The publish's idempotency key was seen within the server's dedupe window: nothing was published this time,
    /// and `offset` is the original's (the usual case: an attempt that timed out had in fact been kept).
    #[serde(default)]
    pub duplicate: bool,
}

/// The answer to a batch publish: its events are at every offset from `first_offset` to `last_offset`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PublishedBatch {
    /// The channel published to.
    pub channel: String,
    /// The first event's offset.
    pub first_offset: u64,
    /// The last event's offset.
    pub last_offset: u64,
    /// As [`Published::duplicate`]: these are the original batch's offsets.
    #[serde(default)]
    pub duplicate: bool,
}

/// One event of a channel's history.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct HistoryEvent {
    /// Its offset (increasing within an epoch).
    pub offset: u64,
    /// The event as published.
    pub event: Value,
}

/// The body of one page of a channel's history (`GET /api/v1/channels/{channel}/events`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct HistoryPageBody {
    /// The channel.
    pub channel: String,
    /// The history's epoch: offsets from different epochs are unrelated.
    pub epoch: String,
    /// The events, oldest first.
    pub events: Vec<HistoryEvent>,
    /// The `since` of the next page; `None` when this is the last.
    pub next_since: Option<u64>,
}

/// The body of `GET /api/v1/channels/{channel}/state`: a channel's position and retained state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ChannelStateBody {
    /// The channel.
    pub channel: String,
    /// The history's epoch.
    pub epoch: String,
    /// The offset of the latest event.
    #[serde(default)]
    pub offset: u64,
    /// The retained state, if any event was published with `retain`.
    #[serde(default)]
    pub state: Option<Value>,
}

/// Who is on a channel (`GET /api/v1/channels/{channel}/presence`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct PresenceBody {
    /// The channel.
    pub channel: String,
    /// How many connections subscribe to or serve it.
    pub count: u64,
    /// Whether one serves it: a routed `call` would reach a handler (the "worker online" signal).
    #[serde(default)]
    pub serving: bool,
    /// At most [`PRESENCE_MEMBERS_MAX`](switchboard_protocol::wire::PRESENCE_MEMBERS_MAX) members, the server
    /// always among them.
    #[serde(default)]
    pub members: Vec<switchboard_protocol::wire::Member>,
}

/// The server's connection counts (`GET /api/connections`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Connections {
    /// Open connections.
    pub active_connections: u64,
    /// Open connections per dialect.
    #[serde(default)]
    pub by_dialect: BTreeMap<String, u64>,
    /// App ids of the connected clients (capped at 1000 by the server).
    #[serde(default)]
    pub apps: Vec<String>,
}

/// The subscribers of one project's channel (`GET /api/v1/projects/{id}/connections`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ProjectConnections {
    /// The project.
    pub project_id: String,
    /// Subscribers of `projects/{id}`, all dialects.
    pub active_connections: u64,
}

/// Which part of a history to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Start after this offset; `None` from the oldest kept event.
    pub since: Option<u64>,
    /// Events per request (at most [`MAX_PAGE_LIMIT`]; more is capped). Default 1000.
    pub page_size: u32,
    /// Stop after this many events; `None` for all.
    pub max_items: Option<u64>,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            since: None,
            page_size: MAX_PAGE_LIMIT,
            max_items: None,
        }
    }
}

impl HistoryQuery {
    /// Events after `since`.
    pub fn since(since: u64) -> Self {
        HistoryQuery {
            since: Some(since),
            ..HistoryQuery::default()
        }
    }
}

/// Why a history walk stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// A page could not be fetched.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The pages do not chain (see the [module docs](self)).
    #[error(transparent)]
    Pagination(#[from] PaginationError),
}

#[derive(Serialize)]
struct PublishBody<'a, E: Serialize + ?Sized> {
    event: &'a E,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    retain: bool,
}

#[derive(Serialize)]
struct BatchBody<'a, E: Serialize> {
    events: &'a [E],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    retain_last: bool,
}

/// Switchboard's REST routes (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct ChannelsApi<R: Runtime> {
    client: ApiClient<R>,
}

impl<R: Runtime> ApiClient<R> {
    /// Switchboard's channel routes.
    pub fn channels(&self) -> ChannelsApi<R> {
        ChannelsApi {
            client: self.clone(),
        }
    }
}

impl<R: Runtime> ChannelsApi<R> {
    /// Publishes `event` on `channel`; with `retain` it also becomes the channel's retained state. Cached history
    /// and state of the channel are dropped.
    ///
    /// The publish carries a fresh idempotency key ([`ApiClient::idempotency_key`]), the same on every retry, so
    /// it is retried after a timeout or a 5xx too and still lands once (an answer to a retry of a kept publish
    /// says [`Published::duplicate`]).
    pub async fn publish<E: Serialize + ?Sized>(
        &self,
        channel: &str,
        event: &E,
        retain: bool,
    ) -> Result<Published, ApiError> {
        let key = self.client.idempotency_key();
        self.publish_with_key(channel, event, retain, &key).await
    }

    /// [`publish`](Self::publish) with the caller's idempotency key (1 to 128 bytes): a publish with a key the
    /// channel saw within the server's dedupe window publishes nothing and answers the original offset. Use it to
    /// make a publish idempotent across processes, e.g. with a job's id.
    pub async fn publish_with_key<E: Serialize + ?Sized>(
        &self,
        channel: &str,
        event: &E,
        retain: bool,
        key: &str,
    ) -> Result<Published, ApiError> {
        let route = format!("{}/events", channel_route(channel));
        let request = json_request(Method::Post, &route, &PublishBody { event, retain })?
            .with_header(IDEMPOTENCY_KEY, key);
        let result = self.client.send_json(request).await;
        self.client.invalidate(&channel_route(channel));
        result
    }

    /// Publishes `events` on `channel` in one request, at consecutive offsets, all or none (the server refuses
    /// the whole batch for one bad event, naming its index; from 1 to
    /// [`MAX_BATCH_EVENTS`](switchboard_protocol::wire::MAX_BATCH_EVENTS) events, within the server's body limit);
    /// with `retain_last` the last becomes the channel's retained state. Cached history and state of the channel
    /// are dropped. Like [`publish`](Self::publish), the batch carries one idempotency key for all its attempts.
    pub async fn publish_batch<E: Serialize>(
        &self,
        channel: &str,
        events: &[E],
        retain_last: bool,
    ) -> Result<PublishedBatch, ApiError> {
        let route = format!("{}/events", channel_route(channel));
        let body = BatchBody {
            events,
            retain_last,
        };
        let request = json_request(Method::Post, &route, &body)?
            .with_header(IDEMPOTENCY_KEY, self.client.idempotency_key());
        let result = self.client.send_json(request).await;
        self.client.invalidate(&channel_route(channel));
        result
    }

    /// Publishes every `(channel, event)`, at most `max_concurrent` at once; one result per event, in input order.
    /// Events for one channel may be stored in any order: publish them one by one when order matters.
    pub async fn publish_many(
        &self,
        events: Vec<(String, Value)>,
        max_concurrent: usize,
    ) -> BulkReport<Published> {
        bulk(events, max_concurrent, |(channel, event)| async move {
            self.publish(&channel, &event, false).await
        })
        .await
    }

    /// One page of `channel`'s history: up to `limit` events after `since`.
    pub async fn history_page(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPageBody, ApiError> {
        let mut request = RequestParts::new(Method::Get, history_route(channel));
        if let Some(since) = since {
            request.push_query("since", since);
        }
        request.push_query("limit", limit.min(MAX_PAGE_LIMIT));
        self.client.send_json(request).await
    }

    /// `channel`'s history as a stream of events, fetched page by page as it is polled (see the
    /// [module docs](self)). The stream ends after the first error.
    pub fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> BoxStream<'static, Result<HistoryEvent, HistoryError>> {
        let mut paginator = CursorPaginator::history(query.since, query.page_size);
        if let Some(max) = query.max_items {
            paginator = paginator.with_max_items(max);
        }
        let walk = Walk {
            client: self.client.clone(),
            route: history_route(channel),
            paginator,
            buffered: VecDeque::new(),
            error: None,
            ended: false,
        };
        Box::pin(stream::unfold(walk, |mut walk| async move {
            loop {
                if let Some(event) = walk.buffered.pop_front() {
                    return Some((Ok(event), walk));
                }
                if let Some(error) = walk.error.take() {
                    walk.ended = true;
                    return Some((Err(error), walk));
                }
                if walk.ended {
                    return None;
                }
                let next = walk.paginator.next_request()?;
                let mut request = RequestParts::new(Method::Get, walk.route.clone());
                next.apply(&mut request);
                match walk.client.send_json::<HistoryPageBody>(request).await {
                    Ok(page) => {
                        let checked = walk.paginator.on_page(CursorPage {
                            items: page.events.len(),
                            next: page.next_since,
                            epoch: Some(&page.epoch),
                        });
                        match checked {
                            Ok(keep) => walk.buffered.extend(page.events.into_iter().take(keep)),
                            // Valid events of this epoch, but following the cursor would loop.
                            Err(e @ PaginationError::CursorDidNotAdvance) => {
                                walk.buffered.extend(page.events);
                                walk.error = Some(e.into());
                            }
                            Err(e) => walk.error = Some(e.into()),
                        }
                    }
                    Err(e) => walk.error = Some(e.into()),
                }
            }
        }))
    }

    /// `channel`'s retained state and latest offset.
    pub async fn state(&self, channel: &str) -> Result<ChannelStateBody, ApiError> {
        self.client
            .get(&format!("{}/state", channel_route(channel)))
            .await
    }

    /// Who subscribes to or serves `channel`, and whether anyone serves it. Needs permission to subscribe to it.
    pub async fn presence(&self, channel: &str) -> Result<PresenceBody, ApiError> {
        self.client
            .get(&format!("{}/presence", channel_route(channel)))
            .await
    }

    /// The server's connection counts.
    pub async fn connections(&self) -> Result<Connections, ApiError> {
        self.client.get("/api/connections").await
    }

    /// The subscribers of project `project_id`'s channel.
    pub async fn project_connections(
        &self,
        project_id: &str,
    ) -> Result<ProjectConnections, ApiError> {
        self.client
            .get(&format!(
                "/api/v1/projects/{}/connections",
                encode_path_segment(project_id)
            ))
            .await
    }
}

struct Walk<R: Runtime> {
    client: ApiClient<R>,
    route: String,
    paginator: CursorPaginator<u64>,
    buffered: VecDeque<HistoryEvent>,
    error: Option<HistoryError>,
    ended: bool,
}

fn channel_route(channel: &str) -> String {
    format!("/api/v1/channels/{}", encode_path_segment(channel))
}

fn history_route(channel: &str) -> String {
    format!("{}/events", channel_route(channel))
}
