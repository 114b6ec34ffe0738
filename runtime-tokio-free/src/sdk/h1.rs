//! [`H1Transport`]: the SDK's own HTTP/1.1 transport — `ureq-proto` for the protocol, [`Runtime::connect`] for
//! TCP, a small keep-alive [`Pool`] per origin, and a timeout over the whole exchange.
//!
//! One `send`:
//!
//! 1. Take an idle connection to the origin from the pool, checking it is still open (a connection the server
//!    closed while idle reads as end-of-file at once); otherwise resolve the host and dial each address in turn.
//! 2. Exchange the request and response ([`h1_exchange`](super::h1_exchange)).
//! 3. Put the connection back if `ureq-proto` says it may carry another request, else drop it.
//!
//! A reused connection that fails before any byte of the response arrives was most likely closed by the server in
//! the meantime; an idempotent request is then sent once more on a fresh connection (the server cannot have
//! answered it). Everything runs against one deadline: past `timeout` the exchange is dropped, connection and all,
//! and the call fails with [`TransportError::Timeout`].
//!
//! `https://` endpoints get TLS from the `tls` module (feature `tls`, on by default: rustls with ring, trusting
//! Mozilla's roots unless [`H1Transport::with_tls`] says otherwise). Built without the feature, they fail with
//! [`TransportError::Unsupported`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt};
use switchboard_protocol::http_client::RequestParts;

use super::endpoint::{Endpoint, Scheme};
use super::h1_exchange::{ResponseLimits, exchange};
use super::maybe_tls::MaybeTlsStream;
use super::pool::{Pool, PoolConfig, PoolStats};
use super::transport::{HttpTransport, Response, TransportError};
use crate::runtime::{BoxFuture, Runtime};

/// The knobs of an [`H1Transport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct H1Config {
    /// Response size limits.
    pub limits: ResponseLimits,
    /// Keep-alive pooling.
    pub pool: PoolConfig,
}

/// HTTP/1.1 over the runtime's TCP (see the [module docs](self)). Cheap to clone: clones share the pool.
pub struct H1Transport<R: Runtime> {
    runtime: R,
    config: H1Config,
    shared: Arc<Shared<MaybeTlsStream<R::Tcp>>>,
}

struct Shared<C> {
    pool: Mutex<Pool<C>>,
    dialled: AtomicU64,
    #[cfg(feature = "tls")]
    tls: std::sync::OnceLock<super::tls::TlsConfig>,
}

impl<R: Runtime> Clone for H1Transport<R> {
    fn clone(&self) -> Self {
        H1Transport {
            runtime: self.runtime.clone(),
            config: self.config,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: Runtime> fmt::Debug for H1Transport<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("H1Transport")
            .field("config", &self.config)
            .field("dialled", &self.connections_opened())
            .field("pool", &self.pool_stats())
            .finish()
    }
}

impl<R: Runtime> H1Transport<R> {
    /// A transport with the default limits and pool.
    pub fn new(runtime: R) -> Self {
        H1Transport::with_config(runtime, H1Config::default())
    }

    /// A transport with these limits and pool settings.
    pub fn with_config(runtime: R, config: H1Config) -> Self {
        H1Transport {
            runtime,
            config,
            shared: Arc::new(Shared {
                pool: Mutex::new(Pool::new(config.pool)),
                dialled: AtomicU64::new(0),
                #[cfg(feature = "tls")]
                tls: std::sync::OnceLock::new(),
            }),
        }
    }

    /// A transport whose `https://` connections trust what `tls` says (instead of Mozilla's roots).
    #[cfg(feature = "tls")]
    pub fn with_tls(runtime: R, config: H1Config, tls: super::tls::TlsConfig) -> Self {
        let transport = H1Transport::with_config(runtime, config);
        let _ = transport.shared.tls.set(tls);
        transport
    }

    /// The runtime it dials and sleeps with.
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// TCP connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.shared.dialled.load(Ordering::Relaxed)
    }

    /// The pool's counters.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool().stats()
    }

    /// Idle connections held now.
    pub fn idle_connections(&self) -> usize {
        self.pool().idle()
    }

    fn pool(&self) -> MutexGuard<'_, Pool<MaybeTlsStream<R::Tcp>>> {
        self.shared
            .pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn send_once(
        &self,
        endpoint: &Endpoint,
        request: &RequestParts,
    ) -> Result<Response, TransportError> {
        loop {
            let (mut conn, reused) = match self.idle_connection(endpoint).await {
                Some(conn) => (conn, true),
                None => (self.dial(endpoint).await?, false),
            };
            match exchange(&mut conn, endpoint, request, self.config.limits).await {
                Ok(done) => {
                    if done.reusable {
                        let now = self.runtime.now();
                        self.pool().checkin(endpoint, conn, now);
                    }
                    return Ok(done.response);
                }
                Err(e) if reused && !e.response_started && request.is_idempotent() => {
                    // Closed by the server while idle: go again on a fresh connection.
                    self.pool().note_discarded();
                    continue;
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    /// A pooled connection that is still open, if there is one.
    async fn idle_connection(&self, endpoint: &Endpoint) -> Option<MaybeTlsStream<R::Tcp>> {
        loop {
            let now = self.runtime.now();
            let mut conn = self.pool().checkout(endpoint, now)?;
            if is_open(&mut conn).await {
                return Some(conn);
            }
            self.pool().note_discarded();
        }
    }

    /// A new connection: TCP, then TLS for `https`.
    async fn dial(&self, endpoint: &Endpoint) -> Result<MaybeTlsStream<R::Tcp>, TransportError> {
        match endpoint.scheme() {
            Scheme::Http => Ok(MaybeTlsStream::Plain(self.dial_tcp(endpoint).await?)),
            #[cfg(feature = "tls")]
            Scheme::Https => {
                let tcp = self.dial_tcp(endpoint).await?;
                let tls = self
                    .shared
                    .tls
                    .get_or_init(super::tls::TlsConfig::webpki_roots);
                tls.connect(endpoint, tcp).await
            }
            #[cfg(not(feature = "tls"))]
            Scheme::Https => Err(TransportError::Unsupported(
                "https: switchboard-runtime was built without its `tls` feature".into(),
            )),
        }
    }

    async fn dial_tcp(&self, endpoint: &Endpoint) -> Result<R::Tcp, TransportError> {
        let host = endpoint.host_port();
        let addrs =
            self.runtime
                .resolve(host.clone())
                .await
                .map_err(|source| TransportError::Resolve {
                    host: host.clone(),
                    source,
                })?;
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses");
        for addr in addrs {
            match self.runtime.connect(addr).await {
                Ok(conn) => {
                    self.shared.dialled.fetch_add(1, Ordering::Relaxed);
                    return Ok(conn);
                }
                Err(e) => last = e,
            }
        }
        Err(TransportError::Connect {
            addr: host,
            source: last,
        })
    }
}

impl<R: Runtime> HttpTransport for H1Transport<R> {
    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        request: &'a RequestParts,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Response, TransportError>> {
        let deadline = self.runtime.now().saturating_add(timeout);
        let timer = self.runtime.sleep_until(deadline);
        Box::pin(futures_lite::future::or(
            self.send_once(endpoint, request),
            async move {
                timer.await;
                Err(TransportError::Timeout(timeout))
            },
        ))
    }
}

/// Whether an idle connection is still open: a read that would block means nothing arrived, so the peer has not
/// closed it. End-of-file, an error, or unexpected bytes (an idle connection has nothing to say) all mean "do not
/// use".
async fn is_open<C: AsyncRead + Unpin>(conn: &mut C) -> bool {
    let mut probe = [0u8; 1];
    futures_lite::future::poll_once(conn.read(&mut probe))
        .await
        .is_none()
}
