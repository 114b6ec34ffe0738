//! `serve --webhook`: the binary delivers matching channel events, signed, to a receiver written here; the URL and
//! secret come from `SWITCHBOARD_WEBHOOK_URL` / `SWITCHBOARD_WEBHOOK_SECRET`, the pattern from `--webhook-channel`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{Proc, STEP, listening_on, run};
use switchboard_protocol::auth::WebhookVerifier;
use switchboard_runtime::sdk::WebhookHandler;

/// A receiver answering 200 to every request whose signature verifies (401 otherwise); sends each verified body.
fn receiver(secret: &'static [u8]) -> (String, Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let handler = Arc::new(WebhookHandler::new(WebhookVerifier::new(secret).unwrap()));
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (tx, mut writer) = (tx.clone(), stream.try_clone().unwrap());
            let mut reader = BufReader::new(stream);
            let handler = handler.clone();
            std::thread::spawn(move || {
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (n, v) = h.split_once(':').unwrap();
                        headers.push((n.trim().to_owned(), v.trim().to_owned()));
                    }
                    let length: usize = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().unwrap())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let status = match handler.handle_request(&headers, &body, now) {
                        Ok(_) => {
                            let _ = tx.send(serde_json::from_slice(&body).unwrap());
                            200
                        }
                        Err(_) => 401,
                    };
                    let _ = write!(writer, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    (url, rx)
}

#[test]
fn serve_delivers_matching_channel_events_to_the_webhook() {
    let (hook, deliveries) = receiver(b"cli-secret");
    let server = Proc::spawn(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--webhook-channel",
            "jobs/*",
        ],
        &[
            ("SWITCHBOARD_WEBHOOK_URL", &hook),
            ("SWITCHBOARD_WEBHOOK_SECRET", "cli-secret"),
        ],
    );
    let ws = format!("ws://{}/api/ws", listening_on(&server));
    for (channel, event) in [
        ("jobs/1", r#"{"n":1}"#),
        ("news", r#"{"n":2}"#),
        ("jobs/1", r#"{"n":3}"#),
    ] {
        let done = run(&["pub", &ws, channel, event]);
        assert_eq!(done.code, Some(0), "{}", done.stderr);
    }
    for (offset, n) in [(1, 1), (2, 3)] {
        let body = deliveries.recv_timeout(STEP).expect("a delivery");
        assert_eq!(body["type"], "channel_event");
        assert_eq!(body["channel"], "jobs/1");
        assert_eq!(body["offset"], offset);
        assert_eq!(body["event"]["n"], n);
        assert!(body["epoch"].is_string());
    }
    assert!(deliveries.try_recv().is_err(), "news is not delivered");
}

#[test]
fn a_webhook_url_without_a_secret_is_a_usage_mistake() {
    let done = run(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--webhook",
        "http://127.0.0.1:9/hook",
    ]);
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    let done = run(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--webhook",
        "ftp://127.0.0.1:9/hook",
        "--webhook-secret",
        "s",
    ]);
    assert_eq!(done.code, Some(2), "{}", done.stderr);
}
