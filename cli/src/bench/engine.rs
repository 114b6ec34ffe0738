//! `bench engine`: the Redis engine's publish path alone, against a Redis — N publishers (each its own
//! connection), each keeping K publish scripts in flight, for the duration. Reports acknowledged publishes and
//! events per second, the time to each acknowledgement, and the CPU time per event of Redis (from its own `INFO
//! cpu`) and of this process (from `/proc/self/stat`), which a shared machine disturbs less than rates.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use switchboard_protocol::redis::engine::FeedConfig;
use switchboard_protocol::wire::ChannelName;
use switchboard_runtime::redis::engine::{Engine, EngineOptions};
use switchboard_runtime::redis::{Command, RedisClient, RedisOptions, RedisUrl};
use switchboard_smol::SmolRuntime;

use super::EngineArgs;
use super::cpu::process_cpu;
use super::net::unix_micros;
use super::stats::{percentiles, report};
use crate::error::CliError;

/// Runs the engine bench.
pub async fn run(args: EngineArgs) -> Result<(), CliError> {
    let url = RedisUrl::parse(&args.redis).map_err(|e| CliError::Usage(e.to_string()))?;
    let runtime = SmolRuntime::new();
    let redis = RedisOptions::new(url).client_name("switchboard-bench");
    let admin = RedisClient::start(runtime.clone(), redis.clone());
    let channels: Vec<ChannelName> = (0..args.channels)
        .map(|n| ChannelName::new(&format!("{}/{n}", args.channel)))
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::Usage(format!("--channel: {e}")))?;
    let engines: Vec<Engine> = (0..args.publishers)
        .map(|_| {
            let options = EngineOptions {
                redis: redis.clone(),
                prefix: args.prefix.clone(),
                history_size: args.history_size,
                history_ttl: Duration::ZERO,
                feed: FeedConfig::default(),
            };
            Engine::start(runtime.clone(), options).0
        })
        .collect();
    let padding = "x".repeat(args.size.saturating_sub(20) as usize);
    let batch = args.batch as usize;
    // One warm-up publish per engine: connections up and scripts loaded before the clock starts.
    for engine in &engines {
        let event = json!({"warm": true}).to_string().into_bytes();
        engine
            .publish(&channels[0], &[event], false, "bench", unix_micros() / 1000)
            .await
            .map_err(|e| CliError::Failed(format!("publishing through {}: {e}", args.redis)))?;
    }
    let redis_before = redis_cpu(&admin).await?;
    let own_before = process_cpu(None);
    let started = Instant::now();
    let deadline = started + args.duration;
    let loops = engines.iter().enumerate().flat_map(|(p, engine)| {
        let channels = &channels;
        let padding = &padding;
        (0..args.in_flight).map(move |k| async move {
            let mut latencies = Vec::new();
            let mut n = (p as u64) * 7919 + u64::from(k);
            let mut failed = None;
            while Instant::now() < deadline {
                let channel = &channels[(n % channels.len() as u64) as usize];
                let events: Vec<Vec<u8>> = (0..batch)
                    .map(|i| {
                        json!({"n": n, "i": i, "pad": padding})
                            .to_string()
                            .into_bytes()
                    })
                    .collect();
                let sent = Instant::now();
                match engine
                    .publish(channel, &events, false, "bench", unix_micros() / 1000)
                    .await
                {
                    Ok(_) => latencies
                        .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
                n += 1;
            }
            (latencies, failed)
        })
    });
    let results = join_all(loops).await;
    let elapsed = started.elapsed();
    let own_after = process_cpu(None);
    let redis_after = redis_cpu(&admin).await?;
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for (samples, failed) in results {
        latencies.extend(samples);
        errors.extend(failed);
    }
    let publishes = latencies.len() as u64;
    let events = publishes * batch as u64;
    let per_event = |cpu: Duration| {
        if events == 0 {
            0.0
        } else {
            cpu.as_secs_f64() * 1e6 / events as f64
        }
    };
    let own_cpu = match (own_before, own_after) {
        (Some(before), Some(after)) => Some(per_event(after.saturating_sub(before))),
        _ => None,
    };
    report(&json!({
        "bench": "engine",
        "publishers": args.publishers,
        "in_flight": args.in_flight,
        "batch": batch,
        "seconds": elapsed.as_secs_f64(),
        "publishes": publishes,
        "events": events,
        "events_per_sec": events as f64 / elapsed.as_secs_f64(),
        "ack_latency": percentiles(&mut latencies),
        "redis_cpu_us_per_event": per_event(redis_after.saturating_sub(redis_before)),
        "bench_cpu_us_per_event": own_cpu,
        "errors": errors,
    }))?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} publishers stopped on an error",
            errors.len()
        )))
    }
}

/// Redis's own CPU time (user + system) from `INFO cpu`.
async fn redis_cpu(client: &RedisClient) -> Result<Duration, CliError> {
    let info = client
        .request(Command::new("INFO").arg("cpu"))
        .await
        .map_err(|e| CliError::Failed(format!("INFO cpu: {e}")))?;
    let text = info
        .as_bytes()
        .map(String::from_utf8_lossy)
        .ok_or_else(|| CliError::Failed("INFO cpu answered no text".into()))?;
    let field = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(':')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    Ok(Duration::from_secs_f64(
        field("used_cpu_user") + field("used_cpu_sys"),
    ))
}
