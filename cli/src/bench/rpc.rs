//! `bench rpc`: N connections, each keeping K `ping`s in flight (sending the next as each is answered), for the
//! duration. The server answers a connection's requests in order, so each answer is matched to the oldest ping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};

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
    let cpu_before = CpuSample::take(&args.common.server_pid)?;
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = ready
        .into_iter()
        .enumerate()
        .map(|(i, ws)| ex.spawn(trips(ws, i, args.in_flight as usize, deadline)))
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
    let cpu_after = CpuSample::take(&args.common.server_pid)?;
    let mut summary = json!({
        "bench": "rpc",
        "connections": args.connections,
        "in_flight": args.in_flight,
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

/// Ping round trips, `in_flight` at a time, until `deadline`.
async fn trips(mut ws: Ws, conn: usize, in_flight: usize, deadline: Instant) -> Trips {
    let mut trips = Trips::default();
    if let Err(e) = run_trips(&mut ws, conn, in_flight, deadline, &mut trips).await {
        trips.error = Some(e);
    }
    trips
}

async fn run_trips(
    ws: &mut Ws,
    conn: usize,
    in_flight: usize,
    deadline: Instant,
    trips: &mut Trips,
) -> Result<(), String> {
    use async_tungstenite::tungstenite::Message;
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(in_flight);
    let mut next = 0u64;
    let ping = |n: u64| {
        Message::text(
            json!({"type": "ping", "message_id": format!("{conn}.{n}"), "data": {}}).to_string(),
        )
    };
    for _ in 0..in_flight {
        ws.feed(ping(next)).await.map_err(|e| e.to_string())?;
        sent_at.push_back(Instant::now());
        next += 1;
    }
    ws.flush().await.map_err(|e| e.to_string())?;
    while !sent_at.is_empty() {
        // Pings go out with one flush per burst of answers, not one per answer.
        let ready = match ws.next().now_or_never() {
            Some(ready) => ready,
            None => {
                ws.flush().await.map_err(|e| e.to_string())?;
                ws.next().await
            }
        };
        let message = match ready {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(format!("read failed: {e}")),
            None => return Err("closed by the server".to_owned()),
        };
        let Ok(text) = message.to_text() else {
            continue;
        };
        if text.starts_with(r#"{"type":"ping_res""#) {
            let sent = sent_at.pop_front().unwrap_or_else(Instant::now);
            let micros = sent.elapsed().min(Duration::from_secs(3600)).as_micros();
            trips.latencies.push(micros as u32);
            trips.done += 1;
            if Instant::now() < deadline {
                ws.feed(ping(next)).await.map_err(|e| e.to_string())?;
                sent_at.push_back(Instant::now());
                next += 1;
            }
        } else if let Some(pong) = net::pong_for(text) {
            ws.feed(Message::text(pong))
                .await
                .map_err(|e| e.to_string())?;
        } else {
            return Err(format!("unexpected answer: {text}"));
        }
    }
    Ok(())
}
