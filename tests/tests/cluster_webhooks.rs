//! Webhooks from a cluster, on a real `redis-server` with two in-process nodes, both with the same webhook, on
//! both runtimes: events published on either node (REST, native, batch), on channels both nodes follow and on one
//! no node follows, reach the receiver once each, signed, with the epoch and offset Redis gave, in offset order per
//! channel and node, retried when the receiver fails an attempt. Every test is bounded in time and stops the
//! servers and the Redis it started.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_protocol::auth::WebhookVerifier;
use switchboard_protocol::backoff::Jitter;
use switchboard_runtime::Runtime;
use switchboard_runtime::redis::{RedisOptions, RedisUrl};
use switchboard_runtime::sdk::WebhookHandler;
use switchboard_runtime::server::{ClusterConfig, Server, ServerConfig, WebhookConfig};
use switchboard_tests::redis_server::RedisServer;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded, http, on_every_runtime};

const SECRET: &[u8] = b"whsec-cluster";

/// One delivery the receiver accepted: `(channel, offset)`, the epoch and the event.
type Accepted = ((String, u64), String, Value);

/// A webhook receiver on std threads: checks each signature, fails the first attempt of every fifth offset with
/// 503, accepts the rest.
struct Receiver {
    addr: SocketAddr,
    accepted: Arc<Mutex<Vec<Accepted>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
        let shared = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (accepted, failed) = (shared.clone(), failed.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &accepted, &failed);
                });
            }
        });
        Receiver { addr, accepted }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    accepted: &Mutex<Vec<Accepted>>,
    failed: &Mutex<Vec<(String, u64)>>,
) -> std::io::Result<()> {
    let handler = WebhookHandler::new(WebhookVerifier::new(SECRET).unwrap());
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header field");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("a Content-Length");
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let status = match handler.handle_request(&headers, &body, now) {
            Ok(_) => {
                let v: Value = serde_json::from_slice(&body).unwrap();
                let key = (
                    v["channel"].as_str().unwrap().to_owned(),
                    v["offset"].as_u64().unwrap(),
                );
                let mut failed = failed.lock().unwrap();
                if key.1.is_multiple_of(5) && !failed.contains(&key) {
                    failed.push(key);
                    503
                } else {
                    let epoch = v["epoch"].as_str().unwrap_or_default().to_owned();
                    accepted
                        .lock()
                        .unwrap()
                        .push((key, epoch, v["event"].clone()));
                    200
                }
            }
            Err(_) => 401,
        };
        write!(
            writer,
            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        )?;
    }
}

/// A node on `redis` sending webhooks to `receiver` (retries after milliseconds), bound to a free port.
async fn node<R: Runtime>(
    runtime: &R,
    redis: &RedisServer,
    id: &str,
    receiver: &Receiver,
) -> (Server<R>, SocketAddr) {
    let mut options = RedisOptions::new(RedisUrl::parse(&redis.url(0)).expect("a valid URL"));
    options.connection.backoff.first_delay = Duration::from_millis(200);
    options.connection.backoff.jitter = Jitter::None;
    let mut cluster = ClusterConfig::new(options);
    cluster.node_id = id.into();
    let mut webhook = WebhookConfig::new(receiver.url(), SECRET);
    webhook.retry.backoff.first_delay = Duration::from_millis(5);
    webhook.retry.backoff.max_delay = Duration::from_millis(20);
    let config = ServerConfig {
        cluster: Some(cluster),
        webhook: Some(webhook),
        ..ServerConfig::default()
    };
    let server = Server::bind(runtime.clone(), "127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("a node starts");
    let addr = server.local_addr().expect("bound");
    (server, addr)
}

async fn rest_publish<R: Runtime>(runtime: &R, addr: SocketAddr, channel: &str, body: Value) {
    let path = format!("/api/v1/channels/{}/events", channel.replace('/', "%2F"));
    let response = http::post_json(runtime, addr, &path, &body).await;
    assert_eq!(response.status, 201, "{}", response.text());
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

mod scenarios {
    use super::*;

    pub async fn each_event_published_on_either_node_reaches_the_webhook_once<R: Runtime>(
        runtime: R,
    ) {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let receiver = Receiver::start();
        bounded(&runtime, TEST_TIMEOUT, async {
            let (a, addr_a) = node(&runtime, &redis, "a", &receiver).await;
            let (b, addr_b) = node(&runtime, &redis, "b", &receiver).await;
            // Both nodes follow jobs/1 (each delivers its events from the feed); no node follows jobs/2.
            let mut watchers = Vec::new();
            for addr in [addr_a, addr_b] {
                let mut ws = WsClient::connect(&runtime, addr, "/api/ws").await;
                ws.connected().await;
                let res = ws.request("subscribe", json!({"channel": "jobs/1"})).await;
                assert_eq!(res["type"], "subscribe_res", "{res}");
                watchers.push(ws);
            }
            let mut publisher = WsClient::connect(&runtime, addr_b, "/api/ws").await;
            publisher.connected().await;
            let mut published = 0;
            for n in 1..=10u64 {
                rest_publish(&runtime, addr_a, "jobs/1", json!({"event": {"n": n}})).await;
                let res = publisher
                    .request(
                        "publish",
                        json!({"channel": "jobs/1", "event": {"n": 100 + n}}),
                    )
                    .await;
                assert_eq!(res["type"], "publish_res", "{res}");
                published += 2;
            }
            rest_publish(
                &runtime,
                addr_b,
                "jobs/2",
                json!({"events": [{"n": 1}, {"n": 2}, {"n": 3}]}),
            )
            .await;
            rest_publish(&runtime, addr_a, "jobs/2", json!({"event": {"n": 4}})).await;
            published += 4;

            let deadline = runtime.now() + STEP_TIMEOUT;
            while receiver.accepted().len() < published {
                assert!(
                    runtime.now() < deadline,
                    "timed out waiting for the webhooks: {:?}",
                    receiver.accepted()
                );
                runtime
                    .sleep_until(runtime.now() + Duration::from_millis(10))
                    .await;
            }
            // A duplicate would come from the other node at about the same time: give it the chance.
            runtime
                .sleep_until(runtime.now() + Duration::from_millis(300))
                .await;
            let accepted = receiver.accepted();
            let mut by_key = BTreeMap::new();
            for (key, epoch, event) in &accepted {
                assert!(
                    by_key
                        .insert(key.clone(), (epoch.clone(), event.clone()))
                        .is_none(),
                    "{key:?} delivered twice: {accepted:?}"
                );
            }
            assert_eq!(by_key.len(), published, "{accepted:?}");
            // Offsets 1..=20 of jobs/1 and 1..=4 of jobs/2, each with the event published there and Redis's epoch.
            for channel in ["jobs/1", "jobs/2"] {
                let history = http::get(
                    &runtime,
                    addr_a,
                    &format!(
                        "/api/v1/channels/{}/events?since=0",
                        channel.replace('/', "%2F")
                    ),
                )
                .await
                .json();
                let events = history["events"].as_array().expect("events");
                for stored in events {
                    let offset = stored["offset"].as_u64().unwrap();
                    let (epoch, event) = &by_key[&(channel.to_owned(), offset)];
                    assert_eq!(
                        epoch,
                        history["epoch"].as_str().unwrap(),
                        "{channel} {offset}"
                    );
                    assert_eq!(event, &stored["event"], "{channel} {offset}");
                }
                assert_eq!(events.len(), if channel == "jobs/1" { 20 } else { 4 });
            }
            // Each node sends its own events in offset order: the REST ones (node a) and the native ones (b).
            let order = |small: bool| -> Vec<u64> {
                accepted
                    .iter()
                    .filter(|(key, _, event)| {
                        key.0 == "jobs/1" && (event["n"].as_u64().unwrap() < 100) == small
                    })
                    .map(|(key, _, _)| key.1)
                    .collect()
            };
            for small in [true, false] {
                let offsets = order(small);
                assert!(
                    offsets.windows(2).all(|w| w[0] < w[1]),
                    "offset order: {offsets:?}"
                );
            }
            let mut delivered = 0;
            for addr in [addr_a, addr_b] {
                let text = http::get(&runtime, addr, "/metrics").await.text();
                delivered += metric(&text, "switchboard_webhook_deliveries_total");
            }
            assert_eq!(
                delivered as usize, published,
                "one delivery per event over the nodes"
            );
            for ws in watchers {
                ws.close().await;
            }
            publisher.close().await;
            a.shutdown().await;
            b.shutdown().await;
        })
        .await;
    }
}

on_every_runtime!(scenarios;
    each_event_published_on_either_node_reaches_the_webhook_once,
);
