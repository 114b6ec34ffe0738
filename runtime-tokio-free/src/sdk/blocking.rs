//! The blocking client: the same API as [`ApiClient`], [`ChannelsApi`] and [`ResourceClient`], for code that is
//! not async.
//!
//! # How it runs
//!
//! Each call drives the async call to completion on the calling thread with `futures_lite::future::block_on`: a
//! minimal executor that polls one future and parks the thread between wake-ups. There is no hidden executor and no
//! thread of ours. It works because the SDK's futures never need a task of their own to make progress: sockets and
//! timers come from the [`Runtime`] you pass, whose reactor (smol's and async-std's are both `async-io`) runs on its
//! own thread and wakes the parked caller. So the blocking client is the async client — same retries, limiter,
//! cache, metrics and pool — and a [`BlockingClient`] and an [`ApiClient`] made from one another share all of it.
//!
//! Do not call it from inside an async task: it would block that executor thread until the call ends.

use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_protocol::http_client::{ApiError, CacheStats, MetricsSnapshot, RequestParts};

use super::api_client::ApiClient;
use super::bulk::BulkReport;
use super::channels::{
    ChannelStateBody, ChannelsApi, Connections, HistoryError, HistoryEvent, HistoryPageBody,
    HistoryQuery, PresenceBody, ProjectConnections, Published,
};
use super::config::ApiConfig;
use super::config_error::ConfigError;
use super::health::HealthReport;
use super::resource::ResourceClient;
use super::transport::Response;
use crate::runtime::Runtime;

fn block_on<F: Future>(future: F) -> F::Output {
    futures_lite::future::block_on(future)
}

/// The blocking REST client (see the [module docs](self)). Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlockingClient<R: Runtime> {
    client: ApiClient<R>,
}

impl<R: Runtime> BlockingClient<R> {
    /// A client for `config` over the SDK's HTTP/1.1 transport on `runtime`.
    pub fn new(runtime: R, config: ApiConfig) -> Result<Self, ConfigError> {
        ApiClient::new(runtime, config).map(BlockingClient::from_async)
    }

    /// The blocking face of `client` (sharing everything with it).
    pub fn from_async(client: ApiClient<R>) -> Self {
        BlockingClient { client }
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &ApiClient<R> {
        &self.client
    }

    /// Runs any future of the async API (a [`Watch`](super::Watch), a bulk call) to completion on this thread.
    pub fn run<F: Future>(&self, future: F) -> F::Output {
        block_on(future)
    }

    /// [`ApiClient::get`].
    pub fn get<T: DeserializeOwned>(&self, route: &str) -> Result<T, ApiError> {
        block_on(self.client.get(route))
    }

    /// [`ApiClient::post`].
    pub fn post<B, T>(&self, route: &str, body: &B) -> Result<T, ApiError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        block_on(self.client.post(route, body))
    }

    /// [`ApiClient::put`].
    pub fn put<B, T>(&self, route: &str, body: &B) -> Result<T, ApiError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        block_on(self.client.put(route, body))
    }

    /// [`ApiClient::patch`].
    pub fn patch<B, T>(&self, route: &str, body: &B) -> Result<T, ApiError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        block_on(self.client.patch(route, body))
    }

    /// [`ApiClient::delete`].
    pub fn delete<T: DeserializeOwned>(&self, route: &str) -> Result<T, ApiError> {
        block_on(self.client.delete(route))
    }

    /// [`ApiClient::send`].
    pub fn send(&self, request: RequestParts) -> Result<Response, ApiError> {
        block_on(self.client.send(request))
    }

    /// [`ApiClient::send_json`].
    pub fn send_json<T: DeserializeOwned>(&self, request: RequestParts) -> Result<T, ApiError> {
        block_on(self.client.send_json(request))
    }

    /// [`ApiClient::health_check`].
    pub fn health_check(&self) -> Result<HealthReport, ApiError> {
        block_on(self.client.health_check())
    }

    /// [`ApiClient::metrics`].
    pub fn metrics(&self) -> MetricsSnapshot {
        self.client.metrics()
    }

    /// [`ApiClient::cache_stats`].
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.client.cache_stats()
    }

    /// [`ApiClient::budget_tokens`].
    pub fn budget_tokens(&self) -> u32 {
        self.client.budget_tokens()
    }

    /// [`ApiClient::limiter_waits`].
    pub fn limiter_waits(&self) -> u64 {
        self.client.limiter_waits()
    }

    /// Switchboard's channel routes, blocking.
    pub fn channels(&self) -> BlockingChannels<R> {
        BlockingChannels {
            api: self.client.channels(),
        }
    }

    /// A blocking client for the collection at `path`.
    pub fn resource<T>(&self, path: impl Into<String>) -> BlockingResource<R, T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        BlockingResource {
            resource: self.client.resource(path),
        }
    }
}

/// An iterator over a stream of the async API, each `next` blocking until the stream yields.
pub struct BlockingIter<T> {
    stream: BoxStream<'static, T>,
}

impl<T> std::fmt::Debug for BlockingIter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingIter").finish_non_exhaustive()
    }
}

impl<T> Iterator for BlockingIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        block_on(self.stream.next())
    }
}

/// [`ChannelsApi`], blocking.
#[derive(Debug, Clone)]
pub struct BlockingChannels<R: Runtime> {
    api: ChannelsApi<R>,
}

impl<R: Runtime> BlockingChannels<R> {
    /// [`ChannelsApi::publish`].
    pub fn publish<E: Serialize + ?Sized>(
        &self,
        channel: &str,
        event: &E,
        retain: bool,
    ) -> Result<Published, ApiError> {
        block_on(self.api.publish(channel, event, retain))
    }

    /// [`ChannelsApi::publish_many`].
    pub fn publish_many(
        &self,
        events: Vec<(String, Value)>,
        max_concurrent: usize,
    ) -> BulkReport<Published> {
        block_on(self.api.publish_many(events, max_concurrent))
    }

    /// [`ChannelsApi::history`], as an iterator fetching pages as it goes.
    pub fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> BlockingIter<Result<HistoryEvent, HistoryError>> {
        BlockingIter {
            stream: self.api.history(channel, query),
        }
    }

    /// [`ChannelsApi::history_page`].
    pub fn history_page(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPageBody, ApiError> {
        block_on(self.api.history_page(channel, since, limit))
    }

    /// [`ChannelsApi::state`].
    pub fn state(&self, channel: &str) -> Result<ChannelStateBody, ApiError> {
        block_on(self.api.state(channel))
    }

    /// [`ChannelsApi::presence`].
    pub fn presence(&self, channel: &str) -> Result<PresenceBody, ApiError> {
        block_on(self.api.presence(channel))
    }

    /// [`ChannelsApi::connections`].
    pub fn connections(&self) -> Result<Connections, ApiError> {
        block_on(self.api.connections())
    }

    /// [`ChannelsApi::project_connections`].
    pub fn project_connections(&self, project_id: &str) -> Result<ProjectConnections, ApiError> {
        block_on(self.api.project_connections(project_id))
    }
}

/// [`ResourceClient`], blocking.
pub struct BlockingResource<R: Runtime, T> {
    resource: ResourceClient<R, T>,
}

impl<R: Runtime, T> Clone for BlockingResource<R, T> {
    fn clone(&self) -> Self {
        BlockingResource {
            resource: self.resource.clone(),
        }
    }
}

impl<R: Runtime, T> std::fmt::Debug for BlockingResource<R, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingResource")
            .field("resource", &self.resource)
            .finish()
    }
}

impl<R, T> BlockingResource<R, T>
where
    R: Runtime,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// [`ResourceClient::per_page`].
    pub fn per_page(self, per_page: u32) -> Self {
        BlockingResource {
            resource: self.resource.per_page(per_page),
        }
    }

    /// [`ResourceClient::max_items`].
    pub fn max_items(self, max_items: u64) -> Self {
        BlockingResource {
            resource: self.resource.max_items(max_items),
        }
    }

    /// [`ResourceClient::list`], as an iterator fetching pages as it goes.
    pub fn list(&self) -> BlockingIter<Result<T, ApiError>> {
        BlockingIter {
            stream: self.resource.list(),
        }
    }

    /// [`ResourceClient::list_all`].
    pub fn list_all(&self) -> Result<Vec<T>, ApiError> {
        block_on(self.resource.list_all())
    }

    /// [`ResourceClient::get`].
    pub fn get(&self, id: &str) -> Result<T, ApiError> {
        block_on(self.resource.get(id))
    }

    /// [`ResourceClient::create`].
    pub fn create(&self, item: &T) -> Result<T, ApiError> {
        block_on(self.resource.create(item))
    }

    /// [`ResourceClient::update`].
    pub fn update(&self, id: &str, item: &T) -> Result<T, ApiError> {
        block_on(self.resource.update(id, item))
    }

    /// [`ResourceClient::delete`].
    pub fn delete(&self, id: &str) -> Result<(), ApiError> {
        block_on(self.resource.delete(id))
    }

    /// [`ResourceClient::create_many`].
    pub fn create_many(&self, items: Vec<T>, max_concurrent: usize) -> BulkReport<T> {
        block_on(self.resource.create_many(items, max_concurrent))
    }

    /// [`ResourceClient::delete_many`].
    pub fn delete_many(&self, ids: Vec<String>, max_concurrent: usize) -> BulkReport<()> {
        block_on(self.resource.delete_many(ids, max_concurrent))
    }
}
