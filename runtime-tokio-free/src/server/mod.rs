//! The Switchboard server: an HTTP/1.1 front with WebSocket upgrade for the three dialects, over the sans-IO
//! [`Hub`](switchboard_protocol::server::Hub), on any [`Runtime`].
//!
//! # Shape
//!
//! One [`Server`] owns one hub and outlives its listeners: [`Server::listen`] can be called any number of times
//! (also again on the same port after [`Server::stop_listening`]), and [`Server::serve_stream`] serves any byte
//! stream (the [in-memory transport](crate::memory) in tests). Per WebSocket connection there is a reader task and a
//! writer task; one timer task serves the hub's deadlines and one event task runs application callbacks.
//! With [`ServerConfig::webhook`] set, a dispatcher task and up to `max_concurrent` delivery workers POST every
//! matching channel event to the webhook, in offset order per channel, reading the events from the hub's history
//! (see [`webhooks`]).
//!
//! # Methods by kind
//!
//! - Lifecycle: [`Server::new`], [`Server::bind`], [`Server::listen`], [`Server::local_addr`],
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
//! server.publish("projects/p1", serde_json::json!({"event_type": "log", "data": {"line": "hi"}}), false).ok();
//! // 3. Shut down gracefully: readiness goes 503, sockets get 1001, writers flush.
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod app_api;
mod auth;
mod config;
mod connection;
mod driver;
mod http_conn;
mod limits;
mod listener;
mod metrics;
mod rate;
mod rest;
#[cfg(feature = "tls")]
mod tls;
mod verifier;
pub mod webhooks;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_io::{AsyncRead, AsyncWrite};
use switchboard_protocol::server::HubStats;
use switchboard_protocol::wire::{ChannelName, CloseCode};

pub use app_api::{AppInfo, AppRequest, HandlerError, PublishError, SendError};
pub use auth::{AuthenticatorVerifier, permissions_from_grants};
pub use config::ServerConfig;
#[cfg(feature = "tls")]
pub use tls::{ServerTls, TlsSetupError};
pub use verifier::{AuthError, StaticTokens, TokenVerifier};
pub use webhooks::WebhookConfig;

use crate::Runtime;
use crate::signal::Trigger;
use driver::Shared;

/// A running server. Cheap to clone: clones share the hub.
///
/// Dropping the handles does not stop it (its accept loops and connections hold it): call [`Server::shutdown`]
/// (or [`Server::stop_listening`]) to end it.
pub struct Server<R: Runtime> {
    shared: Arc<Shared<R>>,
    listeners: Arc<listener::Listeners>,
}

impl<R: Runtime> Clone for Server<R> {
    fn clone(&self) -> Self {
        Server {
            shared: self.shared.clone(),
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

impl<R: Runtime> Server<R> {
    /// A server with its hub, timer and event tasks running, and no listener yet.
    pub fn new(runtime: R, config: ServerConfig) -> Server<R> {
        Server {
            shared: Shared::start(runtime, config),
            listeners: Arc::new(listener::Listeners::default()),
        }
    }

    /// [`Server::new`], then [`Server::listen`] on `addr` (port 0 picks a free port: see [`Server::local_addr`]).
    pub async fn bind(runtime: R, addr: SocketAddr, config: ServerConfig) -> io::Result<Server<R>> {
        let server = Server::new(runtime, config);
        server.listen(addr).await?;
        Ok(server)
    }

    /// Binds a listener and spawns its accept loop; returns the address bound. Can be called again, on the same
    /// port too once [`Server::stop_listening`] has returned: the hub, its channels and history live on.
    pub async fn listen(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        self.listeners.listen(self.shared.clone(), addr).await
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
        self.shared.with(|core, now| {
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
        let task = http_conn::serve(self.shared.clone(), stream, None, None, Trigger::new());
        self.shared.runtime.spawn(Box::pin(task));
    }

    /// Starts draining: `/health/ready` answers 503 and new WebSocket upgrades are refused with 503, while open
    /// connections carry on. [`Server::shutdown`] drains first if this was not called.
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
    }

    /// Whether [`Server::drain`] or [`Server::shutdown`] was called.
    pub fn is_draining(&self) -> bool {
        self.shared.is_draining()
    }

    /// Graceful shutdown: drain, stop accepting, close every WebSocket with 1001, then wait (at most
    /// `shutdown_timeout`) for the writers to flush and every connection to end.
    pub async fn shutdown(&self) {
        self.drain();
        self.shared.stopping.fire();
        self.listeners.stop_all().await;
        self.shared.with(|core, now| core.hub.shutdown(now));
        let runtime = self.shared.runtime.clone();
        let deadline = runtime.now() + self.shared.config.shutdown_timeout;
        loop {
            let open = self.shared.read(|core, _| core.conns.len())
                + self.shared.http_tasks.load(Ordering::SeqCst);
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
    }

    /// The hub's counters (connections, channels, publishes, deliveries…).
    pub fn stats(&self) -> HubStats {
        self.shared.read(|core, _| core.hub.stats())
    }

    /// `channel`'s epoch (PROTOCOL §3).
    pub fn epoch(&self, channel: &ChannelName) -> String {
        self.shared
            .read(|core, _| core.hub.epoch(channel).to_owned())
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }
}
