//! `bench idle`: holds N connections that only answer heartbeats, spread over source addresses 127.0.0.x so the
//! ephemeral ports of one address do not run out, and reports the server's resident memory per connection.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use futures_util::StreamExt;
use serde_json::json;

use super::IdleArgs;
use super::net::{self, Target, Ws};
use super::stats::report;
use crate::error::CliError;

/// Runs the idle-connection bench.
pub async fn run(args: IdleArgs) -> Result<(), CliError> {
    let target = Target::parse(&args.url, args.common.token.as_deref())?;
    let n = args.connections as usize;
    let fd_limit = net::raise_fd_limit();
    if (n as u64) + 64 > fd_limit {
        return Err(CliError::Usage(format!(
            "{n} connections need more open files than the limit ({fd_limit}); raise `ulimit -n`"
        )));
    }
    let loopback = target.addr.ip().is_loopback();
    let ex = net::executor(args.common.threads);
    let before = net::resident_memory(target.addr).await?;
    let opening = Instant::now();
    let mut held: Vec<smol::Task<()>> = Vec::with_capacity(n);
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    while held.len() < n {
        let batch = (args.concurrency as usize).min(n - held.len());
        let first = held.len();
        let opened: Vec<_> = (first..first + batch)
            .map(|i| {
                let target = target.clone();
                // 127.0.0.1, 127.0.0.2, … (only when the server is on loopback).
                let source = loopback.then(|| {
                    let k = 1 + (i as u32 / args.per_address);
                    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + k))
                });
                ex.spawn(async move {
                    let mut ws = target.connect(source).await?;
                    net::greeting(&mut ws).await?;
                    Ok::<_, CliError>(ws)
                })
            })
            .collect();
        for (i, task) in opened.into_iter().enumerate() {
            let ws = task
                .await
                .map_err(|e| CliError::Failed(format!("connection {} failed: {e}", first + i)))?;
            let stop = stop_rx.clone();
            held.push(ex.spawn(async move {
                futures_lite::future::or(hold(ws), async {
                    let _ = stop.recv().await;
                })
                .await;
            }));
        }
    }
    let open_secs = opening.elapsed().as_secs_f64();
    smol::Timer::after(args.hold).await;
    let after = net::resident_memory(target.addr).await?;
    let still_open = held.iter().filter(|task| !task.is_finished()).count();
    drop(stop_tx);
    for task in held {
        task.await;
    }
    let per_connection = (after.saturating_sub(before)) as f64 / n as f64;
    report(&json!({
        "bench": "idle",
        "connections": n,
        "source_addresses": if loopback { n.div_ceil(args.per_address as usize) } else { 1 },
        "open_s": open_secs,
        "still_open": still_open,
        "server_rss_before": before,
        "server_rss_after": after,
        "bytes_per_connection": per_connection.round(),
    }))?;
    if still_open < n {
        return Err(CliError::Failed(format!(
            "{} of {n} connections closed while held",
            n - still_open
        )));
    }
    Ok(())
}

/// Answers heartbeats until the connection ends.
async fn hold(mut ws: Ws) {
    while let Some(Ok(message)) = ws.next().await {
        if let Some(pong) = message.to_text().ok().and_then(net::pong_for)
            && ws
                .send(async_tungstenite::tungstenite::Message::text(pong))
                .await
                .is_err()
        {
            return;
        }
    }
}
