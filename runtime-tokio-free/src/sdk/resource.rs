//! [`ResourceClient`]: create, read, update, delete and list one REST collection of `T`s, with automatic
//! pagination.
//!
//! The conventions, which are the common ones:
//!
//! | call | request | answer |
//! |---|---|---|
//! | [`list`](ResourceClient::list) | `GET {path}?page=N&per_page=M`, N from 1 | a JSON array of `T`, or an object holding it under `items`, `data` or `results`, with an optional `total` |
//! | [`get`](ResourceClient::get) | `GET {path}/{id}` | `T` |
//! | [`create`](ResourceClient::create) | `POST {path}` with `T` | `T` as created |
//! | [`update`](ResourceClient::update) | `PUT {path}/{id}` with `T` | `T` as stored |
//! | [`delete`](ResourceClient::delete) | `DELETE {path}/{id}` | anything (ignored) |
//!
//! Ids are percent-encoded as one path segment. Listing stops after a page shorter than `per_page`, once `total`
//! items were fetched, or at [`max_items`](ResourceClient::max_items) ([`PagePaginator`]'s rules). The bulk
//! variants ([`create_many`](ResourceClient::create_many), …) run up to `max_concurrent` calls at once and report
//! per item ([`bulk`](mod@super::bulk)).

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;

use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_protocol::http_client::{
    ApiError, Method, PagePaginator, RequestParts, encode_path_segment,
};

use super::api_client::{ApiClient, invalid_response};
use super::bulk::{BulkReport, bulk};
use crate::runtime::Runtime;

/// A typed client for one REST collection (see the [module docs](self)).
pub struct ResourceClient<R: Runtime, T> {
    client: ApiClient<R>,
    path: String,
    per_page: u32,
    max_items: Option<u64>,
    _items: PhantomData<fn() -> T>,
}

impl<R: Runtime, T> Clone for ResourceClient<R, T> {
    fn clone(&self) -> Self {
        ResourceClient {
            client: self.client.clone(),
            path: self.path.clone(),
            per_page: self.per_page,
            max_items: self.max_items,
            _items: PhantomData,
        }
    }
}

impl<R: Runtime, T> fmt::Debug for ResourceClient<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceClient")
            .field("path", &self.path)
            .field("per_page", &self.per_page)
            .field("max_items", &self.max_items)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> ApiClient<R> {
    /// A typed client for the collection at `path` (e.g. `/api/v1/items`).
    pub fn resource<T>(&self, path: impl Into<String>) -> ResourceClient<R, T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        ResourceClient::new(self.clone(), path)
    }
}

impl<R, T> ResourceClient<R, T>
where
    R: Runtime,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// A client for the collection at `path`, listing 100 items per page.
    pub fn new(client: ApiClient<R>, path: impl Into<String>) -> Self {
        ResourceClient {
            client,
            path: path.into().trim_end_matches('/').to_owned(),
            per_page: 100,
            max_items: None,
            _items: PhantomData,
        }
    }

    /// Items asked for per page when listing (0 is taken as 1).
    pub fn per_page(mut self, per_page: u32) -> Self {
        self.per_page = per_page.max(1);
        self
    }

    /// Stop listing after this many items.
    pub fn max_items(mut self, max_items: u64) -> Self {
        self.max_items = Some(max_items);
        self
    }

    /// The collection's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Every item, page after page, fetched as the stream is polled. The stream ends after the first error.
    pub fn list(&self) -> BoxStream<'static, Result<T, ApiError>> {
        let mut paginator = PagePaginator::new(1, self.per_page);
        if let Some(max) = self.max_items {
            paginator = paginator.with_max_items(max);
        }
        let state = ListState {
            client: self.client.clone(),
            path: self.path.clone(),
            paginator,
            buffered: VecDeque::new(),
            failed: false,
        };
        stream::unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.buffered.pop_front() {
                    return Some((Ok(item), state));
                }
                if state.failed {
                    return None;
                }
                let page = state.paginator.next_request()?;
                let mut request = RequestParts::new(Method::Get, state.path.clone());
                page.apply(&mut request);
                match fetch_page::<R, T>(&state.client, request).await {
                    Ok((items, total)) => {
                        let keep = state
                            .paginator
                            .on_page(items.len(), total)
                            .expect("a page request is outstanding");
                        state.buffered.extend(items.into_iter().take(keep));
                    }
                    Err(e) => {
                        state.failed = true;
                        return Some((Err(e), state));
                    }
                }
            }
        })
        .boxed()
    }

    /// Every item, collected ([`list`](Self::list) to the end); the first error fails the whole list.
    pub async fn list_all(&self) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut list = self.list();
        while let Some(item) = list.next().await {
            items.push(item?);
        }
        Ok(items)
    }

    /// The item with `id`.
    pub async fn get(&self, id: &str) -> Result<T, ApiError> {
        self.client.get(&self.item_path(id)).await
    }

    /// Creates `item`; returns it as the server stored it.
    pub async fn create(&self, item: &T) -> Result<T, ApiError> {
        self.client.post(&self.path, item).await
    }

    /// Replaces the item with `id` by `item`; returns it as the server stored it.
    pub async fn update(&self, id: &str, item: &T) -> Result<T, ApiError> {
        self.client.put(&self.item_path(id), item).await
    }

    /// Deletes the item with `id`.
    pub async fn delete(&self, id: &str) -> Result<(), ApiError> {
        self.client
            .delete::<serde::de::IgnoredAny>(&self.item_path(id))
            .await
            .map(drop)
    }

    /// Creates every item, at most `max_concurrent` at once; one result per item, in input order.
    pub async fn create_many(&self, items: Vec<T>, max_concurrent: usize) -> BulkReport<T> {
        bulk(items, max_concurrent, |item| async move {
            self.create(&item).await
        })
        .await
    }

    /// Updates every `(id, item)`, at most `max_concurrent` at once; one result per item, in input order.
    pub async fn update_many(
        &self,
        items: Vec<(String, T)>,
        max_concurrent: usize,
    ) -> BulkReport<T> {
        bulk(items, max_concurrent, |(id, item)| async move {
            self.update(&id, &item).await
        })
        .await
    }

    /// Deletes every id, at most `max_concurrent` at once; one result per id, in input order.
    pub async fn delete_many(&self, ids: Vec<String>, max_concurrent: usize) -> BulkReport<()> {
        bulk(
            ids,
            max_concurrent,
            |id| async move { self.delete(&id).await },
        )
        .await
    }

    fn item_path(&self, id: &str) -> String {
        format!("{}/{}", self.path, encode_path_segment(id))
    }
}

struct ListState<R: Runtime, T> {
    client: ApiClient<R>,
    path: String,
    paginator: PagePaginator,
    buffered: VecDeque<T>,
    failed: bool,
}

/// One page: its items and the server's total, if it gave one.
async fn fetch_page<R: Runtime, T: DeserializeOwned>(
    client: &ApiClient<R>,
    request: RequestParts,
) -> Result<(Vec<T>, Option<u64>), ApiError> {
    let response = client.send(request).await?;
    let value: Value = super::api_client::decode(&response)?;
    let (items, total) = match value {
        Value::Array(items) => (items, None),
        Value::Object(mut obj) => {
            let items = ["items", "data", "results"]
                .iter()
                .find_map(|k| match obj.remove(*k) {
                    Some(Value::Array(items)) => Some(items),
                    _ => None,
                })
                .ok_or_else(|| {
                    invalid_response(&response, &"no items, data or results array in the page")
                })?;
            (items, obj.get("total").and_then(Value::as_u64))
        }
        _ => {
            return Err(invalid_response(
                &response,
                &"a page must be an array or an object",
            ));
        }
    };
    let items = items
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| invalid_response(&response, &e))?;
    Ok((items, total))
}
