//! `serve`'s rate limits, by trust: the protective limits every untrusted caller is held to (anonymous callers,
//! subscribe-only credentials, remote callers without authentication) and the limits of trusted callers (a
//! credential with publish rights, or a loopback caller without authentication), by default none. Who is trusted
//! is the protocol crate's decision (`Trust`); these flags only set the numbers.

use clap::Args;
use switchboard_runtime::ServerConfig;

/// The rate-limit flags of `switchboard serve`. Each defaults to the server's default.
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
}

/// What the flags default to: the server's defaults.
impl Default for LimitArgs {
    fn default() -> Self {
        let config = ServerConfig::default();
        LimitArgs {
            rate_per_sec: config.hub.rate_per_sec,
            rate_burst: config.hub.rate_burst,
            trusted_rate_per_sec: config.hub.trusted_rate_per_sec,
            trusted_rate_burst: config.hub.trusted_rate_burst,
            http_rate_per_sec: config.http_rate_per_sec,
            http_rate_burst: config.http_rate_burst,
            trusted_http_rate_per_sec: config.trusted_http_rate_per_sec,
            trusted_http_rate_burst: config.trusted_http_rate_burst,
        }
    }
}

/// Applies the rate-limit flags to `config`.
pub fn apply(args: &LimitArgs, config: &mut ServerConfig) {
    config.hub.rate_per_sec = args.rate_per_sec;
    config.hub.rate_burst = args.rate_burst;
    config.hub.trusted_rate_per_sec = args.trusted_rate_per_sec;
    config.hub.trusted_rate_burst = args.trusted_rate_burst;
    config.http_rate_per_sec = args.http_rate_per_sec;
    config.http_rate_burst = args.http_rate_burst;
    config.trusted_http_rate_per_sec = args.trusted_http_rate_per_sec;
    config.trusted_http_rate_burst = args.trusted_http_rate_burst;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, CliCommand};
    use clap::Parser;

    fn parsed(flags: &[&str]) -> LimitArgs {
        let mut argv = vec!["switchboard", "serve"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            CliCommand::Serve(args) => args.limits,
            other => panic!("{other:?}"),
        }
    }

    /// The flags' defaults (shown in --help) are the server's: serving without flags changes nothing.
    #[test]
    fn defaults_are_the_servers() {
        let mut config = ServerConfig::default();
        let from_flags = parsed(&[]);
        let default = LimitArgs::default();
        assert_eq!(format!("{from_flags:?}"), format!("{default:?}"));
        apply(&from_flags, &mut config);
        let reference = ServerConfig::default();
        assert_eq!(config.hub.rate_per_sec, reference.hub.rate_per_sec);
        assert_eq!(config.hub.rate_burst, reference.hub.rate_burst);
        assert_eq!(
            config.hub.trusted_rate_per_sec,
            reference.hub.trusted_rate_per_sec
        );
        assert_eq!(
            config.hub.trusted_rate_burst,
            reference.hub.trusted_rate_burst
        );
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
        ]);
        let mut config = ServerConfig::default();
        apply(&args, &mut config);
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
    }
}
