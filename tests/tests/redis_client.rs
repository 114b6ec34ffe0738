//! The runtime's Redis client against a real `redis-server` on a free loopback port (see
//! `switchboard_tests::redis_server`), on both runtimes: pipelined commands answered in order, login and database
//! selection, a server killed and started again, and pub/sub restored after that. Every test is bounded in time
//! and stops the server it started.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::join_all;
use switchboard_runtime::Runtime;
use switchboard_runtime::redis::{
    Command, PubSubEvent, RedisClient, RedisError, RedisOptions, RedisSubscriber, RedisUrl, Reply,
};
use switchboard_tests::redis_server::RedisServer;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded, on_every_runtime};

fn options(url: &str) -> RedisOptions {
    let mut options = RedisOptions::new(RedisUrl::parse(url).expect("a valid URL"));
    options.connection.waiting_timeout = Duration::from_secs(2);
    options.connection.backoff.max_delay = Duration::from_millis(200);
    options
}

/// Retries `command` until it is answered (a restarted server takes a moment to be dialed again).
async fn until_answered<R: Runtime>(runtime: &R, client: &RedisClient, command: Command) -> Reply {
    bounded(runtime, STEP_TIMEOUT, async {
        loop {
            match client.request(command.clone()).await {
                Ok(reply) => return reply,
                Err(RedisError::Lost | RedisError::Unavailable(_)) => {
                    runtime
                        .sleep_until(runtime.now() + Duration::from_millis(50))
                        .await;
                }
                Err(other) => panic!("{other}"),
            }
        }
    })
    .await
}

async fn next_event<R: Runtime>(
    runtime: &R,
    events: &mut futures_channel::mpsc::UnboundedReceiver<PubSubEvent>,
) -> PubSubEvent {
    bounded(runtime, STEP_TIMEOUT, events.next())
        .await
        .expect("the subscriber's task is running")
}

mod scenarios {
    use super::*;

    pub async fn pipelined_commands_are_answered_in_order<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let client = RedisClient::start(runtime.clone(), options(&server.url(0)));
            // 2,000 commands asked at once from one task: they share the connection, in flight together.
            let replies =
                join_all((0..2000).map(|_| client.request(Command::new("INCR").arg("counter"))))
                    .await;
            let values: Vec<i64> = replies
                .into_iter()
                .map(|reply| reply.expect("INCR answered").as_int().expect("an integer"))
                .collect();
            assert_eq!(
                values,
                (1..=2000).collect::<Vec<_>>(),
                "replies in the order asked"
            );
            let big = vec![b'x'; 300_000];
            let set = client
                .request(Command::new("SET").arg("big").arg(&big))
                .await;
            assert_eq!(set, Ok(Reply::Status("OK".into())));
            let got = client.request(Command::new("GET").arg("big")).await;
            assert_eq!(got, Ok(Reply::Bulk(big)));
            let refused = client.request(Command::new("INCR").arg("big")).await;
            assert!(
                matches!(&refused, Err(RedisError::Refused(message)) if message.starts_with("ERR")),
                "{refused:?}"
            );
            // The connection is still in step after the refusal.
            let after = client.request(Command::new("GET").arg("counter")).await;
            assert_eq!(after, Ok(Reply::Bulk(b"2000".to_vec())));
            client.close().await;
            assert_eq!(
                client.request(Command::new("PING")).await,
                Err(RedisError::Closed)
            );
        })
        .await;
    }

    pub async fn logs_in_and_selects_its_database<R: Runtime>(runtime: R) {
        let Some(server) = RedisServer::start_with(Some("s3cret")) else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let client = RedisClient::start(runtime.clone(), options(&server.url(3)));
            let set = client
                .request(Command::new("SET").arg("where").arg("db3"))
                .await;
            assert_eq!(set, Ok(Reply::Status("OK".into())));
            assert_eq!(
                server.command(&["EXISTS", "where"]),
                ":0",
                "not in database 0"
            );
            assert_eq!(server.command(&["SELECT", "3"]), "+OK");
            client.close().await;

            // A wrong password: the handshake is refused, and commands stop waiting after waiting_timeout.
            let url = format!("redis://:wrong@127.0.0.1:{}/0", server.addr().port());
            let client = RedisClient::start(runtime.clone(), options(&url));
            let refused = client.request(Command::new("PING")).await;
            assert_eq!(
                refused,
                Err(RedisError::Unavailable(Duration::from_secs(2)))
            );
            client.close().await;
        })
        .await;
    }

    pub async fn a_killed_server_is_dialed_again<R: Runtime>(runtime: R) {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let client = RedisClient::start(runtime.clone(), options(&server.url(0)));
            let first = client.request(Command::new("INCR").arg("n")).await;
            assert_eq!(first, Ok(Reply::Integer(1)));
            server.restart();
            // The restarted server is empty: the counter starts again, on a new connection.
            let again = until_answered(&runtime, &client, Command::new("INCR").arg("n")).await;
            assert_eq!(again, Reply::Integer(1));
            server.kill();
            let down = client.request(Command::new("PING")).await;
            assert!(
                matches!(down, Err(RedisError::Lost | RedisError::Unavailable(_))),
                "{down:?}"
            );
            client.close().await;
        })
        .await;
    }

    pub async fn subscriptions_come_back_after_a_restart<R: Runtime>(runtime: R) {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let publisher = RedisClient::start(runtime.clone(), options(&server.url(0)));
            let (subscriber, mut events) =
                RedisSubscriber::start(runtime.clone(), options(&server.url(0)));
            subscriber.subscribe(b"sb:jobs");
            assert_eq!(next_event(&runtime, &mut events).await, PubSubEvent::Up);
            assert_eq!(
                next_event(&runtime, &mut events).await,
                PubSubEvent::Subscribed(b"sb:jobs".to_vec())
            );
            let receivers = publisher
                .request(Command::new("PUBLISH").arg("sb:jobs").arg("one"))
                .await;
            assert_eq!(receivers, Ok(Reply::Integer(1)));
            assert_eq!(
                next_event(&runtime, &mut events).await,
                PubSubEvent::Message {
                    channel: b"sb:jobs".to_vec(),
                    payload: b"one".to_vec()
                }
            );

            server.restart();
            // Down, perhaps again while the server was starting, then up.
            let mut downs = 0;
            loop {
                match next_event(&runtime, &mut events).await {
                    PubSubEvent::Down(_) => downs += 1,
                    PubSubEvent::Up => break,
                    other => panic!("expected Down or Up, got {other:?}"),
                }
            }
            assert!(downs >= 1, "the restart was seen");
            assert_eq!(
                next_event(&runtime, &mut events).await,
                PubSubEvent::Subscribed(b"sb:jobs".to_vec())
            );
            let receivers = until_answered(
                &runtime,
                &publisher,
                Command::new("PUBLISH").arg("sb:jobs").arg("two"),
            )
            .await;
            assert_eq!(receivers, Reply::Integer(1));
            assert_eq!(
                next_event(&runtime, &mut events).await,
                PubSubEvent::Message {
                    channel: b"sb:jobs".to_vec(),
                    payload: b"two".to_vec()
                }
            );
            subscriber.unsubscribe(b"sb:jobs");
            // Unsubscribed: Redis counts nobody on the channel once the UNSUBSCRIBE has gone out.
            bounded(&runtime, STEP_TIMEOUT, async {
                loop {
                    let numsub = publisher
                        .request(Command::new("PUBSUB").arg("NUMSUB").arg("sb:jobs"))
                        .await
                        .expect("PUBSUB answered");
                    let count = numsub
                        .as_array()
                        .and_then(|items| items.get(1))
                        .and_then(Reply::as_int);
                    if count == Some(0) {
                        break;
                    }
                    runtime
                        .sleep_until(runtime.now() + Duration::from_millis(20))
                        .await;
                }
            })
            .await;
            subscriber.close().await;
            publisher.close().await;
        })
        .await;
    }
}

on_every_runtime!(scenarios;
    pipelined_commands_are_answered_in_order,
    logs_in_and_selects_its_database,
    a_killed_server_is_dialed_again,
    subscriptions_come_back_after_a_restart,
);
