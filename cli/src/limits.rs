//! `serve`'s per-connection and per-request limits. The rate limits come in two sets: the protective limits every
//! untrusted caller is held to (anonymous callers, subscribe-only credentials, remote callers without
//! authentication) and the limits of trusted callers (a credential with publish rights, or a loopback caller
//! without authentication), by default none. Who is trusted is the protocol crate's decision (`Trust`); these
//! flags only set the numbers. The size, queue, subscription, session and request-time limits apply to everyone.
//! (Connection limits and HTTP timeouts are with the security flags.)

use std::time::Duration;

use clap::Args;
use switchboard_runtime::ServerConfig;

use crate::error::CliError;

/// The limit flags of `switchboard serve`. Each defaults to the server's default.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Messages per second one untrusted WebSocket connection may send, on average; past it a message is
    /// answered RATE_LIMITED (0: no limit).
    #[arg(long, env = "SWITCHBOARD_RATE_PER_SEC", default_value_t = 100)]
    pub rate_per_sec: u32,
    /// Messages one untrusted WebSocket connection may send at once after a quiet spell.
    #[arg(long, env = "SWITCHBOARD_RATE_BURST", default_value_t = 200)]
    pub rate_burst: u32,
    /// Messages per second one trusted WebSocket connection (publish rights, or loopback without
    /// authentication) may send, on average (0: no limit).
    #[arg(long, env = "SWITCHBOARD_TRUSTED_RATE_PER_SEC", default_value_t = 0)]
    pub trusted_rate_per_sec: u32,
    /// Messages one trusted WebSocket connection may send at once, when --trusted-rate-per-sec is set.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_RATE_BURST", default_value_t = 1000)]
    pub trusted_rate_burst: u32,
    /// REST publishes per second one untrusted client address may make, on average; past it the answer is 429
    /// with Retry-After (0: no limit).
    #[arg(long, env = "SWITCHBOARD_HTTP_RATE_PER_SEC", default_value_t = 100)]
    pub http_rate_per_sec: u32,
    /// REST publishes one untrusted client address may make at once after a quiet spell.
    #[arg(long, env = "SWITCHBOARD_HTTP_RATE_BURST", default_value_t = 200)]
    pub http_rate_burst: u32,
    /// REST publishes per second one trusted client address may make, on average (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_TRUSTED_HTTP_RATE_PER_SEC",
        default_value_t = 0
    )]
    pub trusted_http_rate_per_sec: u32,
    /// REST publishes one trusted client address may make at once, when --trusted-http-rate-per-sec is set.
    #[arg(
        long,
        env = "SWITCHBOARD_TRUSTED_HTTP_RATE_BURST",
        default_value_t = 1000
    )]
    pub trusted_http_rate_burst: u32,
    /// Channels one connection may subscribe to; past it, TOO_MANY_SUBSCRIPTIONS.
    #[arg(long, env = "SWITCHBOARD_MAX_SUBSCRIPTIONS", default_value_t = 1024)]
    pub max_subscriptions: usize,
    /// Patterns one connection may subscribe to (`subscribe` with `pattern`); past it, TOO_MANY_SUBSCRIPTIONS.
    #[arg(long, env = "SWITCHBOARD_MAX_PATTERNS", default_value_t = 16)]
    pub max_patterns: usize,
    /// Sessions one connection may hold open; past it, SESSION_LIMIT.
    #[arg(long, env = "SWITCHBOARD_MAX_SESSIONS", default_value_t = 100)]
    pub max_sessions: usize,
    /// Bytes queued for one connection and not yet written; past it the connection is a slow consumer and is
    /// closed with 1013.
    #[arg(long, env = "SWITCHBOARD_MAX_QUEUED_BYTES", default_value_t = 4 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(4096..))]
    pub max_queued_bytes: u64,
    /// How long a server request or a routed call waits for its answer, in ms.
    #[arg(long, env = "SWITCHBOARD_REQUEST_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// Bytes of history one channel keeps in memory (each event counts its JSON's length; bytes, or with a K, M, G
    /// or T suffix: 16M); past it the channel's oldest events are dropped. A larger event is still delivered, but
    /// not kept.
    #[arg(long, env = "SWITCHBOARD_HISTORY_BYTES", default_value_t = 16 * 1024 * 1024,
          value_parser = crate::storage::parse_nonzero_size, value_name = "BYTES")]
    pub history_bytes: u64,
    /// Bytes of history all channels together keep in memory (as --history-bytes); past it the oldest events of
    /// any channel are dropped first.
    #[arg(long, env = "SWITCHBOARD_HISTORY_TOTAL_BYTES", default_value_t = 256 * 1024 * 1024,
          value_parser = crate::storage::parse_nonzero_size, value_name = "BYTES")]
    pub history_total_bytes: u64,
    /// How many channels may have events at once; past it, publishing to a channel with none is refused with
    /// CHANNEL_LIMIT (REST: 507). Idle channels (no subscriber, server, history or retained state) are forgotten
    /// and do not count.
    #[arg(long, env = "SWITCHBOARD_MAX_CHANNELS", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_channels: u64,
    /// Members listed in one presence answer (native `presence`, REST `/presence`); `count` is always the true
    /// number and the serving connection is always listed.
    #[arg(long, env = "SWITCHBOARD_MAX_PRESENCE_MEMBERS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_presence_members: u64,
    /// How long a publish's idempotency key is remembered on its channel, in seconds: a publish with the same key
    /// within it publishes nothing and is answered with the original offsets (`duplicate: true`). 0: keys are
    /// ignored.
    #[arg(long, env = "SWITCHBOARD_DEDUPE_WINDOW_SECS", default_value_t = 300)]
    pub dedupe_window_secs: u64,
    /// Idempotency keys one channel remembers at once; past it its oldest is forgotten.
    #[arg(long, env = "SWITCHBOARD_DEDUPE_KEYS_PER_CHANNEL", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub dedupe_keys_per_channel: u64,
    /// Idempotency keys the server remembers at once, all channels together (each costs about 100 bytes plus its
    /// key and channel name); past it the oldest is forgotten.
    #[arg(long, env = "SWITCHBOARD_DEDUPE_KEYS", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub dedupe_keys: u64,

    /// How long before a token-authenticated connection's token expires (its `exp` plus the 30 s leeway) the
    /// server sends it `token_expiring`, in ms (halfway through a shorter lifetime; 0: no warning). Unless
    /// refreshed, the connection is closed with 4401 at the expiry.
    #[arg(
        long,
        env = "SWITCHBOARD_TOKEN_EXPIRY_WARNING_MS",
        default_value_t = 60_000
    )]
    pub token_expiry_warning_ms: u64,
    /// The largest HTTP request head, in bytes; past it, 431.
    #[arg(long, env = "SWITCHBOARD_MAX_HEAD_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_head_bytes: u64,
    /// The largest HTTP request body, in bytes; past it, 413.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_body_bytes: u64,
}

/// What the flags default to: the server's defaults.
impl Default for LimitArgs {
    fn default() -> Self {
        let config = ServerConfig::default();
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        LimitArgs {
            rate_per_sec: config.hub.rate_per_sec,
            rate_burst: config.hub.rate_burst,
            trusted_rate_per_sec: config.hub.trusted_rate_per_sec,
            trusted_rate_burst: config.hub.trusted_rate_burst,
            http_rate_per_sec: config.http_rate_per_sec,
            http_rate_burst: config.http_rate_burst,
            trusted_http_rate_per_sec: config.trusted_http_rate_per_sec,
            trusted_http_rate_burst: config.trusted_http_rate_burst,
            max_subscriptions: config.hub.max_subscriptions,
            max_patterns: config.hub.max_patterns,
            max_sessions: config.hub.max_sessions,
            max_queued_bytes: wide(config.hub.max_queued_bytes),
            request_timeout_ms: u64::try_from(config.hub.request_timeout.as_millis())
                .unwrap_or(u64::MAX),
            history_bytes: wide(config.hub.history_bytes),
            history_total_bytes: wide(config.hub.history_total_bytes),
            max_channels: wide(config.hub.max_channels),
            max_presence_members: wide(config.hub.max_presence_members),
            dedupe_window_secs: config.hub.dedupe_window.as_secs(),
            dedupe_keys_per_channel: wide(config.hub.dedupe_keys_per_channel),
            dedupe_keys: wide(config.hub.dedupe_keys),

            token_expiry_warning_ms: u64::try_from(config.hub.token_expiry_warning.as_millis())
                .unwrap_or(u64::MAX),
            max_head_bytes: wide(config.max_head_bytes),
            max_body_bytes: wide(config.max_body_bytes),
        }
    }
}

/// Applies the limit flags to `config`.
pub fn apply(args: &LimitArgs, config: &mut ServerConfig) -> Result<(), CliError> {
    let size = |flag: &str, n: u64| {
        usize::try_from(n).map_err(|_| CliError::Usage(format!("--{flag} {n} is too large")))
    };
    config.hub.rate_per_sec = args.rate_per_sec;
    config.hub.rate_burst = args.rate_burst;
    config.hub.trusted_rate_per_sec = args.trusted_rate_per_sec;
    config.hub.trusted_rate_burst = args.trusted_rate_burst;
    config.http_rate_per_sec = args.http_rate_per_sec;
    config.http_rate_burst = args.http_rate_burst;
    config.trusted_http_rate_per_sec = args.trusted_http_rate_per_sec;
    config.trusted_http_rate_burst = args.trusted_http_rate_burst;
    config.hub.max_subscriptions = args.max_subscriptions;
    config.hub.max_patterns = args.max_patterns;
    config.hub.max_sessions = args.max_sessions;
    config.hub.max_queued_bytes = size("max-queued-bytes", args.max_queued_bytes)?;
    config.hub.request_timeout = Duration::from_millis(args.request_timeout_ms);
    config.hub.history_bytes = size("history-bytes", args.history_bytes)?;
    config.hub.history_total_bytes = size("history-total-bytes", args.history_total_bytes)?;
    config.hub.max_channels = size("max-channels", args.max_channels)?;
    config.hub.max_presence_members = size("max-presence-members", args.max_presence_members)?;
    config.hub.dedupe_window = Duration::from_secs(args.dedupe_window_secs);
    config.hub.dedupe_keys_per_channel =
        size("dedupe-keys-per-channel", args.dedupe_keys_per_channel)?;
    config.hub.dedupe_keys = size("dedupe-keys", args.dedupe_keys)?;

    config.hub.token_expiry_warning = Duration::from_millis(args.token_expiry_warning_ms);
    config.max_head_bytes = size("max-head-bytes", args.max_head_bytes)?;
    config.max_body_bytes = size("max-body-bytes", args.max_body_bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, CliCommand};
    use clap::Parser;

    fn parsed(flags: &[&str]) -> Result<LimitArgs, clap::Error> {
        let mut argv = vec!["switchboard", "serve"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv)?.command {
            CliCommand::Serve(args) => Ok(args.limits),
            other => panic!("{other:?}"),
        }
    }

    /// The flags' defaults (shown in --help) are the server's: serving without flags changes nothing.
    #[test]
    fn defaults_are_the_servers() {
        let from_flags = parsed(&[]).unwrap();
        assert_eq!(
            format!("{from_flags:?}"),
            format!("{:?}", LimitArgs::default())
        );
        let mut config = ServerConfig::default();
        apply(&from_flags, &mut config).unwrap();
        let reference = ServerConfig::default();
        assert_eq!(config.hub, HubLike(&reference).with_seed(config.hub.seed));
        assert_eq!(config.http_rate_per_sec, reference.http_rate_per_sec);
        assert_eq!(config.http_rate_burst, reference.http_rate_burst);
        assert_eq!(
            config.trusted_http_rate_per_sec,
            reference.trusted_http_rate_per_sec
        );
        assert_eq!(
            config.trusted_http_rate_burst,
            reference.trusted_http_rate_burst
        );
        assert_eq!(config.max_head_bytes, reference.max_head_bytes);
        assert_eq!(config.max_body_bytes, reference.max_body_bytes);
    }

    /// The reference hub configuration with another seed (every default configuration has a fresh one).
    struct HubLike<'a>(&'a ServerConfig);

    impl HubLike<'_> {
        fn with_seed(&self, seed: u64) -> switchboard_protocol::server::HubConfig {
            switchboard_protocol::server::HubConfig {
                seed,
                ..self.0.hub.clone()
            }
        }
    }

    /// Every flag reaches its field.
    #[test]
    fn every_flag_sets_its_limit() {
        let args = parsed(&[
            "--rate-per-sec=1",
            "--rate-burst=2",
            "--trusted-rate-per-sec=3",
            "--trusted-rate-burst=4",
            "--http-rate-per-sec=5",
            "--http-rate-burst=6",
            "--trusted-http-rate-per-sec=7",
            "--trusted-http-rate-burst=8",
            "--max-subscriptions=9",
            "--max-sessions=10",
            "--max-queued-bytes=11000",
            "--request-timeout-ms=12",
            "--max-head-bytes=13000",
            "--max-body-bytes=14",
            "--history-bytes=15",
            "--history-total-bytes=16K",
            "--max-channels=17",
            "--max-presence-members=18",
            "--dedupe-window-secs=18",
            "--dedupe-keys-per-channel=19",
            "--dedupe-keys=20",
            "--max-patterns=18",
        ])
        .unwrap();
        let mut config = ServerConfig::default();
        apply(&args, &mut config).unwrap();
        assert_eq!(
            [
                config.hub.rate_per_sec,
                config.hub.rate_burst,
                config.hub.trusted_rate_per_sec,
                config.hub.trusted_rate_burst,
                config.http_rate_per_sec,
                config.http_rate_burst,
                config.trusted_http_rate_per_sec,
                config.trusted_http_rate_burst,
            ],
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(
            [
                config.hub.max_subscriptions,
                config.hub.max_sessions,
                config.hub.max_queued_bytes,
                config.max_head_bytes,
                config.max_body_bytes,
            ],
            [9, 10, 11_000, 13_000, 14]
        );
        assert_eq!(config.hub.request_timeout, Duration::from_millis(12));
        assert_eq!(config.hub.max_patterns, 18);
        assert_eq!(
            [
                config.hub.history_bytes,
                config.hub.history_total_bytes,
                config.hub.max_channels,
                config.hub.max_presence_members
            ],
            [15, 16 * 1024, 17, 18]
        );
        assert_eq!(config.hub.dedupe_window, Duration::from_secs(18));
        assert_eq!(
            [config.hub.dedupe_keys_per_channel, config.hub.dedupe_keys],
            [19, 20]
        );

        let args = parsed(&["--token-expiry-warning-ms=15"]).unwrap();
        apply(&args, &mut config).unwrap();
        assert_eq!(config.hub.token_expiry_warning, Duration::from_millis(15));
    }

    /// Values too small to work are refused by the parser.
    #[test]
    fn unworkable_values_are_refused() {
        for bad in [
            "--max-queued-bytes=10",
            "--max-head-bytes=100",
            "--max-body-bytes=0",
            "--request-timeout-ms=0",
            "--rate-per-sec=-1",
            "--history-bytes=0",
            "--history-total-bytes=0",
            "--history-total-bytes=0M",
            "--history-bytes=lots",
            "--max-channels=0",
            "--max-presence-members=0",
            "--dedupe-keys=0",
            "--dedupe-keys-per-channel=0",
        ] {
            assert!(parsed(&[bad]).is_err(), "{bad}");
        }
    }
}
