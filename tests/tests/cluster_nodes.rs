//! What a cluster answers for all of its nodes, on a real `redis-server` with two in-process nodes, on both
//! runtimes: `/api/connections`, `/api/v1/projects/{id}/connections` and `/api/info`'s `cluster.nodes` count every
//! live node; a node that stops refreshing its entry (dead) drops out once the entry expires, one that shuts down
//! at once. Every test is bounded in time and stops the servers and the Redis it started.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_protocol::backoff::Jitter;
use switchboard_runtime::Runtime;
use switchboard_runtime::redis::{RedisOptions, RedisUrl};
use switchboard_runtime::server::{ClusterConfig, Server, ServerConfig};
use switchboard_tests::redis_server::RedisServer;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded, http, on_every_runtime};

/// The nodes' entries live this long: refreshed every 300 ms.
const TTL: Duration = Duration::from_millis(900);

/// A node on `redis` with the short [`TTL`], bound to a free loopback port.
async fn node<R: Runtime>(runtime: &R, redis: &RedisServer, id: &str) -> (Server<R>, SocketAddr) {
    let mut options = RedisOptions::new(RedisUrl::parse(&redis.url(0)).expect("a valid URL"));
    options.connection.backoff.first_delay = Duration::from_millis(200);
    options.connection.backoff.jitter = Jitter::None;
    let mut cluster = ClusterConfig::new(options);
    cluster.node_id = id.into();
    cluster.ttl = TTL;
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

/// GETs `path` on `addr` until `check` accepts the JSON answer (up to [`STEP_TIMEOUT`]); the last answer.
async fn until<R: Runtime>(
    runtime: &R,
    addr: SocketAddr,
    path: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = runtime.now() + STEP_TIMEOUT;
    loop {
        let response = http::get(runtime, addr, path).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.json();
        if check(&body) {
            return body;
        }
        assert!(
            runtime.now() < deadline,
            "timed out waiting for {what}: {body}"
        );
        runtime
            .sleep_until(runtime.now() + Duration::from_millis(20))
            .await;
    }
}

fn nodes(body: &Value) -> Vec<String> {
    let mut nodes: Vec<String> = body["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes
}

mod scenarios {
    use super::*;

    pub async fn connection_counts_cover_every_live_node<R: Runtime>(runtime: R) {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        bounded(&runtime, TEST_TIMEOUT, async {
            let (a, addr_a) = node(&runtime, &redis, "a").await;
            let (b, addr_b) = node(&runtime, &redis, "b").await;
            // Two connections on a (one subscribed to projects/p1), two on b (both subscribed).
            let mut clients = Vec::new();
            for (addr, subscribes) in [
                (addr_a, true),
                (addr_a, false),
                (addr_b, true),
                (addr_b, true),
            ] {
                let mut ws = WsClient::connect(&runtime, addr, "/api/ws").await;
                ws.connected().await;
                if subscribes {
                    let res = ws
                        .request("subscribe", json!({"channel": "projects/p1"}))
                        .await;
                    assert_eq!(res["type"], "subscribe_res", "{res}");
                }
                clients.push(ws);
            }
            for addr in [addr_a, addr_b] {
                let body = until(
                    &runtime,
                    addr,
                    "/api/connections",
                    "both nodes' connections",
                    |b| b["active_connections"] == 4 && nodes(b) == ["a", "b"],
                )
                .await;
                assert_eq!(body["by_dialect"]["native"], 4, "{body}");
                assert_eq!(body["apps"].as_array().map(Vec::len), Some(4), "{body}");
                let project = until(
                    &runtime,
                    addr,
                    "/api/v1/projects/p1/connections",
                    "both nodes' subscribers",
                    |b| b["active_connections"] == 3,
                )
                .await;
                assert_eq!(project["project_id"], "p1", "{project}");
                let info = http::get(&runtime, addr, "/api/info").await.json();
                assert_eq!(nodes(&info["cluster"]), ["a", "b"], "{info}");
            }

            // A node that died: its entry is not refreshed, expires, and stops counting.
            let expires = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 600;
            let ghost = json!({"connections": 5, "by_dialect": {"native": 5}, "apps": [],
                               "subscribers": {"projects/p1": 5}})
            .to_string();
            assert_eq!(
                redis.command(&["SET", "switchboard:c:ghost", &ghost, "PX", "600"]),
                "+OK"
            );
            assert_eq!(
                redis.command(&["ZADD", "switchboard:nodes", &expires.to_string(), "ghost"]),
                ":1"
            );
            until(
                &runtime,
                addr_a,
                "/api/connections",
                "the dead node counted",
                |b| b["active_connections"] == 9 && nodes(b) == ["a", "b", "ghost"],
            )
            .await;
            until(
                &runtime,
                addr_a,
                "/api/connections",
                "the dead node gone",
                |b| b["active_connections"] == 4 && nodes(b) == ["a", "b"],
            )
            .await;

            // Connections closing on b are counted on a within a refresh period.
            let last = clients.pop().expect("four clients");
            last.close().await;
            until(
                &runtime,
                addr_a,
                "/api/v1/projects/p1/connections",
                "b's leaver",
                |b| b["active_connections"] == 2,
            )
            .await;

            // A node shutting down leaves at once: well within its entry's time-to-live.
            let b_client = clients.pop().expect("three clients");
            drop(b_client);
            b.shutdown().await;
            assert_eq!(
                redis.command(&["EXISTS", "switchboard:c:b"]),
                ":0",
                "a node that shuts down removes its entry"
            );
            until(&runtime, addr_a, "/api/connections", "b left", |b| {
                b["active_connections"] == 2 && nodes(b) == ["a"]
            })
            .await;
            for ws in clients {
                ws.close().await;
            }
            a.shutdown().await;
        })
        .await;
    }
}

on_every_runtime!(scenarios;
    connection_counts_cover_every_live_node,
);
