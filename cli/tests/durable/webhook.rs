//! The webhook sender's place across crashes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::{Receiver, channel};

use serde_json::{Value, json};

use crate::support::STEP;
use crate::support::data_dir::TempDir;
use crate::support::rest::Http;
use crate::{free_port, publish_at, start};

/// A webhook receiver on `listener` answering 200 to every request and passing on each body. (Signatures are
/// checked in the webhook tests; here only what is delivered, and in what order, matters.)
fn webhook_receiver(listener: TcpListener) -> Receiver<Value> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone the stream");
                let mut reader = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.trim().eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("a length");
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = tx.send(serde_json::from_slice(&body).expect("a JSON body"));
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    rx
}

/// Deliveries of `channel` until one of `offset` arrives; returns their offsets.
fn deliveries_through(deliveries: &Receiver<Value>, channel: &str, offset: u64) -> Vec<u64> {
    let mut offsets = Vec::new();
    while offsets.last() != Some(&offset) {
        let body = deliveries
            .recv_timeout(STEP)
            .unwrap_or_else(|_| panic!("no delivery of {channel} #{offset}; got {offsets:?}"));
        assert_eq!(body["type"], "channel_event", "{body}");
        assert_eq!(body["channel"], channel, "{body}");
        let got = body["offset"].as_u64().expect("an offset");
        assert_eq!(body["event"], json!({"n": got}), "{body}");
        offsets.push(got);
    }
    offsets
}

#[test]
fn the_webhook_sender_resumes_after_a_crash_from_where_it_stopped() {
    let dir = TempDir::new("webhook");
    // The receiver's address is known before it listens: down while the first events are published.
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let webhook = [
        "--webhook",
        hook.as_str(),
        "--webhook-secret",
        "durable-secret",
        "--webhook-channel",
        "jobs/*",
    ];
    let channel = "jobs/7";
    let mut server = start("127.0.0.1:0", &dir, &webhook);
    let mut http = Http::new(&server.addr);
    for n in 1..=3 {
        publish_at(&mut http, channel, &json!({"n": n}), false, n);
    }
    // Crashed before any of them could be delivered.
    server.proc.kill_hard();

    let deliveries =
        webhook_receiver(TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver's port"));
    let mut server = start("127.0.0.1:0", &dir, &webhook);
    assert_eq!(
        deliveries_through(&deliveries, channel, 3),
        [1, 2, 3],
        "the sender resumes with what it had not delivered, in order"
    );
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, channel, &json!({"n": 4}), false, 4);
    assert_eq!(deliveries_through(&deliveries, channel, 4), [4]);

    // A second crash after deliveries: at least once and in order, so a redelivery starts at some earlier offset
    // and runs up through the new event without a gap.
    server.proc.kill_hard();
    let server = start("127.0.0.1:0", &dir, &webhook);
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, channel, &json!({"n": 5}), false, 5);
    let after = deliveries_through(&deliveries, channel, 5);
    let first = after[0];
    assert_eq!(
        after,
        (first..=5).collect::<Vec<_>>(),
        "deliveries after the restart are in offset order with no gap"
    );
}
