//! The messaging API backends use: notify and query connected apps, send them server requests and await the
//! answer, publish on channels, and react to connects, disconnects and application-defined message types.
//!
//! Callbacks ([`Server::on_connect`], [`Server::on_disconnect`]) run on the server's event task, outside the hub's
//! lock, in the order the hub reported the events: keep them short (spawn for anything slow). Custom message
//! handlers ([`Server::on_message`]) are async and each request runs on its own task; the handler's result is the
//! client's `<type>_res` (or its `error`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use switchboard_protocol::server::{
    ConnId, DialectKind, HubError, HubEvent, NotifyTarget, RequestFailure, StorageError,
};
use switchboard_protocol::wire::{ChannelName, ErrorCode, IdempotencyKey, MessageId, NameError};

use super::driver::{HubHandle, Stored};
use crate::server::Server;
use crate::{BoxFuture, Runtime};

/// A connected app, as the connect and disconnect callbacks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// The app id the hub gave the connection (sent to it in `connected`).
    pub app_id: String,
    /// Its dialect (`None` in disconnect callbacks, where the hub no longer says).
    pub dialect: Option<DialectKind>,
}

/// A client message of an application-registered type, handed to its [`Server::on_message`] handler.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRequest {
    /// The sender's app id.
    pub app_id: String,
    /// The message's type.
    pub type_name: String,
    /// The message's `message_id` (the answer carries it).
    pub message_id: MessageId,
    /// The message's `data`.
    pub data: Map<String, Value>,
}

/// An [`on_message`](Server::on_message) handler's refusal of an [`AppRequest`], sent to the client as an `error`
/// with this code (one of the protocol's error codes) and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AppRequestError {
    /// The error code.
    pub code: ErrorCode,
    /// The human text.
    pub message: String,
}

impl AppRequestError {
    /// An error with a code and text.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppRequestError {
        AppRequestError {
            code,
            message: message.into(),
        }
    }
}

/// Why a message to an app could not be sent or answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No connected app has this id.
    #[error("no connected app {0}")]
    NotConnected(String),
    /// The hub refused (e.g. the app speaks a dialect that cannot answer server requests).
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The request was sent but failed: the app answered with an error, did not answer in time
    /// (`REQUEST_TIMEOUT`), or disconnected first.
    #[error("request failed: {0:?}")]
    Failed(RequestFailure),
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The channel name breaks the naming rule.
    #[error("invalid channel name: {0}")]
    InvalidChannel(#[from] NameError),
    /// The idempotency key breaks its rule (1 to 128 bytes, no control characters).
    #[error("invalid idempotency key: {0}")]
    InvalidKey(NameError),
    /// The hub refused the event (null, or over `max_message_bytes`).
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The store could not keep the event (a full disk, an IO error); it was not published.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

type Callback = Arc<dyn Fn(&AppInfo) + Send + Sync>;
type Handler = Arc<
    dyn Fn(AppRequest) -> BoxFuture<'static, Result<Map<String, Value>, AppRequestError>>
        + Send
        + Sync,
>;

/// Registered callbacks and handlers.
#[derive(Default)]
pub(crate) struct AppRegistry {
    on_connect: RwLock<Vec<Callback>>,
    on_disconnect: RwLock<Vec<Callback>>,
    handlers: RwLock<HashMap<String, Handler>>,
}

impl std::fmt::Debug for AppRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRegistry").finish_non_exhaustive()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Runs callbacks and handlers for the hub's events, in order. Ends when the server is dropped.
pub(crate) async fn event_task<R: Runtime>(
    hub: Weak<HubHandle<R>>,
    app: Arc<AppRegistry>,
    mut events: mpsc::UnboundedReceiver<HubEvent>,
) {
    while let Some(event) = events.next().await {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        match event {
            HubEvent::Connected {
                app_id, dialect, ..
            } => {
                let info = AppInfo {
                    app_id,
                    dialect: Some(dialect),
                };
                for cb in read(&app.on_connect) {
                    cb(&info);
                }
            }
            HubEvent::Disconnected { app_id, .. } => {
                let info = AppInfo {
                    app_id,
                    dialect: None,
                };
                for cb in read(&app.on_disconnect) {
                    cb(&info);
                }
            }
            HubEvent::CustomRequest {
                conn,
                message_id,
                type_name,
                data,
            } => dispatch_custom(&hub, &app, conn, message_id, type_name, data),
            HubEvent::RequestCompleted { conn, id, outcome } => {
                tracing::debug!(%conn, %id, ?outcome, "server request completed with nobody waiting");
            }
            HubEvent::Published { .. } => {}
            other => tracing::trace!(?other, "hub event"),
        }
    }
}

fn dispatch_custom<R: Runtime>(
    shared: &Arc<HubHandle<R>>,
    app: &AppRegistry,
    conn: ConnId,
    message_id: MessageId,
    type_name: String,
    data: Map<String, Value>,
) {
    let handler = app
        .handlers
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&type_name)
        .cloned();
    let app_id = shared
        .read(|core, _| core.hub.connection(conn).map(|c| c.app_id().to_owned()))
        .unwrap_or_default();
    let request = AppRequest {
        app_id,
        type_name: type_name.clone(),
        message_id: message_id.clone(),
        data,
    };
    let weak = Arc::downgrade(shared);
    let task = async move {
        let result = match handler {
            Some(h) => h(request).await,
            None => Err(AppRequestError::new(
                ErrorCode::InvalidMessageType,
                format!("no handler for {type_name}"),
            )),
        };
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let result = result.map_err(|e| (e.code, e.message));
        shared.with(|core, now| core.hub.respond(now, conn, &message_id, &type_name, result));
    };
    shared.runtime.spawn(Box::pin(task));
}

/// The application API (see the [module docs](self)).
impl<R: Runtime> Server<R> {
    fn conn_of(&self, app_id: &str) -> Result<ConnId, SendError> {
        self.hub
            .read(|core, _| core.hub.conn_by_app_id(app_id))
            .ok_or_else(|| SendError::NotConnected(app_id.to_owned()))
    }

    /// Sends a `notification` to one app. Fails when no app has this id.
    pub fn send_to_app(
        &self,
        app_id: &str,
        notification_type: &str,
        message: Option<String>,
        additional_data: Option<Value>,
    ) -> Result<(), SendError> {
        let conn = self.conn_of(app_id)?;
        let delivered = self.hub.with(|core, now| {
            core.hub.notify(
                now,
                NotifyTarget::App(conn),
                notification_type,
                message,
                additional_data,
            )
        });
        if delivered == 0 {
            return Err(SendError::NotConnected(app_id.to_owned()));
        }
        Ok(())
    }

    /// Sends a `server_request` to one app and waits for its `server_response`: the response data on success;
    /// [`SendError::Failed`] with [`RequestFailure::Timeout`] when it does not answer within `timeout` (or the
    /// hub's `request_timeout` when `None`), [`RequestFailure::Error`] when it answers with an error, and
    /// [`RequestFailure::Cancelled`] when it disconnects first.
    pub async fn send_to_app_and_wait(
        &self,
        app_id: &str,
        request_type: &str,
        data: Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<Map<String, Value>, SendError> {
        let conn = self.conn_of(app_id)?;
        let (tx, rx) = oneshot::channel();
        self.hub.with(|core, now| {
            let id = core
                .hub
                .send_request(now, conn, request_type, data, timeout)?;
            core.waiters.insert((conn, id), tx);
            Ok::<_, HubError>(())
        })?;
        match rx.await {
            Ok(Ok(data)) => Ok(data),
            Ok(Err(failure)) => Err(SendError::Failed(failure)),
            Err(_) => Err(SendError::Failed(RequestFailure::Cancelled)),
        }
    }

    /// Sends a `notification` to the app that owns a session; returns how many got it (0 or 1).
    pub fn send_to_session(
        &self,
        session_id: &str,
        notification_type: &str,
        message: Option<String>,
        additional_data: Option<Value>,
    ) -> usize {
        self.hub.with(|core, now| {
            core.hub.notify(
                now,
                NotifyTarget::Session(session_id.to_owned()),
                notification_type,
                message,
                additional_data,
            )
        })
    }

    /// Sends a `notification` to every native connection except the apps in `exclude`; returns how many got it.
    pub fn broadcast(
        &self,
        notification_type: &str,
        message: Option<String>,
        additional_data: Option<Value>,
        exclude: &[&str],
    ) -> usize {
        self.hub.with(|core, now| {
            let exclude = exclude
                .iter()
                .filter_map(|a| core.hub.conn_by_app_id(a))
                .collect();
            core.hub.notify(
                now,
                NotifyTarget::All { exclude },
                notification_type,
                message,
                additional_data,
            )
        })
    }

    /// Publishes an event on a channel (every dialect's subscribers get it); `retain` makes it the channel's
    /// state. Returns the event's offset once the store has kept it (at once with the in-memory store; after
    /// the write and its sync with `--data-dir`).
    pub async fn publish(
        &self,
        channel: &str,
        event: Value,
        retain: bool,
    ) -> Result<u64, PublishError> {
        let channel = ChannelName::new(channel)?;
        Ok(self
            .hub
            .publish(&channel, event, retain, None)
            .await??
            .first)
    }

    /// [`publish`](Self::publish) with an idempotency key: when the channel saw `key` within the dedupe window
    /// (`--dedupe-window-secs`), nothing is published and the answer is the original's offsets, marked
    /// [`Stored::duplicate`]. A retry after an error or a timeout with the same key thus never lands twice.
    pub async fn publish_keyed(
        &self,
        channel: &str,
        event: Value,
        retain: bool,
        key: &str,
    ) -> Result<Stored, PublishError> {
        let channel = ChannelName::new(channel)?;
        let key = IdempotencyKey::new(key).map_err(PublishError::InvalidKey)?;
        Ok(self
            .hub
            .publish(&channel, event, retain, Some(key))
            .await??)
    }

    /// Publishes `events` on a channel at consecutive offsets, all or none (an empty batch, one over
    /// [`MAX_BATCH_EVENTS`](switchboard_protocol::wire::MAX_BATCH_EVENTS), a `null` event or one over
    /// `max_message_bytes` refuses the whole batch, naming the event: [`HubError::batch_index`]); `retain_last`
    /// makes the last one the channel's state. Returns the first and last offsets once the store has kept them all.
    pub async fn publish_batch(
        &self,
        channel: &str,
        events: Vec<Value>,
        retain_last: bool,
    ) -> Result<std::ops::RangeInclusive<u64>, PublishError> {
        let channel = ChannelName::new(channel)?;
        let stored = self
            .hub
            .publish_batch(&channel, events, retain_last, None)
            .await??;
        Ok(stored.first..=stored.last)
    }

    /// The app ids of every open connection.
    pub fn connected_apps(&self) -> Vec<String> {
        self.hub.read(|core, _| {
            core.hub
                .connections()
                .map(|(_, c)| c.app_id().to_owned())
                .collect()
        })
    }

    /// Whether an app with this id is connected.
    pub fn is_app_connected(&self, app_id: &str) -> bool {
        self.hub
            .read(|core, _| core.hub.conn_by_app_id(app_id).is_some())
    }

    /// The open sessions of an app (empty when it is not connected).
    pub fn app_sessions(&self, app_id: &str) -> Vec<String> {
        self.hub.read(|core, _| {
            core.hub
                .conn_by_app_id(app_id)
                .and_then(|c| core.hub.connection(c))
                .map(|c| c.sessions().map(str::to_owned).collect())
                .unwrap_or_default()
        })
    }

    /// Calls `callback` for every app that connects.
    pub fn on_connect(&self, callback: impl Fn(&AppInfo) + Send + Sync + 'static) {
        self.app
            .on_connect
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(callback));
    }

    /// Calls `callback` for every app that disconnects.
    pub fn on_disconnect(&self, callback: impl Fn(&AppInfo) + Send + Sync + 'static) {
        self.app
            .on_disconnect
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(callback));
    }

    /// Handles client messages of type `type_name` (a type the protocol does not define): the handler's `Ok(data)`
    /// is answered as `<type_name>_res` with that data, its `Err` as an `error`. Registering the same name again
    /// replaces the handler.
    pub fn on_message<F, Fut>(&self, type_name: &str, handler: F)
    where
        F: Fn(AppRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Map<String, Value>, AppRequestError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        self.app
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(type_name.to_owned(), handler);
        self.hub
            .with(|core, _| core.hub.register_custom_type(type_name));
    }
}
