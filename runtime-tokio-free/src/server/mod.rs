//! The Switchboard server: an HTTP/1.1 front with WebSocket upgrade for the three dialects, over the sans-IO
//! [`Hub`](switchboard_protocol::server::Hub), on any [`Runtime`].
//!
//! # Shape
//!
//! One [`Server`] owns one hub and outlives its listeners: [`Server::listen`] can be called any number of times
//! (also again on the same port after [`Server::stop_listening`]), and [`Server::serve_stream`] serves any byte
//! stream (the [in-memory transport](crate::memory) in tests). Per WebSocket connection there is one task, which reads
//! and writes; one timer task serves the hub's deadlines and one event task runs application callbacks.
//! With [`ServerConfig::webhook`] set, a dispatcher task and up to `max_concurrent` delivery workers POST every
//! matching channel event to the webhook, in offset order per channel, reading the events from the hub's history
//! (see [`webhooks`]).
//!
//! # Parts
//!
//! - `front/`: the HTTP/1.1 front: listeners, TLS, the per-connection request loop, the REST routes (executing
//!   the decisions of [`switchboard_protocol::rest`]), WebSocket upgrades, connection and rate limits, tokens.
//! - `hub/`: the hub's driver: the hub behind its lock with its timer task, the WebSocket sessions, the
//!   [`app_api`] and the hub's metrics.
//! - [`webhooks`]: the webhook sender, driving the protocol's delivery scheduler.
//! - `storage/`: durable history ([`ServerConfig::data_dir`]): the data directory's lock, reading it back at
//!   start, and the threads that write the durable store's log and snapshots.
//!
//! # Methods by kind
//!
//! - Lifecycle: [`Server::new`], [`Server::open`], [`Server::bind`], [`Server::listen`], [`Server::local_addr`],
//!   [`Server::stop_listening`], [`Server::serve_stream`], [`Server::drain`], [`Server::shutdown`].
//! - Messaging apps (see [`app_api`]): [`Server::send_to_app`], [`Server::send_to_app_and_wait`],
//!   [`Server::send_to_session`], [`Server::broadcast`], [`Server::publish`], [`Server::connected_apps`],
//!   [`Server::is_app_connected`], [`Server::app_sessions`], [`Server::on_connect`], [`Server::on_disconnect`],
//!   [`Server::on_message`].
//!
//! ```no_run
//! # async fn run<R: switchboard_runtime::Runtime>(runtime: R) -> std::io::Result<()> {
//! use switchboard_runtime::server::{Server, ServerConfig};
//! // 1. Bind: the hub starts, the accept loop is spawned on the runtime.
//! let server = Server::bind(runtime, "127.0.0.1:8080".parse().unwrap(), ServerConfig::default()).await?;
//! // 2. Talk to connected apps, publish on channels.
//! server.publish("projects/p1", serde_json::json!({"event_type": "log", "data": {"line": "hi"}}), false).await.ok();
//! // 3. Shut down gracefully: readiness goes 503, sockets get 1001, writers flush.
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cluster;
mod config;
pub(crate) mod front;
pub(crate) mod hub;
pub(crate) mod storage;
pub mod webhooks;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_io::{AsyncRead, AsyncWrite};
use switchboard_protocol::redis::engine::FeedConfig;
use switchboard_protocol::server::HubStats;
use switchboard_protocol::wire::{ChannelName, CloseCode};

pub use cluster::ClusterConfig;
pub use config::ServerConfig;
pub use front::authenticator::{AuthenticatorVerifier, permissions_from_grants};
#[cfg(feature = "tls")]
pub use front::tls::{ServerTls, TlsSetupError};
pub use front::verifier::{StaticTokens, TokenRefusal, TokenVerifier};
pub use hub::app_api;
pub use hub::app_api::{AppInfo, AppRequest, AppRequestError, PublishError, SendError};
pub use hub::driver::Stored;
pub use storage::DataDirError;
pub use switchboard_protocol::rest::RequestHead;
pub use switchboard_protocol::server::FsyncPolicy;
pub use webhooks::WebhookConfig;

use crate::Runtime;
use crate::redis::engine::{Engine, EngineOptions, Members, Registry};
use crate::signal::Trigger;
use front::Front;
use front::listener::Listeners;
use hub::app_api::AppRegistry;
use hub::driver::HubHandle;
use webhooks::sender::{Intake, WebhookSender};

/// A running server. Cheap to clone: clones share the hub.
///
/// Dropping the handles does not stop it (its accept loops and connections hold it): call [`Server::shutdown`]
/// (or [`Server::stop_listening`]) to end it.
pub struct Server<R: Runtime> {
    /// The hub behind its lock.
    hub: Arc<HubHandle<R>>,
    /// Application callbacks and custom message handlers.
    app: Arc<AppRegistry>,
    /// The HTTP front's state.
    front: Arc<Front<R>>,
    listeners: Arc<Listeners>,
}

impl<R: Runtime> Clone for Server<R> {
    fn clone(&self) -> Self {
        Server {
            hub: self.hub.clone(),
            app: self.app.clone(),
            front: self.front.clone(),
            listeners: self.listeners.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs())
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

/// How long a shutting-down node waits for Redis to drop its counts.
const LEAVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

impl<R: Runtime> Server<R> {
    /// A server with its hub, timer and event tasks running, and no listener yet.
    ///
    /// # Panics
    ///
    /// When [`ServerConfig::data_dir`] is set and cannot be opened: use [`Server::open`] to get the error instead.
    pub fn new(runtime: R, config: ServerConfig) -> Server<R> {
        match Server::open(runtime, config) {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`Server::new`], first opening [`ServerConfig::data_dir`] when set: the directory is locked (another server
    /// on it is refused with [`DataDirError::InUse`]) and its history read back, with blocking file IO, before
    /// anything is served. Without a data directory it cannot fail.
    pub fn open(runtime: R, mut config: ServerConfig) -> Result<Server<R>, DataDirError> {
        if config.cluster.is_some() && config.data_dir.is_some() {
            tracing::error!("a node of a cluster keeps no data directory: it is ignored");
            config.data_dir = None;
        }
        let durable = storage::open(&config, runtime.now())?;
        let on_disk = durable.is_some();
        let webhook = match config.webhook.clone().map(|w| (w.validate(), w)) {
            Some((Ok(endpoint), webhook)) => Some(WebhookSender::new(
                runtime.clone(),
                webhook,
                endpoint,
                config.hub.seed,
                on_disk,
                config
                    .cluster
                    .as_ref()
                    .map(|_| config.hub.history_size.max(1)),
            )),
            Some((Err(e), webhook)) => {
                tracing::error!(url = %webhook.url, error = %e, "invalid webhook configuration; no webhooks will be delivered");
                None
            }
            None => None,
        };
        let (webhooks, observer, tap, publishes) = match webhook {
            Some((sender, Intake::Observer(observer), publishes)) => {
                (Some(sender), Some(observer), None, Some(publishes))
            }
            Some((sender, Intake::Tap(tap), publishes)) => {
                (Some(sender), None, Some(tap), Some(publishes))
            }
            None => (None, None, None, None),
        };
        let engine = config.cluster.as_ref().map(|cluster| {
            let mut redis = cluster.redis.clone();
            if redis.connection.client_name.is_none() {
                // Named in CLIENT LIST; and the name's handshake needs Redis to answer, so a frozen Redis whose
                // kernel still accepts connections never passes for one that is up (readiness, publishes).
                redis = redis.client_name(&format!("switchboard-{}", cluster.node_id));
            }
            let options = EngineOptions {
                redis,
                prefix: cluster.prefix.clone(),
                history_size: config.hub.history_size,
                history_ttl: config.hub.history_ttl,
                feed: FeedConfig {
                    load_events: config.hub.history_size,
                    history_ttl: config.hub.history_ttl,
                    ..FeedConfig::default()
                },
            };
            let (engine, events) = Engine::start(runtime.clone(), options);
            let registry = Registry::start(
                runtime.clone(),
                &engine,
                cluster.node_id.clone(),
                cluster.ttl,
            );
            let members = Members::new(&engine, cluster.node_id.clone(), cluster.ttl);
            (
                hub::driver::cluster_link::ClusterLink {
                    engine,
                    registry,
                    members,
                    on_published: tap,
                },
                events,
            )
        });
        let (engine, engine_events) = match engine {
            Some((link, events)) => (Some(link), Some(events)),
            None => (None, None),
        };
        let config = Arc::new(config);
        let (hub, events) = HubHandle::start(
            runtime.clone(),
            config.hub.clone(),
            observer,
            durable,
            engine,
        )?;
        if let Some(events) = engine_events {
            runtime.spawn(Box::pin(hub::driver::cluster_link::feed_task(
                Arc::downgrade(&hub),
                events,
            )));
        }
        if let Some(members) = hub.members() {
            runtime.spawn(Box::pin(hub::driver::cluster_counts::refresh_task(
                runtime.clone(),
                Arc::downgrade(&hub),
                members.clone(),
            )));
        }
        if let Some(verifier) = config.verifier.clone() {
            hub.with(|core, _| {
                core.hub
                    .set_refresh_check(front::refresh::refresh_check(verifier))
            });
        }
        if on_disk {
            // The store's first write (a new segment: header and epoch) is on disk before anything is served, so
            // no client is ever told an epoch that a crash right after the start could take back.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !hub.read(|core, _| core.first_write_done()) && std::time::Instant::now() < until
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let app = Arc::new(AppRegistry::default());
        runtime.spawn(Box::pin(hub::app_api::event_task(
            Arc::downgrade(&hub),
            app.clone(),
            events,
        )));
        if let (Some(sender), Some(publishes)) = (&webhooks, publishes) {
            runtime.spawn(Box::pin(
                sender.clone().run(Arc::downgrade(&hub), publishes),
            ));
        }
        let front = Arc::new(Front::new(runtime, config, hub.clone(), webhooks));
        Ok(Server {
            hub,
            app,
            front,
            listeners: Arc::new(Listeners::default()),
        })
    }

    /// [`Server::open`], then [`Server::listen`] on `addr` (port 0 picks a free port: see [`Server::local_addr`]).
    /// A [`DataDirError`] comes back inside the [`io::Error`] (see [`io::Error::get_ref`]).
    pub async fn bind(runtime: R, addr: SocketAddr, config: ServerConfig) -> io::Result<Server<R>> {
        let server = Server::open(runtime, config).map_err(io::Error::other)?;
        server.listen(addr).await?;
        Ok(server)
    }

    /// Binds a listener and spawns its accept loop; returns the address bound. Can be called again, on the same
    /// port too once [`Server::stop_listening`] has returned: the hub, its channels and history live on.
    pub async fn listen(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        self.listeners.listen(self.front.clone(), addr).await
    }

    /// The address of the first active listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addrs().first().copied()
    }

    /// The addresses of every active listener.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.addrs()
    }

    /// Stops every listener: accept loops end and release their ports, idle HTTP connections close, and the
    /// WebSocket connections that came through them are closed with 1001 (clients reconnect and recover). The
    /// hub lives on. Returns once the ports are free.
    pub async fn stop_listening(&self) {
        let ids = self.listeners.stop_all().await;
        self.hub.with(|core, now| {
            let conns: Vec<_> = core
                .conns
                .iter()
                .filter(|(_, l)| l.listener.is_some_and(|id| ids.contains(&id)))
                .map(|(c, _)| *c)
                .collect();
            for conn in conns {
                core.hub
                    .close(now, conn, CloseCode::GoingAway, "server going away");
            }
        });
    }

    /// Serves one already-connected byte stream through the HTTP front (health routes, REST, WebSocket upgrade),
    /// as the listeners do with accepted TCP streams. This is how tests drive the [in-memory transport](crate::memory).
    pub fn serve_stream<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let task = front::conn::serve(self.front.clone(), stream, None, None, Trigger::new());
        self.front.runtime.spawn(Box::pin(task));
    }

    /// Starts draining: `/health/ready` answers 503 and new WebSocket upgrades are refused with 503, while open
    /// connections carry on. [`Server::shutdown`] drains first if this was not called.
    pub fn drain(&self) {
        self.front.draining.store(true, Ordering::SeqCst);
    }

    /// Whether [`Server::drain`] or [`Server::shutdown`] was called.
    pub fn is_draining(&self) -> bool {
        self.front.is_draining()
    }

    /// Graceful shutdown: drain, stop accepting, close every WebSocket with 1001, then wait (at most
    /// `shutdown_timeout`) for the writers to flush and every connection to end. With a data directory, then wait
    /// (at most `shutdown_timeout` again) for the store's last writes, close its files and release the directory's
    /// lock: another server may open it once this returns.
    pub async fn shutdown(&self) {
        self.drain();
        self.front.stopping.fire();
        self.listeners.stop_all().await;
        self.hub.with(|core, now| core.hub.shutdown(now));
        let runtime = self.front.runtime.clone();
        let deadline = runtime.now() + self.front.config.shutdown_timeout;
        loop {
            let open = self.hub.read(|core, _| core.conns.len())
                + self.front.http_tasks.load(Ordering::SeqCst);
            if open == 0 {
                break;
            }
            let now = runtime.now();
            if now >= deadline {
                tracing::warn!(open, "shutdown timed out with connections still open");
                break;
            }
            let tick = now + std::time::Duration::from_millis(10);
            runtime.sleep_until(tick.min(deadline)).await;
        }
        if let Some(members) = self.hub.members() {
            // Bounded: with Redis down the entry simply expires.
            let leave = async { Some(members.leave().await) };
            let give_up = async {
                runtime.sleep_until(runtime.now() + LEAVE_TIMEOUT).await;
                None
            };
            match futures_lite::future::or(leave, give_up).await {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    tracing::warn!(%error, "could not remove this node's counts from Redis; they expire")
                }
                None => tracing::warn!("Redis did not answer; this node's counts expire"),
            }
        }
        self.close_storage().await;
    }

    /// Waits (bounded) until the store has written everything asked of it, then closes the writer and waits until
    /// its threads have let the data directory go.
    async fn close_storage(&self) {
        if self.hub.read(|core, _| core.writer.is_none()) {
            return;
        }
        let runtime = self.front.runtime.clone();
        let deadline = runtime.now() + self.front.config.shutdown_timeout;
        let tick = std::time::Duration::from_millis(5);
        while !self.hub.read(|core, _| core.storage_settled()) {
            if runtime.now() >= deadline {
                tracing::warn!("shutdown timed out with store writes still under way");
                break;
            }
            runtime.sleep_until(runtime.now() + tick).await;
        }
        self.hub.with(|core, _| {
            if let Some(writer) = &mut core.writer {
                writer.close();
            }
        });
        while !self
            .hub
            .read(|core, _| core.writer.as_ref().is_none_or(|w| w.is_released()))
        {
            if runtime.now() >= deadline {
                tracing::warn!("shutdown timed out before the data directory was released");
                return;
            }
            runtime.sleep_until(runtime.now() + tick).await;
        }
    }

    /// The hub's counters (connections, channels, publishes, deliveries…).
    pub fn stats(&self) -> HubStats {
        self.hub.read(|core, _| core.hub.stats())
    }

    /// `channel`'s epoch (PROTOCOL §3).
    pub fn epoch(&self, channel: &ChannelName) -> String {
        self.hub.read(|core, _| core.hub.epoch(channel).to_owned())
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.front.config
    }
}
