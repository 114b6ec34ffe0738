//! The command line, as clap derive types. Every option of `serve` can also come from a `SWITCHBOARD_*`
//! environment variable, and every client command's token from `SWITCHBOARD_TOKEN`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use switchboard_protocol::wire::IdempotencyKey;

/// Switchboard: a real-time hub where backends stream progress to dashboards and take requests back.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run a server: WebSocket (three dialects), REST and health routes on one port.
    Serve(Box<ServeArgs>),
    /// Print the events of one or more channels as they come, across reconnects.
    Sub(SubArgs),
    /// Publish one event and print its offset.
    Pub(PubArgs),
    /// Call a method on whoever serves a channel and print the result.
    Call(CallArgs),
    /// Print a channel's retained state, epoch and offset.
    State(StateArgs),
    /// Run a simulated ML pipeline that publishes every pipeline event type and serves `cancel`.
    Demo(DemoArgs),
    /// Mint a signed token (HS256 JWT) for a server started with --auth-secret, for development.
    Token(crate::token::TokenArgs),
    /// Print every event of a channel's history through the REST API (with retries and pagination).
    History(HistoryArgs),
    /// Load generators: fan-out, request/response and idle-connection memory (see docs/BENCHMARKS.md).
    Bench(crate::bench::BenchArgs),
}

/// `switchboard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Events kept per channel for recovery (default 1000).
    #[arg(long, env = "SWITCHBOARD_HISTORY_SIZE")]
    pub history_size: Option<usize>,
    /// How long events are kept for recovery, in milliseconds (default 300000).
    #[arg(long, env = "SWITCHBOARD_HISTORY_TTL_MS")]
    pub history_ttl_ms: Option<u64>,
    /// The server's heartbeat interval in milliseconds (default 25000).
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_ms: Option<u64>,
    /// The largest message accepted from a client, in bytes (default 1048576).
    #[arg(long, env = "SWITCHBOARD_MAX_MESSAGE_BYTES", value_parser = clap::value_parser!(u64).range(256..))]
    pub max_message_bytes: Option<u64>,
    /// Authentication, TLS, connection limits, timeouts, origins.
    #[command(flatten)]
    pub security: crate::security::SecurityArgs,
    /// Deliver channel events by signed POST to this URL (http:// or https://).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_URL", requires = "webhook_secret")]
    pub webhook: Option<String>,
    /// The secret webhook requests are signed with (X-Switchboard-Signature).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Deliver only channels matching this pattern ('*' one segment, trailing '**' the rest); repeatable; default
    /// every channel.
    #[arg(long = "webhook-channel", value_name = "PATTERN", requires = "webhook")]
    pub webhook_channels: Vec<String>,
    /// Rate limits, untrusted and trusted.
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    /// Do not serve the dashboard page at / and /ui.
    #[arg(long, env = "SWITCHBOARD_NO_UI")]
    pub no_ui: bool,
    /// Durable history.
    #[command(flatten)]
    pub storage: crate::storage::StorageArgs,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

/// Where a client command connects.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Sent as `Authorization: Bearer <token>` on the WebSocket upgrade.
    #[arg(
        long,
        env = "SWITCHBOARD_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// Read the token from this file, and read it again whenever the connection needs a fresh one (the server
    /// warns that the token expires soon, or before a reconnect): a long `sub` or `demo` outlives any one token
    /// as long as something keeps the file current.
    #[arg(long, env = "SWITCHBOARD_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// For wss:// URLs: trust only the CA certificate(s) in this PEM file instead of the public web roots.
    #[arg(long, env = "SWITCHBOARD_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// `switchboard sub`.
#[derive(Debug, Args)]
pub struct SubArgs {
    /// The server's native endpoint, e.g. ws://127.0.0.1:8000/api/ws.
    pub url: String,
    /// The channels to follow; one with `*` is a pattern (`jobs/*`: one segment, `jobs/**`: the rest), following
    /// every matching channel, those made later too.
    #[arg(required = true)]
    pub channels: Vec<String>,
    /// One JSON object per line: {"channel","offset","event"}.
    #[arg(long, conflicts_with = "progress")]
    pub json: bool,
    /// A progress bar per pipeline stage, from `stage_transition` and `progress_update` events.
    #[arg(long)]
    pub progress: bool,
    #[command(flatten)]
    pub connection: ConnectArgs,
}

/// `switchboard pub`.
#[derive(Debug, Args)]
pub struct PubArgs {
    /// The server's native endpoint.
    pub url: String,
    /// The channel.
    pub channel: String,
    /// The event, as JSON (any value but null). Not with --batch.
    #[arg(value_parser = parse_json, required_unless_present = "batch", conflicts_with = "batch")]
    pub event: Option<Value>,
    /// Publish the events read from stdin, one JSON value per line, in batches of whatever has arrived (up to
    /// 1,000 events each); prints `FIRST-LAST` offsets per batch. Ends at the end of stdin.
    #[arg(long)]
    pub batch: bool,
    /// Make the event the channel's retained state (with --batch: the last line; each line then goes out once the
    /// next one arrives or stdin ends).
    #[arg(long)]
    pub retain: bool,
    /// The publish's idempotency key (1 to 128 bytes; default: a random one): a publish whose key the channel saw
    /// within the server's dedupe window publishes nothing and prints the original offset. Give the same key to
    /// re-run a publish that may have landed.
    #[arg(long, value_parser = parse_key, value_name = "KEY", conflicts_with = "batch")]
    pub idempotency_key: Option<IdempotencyKey>,
    #[command(flatten)]
    pub connection: ConnectArgs,
}

/// An idempotency key flag.
fn parse_key(text: &str) -> Result<IdempotencyKey, String> {
    IdempotencyKey::new(text).map_err(|e| format!("an idempotency key {e}"))
}

/// `switchboard call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The server's native endpoint.
    pub url: String,
    /// The served channel.
    pub channel: String,
    /// The method.
    pub method: String,
    /// The parameters, as JSON.
    #[arg(value_parser = parse_json, default_value = "null")]
    pub params: Value,
    #[command(flatten)]
    pub connection: ConnectArgs,
}

/// `switchboard state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The server's native endpoint.
    pub url: String,
    /// The channel.
    pub channel: String,
    #[command(flatten)]
    pub connection: ConnectArgs,
}

/// `switchboard history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The server's base URL, e.g. http://127.0.0.1:8000.
    pub url: String,
    /// The channel.
    pub channel: String,
    /// Start after this offset (default: the oldest kept event).
    #[arg(long)]
    pub since: Option<u64>,
    /// One JSON object per line: {"channel","offset","event"}.
    #[arg(long)]
    pub json: bool,
    /// Sent as `Authorization: Bearer <token>`.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `switchboard demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The server's native endpoint.
    #[arg(default_value = "ws://127.0.0.1:8000/api/ws")]
    pub url: String,
    /// The project: events go to channel projects/PROJECT.
    #[arg(long, default_value = "demo")]
    pub project: String,
    /// How much faster than real time to run (2 = twice as fast).
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Fail during training (publishes `pipeline_failed`).
    #[arg(long)]
    pub fail: bool,
    #[command(flatten)]
    pub connection: ConnectArgs,
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 && speed <= 10_000.0 => Ok(speed),
        _ => Err("a number above 0 and at most 10000".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_and_speed_are_checked() {
        assert_eq!(parse_json("{\"a\":1}"), Ok(serde_json::json!({"a": 1})));
        assert!(parse_json("{nope").is_err());
        assert_eq!(parse_speed("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "x", "20000"] {
            assert!(parse_speed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_and_progress_exclude_each_other() {
        let parsed = Cli::try_parse_from([
            "switchboard",
            "sub",
            "ws://h/api/ws",
            "c",
            "--json",
            "--progress",
        ]);
        assert!(parsed.is_err());
        let parsed =
            Cli::try_parse_from(["switchboard", "call", "ws://h/api/ws", "c", "cancel"]).unwrap();
        match parsed.command {
            CliCommand::Call(args) => assert_eq!(args.params, Value::Null),
            other => panic!("{other:?}"),
        }
    }
}
