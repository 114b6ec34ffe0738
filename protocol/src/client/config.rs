//! [`ClientConfig`]: every knob of the client machine, with the defaults of PROTOCOL §4 and a seed.

use core::time::Duration;

use crate::backoff::BackoffConfig;

/// Configuration of a [`ClientMachine`](super::ClientMachine). [`Default`] gives the contract's defaults; set
/// [`seed`](Self::seed) from the OS in production and from the test in tests.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Seeds every random choice the machine makes: message ids and reconnect jitter. The same seed and inputs give
    /// the same outputs.
    pub seed: u64,
    /// The reconnect schedule. Default: 500 ms first, ×2, 30 s cap, full jitter, attempts unlimited, the streak
    /// reset once a connection has stayed up 10 s.
    pub backoff: BackoffConfig,
    /// How long a request waits for its answer when the caller gives no timeout, counted from the command (so
    /// time spent in the offline queue counts). Default 30 s.
    pub request_timeout: Duration,
    /// How long a connection attempt may take, from [`Output::Connect`](super::Output::Connect) to the transport
    /// being up, and again from there to the server's `connected` greeting. Default 10 s.
    pub connect_timeout: Duration,
    /// Added to the server's announced `heartbeat_ms`: a connection silent for `heartbeat_ms + heartbeat_timeout`
    /// is dead (PROTOCOL §4). Default 10 s.
    pub heartbeat_timeout: Duration,
    /// When set, the client sends a `ping` request at this interval while connected, so traffic flows both ways
    /// even through proxies that only count client bytes. Default `None`: the server's pings suffice.
    pub ping_interval: Option<Duration>,
    /// The offline queue holds at most this many commands. Default 1,000.
    pub max_queued_messages: usize,
    /// The offline queue holds at most this many bytes of encoded frames. Default 1 MiB.
    pub max_queued_bytes: usize,
    /// The largest frame the client sends before the server has announced its own limit in `connected`. Default
    /// 1 MiB, the server's default.
    pub max_message_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            seed: 0,
            backoff: BackoffConfig::default(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(10),
            ping_interval: None,
            max_queued_messages: 1000,
            max_queued_bytes: 1024 * 1024,
            max_message_bytes: 1024 * 1024,
        }
    }
}

impl ClientConfig {
    /// The defaults with the given seed.
    pub fn with_seed(seed: u64) -> Self {
        ClientConfig {
            seed,
            ..ClientConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_contract() {
        let c = ClientConfig::with_seed(9);
        assert_eq!(c.seed, 9);
        assert_eq!(c.backoff, BackoffConfig::default());
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.heartbeat_timeout, Duration::from_secs(10));
        assert_eq!(c.ping_interval, None);
        assert_eq!(c.max_queued_messages, 1000);
        assert_eq!(c.max_queued_bytes, 1 << 20);
        assert_eq!(c.max_message_bytes, 1 << 20);
    }
}
