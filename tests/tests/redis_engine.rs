//! Two nodes on one real `redis-server`: what one publishes, the other delivers in order, exactly once, even when
//! its pub/sub connection is killed in the middle (the gap is read from the stream), and a gap history no longer
//! holds is one `Resync`. Every test is bounded in time and stops the server it started.

use std::time::Duration;

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::StreamExt;
use switchboard_protocol::backoff::Jitter;
use switchboard_protocol::redis::engine::FeedConfig;
use switchboard_protocol::wire::ChannelName;
use switchboard_runtime::Runtime;
use switchboard_runtime::redis::engine::{Engine, EngineEvent, EngineOptions};
use switchboard_runtime::redis::{RedisOptions, RedisUrl};
use switchboard_tests::redis_server::RedisServer;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded, on_every_runtime};

fn node<R: Runtime>(
    runtime: &R,
    server: &RedisServer,
    history_size: usize,
) -> (Engine, UnboundedReceiver<EngineEvent>) {
    let mut redis = RedisOptions::new(RedisUrl::parse(&server.url(0)).expect("a valid URL"));
    // Back after a fixed half second: long enough for a test to publish while a node's feed is down.
    redis.connection.backoff.first_delay = Duration::from_millis(500);
    redis.connection.backoff.jitter = Jitter::None;
    let options = EngineOptions {
        redis,
        prefix: "sbtest".into(),
        history_size,
        history_ttl: Duration::ZERO,
        feed: FeedConfig::default(),
    };
    Engine::start(runtime.clone(), options)
}

async fn next<R: Runtime>(runtime: &R, events: &mut UnboundedReceiver<EngineEvent>) -> EngineEvent {
    bounded(runtime, STEP_TIMEOUT, events.next())
        .await
        .expect("the engine's feed task is running")
}

/// Follows `channel` and waits until the feed is placed; returns the position.
async fn follow<R: Runtime>(
    runtime: &R,
    engine: &Engine,
    events: &mut UnboundedReceiver<EngineEvent>,
    channel: &ChannelName,
) -> u64 {
    engine.follow(channel);
    loop {
        match next(runtime, events).await {
            EngineEvent::Following { offset, .. } => return offset,
            EngineEvent::Up | EngineEvent::Down(_) => {}
            other => panic!("expected the feed to be placed, got {other:?}"),
        }
    }
}

/// Kills the pub/sub connections (waiting for one to be there: a node may still be reconnecting).
async fn kill_pubsub<R: Runtime>(runtime: &R, server: &RedisServer) {
    bounded(runtime, STEP_TIMEOUT, async {
        loop {
            let killed = server.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
            assert!(killed.starts_with(':'), "CLIENT KILL answered {killed}");
            if killed != ":0" {
                return;
            }
            runtime
                .sleep_until(runtime.now() + Duration::from_millis(20))
                .await;
        }
    })
    .await;
}

mod scenarios {
    use super::*;

    pub async fn a_second_node_delivers_everything_once_across_a_lost_feed<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let jobs = ChannelName::new("jobs/7").expect("a channel");
            let (publisher, _publisher_events) = node(&runtime, &server, 10_000);
            let (follower, mut events) = node(&runtime, &server, 10_000);
            publisher
                .publish(&jobs, &[b"{\"before\":true}".to_vec()], false, "ep", 1)
                .await
                .expect("published");
            let start = follow(&runtime, &follower, &mut events, &jobs).await;
            assert_eq!(
                start, 1,
                "placed after what was published before it followed"
            );

            for n in 2..=401u64 {
                let event = format!("{{\"n\":{n}}}").into_bytes();
                let published = publisher
                    .publish(&jobs, &[event], false, "ep", 1)
                    .await
                    .expect("published");
                assert_eq!(published.first_offset, n);
                if n == 150 || n == 300 {
                    // The follower's pub/sub connection dies: what is published until it is back is lost to
                    // pub/sub, and must come from the stream.
                    kill_pubsub(&runtime, &server).await;
                }
            }
            let mut delivered = Vec::new();
            while delivered.len() < 400 {
                match next(&runtime, &mut events).await {
                    EngineEvent::Deliver {
                        epoch,
                        offset,
                        event,
                        ..
                    } => {
                        assert_eq!(epoch, "ep");
                        assert_eq!(event, format!("{{\"n\":{offset}}}").into_bytes());
                        delivered.push(offset);
                    }
                    EngineEvent::Up | EngineEvent::Down(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(
                delivered,
                (2..=401).collect::<Vec<_>>(),
                "every event once, in order"
            );
        })
        .await;
    }

    pub async fn a_gap_history_no_longer_holds_is_a_resync<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let jobs = ChannelName::new("jobs/8").expect("a channel");
            let (publisher, _publisher_events) = node(&runtime, &server, 10);
            let (follower, mut events) = node(&runtime, &server, 10);
            assert_eq!(follow(&runtime, &follower, &mut events, &jobs).await, 0);
            kill_pubsub(&runtime, &server).await;
            // 50 events in one batch while the follower's feed is down; history keeps the last 10.
            let batch: Vec<Vec<u8>> = (1..=50)
                .map(|n| format!("{{\"n\":{n}}}").into_bytes())
                .collect();
            let published = publisher
                .publish(&jobs, &batch, false, "ep", 1)
                .await
                .expect("published");
            assert_eq!((published.first_offset, published.last_offset), (1, 50));
            loop {
                match next(&runtime, &mut events).await {
                    EngineEvent::Resync { epoch, offset, .. } => {
                        // The epoch is the one the follower's first read gave the empty channel, not "ep".
                        assert_eq!(
                            (epoch.as_deref(), offset),
                            (Some(published.epoch.as_str()), 50)
                        );
                        break;
                    }
                    EngineEvent::Up | EngineEvent::Down(_) => {}
                    other => panic!("expected a resync, got {other:?}"),
                }
            }
            publisher
                .publish(&jobs, &[b"{\"n\":51}".to_vec()], false, "ep", 1)
                .await
                .expect("published");
            loop {
                match next(&runtime, &mut events).await {
                    EngineEvent::Deliver { offset, .. } => {
                        assert_eq!(offset, 51, "live again right after the resync");
                        break;
                    }
                    EngineEvent::Up | EngineEvent::Down(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            let read = follower
                .read(&jobs, Some(45), 100, false)
                .await
                .expect("read");
            assert_eq!(
                read.events.iter().map(|e| e.offset).collect::<Vec<_>>(),
                vec![46, 47, 48, 49, 50, 51]
            );
        })
        .await;
    }
}

on_every_runtime!(scenarios;
    a_second_node_delivers_everything_once_across_a_lost_feed,
    a_gap_history_no_longer_holds_is_a_resync,
);
