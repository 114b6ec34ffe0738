//! TLS for `https://` endpoints (feature `tls`, on by default): rustls through `futures-rustls` (futures-io, no
//! tokio), ring for the cryptography.
//!
//! [`TlsConfig::webpki_roots`] trusts Mozilla's root certificates (the `webpki-roots` crate, compiled in, so no
//! system store is read and behaviour is the same on every machine); [`TlsConfig::with_roots`] trusts only the
//! certificates given (a private CA, a test server); [`TlsConfig::from_client_config`] takes any rustls
//! configuration. The server name checked is the endpoint's host, a DNS name or an IP address.
//!
//! A handshake refused by TLS itself (an untrusted or mismatched certificate, no common protocol) fails with
//! [`TransportError::Tls`], which is not retried: it would fail the same way again.

use std::fmt;
use std::io;
use std::sync::Arc;

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::endpoint::Endpoint;
use super::maybe_tls::MaybeTlsStream;
use super::transport::TransportError;

/// Which servers a TLS connection trusts (see the [module docs](self)). Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn", &self.client.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Trusts Mozilla's root certificates.
    pub fn webpki_roots() -> Self {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        TlsConfig::from_roots(roots)
    }

    /// Trusts only `certificates` (DER), e.g. a private CA's.
    pub fn with_roots(
        certificates: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, rustls::Error> {
        let mut roots = RootCertStore::empty();
        for certificate in certificates {
            roots.add(certificate)?;
        }
        Ok(TlsConfig::from_roots(roots))
    }

    /// Trusts only the certificates in `pem` (one or more `CERTIFICATE` sections), e.g. a `--ca-file`.
    pub fn with_roots_pem(pem: &[u8]) -> io::Result<Self> {
        use futures_rustls::rustls::pki_types::pem::PemObject;
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("not a PEM certificate: {e}")))?;
        if certificates.is_empty() {
            return Err(invalid("no CERTIFICATE section in the PEM".to_owned()));
        }
        TlsConfig::with_roots(certificates).map_err(|e| invalid(e.to_string()))
    }

    /// Uses a rustls client configuration as it is.
    pub fn from_client_config(config: Arc<ClientConfig>) -> Self {
        TlsConfig { client: config }
    }

    fn from_roots(roots: RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConfig {
            client: Arc::new(config),
        }
    }

    /// Runs the TLS handshake over `tcp` for `endpoint`'s host.
    pub(crate) async fn connect<T>(
        &self,
        endpoint: &Endpoint,
        tcp: T,
    ) -> Result<MaybeTlsStream<T>, TransportError>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let name = server_name(endpoint.host()).map_err(TransportError::InvalidRequest)?;
        self.handshake(name, tcp)
            .await
            .map(|stream| MaybeTlsStream::Tls(Box::new(stream)))
            .map_err(|e| classify(endpoint, e))
    }

    /// Runs the TLS handshake over `tcp` for the server `name` (the SDK's `https://` and the WebSocket client's
    /// `wss://` share it).
    pub(crate) async fn handshake<T>(
        &self,
        name: ServerName<'static>,
        tcp: T,
    ) -> io::Result<futures_rustls::client::TlsStream<T>>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        TlsConnector::from(Arc::clone(&self.client))
            .connect(name, tcp)
            .await
    }
}

/// The server name checked for `host` (a DNS name, or an IP address with or without `[]`).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_owned())
        .map_err(|e| format!("{host} is not a TLS server name: {e}"))
}

/// Whether an IO error from a handshake is TLS itself refusing (a certificate, no common protocol): retrying
/// cannot help.
pub(crate) fn is_tls_refusal(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// A failure of TLS itself (certificate, protocol) is [`TransportError::Tls`]; anything else (a reset during the
/// handshake) is a connect failure, worth retrying.
fn classify(endpoint: &Endpoint, error: io::Error) -> TransportError {
    if is_tls_refusal(&error) {
        TransportError::Tls(error.to_string())
    } else {
        TransportError::Connect {
            addr: endpoint.host_port(),
            source: error,
        }
    }
}
