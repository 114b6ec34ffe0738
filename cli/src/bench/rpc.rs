//! `bench rpc`: N connections, each with one `ping` in flight, back to back, for the duration.

use std::time::{Duration, Instant};

use serde_json::json;

use super::RpcArgs;
use super::cpu::CpuSample;
use super::net::{self, Target, Ws};
use super::stats::{merge, percentiles, report};
use crate::error::CliError;

/// What one connection did.
#[derive(Default)]
struct Trips {
    done: u64,
    latencies: Vec<u32>,
    error: Option<String>,
}

/// Runs the request/response bench.
pub async fn run(args: RpcArgs) -> Result<(), CliError> {
    let target = Target::parse(&args.url, args.common.token.as_deref())?;
    net::raise_fd_limit();
    let ex = net::executor(args.common.threads);
    let mut conns = Vec::with_capacity(args.connections as usize);
    for _ in 0..args.connections {
        let target = target.clone();
        conns.push(ex.spawn(async move {
            let mut ws = target.connect(None).await?;
            net::greeting(&mut ws).await?;
            Ok::<_, CliError>(ws)
        }));
    }
    let mut ready = Vec::with_capacity(conns.len());
    for conn in conns {
        ready.push(conn.await?);
    }
    let cpu_before = CpuSample::take(args.common.server_pid)?;
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = ready
        .into_iter()
        .enumerate()
        .map(|(i, ws)| ex.spawn(trips(ws, i, deadline)))
        .collect();
    let mut latencies = Vec::new();
    let (mut done, mut errors) = (0u64, Vec::new());
    for task in tasks {
        let trips = task.await;
        done += trips.done;
        latencies.extend_from_slice(&trips.latencies);
        errors.extend(trips.error);
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = CpuSample::take(args.common.server_pid)?;
    let mut summary = json!({
        "bench": "rpc",
        "connections": args.connections,
        "threads": args.common.threads,
        "duration_s": secs,
        "round_trips": done,
        "round_trips_per_sec": (done as f64 / secs).round(),
        "latency": percentiles(&mut latencies),
        "errors": errors.len(),
        "first_error": errors.first(),
    });
    merge(
        &mut summary,
        cpu_before.per_operation(&cpu_after, done, "round_trip"),
    );
    report(&summary)?;
    if !errors.is_empty() {
        return Err(CliError::Failed(format!(
            "{} connections failed",
            errors.len()
        )));
    }
    Ok(())
}

/// Ping round trips until `deadline`.
async fn trips(mut ws: Ws, conn: usize, deadline: Instant) -> Trips {
    let mut trips = Trips::default();
    let mut pongs = Vec::new();
    while Instant::now() < deadline {
        let id = format!("{conn}.{}", trips.done);
        let text = json!({"type": "ping", "message_id": id, "data": {}}).to_string();
        let sent = Instant::now();
        let answer = net::request(&mut ws, text, &id, |other| {
            pongs.extend(net::pong_for(other));
        })
        .await;
        match answer {
            Ok(answer) if answer.starts_with(r#"{"type":"ping_res""#) => {
                let micros = sent.elapsed().min(Duration::from_secs(3600)).as_micros();
                trips.latencies.push(micros as u32);
                trips.done += 1;
            }
            Ok(answer) => {
                trips.error = Some(format!("unexpected answer: {answer}"));
                break;
            }
            Err(e) => {
                trips.error = Some(e.to_string());
                break;
            }
        }
        for pong in pongs.drain(..) {
            if let Err(e) = net::send(&mut ws, pong).await {
                trips.error = Some(e.to_string());
                return trips;
            }
        }
    }
    trips
}
