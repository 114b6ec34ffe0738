//! Refused handshakes: a 401 (no token), 403 or 404 upgrade stops the client for good; the right token connects.

use switchboard_protocol::server::Permissions;
use switchboard_runtime::Runtime;
use switchboard_runtime::client::{Client, ConnectionState, RequestError};
use switchboard_runtime::server::StaticTokens;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{connected, next, options, server_config, start};

/// Without a token the upgrade is answered 401: the client gives up at once (no retry loop) and fails its
/// requests. With the token (sent as `Authorization: Bearer`) it connects and works.
pub async fn a_refused_token_gives_up_and_a_good_one_connects<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let tokens = StaticTokens::new().with("s3cret", Permissions::allow_all());
        let config = server_config().with_verifier(tokens);
        let (server, addr) = start(&rt, config).await;
        let url = format!("ws://{addr}/api/ws");

        let anonymous = Client::connect(rt.clone(), &url, options(9)).expect("valid URL");
        let mut states = anonymous.state_changes();
        let reason = loop {
            match next(&rt, &mut states).await {
                ConnectionState::GaveUp { reason } => break reason,
                ConnectionState::Connected { .. } => panic!("connected without a token"),
                _ => {}
            }
        };
        assert!(reason.contains("401"), "{reason}");
        assert_eq!(anonymous.get_state("x").await, Err(RequestError::Closed));

        let mut with_token = options(10);
        with_token.token = Some("s3cret".into());
        let member = Client::connect(rt.clone(), &url, with_token).expect("valid URL");
        let mut states = member.state_changes();
        connected(&rt, &mut states).await;
        assert_eq!(member.get_state("x").await.expect("state").offset, 0);
        member.close().await;
        server.shutdown().await;
    })
    .await
}

/// An upgrade answered 403 or 404 cannot be fixed by retrying: the client gives up after one attempt, names the
/// status, and fails its requests with `Closed`. The answers come from a bare listener that waits 100 ms before
/// refusing, so the test's state feed is registered before the client gives up (a feed asked for after the client's
/// task has ended gets nothing).
pub async fn a_refused_handshake_gives_up_after_one_attempt<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        for (seed, status) in [(31, "403 Forbidden"), (32, "404 Not Found")] {
            let refuser = Refuser::start(status);
            let url = format!("ws://{}/api/ws", refuser.addr);
            let refused = Client::connect(rt.clone(), &url, options(seed)).expect("valid URL");
            let reason = gave_up(&rt, &refused).await;
            assert!(reason.contains(&status[..3]), "{status}: {reason}");
            assert_eq!(refused.get_state("x").await, Err(RequestError::Closed));
            // A state feed asked for after the client's task ended still starts with the state it ended in.
            let mut late = refused.state_changes();
            assert!(
                matches!(next(&rt, &mut late).await, ConnectionState::GaveUp { .. }),
                "{status}: a late feed must say GaveUp"
            );
            // Ten times the first backoff delay (50 ms): a retrying client would have dialed again by now.
            rt.sleep_until(rt.now() + std::time::Duration::from_millis(500))
                .await;
            assert_eq!(
                refuser.stop(),
                1,
                "the client dialed again after a {status}"
            );
        }
    })
    .await
}

/// Waits for the client's `GaveUp` and returns its reason; connecting fails the test.
async fn gave_up<R: Runtime>(rt: &R, app: &Client) -> String {
    let mut states = app.state_changes();
    loop {
        match next(rt, &mut states).await {
            ConnectionState::GaveUp { reason } => return reason,
            ConnectionState::Connected { .. } => panic!("connected through a refused handshake"),
            _ => {}
        }
    }
}

/// A loopback listener on its own thread that answers every connection with one refusing status, 100 ms after
/// reading its request head, and counts them.
struct Refuser {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Refuser {
    fn start(status: &'static str) -> Refuser {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("a bound address");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut accepted = 0;
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        accepted += 1;
                        stream.set_nonblocking(false).expect("blocking");
                        stream
                            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                            .expect("a read timeout");
                        // Read the request head, then refuse it.
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        let body = r#"{"error":{"code":"REFUSED","message":"no"}}"#;
                        let reply = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(reply.as_bytes());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            accepted
        });
        Refuser { addr, stop, thread }
    }

    /// Stops the listener and returns how many connections it refused.
    fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the refuser thread")
    }
}
