//! [`RedisOptions`]: where Redis is and how patient to be with it.

use std::hash::{BuildHasher, RandomState};
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_protocol::redis::{ConnectionConfig, Mode, RedisUrl};

#[cfg(feature = "tls")]
use crate::sdk::TlsConfig;

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// The server, login and database.
    pub url: RedisUrl,
    /// The connection machine's settings for a commands connection (a subscriber takes the same with its mode
    /// changed). Built from `url` by [`RedisOptions::new`]; change timeouts and backoff here.
    pub connection: ConnectionConfig,
    /// The seed of the reconnect jitter.
    pub seed: u64,
    /// The roots `rediss://` trusts (default: the runtime's bundled web roots).
    #[cfg(feature = "tls")]
    pub tls: TlsConfig,
}

impl RedisOptions {
    /// The defaults for `url`.
    pub fn new(url: RedisUrl) -> RedisOptions {
        let connection = ConnectionConfig::new(&url, Mode::Commands);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        RedisOptions {
            url,
            connection,
            seed: RandomState::new().hash_one(nanos),
            #[cfg(feature = "tls")]
            tls: TlsConfig::webpki_roots(),
        }
    }

    /// Names the connections in `CLIENT LIST` (no spaces).
    pub fn client_name(mut self, name: &str) -> RedisOptions {
        self.connection.client_name = Some(name.replace(' ', "_"));
        self
    }

    pub(crate) fn config(&self, mode: Mode) -> ConnectionConfig {
        ConnectionConfig {
            mode,
            ..self.connection.clone()
        }
    }
}
