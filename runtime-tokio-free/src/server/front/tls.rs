//! [`ServerTls`]: TLS for the server's listeners (feature `tls`), rustls through `futures-rustls` with ring, the
//! same stack as the SDK's `https://` client.
//!
//! Each accepted TCP stream goes through the TLS handshake (bounded by `handshake_timeout`) before the HTTP front
//! sees a byte, so one port serves `https://` REST and `wss://` WebSockets. A failed handshake is logged at debug
//! level and the connection dropped.

use std::fmt;
use std::sync::Arc;

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{self, ServerConfig};

/// Why a TLS configuration could not be made from PEM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The certificate PEM holds no `CERTIFICATE` section, or one that cannot be decoded.
    #[error("no usable certificate in the PEM: {0}")]
    Certificate(String),
    /// The key PEM holds no private key (PKCS#8, PKCS#1 or SEC1), or one that cannot be decoded.
    #[error("no usable private key in the PEM: {0}")]
    Key(String),
    /// rustls refused the pair (e.g. the key does not match the certificate, or its algorithm is unsupported).
    #[error("the certificate and key cannot be used: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A TLS server configuration. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A configuration from a PEM certificate chain (leaf first) and a PEM private key, with rustls's safe
    /// default protocol versions (TLS 1.2 and 1.3), ring for the cryptography, and ALPN `http/1.1`.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<ServerTls, TlsSetupError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsSetupError::Certificate(e.to_string()))?;
        if chain.is_empty() {
            return Err(TlsSetupError::Certificate(
                "no CERTIFICATE section found".to_owned(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsSetupError::Key(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls::from_server_config(Arc::new(config)))
    }

    /// Uses a rustls server configuration as it is (client certificates, resumption, several certificates…).
    pub fn from_server_config(config: Arc<ServerConfig>) -> ServerTls {
        ServerTls {
            acceptor: TlsAcceptor::from(config),
        }
    }

    /// Runs the server side of the handshake over `stream`.
    pub(crate) async fn accept<S>(
        &self,
        stream: S,
    ) -> std::io::Result<futures_rustls::server::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.acceptor.accept(stream).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_refused_with_a_reason() {
        assert!(matches!(
            ServerTls::from_pem(b"", b""),
            Err(TlsSetupError::Certificate(_))
        ));
        let cert = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            ServerTls::from_pem(cert, b"nothing"),
            Err(TlsSetupError::Key(_))
        ));
    }
}
