//! The HTTP/1.1 front: listeners ([`listener`]) and TLS ([`tls`]), one task per connection ([`conn`]) that reads
//! request heads ([`head`]) and bodies, checks WebSocket upgrades ([`upgrade`]) against the limits and the
//! `Origin` allowlist ([`limits`]) and the token ([`verifier`], [`authenticator`]), answers the REST routes
//! ([`rest`], with the decisions of [`switchboard_protocol::rest`]), hands upgraded streams to the hub's
//! WebSocket sessions and serves Server-Sent Events streams ([`sse`]). [`Front`] is what those tasks share.

pub(crate) mod accept_errors;
pub mod authenticator;
pub(crate) mod call;
pub(crate) mod conn;
pub(crate) mod dashboard;
pub(crate) mod head;
pub(crate) mod limits;
pub(crate) mod listener;
pub(crate) mod metrics;
pub(crate) mod rate;
pub(crate) mod refresh;
pub(crate) mod rest;
pub(crate) mod sse;
#[cfg(feature = "tls")]
pub mod tls;
pub(crate) mod upgrade;
pub mod verifier;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::Runtime;
use crate::server::config::ServerConfig;
use crate::server::hub::driver::HubHandle;
use crate::server::hub::session::SessionLimits;
use crate::server::webhooks::sender::WebhookSender;
use crate::signal::Trigger;

/// What the front's tasks share: the configuration, the hub they hand work to, the webhook sender (for its
/// metrics), and the front's own state (connection and rate limits, HTTP counters, the drain flag, the stop
/// signal, the count of live HTTP tasks).
pub(crate) struct Front<R: Runtime> {
    /// The runtime tasks and timers come from.
    pub runtime: R,
    /// The configuration.
    pub config: Arc<ServerConfig>,
    /// The hub.
    pub hub: Arc<HubHandle<R>>,
    /// Webhook delivery, when configured.
    pub webhooks: Option<Arc<WebhookSender<R>>>,
    /// WebSocket connection counts, total and per IP address.
    pub limits: limits::ConnLimits,
    /// The REST publish route's rate limits, by trust.
    pub rate: rate::RateLimiter,
    /// HTTP counters for `/metrics`.
    pub metrics: metrics::HttpMetrics,
    /// Failed accepts, for `/metrics` and a rate-limited warning.
    pub accept_errors: accept_errors::AcceptErrors,
    /// Set by `drain`/`shutdown`: readiness is 503 and new sockets are refused.
    pub draining: AtomicBool,
    /// Fired by `shutdown`: idle HTTP connections end.
    pub stopping: Trigger,
    /// Live HTTP (not yet upgraded) connection tasks.
    pub http_tasks: AtomicUsize,
}

impl<R: Runtime> std::fmt::Debug for Front<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Front<R> {
    /// The front of a server over `hub`.
    pub fn new(
        runtime: R,
        config: Arc<ServerConfig>,
        hub: Arc<HubHandle<R>>,
        webhooks: Option<Arc<WebhookSender<R>>>,
    ) -> Front<R> {
        let now = runtime.now();
        Front {
            limits: limits::ConnLimits::new(config.max_connections, config.max_connections_per_ip),
            rate: rate::RateLimiter::new(
                rate::Rate {
                    per_sec: config.http_rate_per_sec,
                    burst: config.http_rate_burst,
                },
                rate::Rate {
                    per_sec: config.trusted_http_rate_per_sec,
                    burst: config.trusted_http_rate_burst,
                },
                now,
            ),
            metrics: metrics::HttpMetrics::default(),
            accept_errors: accept_errors::AcceptErrors::default(),
            draining: AtomicBool::new(false),
            stopping: Trigger::new(),
            http_tasks: AtomicUsize::new(0),
            runtime,
            config,
            hub,
            webhooks,
        }
    }

    /// Whether the server is draining (shutting down).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// What each WebSocket session is configured with.
    pub fn session_limits(&self) -> SessionLimits {
        SessionLimits {
            max_message_bytes: self.config.hub.max_message_bytes,
            close_timeout: self.config.close_timeout,
        }
    }
}
