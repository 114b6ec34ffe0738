//! Two `Server`s that are nodes of one cluster on a real `redis-server`, on both runtimes: what one node publishes
//! (REST, native, batch) every node delivers in order, exactly once; a client that moves to the other node resumes
//! exactly where it was; REST history and state and `get_state` answer the same on every node; and a node whose
//! pub/sub connection is killed in the middle of a stream still delivers every event once, in order. Every test
//! is bounded in time and stops the servers and the Redis it started.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_protocol::backoff::Jitter;
use switchboard_runtime::Runtime;
use switchboard_runtime::redis::{RedisOptions, RedisUrl};
use switchboard_runtime::server::{ClusterConfig, Server, ServerConfig};
use switchboard_tests::redis_server::RedisServer;
use switchboard_tests::sse;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded, http, on_every_runtime};

/// A node on `redis`, bound to a free loopback port.
async fn node<R: Runtime>(runtime: &R, redis: &RedisServer, id: &str) -> (Server<R>, SocketAddr) {
    let mut options = RedisOptions::new(RedisUrl::parse(&redis.url(0)).expect("a valid URL"));
    options.connection.backoff.first_delay = Duration::from_millis(200);
    options.connection.backoff.jitter = Jitter::None;
    let mut cluster = ClusterConfig::new(options);
    cluster.node_id = id.into();
    let config = ServerConfig {
        cluster: Some(cluster),
        ..ServerConfig::default()
    };
    let server = Server::bind(runtime.clone(), "127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("a node starts");
    let addr = server.local_addr().expect("bound");
    (server, addr)
}

async fn subscribe<R: Runtime>(
    ws: &mut WsClient<R, R::Tcp>,
    channel: &str,
    since: Option<Value>,
) -> Value {
    let mut data = json!({ "channel": channel });
    if let Some(since) = since {
        data["since"] = since;
    }
    let res = ws.request("subscribe", data).await;
    assert_eq!(res["type"], "subscribe_res", "{res}");
    res["data"].clone()
}

/// The next `count` events on `ws`, as `(offset, n)`.
async fn events<R: Runtime>(ws: &mut WsClient<R, R::Tcp>, count: usize) -> Vec<(u64, u64)> {
    let mut got = Vec::new();
    while got.len() < count {
        let message = ws.recv_skip_pings().await;
        assert_eq!(message["type"], "event", "{message}");
        let data = &message["data"];
        got.push((
            data["offset"].as_u64().expect("an offset"),
            data["event"]["n"].as_u64().expect("n"),
        ));
    }
    got
}

/// Waits (up to 2 s) until Redis holds `key` (`exists`) or not; whether it came to that.
async fn key_becomes<R: Runtime>(
    runtime: &R,
    redis: &RedisServer,
    key: &str,
    exists: bool,
) -> bool {
    let want = if exists { ":1" } else { ":0" };
    for _ in 0..200 {
        if redis.command(&["EXISTS", key]) == want {
            return true;
        }
        runtime
            .sleep_until(runtime.now() + Duration::from_millis(10))
            .await;
    }
    false
}

async fn rest_publish<R: Runtime>(
    runtime: &R,
    addr: SocketAddr,
    channel: &str,
    body: Value,
) -> Value {
    let path = format!("/api/v1/channels/{}/events", channel.replace('/', "%2F"));
    let response = http::post_json(runtime, addr, &path, &body).await;
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

mod scenarios {
    use super::*;

    /// A publish retried on another node (its key in the body on one, in the header on the other) lands once:
    /// the second node answers 200 with the first one's offset and `duplicate: true`, and a subscriber on a third
    /// path sees the event once.
    pub async fn a_publish_retried_on_another_node_lands_once<R: Runtime>(runtime: R) {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let (a, addr_a) = node(&runtime, &redis, "a").await;
            let (b, addr_b) = node(&runtime, &redis, "b").await;
            let mut watcher = WsClient::connect(&runtime, addr_a, "/api/ws").await;
            watcher.connected().await;
            subscribe(&mut watcher, "jobs/9", None).await;

            let body = json!({"event": {"n": 1}, "idempotency_key": "retry-me"});
            let first = rest_publish(&runtime, addr_a, "jobs/9", body).await;
            assert_eq!(first["offset"], 1, "{first}");
            let retry = json!({"event": {"n": 1}}).to_string();
            let again = http::request(
                &runtime,
                addr_b,
                "POST",
                "/api/v1/channels/jobs%2F9/events",
                &[
                    ("Content-Type", "application/json"),
                    ("Idempotency-Key", "retry-me"),
                ],
                Some(retry.as_bytes()),
            )
            .await;
            assert_eq!(
                (again.status, again.json()),
                (
                    200,
                    json!({"channel": "jobs/9", "offset": 1, "duplicate": true})
                )
            );
            let next = rest_publish(&runtime, addr_b, "jobs/9", json!({"event": {"n": 2}})).await;
            assert_eq!(next["offset"], 2, "{next}");
            assert_eq!(events(&mut watcher, 2).await, [(1, 1), (2, 2)]);
            a.shutdown().await;
            b.shutdown().await;
        })
        .await;
    }

    pub async fn a_call_on_one_node_reaches_the_worker_on_another_and_its_answer_comes_back<
        R: Runtime,
    >(
        runtime: R,
    ) {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let (a, addr_a) = node(&runtime, &redis, "a").await;
            let (b, addr_b) = node(&runtime, &redis, "b").await;
            let mut worker = WsClient::connect(&runtime, addr_a, "/api/ws").await;
            worker.connected().await;
            let res = worker.request("serve", json!({"channel": "jobs/9"})).await;
            assert_eq!(res["type"], "serve_res", "{res}");
            let mut caller = WsClient::connect(&runtime, addr_b, "/api/ws").await;
            let caller_app = caller.connected().await;
            // The registration is written by the worker's node after its serve_res: wait for it to be there.
            assert!(
                key_becomes(&runtime, &redis, "switchboard:s:jobs/9", true).await,
                "node a registered as the server of jobs/9"
            );
            let id = caller
                .send_request(
                    "call",
                    json!({"channel": "jobs/9", "method": "cancel", "params": {"why": "user"}}),
                )
                .await;
            let request = worker.recv_skip_pings().await;
            assert_eq!(request["type"], "server_request", "{request}");
            let data = &request["data"];
            assert_eq!(
                (
                    data["channel"].clone(),
                    data["method"].clone(),
                    data["params"].clone()
                ),
                (json!("jobs/9"), json!("cancel"), json!({"why": "user"}))
            );
            assert_eq!(
                data["caller"]["app_id"],
                json!(caller_app),
                "the caller on the other node"
            );
            worker
                .send(&json!({
                    "type": "server_response",
                    "message_id": request["message_id"],
                    "data": {"result": {"cancelled": true}},
                }))
                .await;
            let answer = caller.recv_skip_pings().await;
            assert_eq!(answer["message_id"], json!(id), "{answer}");
            assert_eq!(answer["type"], "call_res", "{answer}");
            assert_eq!(answer["data"]["result"], json!({"cancelled": true}));

            // The worker leaves: its node removes the registration, and a call finds nobody.
            worker.close().await;
            assert!(
                key_becomes(&runtime, &redis, "switchboard:s:jobs/9", false).await,
                "the registration went with the worker"
            );
            let refused = caller
                .request("call", json!({"channel": "jobs/9", "method": "cancel"}))
                .await;
            assert_eq!(refused["type"], "error", "{refused}");
            assert_eq!(refused["data"]["code"], "NO_HANDLER", "{refused}");
            caller.close().await;
            a.shutdown().await;
            b.shutdown().await;
        })
        .await;
    }

    pub async fn every_node_delivers_every_publish_and_a_client_resumes_on_another_node<
        R: Runtime,
    >(
        runtime: R,
    ) {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let (a, addr_a) = node(&runtime, &redis, "a").await;
            let (b, addr_b) = node(&runtime, &redis, "b").await;
            let info = http::get(&runtime, addr_b, "/api/info").await.json();
            assert_eq!(info["cluster"]["node_id"], "b", "{info}");

            let mut watcher = WsClient::connect(&runtime, addr_a, "/api/ws").await;
            watcher.connected().await;
            let placed = subscribe(&mut watcher, "jobs/1", None).await;
            let epoch = placed["epoch"].as_str().expect("an epoch").to_owned();
            assert!(
                !epoch.is_empty(),
                "a channel nobody published to has its epoch already"
            );
            assert_eq!(placed["offset"], 0);

            // Published on the other node: over REST, as a batch, and natively on the watcher's own node.
            let one = rest_publish(&runtime, addr_b, "jobs/1", json!({"event": {"n": 1}})).await;
            assert_eq!(one["offset"], 1, "{one}");
            let batch = rest_publish(
                &runtime,
                addr_b,
                "jobs/1",
                json!({"events": [{"n": 2}, {"n": 3}, {"n": 4}], "retain_last": true}),
            )
            .await;
            assert_eq!(
                (batch["first_offset"].clone(), batch["last_offset"].clone()),
                (json!(2), json!(4))
            );
            let mut publisher = WsClient::connect(&runtime, addr_a, "/api/ws").await;
            publisher.connected().await;
            let res = publisher
                .request("publish", json!({"channel": "jobs/1", "event": {"n": 5}}))
                .await;
            assert_eq!(res["data"]["offset"], 5, "{res}");
            assert_eq!(
                events(&mut watcher, 5).await,
                vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)],
                "in order, once, with the offsets Redis gave"
            );
            watcher.close().await;

            // Published while the client is away; it comes back through the other node.
            for n in 6..=8 {
                rest_publish(&runtime, addr_a, "jobs/1", json!({"event": {"n": n}})).await;
            }
            let mut moved = WsClient::connect(&runtime, addr_b, "/api/ws").await;
            moved.connected().await;
            let resumed = subscribe(
                &mut moved,
                "jobs/1",
                Some(json!({"epoch": epoch, "offset": 5})),
            )
            .await;
            assert_eq!(resumed["recovered"], true, "{resumed}");
            assert_eq!(resumed["epoch"], json!(epoch));
            assert_eq!(events(&mut moved, 3).await, vec![(6, 6), (7, 7), (8, 8)]);
            let state = moved
                .request("get_state", json!({"channel": "jobs/1"}))
                .await;
            assert_eq!(state["data"]["offset"], 8, "{state}");
            assert_eq!(
                state["data"]["state"],
                json!({"n": 4}),
                "the batch's last was retained"
            );

            // REST reads answer the same on a node that follows the channel (b) and one that does not (a).
            for addr in [addr_a, addr_b] {
                let page = http::get(&runtime, addr, "/api/v1/channels/jobs%2F1/events?since=6")
                    .await
                    .json();
                let offsets: Vec<u64> = page["events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .map(|e| e["offset"].as_u64().expect("offset"))
                    .collect();
                assert_eq!(offsets, vec![7, 8], "{page}");
                assert_eq!(page["epoch"], json!(epoch));
                let state = http::get(&runtime, addr, "/api/v1/channels/jobs%2F1/state")
                    .await
                    .json();
                assert_eq!(
                    (state["offset"].clone(), state["state"].clone()),
                    (json!(8), json!({"n": 4})),
                    "{state}"
                );
            }
            moved.close().await;
            publisher.close().await;
            a.shutdown().await;
            b.shutdown().await;
        })
        .await;
    }

    pub async fn a_node_whose_feed_is_cut_in_the_middle_still_delivers_every_event_once<
        R: Runtime,
    >(
        runtime: R,
    ) {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let (a, addr_a) = node(&runtime, &redis, "a").await;
            let (b, addr_b) = node(&runtime, &redis, "b").await;
            let mut watcher = WsClient::connect(&runtime, addr_a, "/api/ws").await;
            watcher.connected().await;
            subscribe(&mut watcher, "jobs/2", None).await;
            let mut publisher = WsClient::connect(&runtime, addr_b, "/api/ws").await;
            publisher.connected().await;
            for n in 1..=60u64 {
                if n == 20 || n == 40 {
                    let killed = redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
                    assert!(killed.starts_with(':'), "CLIENT KILL answered {killed}");
                }
                let res = publisher
                    .request("publish", json!({"channel": "jobs/2", "event": {"n": n}}))
                    .await;
                assert_eq!(res["data"]["offset"], n, "{res}");
            }
            let got = events(&mut watcher, 60).await;
            let want: Vec<(u64, u64)> = (1..=60).map(|n| (n, n)).collect();
            assert_eq!(
                got, want,
                "no gap, no duplicate, in order, across two lost feeds"
            );
            watcher.close().await;
            publisher.close().await;
            a.shutdown().await;
            b.shutdown().await;
        })
        .await;
    }

    /// A browser's event stream that moves to another node (behind a load balancer) resumes there from its
    /// `Last-Event-ID`: the node loads the channels first, so the stream gets exactly what it missed, then live
    /// events published on either node.
    pub async fn an_event_stream_resumes_on_another_node_from_its_last_event_id<R: Runtime>(
        runtime: R,
    ) {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let (a, addr_a) = node(&runtime, &redis, "a").await;
            let (b, addr_b) = node(&runtime, &redis, "b").await;
            let path = "/api/v1/sse?channel=feed&channel=other";
            let mut first = sse::open(&runtime, addr_a, path, &[])
                .await
                .expect("a stream on node a");
            first.next().await.expect("the opening block");
            for n in 1..=3 {
                rest_publish(&runtime, addr_a, "feed", json!({ "event": { "n": n } })).await;
            }
            rest_publish(&runtime, addr_b, "other", json!({ "event": { "n": 1 } })).await;
            let mut seen = Vec::new();
            while seen.len() < 2 {
                seen.push(first.next_event().await.expect("an event on node a"));
            }
            // Gone after two of the four events: the browser comes back, to node b, with the last id it got.
            let last_id = seen[1].id.clone().expect("an id");
            drop(first);
            let mut moved = sse::open(&runtime, addr_b, path, &[("Last-Event-ID", &last_id)])
                .await
                .expect("a stream on node b");
            rest_publish(&runtime, addr_a, "feed", json!({ "event": { "n": 4 } })).await;
            let mut rest = Vec::new();
            while rest.len() < 3 {
                let block = moved.next_event().await.expect("an event on node b");
                let data: Value = serde_json::from_str(&block.data).expect("JSON data");
                rest.push((
                    data["channel"].as_str().expect("a channel").to_owned(),
                    data["offset"].as_u64().expect("an offset"),
                ));
            }
            rest.sort();
            assert_eq!(
                rest,
                [
                    ("feed".to_owned(), 3),
                    ("feed".to_owned(), 4),
                    ("other".to_owned(), 1)
                ],
                "what it missed and what came after, nothing twice"
            );
            drop(moved);
            a.shutdown().await;
            b.shutdown().await;
        })
        .await;
    }
}

on_every_runtime!(scenarios;
    an_event_stream_resumes_on_another_node_from_its_last_event_id,
    a_publish_retried_on_another_node_lands_once,
    a_call_on_one_node_reaches_the_worker_on_another_and_its_answer_comes_back,
    every_node_delivers_every_publish_and_a_client_resumes_on_another_node,
    a_node_whose_feed_is_cut_in_the_middle_still_delivers_every_event_once,
);
