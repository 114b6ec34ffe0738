//! Durable history in process: a [`Server`] over a data directory (smol, loopback TCP) is shut down and started
//! again on the same directory, and everything acknowledged is back — epoch, offsets, history, retained state and
//! the webhook sender's place. A second server on a directory in use, and a directory from a newer build, are
//! refused. Every test is bounded in time and removes its directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_protocol::http_client::RetryPolicy;
use switchboard_protocol::server::HubConfig;
use switchboard_protocol::wire::ChannelName;
use switchboard_runtime::Runtime;
use switchboard_runtime::server::{DataDirError, FsyncPolicy, Server, ServerConfig, WebhookConfig};
use switchboard_smol::SmolRuntime;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded, eventually, http, on_roomy_stack};

/// A data directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "switchboard-durable-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server configuration over `dir`, its hub seeded with `seed` (a restarted server gets another seed, so an
/// epoch that survives came from the disk).
fn config(dir: &Path, seed: u64) -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            seed,
            ..HubConfig::default()
        },
        shutdown_timeout: Duration::from_secs(5),
        close_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    }
    .with_data_dir(dir)
}

async fn start(runtime: &SmolRuntime, config: ServerConfig) -> (Server<SmolRuntime>, SocketAddr) {
    let server = Server::bind(runtime.clone(), "127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("open the data directory and bind");
    let addr = server.local_addr().expect("a bound address");
    (server, addr)
}

fn event_offsets(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter(|m| m["type"] == "event")
        .map(|m| m["data"]["offset"].as_u64().unwrap())
        .collect()
}

fn run(test: impl std::future::Future<Output = ()> + Send + 'static) {
    on_roomy_stack(move || {
        let runtime = SmolRuntime::new();
        smol::block_on(bounded(&runtime, TEST_TIMEOUT, test));
    });
}

#[test]
fn epoch_offsets_history_and_state_survive_a_restart_and_a_subscriber_recovers() {
    run(async {
        let rt = SmolRuntime::new();
        let dir = TempDir::new("restart");
        let (server, addr) = start(&rt, config(dir.path(), 1)).await;
        let info = http::get(&rt, addr, "/api/info").await.json();
        assert_eq!(info["storage"]["mode"], "disk");
        assert_eq!(info["storage"]["fsync"], "batch");
        assert_eq!(
            info["storage"]["data_dir"],
            dir.path().display().to_string()
        );

        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        let res = ws.request("subscribe", json!({"channel": "jobs"})).await;
        let epoch = res["data"]["epoch"].as_str().unwrap().to_owned();
        assert_eq!(res["data"]["offset"], 0);

        // Acknowledged over REST and the app API alike, and delivered.
        let r = http::post_json(
            &rt,
            addr,
            "/api/v1/channels/jobs/events",
            &json!({"event": {"n": 1}}),
        )
        .await;
        assert_eq!((r.status, r.json()["offset"].clone()), (201, json!(1)));
        assert_eq!(
            server.publish("jobs", json!({"n": 2}), true).await.unwrap(),
            2
        );
        let seen = vec![ws.recv_skip_pings().await, ws.recv_skip_pings().await];
        assert_eq!(event_offsets(&seen), vec![1, 2]);
        ws.close().await;

        // Missed by the subscriber: published after it left.
        let r = http::post_json(
            &rt,
            addr,
            "/api/v1/channels/jobs/events",
            &json!({"event": {"n": 3}}),
        )
        .await;
        assert_eq!(r.json()["offset"], 3);
        assert_eq!(
            server
                .publish("jobs", json!({"n": 4}), false)
                .await
                .unwrap(),
            4
        );
        assert_eq!(server.publish("other", json!("x"), true).await.unwrap(), 1);
        let metrics = http::get(&rt, addr, "/metrics").await.text();
        assert!(
            metrics.contains("switchboard_pending_publishes 0\n"),
            "{metrics}"
        );
        assert!(metrics.contains("switchboard_storage_failures_total 0\n"));
        assert!(metrics.contains("switchboard_storage_written_bytes_total "));
        assert!(!metrics.contains("switchboard_storage_written_bytes_total 0\n"));
        server.shutdown().await;

        // Another fsync policy reads the same files.
        let mut again = config(dir.path(), 2);
        again.fsync = FsyncPolicy::Always;
        let (server, addr) = start(&rt, again).await;
        let info = http::get(&rt, addr, "/api/info").await.json();
        assert_eq!(info["storage"]["fsync"], "always");
        assert_eq!(server.epoch(&ChannelName::new("jobs").unwrap()), epoch);
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        let res = ws
            .request(
                "subscribe",
                json!({"channel": "jobs", "since": {"epoch": epoch, "offset": 2}}),
            )
            .await;
        assert_eq!(res["data"]["recovered"], true, "{res}");
        assert_eq!(res["data"]["epoch"], epoch.as_str());
        assert_eq!(res["data"]["offset"], 4);
        let missed = vec![ws.recv_skip_pings().await, ws.recv_skip_pings().await];
        assert_eq!(event_offsets(&missed), vec![3, 4]);
        assert_eq!(missed[0]["data"]["event"], json!({"n": 3}));
        assert_eq!(missed[1]["data"]["event"], json!({"n": 4}));

        let state = http::get(&rt, addr, "/api/v1/channels/jobs/state")
            .await
            .json();
        assert_eq!(
            (state["epoch"].as_str(), state["offset"].as_u64()),
            (Some(epoch.as_str()), Some(4))
        );
        assert_eq!(state["state"], json!({"n": 2}));
        let other = http::get(&rt, addr, "/api/v1/channels/other/state")
            .await
            .json();
        assert_eq!(other["state"], "x");
        let page = http::get(&rt, addr, "/api/v1/channels/jobs/events")
            .await
            .json();
        let kept: Vec<Value> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"]["n"].clone())
            .collect();
        assert_eq!(kept, vec![json!(1), json!(2), json!(3), json!(4)]);

        // Publishing carries on after the restored offsets, and the live subscriber gets it exactly once.
        assert_eq!(
            server
                .publish("jobs", json!({"n": 5}), false)
                .await
                .unwrap(),
            5
        );
        assert_eq!(event_offsets(&[ws.recv_skip_pings().await]), vec![5]);
        ws.close().await;
        server.shutdown().await;
    });
}

#[test]
fn a_second_server_on_a_directory_in_use_is_refused_until_the_first_shuts_down() {
    run(async {
        let rt = SmolRuntime::new();
        let dir = TempDir::new("in-use");
        let (server, _) = start(&rt, config(dir.path(), 1)).await;
        match Server::open(rt.clone(), config(dir.path(), 2)) {
            Err(e @ DataDirError::InUse { .. }) => {
                let DataDirError::InUse { path, pid } = &e else {
                    unreachable!()
                };
                assert_eq!(path, dir.path());
                assert_eq!(*pid, Some(std::process::id()));
                let text = e.to_string();
                assert!(
                    text.contains("is in use by another switchboard serve (pid "),
                    "{text}"
                );
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        // Through `bind`, the same refusal inside the io::Error.
        let err = Server::bind(
            rt.clone(),
            "127.0.0.1:0".parse().unwrap(),
            config(dir.path(), 3),
        )
        .await
        .expect_err("the directory is in use");
        assert!(matches!(
            err.get_ref().and_then(|e| e.downcast_ref::<DataDirError>()),
            Some(DataDirError::InUse { .. })
        ));
        server.shutdown().await;
        let (again, _) = start(&rt, config(dir.path(), 4)).await;
        again.shutdown().await;
    });
}

#[test]
fn a_directory_written_by_a_newer_build_is_refused_and_left_alone() {
    run(async {
        let rt = SmolRuntime::new();
        let dir = TempDir::new("newer");
        std::fs::create_dir_all(dir.path()).unwrap();
        let mut newer = b"SWBLOG\r\n".to_vec();
        newer.extend_from_slice(&99u32.to_le_bytes());
        newer.extend_from_slice(&[0; 4]);
        newer.extend_from_slice(b"records of the future");
        let file = dir.path().join("0000000000000001.log");
        std::fs::write(&file, &newer).unwrap();
        match Server::open(rt.clone(), config(dir.path(), 1)) {
            Err(DataDirError::NewerFormat {
                file: f, found: 99, ..
            }) => assert_eq!(f, file),
            other => panic!("expected NewerFormat, got {other:?}"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), newer);
        std::fs::write(&file, b"something else entirely").unwrap();
        assert!(matches!(
            Server::open(rt.clone(), config(dir.path(), 1)),
            Err(DataDirError::NotOurs { .. })
        ));
    });
}

/// A webhook receiver: records `(channel, offset, epoch)` of every request it accepts. Before `open` is set it
/// accepts offsets up to 2 only, and holds any other request unanswered until `open` is set, then refuses it
/// with 503 unrecorded: whatever the first server still had under way is never counted as delivered.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    accepted: Arc<Mutex<Vec<(String, u64, String)>>>,
    open: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            accepted: Arc::default(),
            open: Arc::default(),
        };
        let shared = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = shared.serve(stream);
                });
            }
        });
        receiver
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn accepted(&self) -> Vec<(String, u64, String)> {
        self.accepted.lock().unwrap().clone()
    }

    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header)?;
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            let v: Value = serde_json::from_slice(&body).unwrap();
            let offset = v["offset"].as_u64().unwrap();
            let held = !self.open.load(Ordering::SeqCst) && offset > 2;
            while held && !self.open.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let status = if !held {
                self.accepted.lock().unwrap().push((
                    v["channel"].as_str().unwrap().to_owned(),
                    offset,
                    v["epoch"].as_str().unwrap().to_owned(),
                ));
                200
            } else {
                503
            };
            write!(
                writer,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
            )?;
        }
    }
}

fn webhook(receiver: &Receiver) -> WebhookConfig {
    let mut retry: RetryPolicy = WebhookConfig::new("http://127.0.0.1:1", "x").retry;
    retry.max_attempts = 10_000;
    retry.backoff.first_delay = Duration::from_millis(5);
    retry.backoff.max_delay = Duration::from_millis(20);
    WebhookConfig::new(receiver.url(), "whsec").with_retry(retry)
}

#[test]
fn the_webhook_sender_resumes_where_it_stopped_after_a_restart() {
    run(async {
        let rt = SmolRuntime::new();
        let dir = TempDir::new("webhook");
        let receiver = Receiver::start();
        let (server, addr) =
            start(&rt, config(dir.path(), 1).with_webhook(webhook(&receiver))).await;
        for n in 1..=5 {
            assert_eq!(
                server
                    .publish("jobs", json!({"n": n}), false)
                    .await
                    .unwrap(),
                n
            );
        }
        // Offsets 1 and 2 are delivered (and their place recorded, under the sender's lock, before /metrics can
        // read the count); 3 is held unanswered.
        eventually(&rt, "two deliveries", || receiver.accepted().len() == 2).await;
        let delivered = |rt: SmolRuntime| async move {
            http::get(&rt, addr, "/metrics")
                .await
                .text()
                .contains("switchboard_webhook_deliveries_total 2\n")
        };
        while !delivered(rt.clone()).await {
            rt.sleep_until(rt.now() + Duration::from_millis(10)).await;
        }
        let epoch = server.epoch(&ChannelName::new("jobs").unwrap());
        server.shutdown().await;
        drop(server);

        receiver.open.store(true, Ordering::SeqCst);
        let (server, _) = start(&rt, config(dir.path(), 2).with_webhook(webhook(&receiver))).await;
        eventually(&rt, "the rest delivered", || receiver.accepted().len() >= 5).await;
        assert_eq!(
            server
                .publish("jobs", json!({"n": 6}), false)
                .await
                .unwrap(),
            6
        );
        eventually(&rt, "the new event delivered", || {
            receiver.accepted().len() >= 6
        })
        .await;
        let accepted = receiver.accepted();
        let offsets: Vec<u64> = accepted.iter().map(|(_, offset, _)| *offset).collect();
        assert_eq!(offsets, vec![1, 2, 3, 4, 5, 6], "in order, none twice");
        assert!(
            accepted
                .iter()
                .all(|(channel, _, e)| channel == "jobs" && *e == epoch)
        );
        server.shutdown().await;
    });
}
