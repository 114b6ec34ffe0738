//! `switchboard sub URL 'jobs/*' --json` behind a proxy that cuts every connection twice: every event of twenty
//! `jobs/N` channels (five existing before the subscription, fifteen made after it) is printed exactly once, in
//! per-channel order, with nothing of channels the pattern does not match.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use support::{run, serve};

/// A TCP proxy to `upstream` whose [`cut`](Proxy::cut) closes every connection it carries. Dropping it stops it:
/// its connections are cut and its accept loop ends.
struct Proxy {
    addr: String,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    accepting: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let conns = Arc::clone(&open);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        // Each copy thread ends when its connection is cut or closed.
        let accepting = thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut kept = conns.lock().unwrap();
                kept.push(client.try_clone().unwrap());
                kept.push(server.try_clone().unwrap());
                drop(kept);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy {
            addr,
            open,
            stop,
            accepting: Some(accepting),
        }
    }

    fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

fn publish(url: &str, channel: &str, n: u64) {
    let done = run(&["pub", url, channel, &format!(r#"{{"n":{n}}}"#)]);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}

#[test]
fn sub_with_a_pattern_prints_every_event_once_across_cut_connections() {
    let (_server, url) = serve(&[]);
    let upstream = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_suffix("/api/ws"))
        .expect("a ws URL")
        .to_owned();
    let proxy = Proxy::start(upstream);
    for n in 1..=5 {
        publish(&url, &format!("jobs/{n}"), 0);
    }
    let proxied = format!("ws://{}/api/ws", proxy.addr);
    let sub = support::Proc::spawn(&["sub", &proxied, "jobs/*", "--json"], &[]);
    sub.stderr_until("subscribed");
    for round in 1..=3 {
        // Rounds 2 and 3 are published while the subscriber is cut off (or reconnecting): they come by recovery.
        if round > 1 {
            proxy.cut();
        }
        for n in 1..=20 {
            publish(&url, &format!("jobs/{n}"), round);
        }
        publish(&url, "jobs/1/deeper", round);
        publish(&url, "other", round);
    }
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for _ in 0..60 {
        let line = sub.json_line();
        let channel = line["channel"].as_str().expect("a channel").to_owned();
        let offset = line["offset"].as_u64().expect("an offset");
        seen.entry(channel).or_default().push(offset);
    }
    for n in 1..=20 {
        let want: Vec<u64> = if n <= 5 { vec![2, 3, 4] } else { vec![1, 2, 3] };
        assert_eq!(seen[&format!("jobs/{n}")], want, "jobs/{n}");
    }
    assert_eq!(seen.len(), 20, "{seen:?}");
    // Nothing more: a marker published last is the next line.
    publish(&url, "jobs/20", 4);
    let line = sub.json_line();
    assert_eq!(
        (line["channel"].as_str(), line["offset"].as_u64()),
        (Some("jobs/20"), Some(4))
    );
    let log = sub.drain_stderr();
    assert!(
        log.contains("disconnected"),
        "the proxy cut the subscriber: {log}"
    );
    sub.signal("INT");
}
