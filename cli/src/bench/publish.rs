//! `bench publish`: N publisher connections, each keeping K publishes in flight, for the duration: acknowledged
//! publishes per second and the time from sending a publish to its `publish_res` (which, with `--data-dir`, comes
//! after the event's write and sync).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use super::PublishArgs;
use super::cpu::CpuSample;
use super::net::{self, Target, Ws};
use super::stats::{merge, percentiles, report};
use crate::error::CliError;

/// What one publisher did.
#[derive(Default)]
struct Published {
    acked: u64,
    latencies: Vec<u32>,
    error: Option<String>,
}

/// Runs the publish bench.
pub async fn run(args: PublishArgs) -> Result<(), CliError> {
    let target = Target::parse(&args.url, args.common.token.as_deref())?;
    net::raise_fd_limit();
    let ex = net::executor(args.common.threads);
    let mut conns = Vec::with_capacity(args.publishers as usize);
    for _ in 0..args.publishers {
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
    let payload = "x".repeat(args.size.saturating_sub(20) as usize);
    let cpu_before = CpuSample::take(&args.common.server_pid)?;
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = ready
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let channels = Channels {
                prefix: args.channel.clone(),
                count: args.channels,
                first: i as u64,
                stride: u64::from(args.publishers),
            };
            ex.spawn(publisher(
                ws,
                i,
                channels,
                payload.clone(),
                args.in_flight,
                args.keyed,
                deadline,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut acked, mut errors) = (0u64, Vec::new());
    for task in tasks {
        let p = task.await;
        acked += p.acked;
        latencies.extend_from_slice(&p.latencies);
        errors.extend(p.error);
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = CpuSample::take(&args.common.server_pid)?;
    let mut summary = json!({
        "bench": "publish",
        "publishers": args.publishers,
        "in_flight": args.in_flight,
        "channels": args.channels.max(1),
        "size": args.size,
        "keyed": args.keyed,
        "threads": args.common.threads,
        "duration_s": secs,
        "acknowledged": acked,
        "acknowledged_per_sec": (acked as f64 / secs).round(),
        "latency": percentiles(&mut latencies),
        "errors": errors.len(),
        "first_error": errors.first(),
    });
    merge(
        &mut summary,
        cpu_before.per_operation(&cpu_after, acked, "publish"),
    );
    report(&summary)?;
    if !errors.is_empty() {
        return Err(CliError::Failed(format!(
            "{} publishers failed",
            errors.len()
        )));
    }
    Ok(())
}

/// The channels one publisher takes turns over: its `n`th publish goes to `<prefix>/<(first + n·stride) mod
/// count>`, so the publishers together fill every channel evenly; one channel is `<prefix>` itself.
struct Channels {
    prefix: String,
    count: u32,
    first: u64,
    stride: u64,
}

impl Channels {
    fn nth(&self, n: u64) -> String {
        if self.count <= 1 {
            return self.prefix.clone();
        }
        let index = (self.first + n * self.stride) % u64::from(self.count);
        format!("{}/{index}", self.prefix)
    }
}

/// Publishes with `window` in flight until `deadline`, then waits for the answers still due.
async fn publisher(
    mut ws: Ws,
    conn: usize,
    channels: Channels,
    payload: String,
    window: u32,
    keyed: bool,
    deadline: Instant,
) -> Published {
    let mut out = Published::default();
    // Answers come in the order the publishes were sent: their send times, oldest first.
    let mut sent: VecDeque<Instant> = VecDeque::new();
    let mut seq = 0u64;
    loop {
        while Instant::now() < deadline && sent.len() < window as usize {
            let id = format!("{conn}.{seq}");
            let mut data =
                json!({"channel": channels.nth(seq), "event": {"seq": seq, "pad": payload}});
            if keyed {
                data["idempotency_key"] = json!(format!("bench-{id}"));
            }
            let text = json!({"type": "publish", "message_id": id, "data": data}).to_string();
            seq += 1;
            if let Err(e) = net::send(&mut ws, text).await {
                out.error = Some(e.to_string());
                return out;
            }
            sent.push_back(Instant::now());
        }
        if sent.is_empty() {
            return out;
        }
        let frame = futures_lite::future::or(async { ws.next().await.map(Some) }, async {
            smol::Timer::after(Duration::from_secs(30)).await;
            Some(None)
        })
        .await;
        match frame {
            Some(Some(Ok(message))) if message.is_text() => {
                let text = message.to_text().unwrap_or_default();
                if text.starts_with(r#"{"type":"publish_res""#) {
                    let at = sent.pop_front().unwrap_or_else(Instant::now);
                    let micros = at.elapsed().min(Duration::from_secs(3600)).as_micros();
                    out.latencies.push(micros as u32);
                    out.acked += 1;
                } else if text.starts_with(r#"{"type":"error""#) {
                    out.error = Some(format!("refused: {text}"));
                    return out;
                } else if let Some(pong) = net::pong_for(text)
                    && let Err(e) = net::send(&mut ws, pong).await
                {
                    out.error = Some(e.to_string());
                    return out;
                }
            }
            Some(Some(Ok(_))) => {}
            Some(Some(Err(e))) => {
                out.error = Some(format!("read failed: {e}"));
                return out;
            }
            Some(None) => {
                out.error = Some(format!("{} answers not received in 30 s", sent.len()));
                return out;
            }
            None => {
                out.error = Some("closed by the server".to_owned());
                return out;
            }
        }
    }
}
