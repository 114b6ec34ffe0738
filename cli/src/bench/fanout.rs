//! `bench fanout`: M publishers at a fixed rate (or as fast as the server acknowledges), N subscribers; every event
//! carries its sequence number and the publish time (unix µs), so each subscriber measures latency and counts lost,
//! duplicated and reordered events itself. Publisher p of M sends the sequence numbers p, p + M, p + 2M, …, so
//! the order is checked per publisher (the only order the protocol promises across connections).

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
    /// Events that came after a later one of the same publisher.
    reordered: u64,
    /// The highest sequence number seen from each publisher.
    last: Vec<Option<u64>>,
    /// Latencies in µs.
    latencies: Vec<u32>,
    last_micros: u64,
    error: Option<String>,
}

impl Seen {
    fn new(publishers: usize) -> Seen {
        Seen {
            last: vec![None; publishers],
            ..Seen::default()
        }
    }

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
            return false;
        }
        self.bits[word] |= bit;
        let publishers = self.last.len().max(1) as u64;
        let last = &mut self.last[(seq % publishers) as usize];
        match *last {
            Some(before) if seq < before => self.reordered += 1,
            _ => *last = Some(seq),
        }
        true
    }

    /// How many of the sequence numbers sent (publisher p sent `sent[p]` of them) were seen.
    fn distinct_of(&self, sent: &[u64]) -> u64 {
        let publishers = sent.len() as u64;
        let seen = |seq: u64| {
            self.bits
                .get((seq / 64) as usize)
                .is_some_and(|w| w & (1 << (seq % 64)) != 0)
        };
        (0..publishers)
            .map(|p| {
                (0..sent[p as usize])
                    .filter(|k| seen(k * publishers + p))
                    .count() as u64
            })
            .sum()
    }
}

/// What one publisher did: how many it sent, and its answers (counted until the bench stops everyone).
struct Published {
    sent: u64,
    acks: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    /// Ends when the bench stops; gives the first refusal.
    ack_reader: smol::Task<Option<String>>,
}

/// Runs the fan-out bench.
pub async fn run(args: FanoutArgs) -> Result<(), CliError> {
    let target = Target::parse(&args.url, args.common.token.as_deref())?;
    let subscribe_to = if args.subscribe_url.is_empty() {
        vec![target.clone()]
    } else {
        args.subscribe_url
            .iter()
            .map(|url| Target::parse(url, args.common.token.as_deref()))
            .collect::<Result<Vec<_>, _>>()?
    };
    let n = args.subscribers as usize;
    let publishers = args.publishers as usize;
    net::raise_fd_limit();
    let ex = net::executor(args.common.threads);

    // 1. Subscribers: connect, greet, subscribe.
    let mut subscribers: Vec<Ws> = Vec::with_capacity(n);
    while subscribers.len() < n {
        let batch = SETUP_CONCURRENCY.min(n - subscribers.len());
        let first = subscribers.len();
        let tasks: Vec<_> = (0..batch)
            .map(|i| {
                let target = subscribe_to[(first + i) % subscribe_to.len()].clone();
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
                let mut seen = Seen::new(publishers);
                let receive = receive(ws, &mut seen, &distinct_total);
                futures_lite::future::or(receive, async {
                    let _ = stop.recv().await;
                })
                .await;
                seen
            })
        })
        .collect();

    // 3. The publishers.
    let mut conns = Vec::with_capacity(publishers);
    for _ in 0..publishers {
        let mut ws = target.connect(None).await?;
        net::greeting(&mut ws).await?;
        conns.push(ws);
    }
    let channel = serde_json::to_string(&args.channel).unwrap_or_default();
    let cpu_before = CpuSample::take(&args.common.server_pid)?;
    let redis_before = redis_cpu(args.redis_pid)?;
    let started = Instant::now();
    let start_micros = unix_micros();
    let plan = Plan {
        publishers: publishers as u64,
        rate: args.rate,
        in_flight: args.in_flight as usize,
        size: args.size as usize,
        duration: args.duration,
        started,
        channel,
    };
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(p, ws)| {
            ex.spawn(publish(
                ex.clone(),
                ws,
                p as u64,
                plan.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let mut done = Vec::with_capacity(publishers);
    for task in tasks {
        done.push(task.await?);
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let sent: Vec<u64> = done.iter().map(|d| d.sent).collect();
    let published: u64 = sent.iter().sum();

    // 4. Wait for the stragglers (bounded by --grace), then stop everyone.
    let expected = published * n as u64;
    let grace_end = Instant::now() + args.grace;
    while distinct_total.load(Ordering::Relaxed) < expected && Instant::now() < grace_end {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
    let cpu_after = CpuSample::take(&args.common.server_pid)?;
    let redis_after = redis_cpu(args.redis_pid)?;
    drop(stop_tx);
    let (mut acks, mut refused, mut first_refusal) = (0, 0, None);
    for publisher in done {
        let refusal = publisher.ack_reader.await;
        acks += publisher.acks.load(Ordering::Relaxed);
        refused += publisher.refused.load(Ordering::Relaxed);
        first_refusal = first_refusal.or(refusal);
    }
    let mut latencies = Vec::new();
    let (mut delivered, mut distinct, mut duplicated, mut reordered, mut last_micros) =
        (0, 0, 0, 0, start_micros);
    let mut failed = Vec::new();
    for receiver in receivers {
        let seen = receiver.await;
        delivered += seen.delivered;
        duplicated += seen.duplicated;
        reordered += seen.reordered;
        distinct += seen.distinct_of(&sent);
        last_micros = last_micros.max(seen.last_micros);
        latencies.extend_from_slice(&seen.latencies);
        failed.extend(seen.error);
    }
    let delivery_secs = (last_micros.saturating_sub(start_micros) as f64 / 1e6).max(publish_secs);
    let lost = expected - distinct;
    let mut summary = json!({
        "bench": "fanout",
        "subscribers": n,
        "publishers": publishers,
        "rate": args.rate,
        "in_flight": args.in_flight,
        "size": args.size,
        "threads": args.common.threads,
        "duration_s": publish_secs,
        "published": published,
        "published_per_sec": (published as f64 / publish_secs).round(),
        "publish_acks": acks,
        "publish_refused": refused,
        "first_refusal": first_refusal,
        "expected_deliveries": expected,
        "delivered": delivered,
        "lost": lost,
        "duplicated": duplicated,
        "reordered": reordered,
        "delivered_per_sec": (delivered as f64 / delivery_secs).round(),
        "latency": percentiles(&mut latencies),
        "subscriber_errors": failed.len(),
        "first_subscriber_error": failed.first(),
    });
    merge(
        &mut summary,
        cpu_before.per_operation(&cpu_after, delivered, "delivery"),
    );
    if let (Some(before), Some(after)) = (redis_before, redis_after)
        && delivered > 0
    {
        summary["redis_cpu_us_per_delivery"] =
            json!(after.saturating_sub(before).as_secs_f64() * 1e6 / delivered as f64);
    }
    if subscribe_to.len() > 1 {
        summary["subscribe_urls"] = json!(subscribe_to.len());
    }
    report(&summary)?;
    if lost > 0 || duplicated > 0 || reordered > 0 {
        return Err(CliError::Failed(format!(
            "{lost} deliveries lost, {duplicated} duplicated, {reordered} reordered"
        )));
    }
    Ok(())
}

/// A `redis-server`'s CPU time, when its pid was given.
fn redis_cpu(pid: Option<u32>) -> Result<Option<Duration>, CliError> {
    match pid {
        None => Ok(None),
        Some(pid) => super::cpu::process_cpu(Some(pid)).map(Some).ok_or_else(|| {
            CliError::Usage(format!(
                "--redis-pid {pid}: no such process, or /proc cannot be read"
            ))
        }),
    }
}

/// What every publisher is told.
#[derive(Clone)]
struct Plan {
    publishers: u64,
    /// Events/s of all publishers together; 0: as fast as acknowledged.
    rate: u32,
    in_flight: usize,
    size: usize,
    duration: Duration,
    started: Instant,
    /// The channel, as a JSON string.
    channel: String,
}

/// Publisher `p`: publishes its share of the sequence numbers until the plan's duration is over.
async fn publish(
    ex: Arc<smol::Executor<'static>>,
    ws: Ws,
    p: u64,
    plan: Plan,
    stop: smol::channel::Receiver<()>,
) -> Result<Published, CliError> {
    let (mut sink, mut source) = ws.split();
    // One token per unacknowledged publish: the ack reader takes one back per answer.
    let (tokens, taken) = smol::channel::bounded::<()>(plan.in_flight);
    let acks = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let ack_reader = {
        let (acks, refused) = (acks.clone(), refused.clone());
        ex.spawn(async move {
            let mut first_refusal = None;
            let read = async {
                while let Some(Ok(message)) = source.next().await {
                    let text = message.to_text().unwrap_or_default();
                    if text.starts_with(r#"{"type":"publish_res""#) {
                        acks.fetch_add(1, Ordering::Relaxed);
                        let _ = taken.try_recv();
                    } else if text.starts_with(r#"{"type":"error""#) {
                        refused.fetch_add(1, Ordering::Relaxed);
                        let _ = taken.try_recv();
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
    let failed =
        |e: async_tungstenite::tungstenite::Error| CliError::Failed(format!("publish failed: {e}"));
    let mut k = 0u64;
    let end = plan.started + plan.duration;
    if plan.rate == 0 {
        while Instant::now() < end {
            if tokens.try_send(()).is_err() {
                sink.flush().await.map_err(failed)?;
                let room = async { tokens.send(()).await.is_ok() };
                let timeout = async {
                    smol::Timer::at(end).await;
                    false
                };
                if !futures_lite::future::or(room, timeout).await {
                    break;
                }
            }
            let frame = publish_frame(&plan.channel, k * plan.publishers + p, plan.size);
            sink.feed(async_tungstenite::tungstenite::Message::text(frame))
                .await
                .map_err(failed)?;
            k += 1;
        }
    } else {
        let mut ticks = smol::Timer::interval(Duration::from_millis(1));
        while Instant::now() < end {
            ticks.next().await;
            let due = (plan.started.elapsed().as_micros() as u64)
                .saturating_mul(u64::from(plan.rate))
                / 1_000_000;
            while k * plan.publishers + p < due {
                let frame = publish_frame(&plan.channel, k * plan.publishers + p, plan.size);
                sink.feed(async_tungstenite::tungstenite::Message::text(frame))
                    .await
                    .map_err(failed)?;
                k += 1;
            }
        }
    }
    sink.flush().await.map_err(failed)?;
    Ok(Published {
        sent: k,
        acks,
        refused,
        ack_reader,
    })
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
        let mut seen = Seen::new(1);
        assert!(seen.record(0, 0, 10));
        assert!(seen.record(70, 0, 10));
        assert!(!seen.record(70, 0, 10));
        assert_eq!((seen.delivered, seen.duplicated, seen.reordered), (3, 1, 0));
        assert_eq!(seen.distinct_of(&[71]), 2);
        assert_eq!(seen.distinct_of(&[70]), 1);
    }

    #[test]
    fn order_is_checked_per_publisher() {
        // Two publishers: 0, 2, 4… and 1, 3, 5…; interleaving them is in order, going back within one is not.
        let mut seen = Seen::new(2);
        for seq in [1, 0, 3, 2, 6, 4, 5] {
            seen.record(seq, 0, 10);
        }
        assert_eq!((seen.duplicated, seen.reordered), (0, 1), "4 after 6");
        assert_eq!(seen.distinct_of(&[4, 3]), 7);
        assert_eq!(seen.distinct_of(&[4, 4]), 7, "7 was never seen");
    }
}
