//! The HTTP SDK: an async REST client for Switchboard (and any JSON API) built on the sans-IO decision core
//! [`switchboard_protocol::http_client`], plus a blocking face of it.
//!
//! The core decides (retry or not and when, rate limiting, cache freshness and invalidation, pagination, error
//! classes, metrics); this module moves bytes and sleeps, through the [`Runtime`](crate::Runtime) it is given. No
//! executor of its own, no tokio.
//!
//! | file | what it owns |
//! |---|---|
//! | [`endpoint`] | [`Endpoint`]: the parsed base URL |
//! | [`transport`] | [`HttpTransport`]: send one request, get one response; [`Response`], [`TransportError`] |
//! | [`h1`], [`h1_exchange`], [`pool`] | [`H1Transport`]: HTTP/1.1 from `ureq-proto` over the runtime's TCP, keep-alive pool, size limits |
//! | [`maybe_tls`], `tls` | [`MaybeTlsStream`]: a socket, plain or TLS; `TlsConfig` (feature `tls`, default): rustls with ring |
//! | [`config`], [`config_error`] | [`ApiConfig`]: presets, `SWITCHBOARD_*` environment; [`ConfigError`] |
//! | [`api_client`] | [`ApiClient`]: JSON calls through cache → limiter → send → retry, with metrics |
//! | [`resource`] | [`ResourceClient`]: typed CRUD and paginated listing of one collection |
//! | [`channels`] | [`ChannelsApi`]: publish, history as a stream, state, connections (PROTOCOL §7) |
//! | [`watch`] | [`Watch`]: poll a resource until a terminal state |
//! | [`bulk`](mod@bulk) | [`bulk()`]: many calls, `max_concurrent` at once, a result per item |
//! | [`health`] | [`HealthReport`]: what `GET /health` says; [`HealthError`]: a check that did not pass |
//! | [`health_monitor`] | [`HealthMonitor`]: checks at an interval, callbacks on healthy/unhealthy transitions |
//! | [`webhook`] | [`WebhookHandler`]: verify `X-Switchboard-Signature`, dispatch by event type |
//! | [`blocking`] | [`BlockingClient`]: the same API, blocking |
//!
//! # A first call
//!
//! ```no_run
//! # use switchboard_runtime::Runtime;
//! use switchboard_runtime::sdk::{ApiClient, ApiConfig, HistoryQuery};
//! use futures_util::StreamExt;
//!
//! # async fn demo<R: Runtime>(runtime: R) -> Result<(), Box<dyn std::error::Error>> {
//! let client = ApiClient::new(runtime, ApiConfig::from_env()?)?;
//! let channels = client.channels();
//! let published = channels.publish("jobs/7", &serde_json::json!({"progress": 0.5}), true).await?;
//! let mut history = channels.history("jobs/7", HistoryQuery::default());
//! while let Some(event) = history.next().await {
//!     println!("{}: {}", event?.offset, published.channel);
//! }
//! # Ok(()) }
//! ```

// Calls fail with the core's `ApiError` (136 bytes: it keeps the response). Boxing it would give the SDK an error
// type of its own, unlike the core's; errors are the cold path, so the size is accepted for the sync functions too.
#![allow(clippy::result_large_err)]

pub mod api_client;
pub mod blocking;
pub mod bulk;
pub mod channels;
pub mod config;
pub mod config_error;
pub mod endpoint;
pub mod h1;
pub mod h1_exchange;
pub mod health;
pub mod health_monitor;
pub mod maybe_tls;
pub mod pool;
pub mod resource;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
pub mod watch;
pub mod webhook;

pub use api_client::{ApiClient, IDEMPOTENCY_KEY, INVALID_RESPONSE};
pub use blocking::{BlockingChannels, BlockingClient, BlockingIter, BlockingResource};
pub use bulk::{BulkReport, bulk};
pub use channels::{
    ChannelStateBody, ChannelsApi, Connections, HistoryError, HistoryEvent, HistoryPageBody,
    HistoryQuery, PresenceBody, ProjectConnections, Published, PublishedBatch,
};
pub use config::{ApiConfig, CacheConfig, RateLimit};
pub use config_error::ConfigError;
pub use endpoint::{Endpoint, Scheme};
pub use h1::{H1Config, H1Transport};
pub use h1_exchange::ResponseLimits;
pub use health::{HealthError, HealthReport};
pub use health_monitor::{HealthMonitor, HealthMonitorHandle};
pub use maybe_tls::MaybeTlsStream;
pub use pool::{PoolConfig, PoolStats};
pub use resource::ResourceClient;
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use transport::{HttpTransport, Response, TransportError};
pub use watch::{Watch, WatchError};
pub use webhook::{Dispatch, WebhookEvent, WebhookHandler, WebhookHandlerError};
