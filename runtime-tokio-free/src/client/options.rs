//! [`ClientOptions`]: the protocol machine's configuration plus what the driver adds (token, frame limits, buffer
//! sizes, how long a close handshake may take).

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use switchboard_protocol::client::ClientConfig;

use super::token_provider::TokenProvider;

/// How a [`Client`](super::Client) connects and behaves. [`Default`] gives the contract's defaults
/// (PROTOCOL §4) with a seed drawn from the OS.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The sans-IO machine's configuration: reconnect backoff, request and heartbeat timeouts, offline queue,
    /// seed.
    pub protocol: ClientConfig,
    /// Sent as `Authorization: Bearer <token>` on every WebSocket upgrade (until `token_provider` gives a newer
    /// one).
    pub token: Option<String>,
    /// Where fresh tokens come from (default none): asked when the server warns that the connection's token
    /// expires soon (the answer goes out as a `refresh`) and before every reconnect.
    pub token_provider: Option<TokenProvider>,
    /// The largest message accepted from the server; a bigger one drops the connection (and the client
    /// reconnects). Default 16 MiB: a 1 MiB event in its envelope, with room to spare.
    pub max_incoming_message_bytes: usize,
    /// The WebSocket read buffer. Default 8 KiB: a client holds one connection and few large frames.
    pub read_buffer_bytes: usize,
    /// How much the WebSocket writer gathers before writing to the socket. Default 8 KiB; the driver flushes
    /// after every batch anyway.
    pub write_buffer_bytes: usize,
    /// How long a closing connection may take to finish the close handshake before it is dropped. Default 2 s.
    pub close_timeout: Duration,
    /// Which servers a `wss://` connection trusts (feature `tls`). `None` (the default): Mozilla's root
    /// certificates ([`TlsConfig::webpki_roots`](crate::sdk::TlsConfig::webpki_roots)); give
    /// [`TlsConfig::with_roots`](crate::sdk::TlsConfig::with_roots) for a private CA.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::sdk::TlsConfig>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            protocol: ClientConfig::with_seed(os_seed()),
            token: None,
            token_provider: None,
            max_incoming_message_bytes: 16 << 20,
            read_buffer_bytes: 8 << 10,
            write_buffer_bytes: 8 << 10,
            close_timeout: Duration::from_secs(2),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ClientOptions {
    /// The defaults with a bearer token.
    pub fn with_token(token: impl Into<String>) -> Self {
        ClientOptions {
            token: Some(token.into()),
            ..ClientOptions::default()
        }
    }

    /// The defaults with this protocol configuration.
    pub fn with_protocol(protocol: ClientConfig) -> Self {
        ClientOptions {
            protocol,
            ..ClientOptions::default()
        }
    }

    /// The WebSocket configuration these options call for.
    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        // The write buffer needs no cap of its own: the driver waits for the sink to be ready before handing it
        // another frame, so it never holds much more than one message past its target.
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_bytes)
            .write_buffer_size(self.write_buffer_bytes)
            .max_message_size(Some(self.max_incoming_message_bytes))
            .max_frame_size(Some(self.max_incoming_message_bytes))
    }
}

/// A seed from the OS: std's per-process random hash keys, mixed with the time. Not for cryptography; it only
/// keeps two clients from sharing ids and jitter.
fn os_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    RandomState::new().hash_one(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_differ_only_in_seed() {
        let a = ClientOptions::default();
        let b = ClientOptions::default();
        assert_ne!(a.protocol.seed, b.protocol.seed);
        let mut b_same = b.protocol.clone();
        b_same.seed = a.protocol.seed;
        assert_eq!(a.protocol, b_same);
        let ws = a.websocket_config();
        assert_eq!(ws.max_message_size, Some(16 << 20));
        assert_eq!(ws.read_buffer_size, 8 << 10);
        assert_eq!(ClientOptions::with_token("t").token.as_deref(), Some("t"));
    }
}
