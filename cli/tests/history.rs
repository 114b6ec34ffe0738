//! `history`: every event of a channel's REST history, in order, through the SDK's retries and pagination — the
//! acceptance test: 2,500 events through a proxy that answers every third request with 503.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use support::{STEP, run};
use switchboard_protocol::server::HubConfig;
use switchboard_runtime::{Server, ServerConfig};
use switchboard_smol::SmolRuntime;

/// An in-process server keeping `history` events per channel, with `events` published on `channel`.
fn server_with(channel: &str, events: u64) -> Server<SmolRuntime> {
    let config = ServerConfig {
        hub: HubConfig {
            history_size: 5000,
            ..ServerConfig::default().hub
        },
        ..ServerConfig::default()
    };
    let server = smol::block_on(Server::bind(
        SmolRuntime::new(),
        "127.0.0.1:0".parse().unwrap(),
        config,
    ))
    .expect("bind");
    for i in 1..=events {
        let offset = smol::block_on(server.publish(
            channel,
            json!({"event_type": "tick", "data": {"i": i}}),
            false,
        ))
        .expect("publish");
        assert_eq!(offset, i);
    }
    server
}

/// A proxy in front of `upstream` that answers every third request with 503 and forwards the others (one request
/// per connection, `Connection: close` both ways). Returns its address and its request counter.
fn flaky_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let _ = proxy_one(client, upstream, &counter);
            });
        }
    });
    (addr, requests)
}

fn proxy_one(
    mut client: TcpStream,
    upstream: SocketAddr,
    counter: &AtomicU64,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(STEP))?;
    let (head, body) = read_request(&mut client)?;
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    if n.is_multiple_of(3) {
        client.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let mut forwarded: String = head
        .split("\r\n")
        .filter(|line| !line.is_empty() && !line.to_ascii_lowercase().starts_with("connection:"))
        .map(|line| format!("{line}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut server = TcpStream::connect(upstream)?;
    server.set_read_timeout(Some(STEP))?;
    server.write_all(forwarded.as_bytes())?;
    server.write_all(&body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    client.write_all(&response)
}

/// Reads one request's head (as text) and body (by `Content-Length`).
fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok((head, body))
}

#[test]
fn history_returns_all_2500_events_in_order_through_a_server_failing_every_third_request() {
    let server = server_with("jobs/accept", 2500);
    let (proxy, requests) = flaky_proxy(server.local_addr().unwrap());
    let url = format!("http://{proxy}");

    let done = run(&["history", &url, "jobs/accept", "--json"]);
    assert_eq!(done.code, Some(0), "stderr: {}", done.stderr);
    assert_eq!(done.stdout.len(), 2500, "stderr: {}", done.stderr);
    for (i, line) in done.stdout.iter().enumerate() {
        let line: Value = serde_json::from_str(line).expect("a JSON line");
        let offset = i as u64 + 1;
        assert_eq!(line["channel"], "jobs/accept");
        assert_eq!(line["offset"], offset, "{line}");
        assert_eq!(line["event"]["data"]["i"], offset, "{line}");
    }
    // Three pages of 1000 (the last one short) and the retries after the 503s.
    assert!(requests.load(Ordering::SeqCst) >= 4);
    smol::block_on(server.shutdown());
}

#[test]
fn history_since_and_plain_output() {
    let server = server_with("news", 5);
    let url = format!("http://{}", server.local_addr().unwrap());

    let done = run(&["history", &url, "news", "--since", "3"]);
    assert_eq!(done.code, Some(0), "stderr: {}", done.stderr);
    let lines: Vec<(u64, Value)> = done
        .stdout
        .iter()
        .map(|line| {
            let (offset, event) = line.split_once(' ').expect("OFFSET EVENT");
            (
                offset.parse().unwrap(),
                serde_json::from_str(event).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (4, json!({"event_type": "tick", "data": {"i": 4}})),
            (5, json!({"event_type": "tick", "data": {"i": 5}})),
        ]
    );
    let empty = run(&["history", &url, "nothing/here", "--json"]);
    assert_eq!(empty.code, Some(0), "stderr: {}", empty.stderr);
    assert!(empty.stdout.is_empty());
    smol::block_on(server.shutdown());
}

#[test]
fn history_fails_with_exit_1_when_the_server_is_unreachable() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut proc = support::Proc::spawn(
        &["history", &url, "news"],
        &[("SWITCHBOARD_MAX_RETRIES", "0")],
    );
    assert_eq!(proc.wait().code(), Some(1));
    assert!(proc.stderr_until("error:").contains("news"));
}
