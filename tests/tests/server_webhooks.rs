//! Webhook delivery end to end: a real [`Server`] on smol POSTs channel events to a receiver written here (std
//! threads, HTTP/1.1 with keep-alive), which checks every signature with the SDK's [`WebhookHandler`].

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_protocol::auth::webhook::SIGNATURE_HEADER;
use switchboard_protocol::auth::{WebhookError, WebhookVerifier};
use switchboard_protocol::http_client::RetryPolicy;
use switchboard_runtime::Runtime;
use switchboard_runtime::sdk::{WebhookHandler, WebhookHandlerError};
use switchboard_runtime::server::{Server, ServerConfig, WebhookConfig};
use switchboard_smol::SmolRuntime;
use switchboard_tests::{TEST_TIMEOUT, bounded, eventually, http};

const SECRET: &[u8] = b"whsec-test";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    signature: Option<String>,
    body: Vec<u8>,
    /// The status it answered.
    status: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn key(&self) -> (String, u64) {
        let v = self.json();
        (
            v["channel"].as_str().unwrap().to_owned(),
            v["offset"].as_u64().unwrap(),
        )
    }
}

/// Decides the status for a verified delivery of `(channel, offset)`, given how many attempts came before it.
type Script = dyn Fn(&str, u64, usize) -> u16 + Send + Sync;

/// The receiver: everything it got, in arrival order.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(script: impl Fn(&str, u64, usize) -> u16 + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        Receiver::from_listener(listener, script)
    }

    fn from_listener(
        listener: TcpListener,
        script: impl Fn(&str, u64, usize) -> u16 + Send + Sync + 'static,
    ) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(WebhookHandler::new(WebhookVerifier::new(SECRET).unwrap()));
        let script: Arc<Script> = Arc::new(script);
        let attempts = Arc::new(Mutex::new(HashMap::<(String, u64), usize>::new()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, handler, script, attempts) = (
                    shared.clone(),
                    handler.clone(),
                    script.clone(),
                    attempts.clone(),
                );
                std::thread::spawn(move || {
                    let _ = serve(stream, &log, &handler, &*script, &attempts);
                });
            }
        });
        Receiver { addr, log }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/switchboard", self.addr)
    }

    fn log(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// `(channel, offset)` of every delivery answered 2xx, in arrival order.
    fn accepted(&self) -> Vec<(String, u64)> {
        self.log()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(Received::key)
            .collect()
    }
}

/// Serves one keep-alive connection.
fn serve(
    stream: TcpStream,
    log: &Mutex<Vec<Received>>,
    handler: &WebhookHandler,
    script: &Script,
    attempts: &Mutex<HashMap<(String, u64), usize>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        assert!(
            request_line.starts_with("POST /hooks/switchboard "),
            "{request_line}"
        );
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
        let signature = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(SIGNATURE_HEADER))
            .map(|(_, v)| v.clone());
        let status = match handler.handle_request(&headers, &body, unix_now()) {
            Ok(dispatch) => {
                assert_eq!(dispatch.event_type, "channel_event");
                let v: Value = serde_json::from_slice(&body).unwrap();
                let key = (
                    v["channel"].as_str().unwrap().to_owned(),
                    v["offset"].as_u64().unwrap(),
                );
                let before = {
                    let mut attempts = attempts.lock().unwrap();
                    let n = attempts.entry(key.clone()).or_default();
                    *n += 1;
                    *n - 1
                };
                script(&key.0, key.1, before)
            }
            Err(_) => 401,
        };
        log.lock().unwrap().push(Received {
            signature,
            body,
            status,
        });
        write!(
            writer,
            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: keep-alive\r\n{}\r\n",
            // A 429 says when to come back (at once, so the test stays quick).
            if status == 429 {
                "Retry-After: 0\r\n"
            } else {
                ""
            }
        )?;
    }
}

/// Millisecond retries so failure paths run fast.
fn fast_retry(max_attempts: u32) -> RetryPolicy {
    let mut retry = WebhookConfig::new("http://127.0.0.1:1", "x").retry;
    retry.max_attempts = max_attempts;
    retry.backoff.first_delay = Duration::from_millis(5);
    retry.backoff.max_delay = Duration::from_millis(20);
    retry
}

fn server(runtime: &SmolRuntime, webhook: WebhookConfig) -> Server<SmolRuntime> {
    server_keeping(runtime, webhook, ServerConfig::default().hub.history_size)
}

/// A server whose channels keep `history_size` events.
fn server_keeping(
    runtime: &SmolRuntime,
    webhook: WebhookConfig,
    history_size: usize,
) -> Server<SmolRuntime> {
    let mut config = ServerConfig::default().with_webhook(webhook);
    config.hub.history_size = history_size;
    smol::block_on(Server::bind(
        runtime.clone(),
        "127.0.0.1:0".parse().unwrap(),
        config,
    ))
    .expect("bind")
}

use switchboard_tests::on_roomy_stack as roomy;

/// `/metrics` once the webhook backlog is empty: the counters move just after the receiver has answered, so they
/// are read once the last step has finished (the surrounding `bounded` limits the wait).
async fn settled_metrics(runtime: &SmolRuntime, server: &Server<SmolRuntime>) -> String {
    loop {
        let text = http::get(runtime, server.local_addr().unwrap(), "/metrics")
            .await
            .text();
        if metric(&text, "switchboard_webhook_backlog") == 0 {
            return text;
        }
        runtime
            .sleep_until(runtime.now() + Duration::from_millis(10))
            .await;
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn events_arrive_in_offset_order_per_channel_despite_503s_and_only_matching_channels() {
    roomy(|| {
        let runtime = SmolRuntime::new();
        // Every event is refused with 503 twice (once with a Retry-After-less 503, as a real outage), then accepted.
        let receiver = Receiver::start(|_, _, before| if before < 2 { 503 } else { 200 });
        let webhook = WebhookConfig::new(receiver.url(), SECRET)
            .with_channels(["jobs/*"])
            .with_retry(fast_retry(5));
        let server = server(&runtime, webhook);
        smol::block_on(bounded(&runtime, TEST_TIMEOUT, async {
            for i in 1..=15u64 {
                for channel in ["jobs/a", "jobs/b", "news", "jobs/a/logs"] {
                    server
                        .publish(
                            channel,
                            json!({"event_type": "tick", "data": {"i": i}}),
                            false,
                        )
                        .await
                        .unwrap();
                }
            }
            eventually(&runtime, "30 deliveries", || {
                receiver.accepted().len() == 30
            })
            .await;

            let accepted = receiver.accepted();
            for channel in ["jobs/a", "jobs/b"] {
                let offsets: Vec<u64> = accepted
                    .iter()
                    .filter(|(c, _)| c == channel)
                    .map(|(_, o)| *o)
                    .collect();
                assert_eq!(offsets, (1..=15).collect::<Vec<_>>(), "{channel}");
            }
            // Every attempt of an event comes before any attempt of the next event of its channel.
            for channel in ["jobs/a", "jobs/b"] {
                let attempts: Vec<u64> = receiver
                    .log()
                    .iter()
                    .map(Received::key)
                    .filter(|(c, _)| c == channel)
                    .map(|(_, o)| o)
                    .collect();
                let expected: Vec<u64> = (1..=15).flat_map(|o| [o, o, o]).collect();
                assert_eq!(attempts, expected, "{channel}");
            }
            // The body: type, channel, epoch, offset, event.
            let first = receiver
                .log()
                .into_iter()
                .find(|r| r.key() == ("jobs/b".to_owned(), 3))
                .unwrap()
                .json();
            assert_eq!(
                first,
                json!({
                    "type": "channel_event",
                    "channel": "jobs/b",
                    "epoch": server.epoch(&switchboard_protocol::wire::ChannelName::new("jobs/b").unwrap()),
                    "offset": 3,
                    "event": {"event_type": "tick", "data": {"i": 3}},
                })
            );

            let metrics = settled_metrics(&runtime, &server).await;
            assert_eq!(metric(&metrics, "switchboard_webhook_deliveries_total"), 30);
            assert_eq!(metric(&metrics, "switchboard_webhook_retries_total"), 60);
            assert_eq!(metric(&metrics, "switchboard_webhook_failures_total"), 0);
            assert_eq!(metric(&metrics, "switchboard_webhook_backlog"), 0);
            server.shutdown().await;
        }));
        // Nothing of the filtered-out channels was sent.
        assert!(
            receiver
                .log()
                .iter()
                .all(|r| matches!(r.key().0.as_str(), "jobs/a" | "jobs/b"))
        );
    });
}

#[test]
fn a_given_up_event_is_counted_and_the_next_one_follows() {
    roomy(|| {
        let runtime = SmolRuntime::new();
        // Offset 2 always fails: 500 (retried until the attempts run out); offset 4 gets a 400 (not retried).
        let receiver = Receiver::start(|_, offset, _| match offset {
            2 => 500,
            4 => 400,
            _ => 204,
        });
        let webhook = WebhookConfig::new(receiver.url(), SECRET).with_retry(fast_retry(3));
        let server = server(&runtime, webhook);
        smol::block_on(bounded(&runtime, TEST_TIMEOUT, async {
            for i in 1..=5u64 {
                server
                    .publish("jobs/x", json!({"i": i}), false)
                    .await
                    .unwrap();
            }
            eventually(&runtime, "3 deliveries", || receiver.accepted().len() == 3).await;
            let keys: Vec<u64> = receiver.log().iter().map(|r| r.key().1).collect();
            assert_eq!(keys, [1, 2, 2, 2, 3, 4, 5]);
            let metrics = settled_metrics(&runtime, &server).await;
            assert_eq!(metric(&metrics, "switchboard_webhook_failures_total"), 2);
            assert_eq!(metric(&metrics, "switchboard_webhook_deliveries_total"), 3);
            server.shutdown().await;
        }));
    });
}

#[test]
fn a_receiver_that_is_down_gets_the_events_from_history_once_it_is_up() {
    roomy(|| {
        let runtime = SmolRuntime::new();
        // Reserve a port, publish while nothing listens there, then start the receiver on it.
        let parked = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = parked.local_addr().unwrap();
        drop(parked);
        let webhook = WebhookConfig::new(format!("http://{addr}/hooks/switchboard"), SECRET)
            .with_retry({
                let mut retry = fast_retry(100);
                retry.backoff.max_delay = Duration::from_millis(50);
                retry
            });
        let server = server(&runtime, webhook);
        for i in 1..=10u64 {
            smol::block_on(server.publish("jobs/late", json!({"i": i}), false)).unwrap();
        }
        // Let a few attempts fail on the closed port first.
        smol::block_on(runtime.sleep_until(runtime.now() + Duration::from_millis(100)));
        let listener = TcpListener::bind(addr).expect("rebind the reserved port");
        let receiver = Receiver::from_listener(listener, |_, _, _| 200);
        smol::block_on(bounded(&runtime, TEST_TIMEOUT, async {
            eventually(&runtime, "10 deliveries", || {
                receiver.accepted().len() == 10
            })
            .await;
            let offsets: Vec<u64> = receiver.accepted().iter().map(|k| k.1).collect();
            assert_eq!(offsets, (1..=10).collect::<Vec<_>>());
            server.shutdown().await;
        }));
    });
}

#[test]
fn forged_altered_and_stale_deliveries_are_refused_by_the_verifier() {
    roomy(|| {
        let runtime = SmolRuntime::new();
        let receiver = Receiver::start(|_, _, _| 200);
        let server = server(
            &runtime,
            WebhookConfig::new(receiver.url(), SECRET).with_retry(fast_retry(2)),
        );
        smol::block_on(bounded(&runtime, TEST_TIMEOUT, async {
            server
                .publish("audit/1", json!({"event_type": "login"}), false)
                .await
                .unwrap();
            eventually(&runtime, "a delivery", || receiver.accepted().len() == 1).await;
            server.shutdown().await;
        }));
        let delivery = receiver.log().remove(0);
        let header = delivery.signature.clone().expect("a signature header");
        let t: u64 = header
            .strip_prefix("t=")
            .and_then(|rest| rest.split(',').next())
            .and_then(|t| t.parse().ok())
            .expect("t=<unix seconds>");
        let handler = WebhookHandler::new(WebhookVerifier::new(SECRET).unwrap());
        assert!(handler.handle(Some(&header), &delivery.body, t).is_ok());
        // Another secret: forged.
        let other = WebhookHandler::new(WebhookVerifier::new(b"not-the-secret").unwrap());
        assert_eq!(
            other.handle(Some(&header), &delivery.body, t),
            Err(WebhookHandlerError::Signature(WebhookError::BadSignature))
        );
        // The body changed on the way.
        let mut altered = delivery.body.clone();
        altered.extend_from_slice(b" ");
        assert_eq!(
            handler.handle(Some(&header), &altered, t),
            Err(WebhookHandlerError::Signature(WebhookError::BadSignature))
        );
        // Replayed after the tolerance (5 minutes).
        assert_eq!(
            handler.handle(Some(&header), &delivery.body, t + 301),
            Err(WebhookHandlerError::Signature(WebhookError::TooOld {
                age_secs: 301
            }))
        );
        assert_eq!(
            handler.handle(None, &delivery.body, t),
            Err(WebhookHandlerError::MissingSignature)
        );
    });
}

#[test]
fn events_that_leave_the_history_before_delivery_are_skipped_and_counted() {
    roomy(|| {
        let runtime = SmolRuntime::new();
        // The receiver holds the delivery of offset 1 until the test opens the gate.
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let holding = Arc::new(AtomicBool::new(false));
        let (gate_in, holding_in) = (gate.clone(), holding.clone());
        let receiver = Receiver::start(move |_, offset, _| {
            if offset == 1 {
                holding_in.store(true, Ordering::SeqCst);
                let (open, opened) = &*gate_in;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = opened.wait(open).unwrap();
                }
            }
            200
        });
        let webhook = WebhookConfig::new(receiver.url(), SECRET).with_retry(fast_retry(3));
        let server = server_keeping(&runtime, webhook, 3);
        smol::block_on(bounded(&runtime, TEST_TIMEOUT, async {
            server
                .publish("jobs/slow", json!({"i": 1}), false)
                .await
                .unwrap();
            eventually(&runtime, "offset 1 held", || holding.load(Ordering::SeqCst)).await;
            // The history keeps 3 events: 8, 9 and 10. Offsets 2 to 7 are gone before their turn.
            for i in 2..=10u64 {
                server
                    .publish("jobs/slow", json!({"i": i}), false)
                    .await
                    .unwrap();
            }
            {
                let (open, opened) = &*gate;
                *open.lock().unwrap() = true;
                opened.notify_all();
            }
            eventually(&runtime, "4 deliveries", || receiver.accepted().len() == 4).await;
            let offsets: Vec<u64> = receiver.accepted().iter().map(|k| k.1).collect();
            assert_eq!(offsets, [1, 8, 9, 10]);
            let metrics = settled_metrics(&runtime, &server).await;
            assert_eq!(metric(&metrics, "switchboard_webhook_skipped_total"), 6);
            assert_eq!(metric(&metrics, "switchboard_webhook_deliveries_total"), 4);
            server.shutdown().await;
        }));
    });
}

#[test]
fn a_429_with_retry_after_is_retried() {
    roomy(|| {
        let runtime = SmolRuntime::new();
        let receiver = Receiver::start(|_, _, before| if before == 0 { 429 } else { 200 });
        // One retry only: the 429 must not use up more.
        let webhook = WebhookConfig::new(receiver.url(), SECRET).with_retry(fast_retry(2));
        let server = server(&runtime, webhook);
        smol::block_on(bounded(&runtime, TEST_TIMEOUT, async {
            for i in 1..=3u64 {
                server
                    .publish("jobs/rl", json!({"i": i}), false)
                    .await
                    .unwrap();
            }
            eventually(&runtime, "3 deliveries", || receiver.accepted().len() == 3).await;
            let statuses: Vec<(u64, u16)> = receiver
                .log()
                .iter()
                .map(|r| (r.key().1, r.status))
                .collect();
            assert_eq!(
                statuses,
                [(1, 429), (1, 200), (2, 429), (2, 200), (3, 429), (3, 200)]
            );
            let metrics = settled_metrics(&runtime, &server).await;
            assert_eq!(metric(&metrics, "switchboard_webhook_retries_total"), 3);
            server.shutdown().await;
        }));
    });
}
