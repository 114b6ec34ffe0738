//! [`ServerConfig`]: the hub's limits plus the HTTP front's limits, timeouts and token verifier.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::server::{FsyncPolicy, HubConfig};

use super::front::verifier::TokenVerifier;
use super::webhooks::WebhookConfig;

/// Everything a [`Server`](super::Server) is configured with. [`Default`] gives the contract's defaults.
#[derive(Clone)]
pub struct ServerConfig {
    /// The hub's limits and intervals (PROTOCOL §1–§4).
    pub hub: HubConfig,
    /// The largest request head (request line and headers) accepted; more is 431 (default 16 KiB).
    pub max_head_bytes: usize,
    /// The largest request body accepted; more is 413 (default 1 MiB).
    pub max_body_bytes: usize,
    /// How long a new connection may take to send its first request head and body, and any request its body
    /// (default 10 s). Past it the connection is dropped.
    pub handshake_timeout: Duration,
    /// How long a keep-alive HTTP connection may sit idle between requests (default 60 s).
    pub idle_timeout: Duration,
    /// How long a WebSocket writer keeps trying to deliver what was queued before a close, the close frame itself,
    /// and waits for the peer's answering close (default 5 s).
    pub close_timeout: Duration,
    /// How long [`Server::shutdown`](super::Server::shutdown) waits for connections to finish after telling them
    /// to close (default 10 s).
    pub shutdown_timeout: Duration,
    /// `POST /api/v1/channels/{channel}/events` requests per second one untrusted client address may make on
    /// average (default 100; 0 turns the limit off). Over it the answer is 429 with `Retry-After`. Who is trusted:
    /// [`Trust`](switchboard_protocol::server::Trust).
    pub http_rate_per_sec: u32,
    /// Such requests one untrusted client address may make at once after a quiet spell (default 200).
    pub http_rate_burst: u32,
    /// The same for trusted requests (a credential with publish rights, or loopback without authentication), per
    /// client address (default 0: no limit).
    pub trusted_http_rate_per_sec: u32,
    /// Trusted requests one client address may make at once, when `trusted_http_rate_per_sec` is set (default
    /// 1000).
    pub trusted_http_rate_burst: u32,
    /// Checks tokens at the WebSocket handshake and on the channel routes; `None` (the default) lets everyone in
    /// with every permission.
    pub verifier: Option<Arc<dyn TokenVerifier>>,
    /// Most WebSocket connections and event streams open at once (default 10,000). An upgrade or a stream past it
    /// is answered 503 before it starts. 0 turns the limit off.
    pub max_connections: usize,
    /// Most WebSocket connections and event streams open at once from one IP address (default 1,000). An upgrade
    /// or a stream past it is answered 429 before it starts. 0 turns the limit off.
    pub max_connections_per_ip: usize,
    /// The `Origin` values a WebSocket upgrade may carry, e.g. `https://app.example.com` (compared without case,
    /// a trailing `/` ignored). Empty (the default): any. An upgrade with another `Origin` is answered 403; one
    /// without an `Origin` header (not a browser) is let through to the token check.
    pub allowed_origins: Vec<String>,
    /// Serve the dashboard page at `/` and `/ui` (default off; `switchboard serve` turns it on unless `--no-ui`).
    pub dashboard: bool,
    /// TLS for every listener (feature `tls`): accepted TCP streams are wrapped in it before the HTTP front, so
    /// the port serves `https://` and `wss://`. `None` (the default): plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<super::front::tls::ServerTls>,
    /// Where to deliver channel events by signed `POST` (see [`webhooks`](super::webhooks)); `None` (the default)
    /// delivers none. An invalid one (see [`WebhookConfig::validate`]) is logged and delivers none: check it first.
    pub webhook: Option<WebhookConfig>,
    /// Keep channels' history, epochs, offsets, retained state and the webhook sender's positions in this
    /// directory, so a restart or a crash loses no acknowledged event (see [`Server::open`](super::Server::open)).
    /// `None` (the default): in memory, gone with the process.
    pub data_dir: Option<PathBuf>,
    /// With a `data_dir`: when writes are synced, and so what an acknowledged publish survives (default
    /// [`FsyncPolicy::Batch`]: group commit, every acknowledged event synced).
    pub fsync: FsyncPolicy,
    /// With a `data_dir`: the most its files may take; the oldest history is dropped first, never the retained
    /// state. `None` (the default): no budget.
    pub max_disk_bytes: Option<u64>,
    /// Be one node of a cluster whose channels live in Redis (see docs/SCALING.md); `None` (the default): a single
    /// node. A node keeps no `data_dir` (Redis keeps the history) and sends no webhooks.
    pub cluster: Option<super::cluster::ClusterConfig>,
}

/// The defaults of PROTOCOL.md, with the hub seeded from the OS: the seed makes the channels' epoch, and a fixed
/// one would give every server run the same epoch, so a client resuming after a restart would take the new, empty
/// history for the old one. Set `hub.seed` yourself for a reproducible run.
impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hub: HubConfig {
                seed: os_seed(),
                ..HubConfig::default()
            },
            max_head_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            http_rate_per_sec: 100,
            http_rate_burst: 200,
            trusted_http_rate_per_sec: 0,
            trusted_http_rate_burst: 1000,
            verifier: None,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            allowed_origins: Vec::new(),
            dashboard: false,
            #[cfg(feature = "tls")]
            tls: None,
            webhook: None,
            data_dir: None,
            fsync: FsyncPolicy::default(),
            max_disk_bytes: None,
            cluster: None,
        }
    }
}

/// A seed from std's per-process random hash keys, mixed with the time.
fn os_seed() -> u64 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::collections::hash_map::RandomState::new().hash_one(nanos)
}

impl ServerConfig {
    /// Delivers channel events to a webhook.
    pub fn with_webhook(mut self, webhook: WebhookConfig) -> ServerConfig {
        self.webhook = Some(webhook);
        self
    }

    /// Keeps history in `dir` (see [`ServerConfig::data_dir`]).
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> ServerConfig {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets the token verifier.
    pub fn with_verifier(mut self, verifier: impl TokenVerifier) -> ServerConfig {
        self.verifier = Some(Arc::new(verifier));
        self
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ServerConfig");
        f.field("hub", &self.hub)
            .field("max_head_bytes", &self.max_head_bytes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("http_rate_per_sec", &self.http_rate_per_sec)
            .field("http_rate_burst", &self.http_rate_burst)
            .field("trusted_http_rate_per_sec", &self.trusted_http_rate_per_sec)
            .field("trusted_http_rate_burst", &self.trusted_http_rate_burst)
            .field("verifier", &self.verifier.as_ref().map(|_| "…"))
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("allowed_origins", &self.allowed_origins)
            .field("dashboard", &self.dashboard)
            .field("webhook", &self.webhook)
            .field("data_dir", &self.data_dir)
            .field("fsync", &self.fsync)
            .field("max_disk_bytes", &self.max_disk_bytes)
            .field("cluster", &self.cluster);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls.is_some());
        f.finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_configs_have_fresh_epoch_seeds() {
        assert_ne!(
            super::ServerConfig::default().hub.seed,
            super::ServerConfig::default().hub.seed
        );
    }
}
