//! `bench fanout`: one publisher at a fixed rate, N subscribers; every event carries its sequence number and the
//! publish time (unix µs), so each subscriber measures latency and counts lost and duplicated events itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;

use super::FanoutArgs;
use super::cpu::CpuSample;
use super::net::{self, Target, Ws, number_after, pong_for, unix_micros};
use super::stats::{merge, percentiles, report};
use crate::error::CliError;

/// Connections opened at once while setting up.
const SETUP_CONCURRENCY: usize = 128;

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    /// One bit per sequence number.
    bits: Vec<u64>,
    delivered: u64,
    duplicated: u64,
    /// Latencies in µs.
    latencies: Vec<u32>,
    last_micros: u64,
    error: Option<String>,
}

impl Seen {
    fn record(&mut self, seq: u64, sent_micros: u64, now: u64) -> bool {
        self.delivered += 1;
        self.last_micros = now;
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let latency = u32::try_from(now.saturating_sub(sent_micros)).unwrap_or(u32::MAX);
        self.latencies.push(latency);
        if self.bits[word] & bit != 0 {
            self.duplicated += 1;
            false
        } else {
            self.bits[word] |= bit;
            true
        }
    }

    fn distinct_below(&self, published: u64) -> u64 {
        (0..published)
            .filter(|seq| {
                self.bits
                    .get((seq / 64) as usize)
                    .is_some_and(|w| w & (1 << (seq % 64)) != 0)
            })
            .count() as u64
    }
}

/// Runs the fan-out bench.
pub async fn run(args: FanoutArgs) -> Result<(), CliError> {
    let target = Target::parse(&args.url, args.common.token.as_deref())?;
    let n = args.subscribers as usize;
    net::raise_fd_limit();
    let ex = net::executor(args.common.threads);

    // 1. Subscribers: connect, greet, subscribe.
    let mut subscribers: Vec<Ws> = Vec::with_capacity(n);
    while subscribers.len() < n {
        let batch = SETUP_CONCURRENCY.min(n - subscribers.len());
        let tasks: Vec<_> = (0..batch)
            .map(|i| {
                let target = target.clone();
                let channel = args.channel.clone();
                ex.spawn(async move {
                    let mut ws = target.connect(None).await?;
                    net::greeting(&mut ws).await?;
                    let id = format!("s{i}");
                    let text = json!({"type": "subscribe", "message_id": id, "data": {"channel": channel}})
                        .to_string();
                    net::request(&mut ws, text, &id, |_| {}).await?;
                    Ok::<_, CliError>(ws)
                })
            })
            .collect();
        for task in tasks {
            subscribers.push(task.await?);
        }
    }

    // 2. Receivers: each runs until the stop channel closes.
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let distinct_total = Arc::new(AtomicU64::new(0));
    let receivers: Vec<_> = subscribers
        .into_iter()
        .map(|ws| {
            let stop = stop_rx.clone();
            let distinct_total = distinct_total.clone();
            ex.spawn(async move {
                let mut seen = Seen::default();
                let receive = receive(ws, &mut seen, &distinct_total);
                futures_lite::future::or(receive, async {
                    let _ = stop.recv().await;
                })
                .await;
                seen
            })
        })
        .collect();

    // 3. The publisher.
    let mut publisher = target.connect(None).await?;
    net::greeting(&mut publisher).await?;
    let (mut sink, mut source) = publisher.split();
    let acks = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let ack_reader = {
        let (acks, refused, stop) = (acks.clone(), refused.clone(), stop_rx.clone());
        ex.spawn(async move {
            let mut first_refusal = None;
            let read = async {
                while let Some(Ok(message)) = source.next().await {
                    let text = message.to_text().unwrap_or_default();
                    if text.starts_with(r#"{"type":"publish_res""#) {
                        acks.fetch_add(1, Ordering::Relaxed);
                    } else if text.starts_with(r#"{"type":"error""#) {
                        refused.fetch_add(1, Ordering::Relaxed);
                        first_refusal.get_or_insert_with(|| text.to_owned());
                    }
                }
            };
            futures_lite::future::or(read, async {
                let _ = stop.recv().await;
            })
            .await;
            first_refusal
        })
    };
    let cpu_before = CpuSample::take(args.common.server_pid)?;
    let started = Instant::now();
    let start_micros = unix_micros();
    let mut published = 0u64;
    let mut ticks = smol::Timer::interval(Duration::from_millis(1));
    let channel = serde_json::to_string(&args.channel).unwrap_or_default();
    while started.elapsed() < args.duration {
        ticks.next().await;
        let due =
            (started.elapsed().as_micros() as u64).saturating_mul(u64::from(args.rate)) / 1_000_000;
        while published < due {
            let frame = publish_frame(&channel, published, args.size as usize);
            sink.feed(async_tungstenite::tungstenite::Message::text(frame))
                .await
                .map_err(|e| CliError::Failed(format!("publish failed: {e}")))?;
            published += 1;
        }
        sink.flush()
            .await
            .map_err(|e| CliError::Failed(format!("publish failed: {e}")))?;
    }
    let publish_secs = started.elapsed().as_secs_f64();

    // 4. Wait for the stragglers (bounded by --grace), then stop everyone.
    let expected = published * n as u64;
    let grace_end = Instant::now() + args.grace;
    while distinct_total.load(Ordering::Relaxed) < expected && Instant::now() < grace_end {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    let cpu_after = CpuSample::take(args.common.server_pid)?;
    drop(stop_tx);
    let first_refusal = ack_reader.await;
    let mut latencies = Vec::new();
    let (mut delivered, mut distinct, mut duplicated, mut last_micros) = (0, 0, 0, start_micros);
    let mut failed = Vec::new();
    for receiver in receivers {
        let seen = receiver.await;
        delivered += seen.delivered;
        duplicated += seen.duplicated;
        distinct += seen.distinct_below(published);
        last_micros = last_micros.max(seen.last_micros);
        latencies.extend_from_slice(&seen.latencies);
        failed.extend(seen.error);
    }
    let delivery_secs = (last_micros.saturating_sub(start_micros) as f64 / 1e6).max(publish_secs);
    let lost = expected - distinct;
    let mut summary = json!({
        "bench": "fanout",
        "subscribers": n,
        "rate": args.rate,
        "size": args.size,
        "threads": args.common.threads,
        "duration_s": publish_secs,
        "published": published,
        "publish_acks": acks.load(Ordering::Relaxed),
        "publish_refused": refused.load(Ordering::Relaxed),
        "first_refusal": first_refusal,
        "expected_deliveries": expected,
        "delivered": delivered,
        "lost": lost,
        "duplicated": duplicated,
        "delivered_per_sec": (delivered as f64 / delivery_secs).round(),
        "latency": percentiles(&mut latencies),
        "subscriber_errors": failed.len(),
        "first_subscriber_error": failed.first(),
    });
    merge(
        &mut summary,
        cpu_before.per_operation(&cpu_after, delivered, "delivery"),
    );
    report(&summary)?;
    if lost > 0 || duplicated > 0 {
        return Err(CliError::Failed(format!(
            "{lost} deliveries lost, {duplicated} duplicated"
        )));
    }
    Ok(())
}

/// A `publish` frame whose event is exactly `size` bytes: `{"seq":N,"t":MICROS,"pad":"xx…"}`.
fn publish_frame(channel: &str, seq: u64, size: usize) -> String {
    let t = unix_micros();
    let bare = format!(r#"{{"seq":{seq},"t":{t},"pad":""}}"#).len();
    let pad = "x".repeat(size.saturating_sub(bare));
    format!(
        r#"{{"type":"publish","message_id":"p{seq}","data":{{"channel":{channel},"event":{{"seq":{seq},"t":{t},"pad":"{pad}"}}}}}}"#
    )
}

/// Reads events until the connection ends (or the caller stops polling).
async fn receive(mut ws: Ws, seen: &mut Seen, distinct_total: &AtomicU64) {
    while let Some(next) = ws.next().await {
        let message = match next {
            Ok(message) => message,
            Err(e) => {
                seen.error = Some(e.to_string());
                return;
            }
        };
        let Ok(text) = message.to_text() else {
            continue;
        };
        if text.starts_with(r#"{"type":"event""#) {
            let Some((seq, end)) = number_after(text, r#""seq":"#, 0) else {
                continue;
            };
            let Some((sent, _)) = number_after(text, r#""t":"#, end) else {
                continue;
            };
            if seen.record(seq, sent, unix_micros()) {
                distinct_total.fetch_add(1, Ordering::Relaxed);
            }
        } else if let Some(pong) = pong_for(text)
            && ws
                .send(async_tungstenite::tungstenite::Message::text(pong))
                .await
                .is_err()
        {
            return;
        }
    }
    seen.error
        .get_or_insert_with(|| "closed by the server".to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_the_asked_size_and_parse_back() {
        let frame = publish_frame(r#""bench/fanout""#, 12345, 100);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        let event = value["data"]["event"].to_string();
        assert_eq!(event.len(), 100);
        let (seq, end) = number_after(&frame, r#""seq":"#, 0).unwrap();
        assert_eq!(seq, 12345);
        assert!(number_after(&frame, r#""t":"#, end).unwrap().0 > 1_600_000_000_000_000);
    }

    #[test]
    fn duplicates_are_counted_once() {
        let mut seen = Seen::default();
        assert!(seen.record(0, 0, 10));
        assert!(seen.record(70, 0, 10));
        assert!(!seen.record(70, 0, 10));
        assert_eq!((seen.delivered, seen.duplicated), (3, 1));
        assert_eq!(seen.distinct_below(71), 2);
        assert_eq!(seen.distinct_below(70), 1);
    }
}
