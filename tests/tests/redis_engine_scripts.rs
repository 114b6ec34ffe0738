//! The Redis engine's scripts on a real `redis-server` (one per test, free loopback port): offsets given
//! atomically in Redis across concurrent publishers, batches, history trimmed by size and expiring by time,
//! retained state, the live feed every node reads, a lost hash meaning a new epoch, and a flushed script cache.

use futures_util::StreamExt;
use futures_util::future::join_all;
use switchboard_protocol::redis::engine::{
    ChannelRead, Keys, PUBLISH_SCRIPT, Publication, PublishRequest, Published, READ_SCRIPT,
    REFRESH_SCRIPT, REMOVE_SCRIPT, ReadRequest, Registration, Replay, Script,
};
use switchboard_protocol::wire::{ChannelName, IdempotencyKey};
use switchboard_runtime::Runtime;
use switchboard_runtime::redis::{
    PubSubEvent, RedisClient, RedisError, RedisOptions, RedisSubscriber, RedisUrl,
};
use switchboard_tests::redis_server::RedisServer;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded, on_every_runtime};

fn client<R: Runtime>(runtime: &R, server: &RedisServer) -> RedisClient {
    let url = RedisUrl::parse(&server.url(0)).expect("a valid URL");
    RedisClient::start(runtime.clone(), RedisOptions::new(url))
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("a valid channel")
}

struct Publisher {
    client: RedisClient,
    keys: Keys,
    script: Script,
    history_size: usize,
    history_ttl_ms: u64,
}

impl Publisher {
    fn client(&self) -> &RedisClient {
        &self.client
    }

    fn new(client: RedisClient) -> Publisher {
        Publisher {
            client,
            keys: Keys::new("sbtest"),
            script: Script::new(PUBLISH_SCRIPT),
            history_size: 1000,
            history_ttl_ms: 0,
        }
    }

    async fn publish(&mut self, channel: &ChannelName, events: &[&str], retain: bool) -> Published {
        self.publish_keyed(channel, events, retain, None).await
    }

    async fn publish_keyed(
        &mut self,
        channel: &ChannelName,
        events: &[&str],
        retain: bool,
        key: Option<(&IdempotencyKey, u64)>,
    ) -> Published {
        let events: Vec<Vec<u8>> = events.iter().map(|e| e.as_bytes().to_vec()).collect();
        let request = PublishRequest {
            channel,
            events: &events,
            retain_last: retain,
            fresh_epoch: "e-first",
            history_size: self.history_size,
            history_ttl_ms: self.history_ttl_ms,
            now_ms: 1_000_000,
            idempotency_key: key.map(|(key, _)| key),
            dedupe_window_ms: key.map_or(0, |(_, ms)| ms),
        };
        loop {
            match self
                .client
                .request(request.command(&self.script, &self.keys))
                .await
            {
                Ok(reply) => return Published::parse(&reply).expect("the script's reply"),
                Err(RedisError::Refused(message)) if self.script.handle_refused(&message) => {}
                Err(other) => panic!("publish failed: {other}"),
            }
        }
    }
}

async fn read(client: &RedisClient, channel: &ChannelName, after: Option<u64>) -> ChannelRead {
    let request = ReadRequest {
        channel,
        after,
        limit: 10_000,
        with_state: true,
        fresh_epoch: None,
    };
    let reply = client
        .request(request.command(&Script::new(READ_SCRIPT), &Keys::new("sbtest")))
        .await
        .expect("the read script ran");
    ChannelRead::parse(reply).expect("the read script's reply")
}

fn offsets(read: &ChannelRead) -> Vec<u64> {
    read.events.iter().map(|event| event.offset).collect()
}

mod scenarios {
    use super::*;

    pub async fn offsets_are_consecutive_across_publishers_and_batches<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let jobs = channel("jobs/1");
            let mut one = Publisher::new(client(&runtime, &server));
            let first = one.publish(&jobs, &[r#"{"n":1}"#], false).await;
            assert_eq!(
                first,
                Published {
                    epoch: "e-first".into(),
                    first_offset: 1,
                    last_offset: 1,
                    duplicate: false,
                }
            );
            let batch = one.publish(&jobs, &["{}", "{}", "{}"], false).await;
            assert_eq!((batch.first_offset, batch.last_offset), (2, 4));

            // Two publishers on two connections, 300 publishes each, all in flight at once.
            let a = client(&runtime, &server);
            let b = client(&runtime, &server);
            let script = Script::new(PUBLISH_SCRIPT);
            let keys = Keys::new("sbtest");
            let events: Vec<Vec<u8>> = (0..600)
                .map(|i| format!(r#"{{"i":{i}}}"#).into_bytes())
                .collect();
            let publishes = events.iter().enumerate().map(|(i, event)| {
                let request = PublishRequest {
                    channel: &jobs,
                    events: std::slice::from_ref(event),
                    retain_last: false,
                    fresh_epoch: "e-other",
                    history_size: 1000,
                    history_ttl_ms: 0,
                    now_ms: 1_000_000,
                    idempotency_key: None,
                    dedupe_window_ms: 0,
                };
                let command = request.command(&script, &keys);
                let client = if i % 2 == 0 { a.clone() } else { b.clone() };
                async move { client.request(command).await }
            });
            let mut given: Vec<u64> = join_all(publishes)
                .await
                .into_iter()
                .map(|reply| {
                    let published = Published::parse(&reply.expect("published")).expect("parsed");
                    assert_eq!(published.epoch, "e-first", "the channel keeps its epoch");
                    published.first_offset
                })
                .collect();
            given.sort_unstable();
            assert_eq!(
                given,
                (5..=604).collect::<Vec<_>>(),
                "each offset given once, no gap"
            );

            let all = read(&a, &jobs, None).await;
            assert_eq!(all.offset, 604);
            assert_eq!(offsets(&all), (1..=604).collect::<Vec<_>>());
            let tail = read(&a, &jobs, Some(600)).await;
            assert_eq!(offsets(&tail), vec![601, 602, 603, 604]);
            assert_eq!(tail.replay("e-first", 600, 0), Replay::Events(&tail.events));
            assert_eq!(tail.replay("e-other", 600, 0), Replay::Gone);
        })
        .await;
    }

    pub async fn history_is_trimmed_by_size_and_expires_by_time<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let logs = channel("logs");
            let mut publisher = Publisher::new(client(&runtime, &server));
            publisher.history_size = 5;
            publisher.history_ttl_ms = 60_000;
            for n in 1..=8 {
                publisher.publish(&logs, &[&format!(r#"{{"n":{n}}}"#)], n == 6).await;
            }
            let kept = read(&publisher.client, &logs, None).await;
            assert_eq!(offsets(&kept), vec![4, 5, 6, 7, 8], "the last five");
            assert_eq!(kept.state, Some((6, br#"{"n":6}"#.to_vec())), "the retained one");
            assert_eq!(kept.replay("e-first", 2, 0), Replay::Gone, "offset 3 was trimmed");
            let after3 = read(&publisher.client, &logs, Some(3)).await;
            assert_eq!(offsets(&after3), vec![4, 5, 6, 7, 8]);
            assert!(matches!(after3.replay("e-first", 3, 0), Replay::Events(events) if events.len() == 5));
            let ttl: i64 = server.command(&["PTTL", "sbtest:h:logs"])[1..].parse().expect("a number");
            assert!(ttl > 0 && ttl <= 60_000, "the stream expires with history: {ttl}");
            assert_eq!(server.command(&["PTTL", "sbtest:m:logs"]), ":-1", "the position does not");
        })
        .await;
    }

    pub async fn every_node_hears_publications_in_order<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let jobs = channel("jobs/live");
            let url = RedisUrl::parse(&server.url(0)).expect("a valid URL");
            let (subscriber, mut heard) =
                RedisSubscriber::start(runtime.clone(), RedisOptions::new(url));
            let keys = Keys::new("sbtest");
            subscriber.subscribe(&keys.topic(&jobs));
            loop {
                let event = bounded(&runtime, STEP_TIMEOUT, heard.next())
                    .await
                    .expect("running");
                if matches!(event, PubSubEvent::Subscribed(_)) {
                    break;
                }
            }
            let mut publisher = Publisher::new(client(&runtime, &server));
            publisher
                .publish(&jobs, &["{\"a\":1}", "{\"a\":2}"], false)
                .await;
            publisher.publish(&jobs, &["{\"a\":3}"], false).await;
            for expected in 1..=3u64 {
                let event = bounded(&runtime, STEP_TIMEOUT, heard.next())
                    .await
                    .expect("running");
                let PubSubEvent::Message { channel, payload } = event else {
                    panic!("expected a message, got {event:?}");
                };
                assert_eq!(keys.channel_of_topic(&channel), Some(jobs.clone()));
                let publication = Publication::parse(&payload).expect("a publication");
                assert_eq!(publication.epoch, "e-first");
                assert_eq!(publication.offset, expected);
                assert_eq!(
                    publication.event,
                    format!("{{\"a\":{expected}}}").as_bytes()
                );
            }
            subscriber.close().await;
        })
        .await;
    }

    /// A publish with an idempotency key: repeated (from several connections at once, as retries reaching several
    /// nodes would) it is published once and every other answer is a duplicate with the original's range; the key
    /// lapses with its window, is per channel, and a key of an earlier epoch does not answer.
    pub async fn an_idempotency_key_is_checked_and_set_with_the_publish<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let jobs = channel("jobs/k");
            let key = IdempotencyKey::new("retry-1").unwrap();
            let mut first = Publisher::new(client(&runtime, &server));
            first.publish(&jobs, &["0"], false).await;
            let mut publishers: Vec<Publisher> = (0..4)
                .map(|_| Publisher::new(client(&runtime, &server)))
                .collect();
            let answers = join_all(
                publishers
                    .iter_mut()
                    .map(|p| p.publish_keyed(&jobs, &["1", "2"], false, Some((&key, 60_000)))),
            )
            .await;
            let fresh: Vec<&Published> = answers.iter().filter(|a| !a.duplicate).collect();
            assert_eq!(fresh.len(), 1, "{answers:?}");
            assert!(
                answers
                    .iter()
                    .all(|a| (a.first_offset, a.last_offset) == (2, 3) && a.epoch == "e-first"),
                "{answers:?}"
            );
            let now = read(first.client(), &jobs, Some(0)).await;
            assert_eq!(offsets(&now), [1, 2, 3]);

            // Per channel: the same key elsewhere publishes.
            let other = first
                .publish_keyed(&channel("jobs/other"), &["9"], false, Some((&key, 60_000)))
                .await;
            assert_eq!((other.first_offset, other.duplicate), (1, false));

            // The window: a key kept 1 ms is gone soon after.
            let short = IdempotencyKey::new("short").unwrap();
            first
                .publish_keyed(&jobs, &["4"], false, Some((&short, 1)))
                .await;
            let dedupe_key = String::from_utf8(Keys::new("sbtest").dedupe(&jobs, &short)).unwrap();
            loop {
                if server.command(&["EXISTS", &dedupe_key]) == ":0" {
                    break;
                }
                let at = runtime.now() + std::time::Duration::from_millis(5);
                runtime.sleep_until(at).await;
            }
            let again = first
                .publish_keyed(&jobs, &["4"], false, Some((&short, 1)))
                .await;
            assert_eq!((again.first_offset, again.duplicate), (5, false));

            // The channel is lost and starts a new epoch: the old key's offsets do not answer.
            let meta = String::from_utf8(Keys::new("sbtest").meta(&jobs)).unwrap();
            let history = String::from_utf8(Keys::new("sbtest").history(&jobs)).unwrap();
            assert_eq!(server.command(&["DEL", &meta, &history]), ":2");
            let mut second = Publisher::new(client(&runtime, &server));
            let after = second
                .publish_keyed(&jobs, &["5"], false, Some((&key, 60_000)))
                .await;
            assert!(!after.duplicate, "{after:?}");
            assert_eq!(after.first_offset, 1);
        })
        .await;
    }

    pub async fn a_lost_hash_is_a_new_epoch_and_a_flushed_script_is_sent_again<R: Runtime>(
        runtime: R,
    ) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let jobs = channel("jobs/2");
            let redis = client(&runtime, &server);
            let mut publisher = Publisher::new(redis.clone());
            let loaded = redis
                .request(publisher.script.load_command())
                .await
                .expect("loaded");
            publisher.script.handle_loaded(&loaded).expect("a sha");
            assert!(publisher.script.is_loaded());
            publisher.publish(&jobs, &["{}"], false).await;
            publisher.publish(&jobs, &["{}"], false).await;

            // Redis loses everything (a restart without persistence looks the same to the engine).
            assert_eq!(server.command(&["FLUSHALL"]), "+OK");
            assert_eq!(server.command(&["SCRIPT", "FLUSH"]), "+OK");
            let events = vec![b"{}".to_vec()];
            let request = PublishRequest {
                channel: &jobs,
                events: &events,
                retain_last: false,
                fresh_epoch: "e-second",
                history_size: 10,
                history_ttl_ms: 0,
                now_ms: 2_000_000,
                idempotency_key: None,
                dedupe_window_ms: 0,
            };
            let refused = redis
                .request(request.command(&publisher.script, &publisher.keys))
                .await;
            let Err(RedisError::Refused(message)) = refused else {
                panic!("expected NOSCRIPT, got {refused:?}");
            };
            assert!(publisher.script.handle_refused(&message), "{message}");
            let again = redis
                .request(request.command(&publisher.script, &publisher.keys))
                .await
                .expect("sent with its source");
            let published = Published::parse(&again).expect("parsed");
            assert_eq!(
                (published.epoch.as_str(), published.first_offset),
                ("e-second", 1)
            );
            let now = read(&redis, &jobs, Some(0)).await;
            assert_eq!(
                now.replay("e-first", 2, 0),
                Replay::Gone,
                "the old position is gone"
            );
            assert!(
                matches!(now.replay("e-second", 0, 0), Replay::Events(events) if events.len() == 1)
            );

            // Only the hash is lost (an eviction, a stray DEL) while the stream is still there: the new epoch
            // starts with an empty history, not on top of the old epoch's entries (whose offsets it will reuse).
            publisher.publish(&jobs, &["{}"], false).await;
            assert_eq!(server.command(&["DEL", "sbtest:m:jobs/2"]), ":1");
            let mut fresh = Publisher::new(redis.clone());
            fresh.history_size = 10;
            let request = PublishRequest {
                fresh_epoch: "e-third",
                ..request
            };
            let reply = redis
                .request(request.command(&fresh.script, &fresh.keys))
                .await
                .expect("published");
            let published = Published::parse(&reply).expect("parsed");
            assert_eq!(
                (published.epoch.as_str(), published.first_offset),
                ("e-third", 1)
            );
            let now = read(&redis, &jobs, None).await;
            assert_eq!(offsets(&now), [1], "only the new epoch's event");
        })
        .await;
    }

    pub async fn the_newest_registration_serves_and_a_dead_nodes_expire<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let redis = client(&runtime, &server);
            let keys = Keys::new("sbtest");
            let jobs = channel("jobs/9");
            let a = Registration {
                node: "node-a".into(),
                id: 1,
            };
            let b = Registration {
                node: "node-b".into(),
                id: 7,
            };
            let ask = |command| redis.request(command);
            let first = ask(a.register(&keys, &jobs, 60_000))
                .await
                .expect("registered");
            assert_eq!(Registration::replaced(&first), Ok(None));
            let second = ask(b.register(&keys, &jobs, 300))
                .await
                .expect("registered");
            assert_eq!(
                Registration::replaced(&second),
                Ok(Some(a.clone())),
                "the newest wins"
            );
            let found = ask(Registration::lookup(&keys, &jobs))
                .await
                .expect("looked up");
            assert_eq!(Registration::found(&found), Ok(Some(b.clone())));

            // Node a's refresh and removal no longer touch b's registration.
            let refresh = Script::new(REFRESH_SCRIPT);
            let remove = Script::new(REMOVE_SCRIPT);
            let refreshed = ask(Registration::refresh(
                &refresh,
                &keys,
                &[(jobs.clone(), a.clone())],
                60_000,
            ))
            .await
            .expect("refresh ran");
            assert_eq!(refreshed.as_int(), Some(0));
            let removed = ask(a.remove(&remove, &keys, &jobs))
                .await
                .expect("remove ran");
            assert_eq!(removed.as_int(), Some(0));
            // Node b refreshes its own.
            let refreshed = ask(Registration::refresh(
                &refresh,
                &keys,
                &[(jobs.clone(), b.clone())],
                300,
            ))
            .await
            .expect("refresh ran");
            assert_eq!(refreshed.as_int(), Some(1));

            // Node b dies: nobody refreshes, and within the time-to-live nobody serves the channel.
            let deadline = runtime.now() + STEP_TIMEOUT;
            loop {
                let found = ask(Registration::lookup(&keys, &jobs))
                    .await
                    .expect("looked up");
                if Registration::found(&found) == Ok(None) {
                    break;
                }
                assert!(runtime.now() < deadline, "the registration never expired");
                runtime
                    .sleep_until(runtime.now() + std::time::Duration::from_millis(50))
                    .await;
            }
            let again = ask(a.register(&keys, &jobs, 60_000))
                .await
                .expect("registered");
            assert_eq!(Registration::replaced(&again), Ok(None));
            let removed = ask(a.remove(&remove, &keys, &jobs))
                .await
                .expect("remove ran");
            assert_eq!(removed.as_int(), Some(1));
        })
        .await;
    }
}

on_every_runtime!(scenarios;
    an_idempotency_key_is_checked_and_set_with_the_publish,
    offsets_are_consecutive_across_publishers_and_batches,
    history_is_trimmed_by_size_and_expires_by_time,
    every_node_hears_publications_in_order,
    a_lost_hash_is_a_new_epoch_and_a_flushed_script_is_sent_again,
    the_newest_registration_serves_and_a_dead_nodes_expire,
);
