//! `switchboard bench`: load generators against a running server, speaking the native dialect over raw
//! async-tungstenite on smol TCP (no protocol client machine in the loop, so the generator stays light).
//!
//! - `fanout`: N subscribers and one publisher; delivered messages/s, latency p50/p99/p99.9 from the publish time
//!   carried in each event, lost and duplicated counts.
//! - `rpc`: N connections, each sending `ping` and waiting for `ping_res`; round trips/s and latency.
//! - `idle`: N idle connections spread over source addresses 127.0.0.x; the server's resident memory per
//!   connection from `/metrics`.
//!
//! Each prints one JSON object on stdout (for scripts and tests) and a readable summary on stderr. These are
//! measurements, never assertions: a run with losses still prints its numbers (and exits 1).

mod cpu;
mod engine;
mod fanout;
mod idle;
mod net;
mod publish;
mod rpc;
mod stats;

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// `switchboard bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which load to generate.
    #[command(subcommand)]
    pub kind: BenchKind,
}

/// The bench subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// N subscribers and M publishers on one channel: deliveries/s, latency, lost, duplicated and reordered events.
    Fanout(FanoutArgs),
    /// N connections doing `ping` round trips, K in flight each: round trips/s and latency.
    Rpc(RpcArgs),
    /// N idle connections from 127.0.0.x source addresses: the server's resident memory per connection.
    Idle(IdleArgs),
    /// N publishers, each keeping K publishes in flight: acknowledged publishes/s and acknowledgement latency.
    Publish(PublishArgs),
    /// The Redis engine's publish path alone, against a Redis: events/s, latency, and Redis's and this process's
    /// CPU time per event.
    Engine(EngineArgs),
}

/// Options every load generator shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Threads running the generator's tasks (the server needs cores too).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Sent as `Authorization: Bearer <token>` on every upgrade.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The server's process id: its CPU time (from /proc) over the run is reported per delivery or round trip, and
    /// the kernel's share of it (system time) beside it. Repeat it for the nodes of a cluster: their CPU times are
    /// summed.
    #[arg(long)]
    pub server_pid: Vec<u32>,
}

/// `switchboard bench fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// The server's native endpoint, e.g. ws://127.0.0.1:8000/api/ws.
    pub url: String,
    /// Subscriber connections.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub subscribers: u32,
    /// Events published per second, all publishers together; 0: as fast as the server acknowledges them, each
    /// publisher keeping at most `--in-flight` unacknowledged.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Publisher connections (publisher p sends the sequence numbers p, p + N, p + 2N, …; subscribers check
    /// each publisher's order).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub publishers: u32,
    /// With `--rate 0`: publishes each publisher keeps unacknowledged.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub in_flight: u32,
    /// Size of each event (the JSON value published), in bytes; at least 48.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(48..))]
    pub size: u32,
    /// How long to publish, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// How long to wait after the last publish for deliveries still on their way.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// The channel.
    #[arg(long, default_value = "bench/fanout")]
    pub channel: String,
    /// Where the subscribers connect, in turn (repeat it to split them over the nodes of a cluster). Default: the
    /// publishers' URL.
    #[arg(long, value_name = "URL")]
    pub subscribe_url: Vec<String>,
    /// A `redis-server`'s process id: its CPU time over the run is reported per delivery, apart from the server's.
    #[arg(long, value_name = "PID")]
    pub redis_pid: Option<u32>,
    #[command(flatten)]
    pub common: Common,
}

/// `switchboard bench rpc`.
#[derive(Debug, Args)]
pub struct RpcArgs {
    /// The server's native endpoint.
    pub url: String,
    /// Connections.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Requests each connection keeps in flight (1: the next is sent when the last is answered).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub in_flight: u32,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub common: Common,
}

/// `switchboard bench publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The server's native endpoint (the server's per-connection rate limit must allow the load: `serve
    /// --rate-per-sec 0`).
    pub url: String,
    /// Publisher connections.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub publishers: u32,
    /// Publishes each publisher keeps in flight (1: send the next when the last is acknowledged).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub in_flight: u32,
    /// Channels the publishers spread over (`<channel>/<n>`, each publisher taking turns over all of them); 1: all
    /// on `<channel>`.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub channels: u32,
    /// Size of each event's padding, about the event's JSON size, in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(20..))]
    pub size: u32,
    /// How long to publish.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The channel (or prefix, with `--channels` over 1).
    #[arg(long, default_value = "bench/publish")]
    pub channel: String,
    /// Every publish carries an idempotency key of its own (what the SDKs and `switchboard pub` send), so the
    /// server checks and remembers each one.
    #[arg(long)]
    pub keyed: bool,
    #[command(flatten)]
    pub common: Common,
}

/// `switchboard bench engine`.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// The Redis, e.g. redis://127.0.0.1:6379/0 (the bench writes under `--prefix`).
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", hide_env_values = true)]
    pub redis: String,
    /// Publishers, each with its own connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub publishers: u32,
    /// Publishes each publisher keeps in flight (pipelined on its connection).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub in_flight: u32,
    /// Events per publish (one script call).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch: u32,
    /// Channels the publishes spread over (`<channel>/<n>`).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub channels: u32,
    /// About each event's JSON size, in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(20..))]
    pub size: u32,
    /// Events each channel's history keeps.
    #[arg(long, default_value_t = 1000)]
    pub history_size: usize,
    /// How long to publish.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The channel prefix.
    #[arg(long, default_value = "bench/engine")]
    pub channel: String,
    /// The key prefix in Redis.
    #[arg(long, default_value = "switchboard-bench")]
    pub prefix: String,
}

/// `switchboard bench idle`.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// The server's native endpoint (its `/metrics` must be on the same host and port).
    pub url: String,
    /// Idle connections to hold.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Connections per source address: 127.0.0.1 takes the first this many, 127.0.0.2 the next, …
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub per_address: u32,
    /// Connections opened at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// How long to hold the connections open before reading the server's memory.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub hold: Duration,
    #[command(flatten)]
    pub common: Common,
}

/// Runs a bench subcommand.
pub async fn bench(args: BenchArgs) -> Result<(), CliError> {
    match args.kind {
        BenchKind::Fanout(args) => fanout::run(args).await,
        BenchKind::Rpc(args) => rpc::run(args).await,
        BenchKind::Idle(args) => idle::run(args).await,
        BenchKind::Publish(args) => publish::run(args).await,
        BenchKind::Engine(args) => engine::run(args).await,
    }
}

/// `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (try 10s or 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {text:?}: use ms, s or m")),
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
