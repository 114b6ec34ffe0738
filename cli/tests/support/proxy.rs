//! [`Proxy`]: a TCP proxy on 127.0.0.1 port 0 forwarding each new connection to one backend at a time, the one
//! last [switched to](Proxy::switch_to) — a load balancer in miniature, for clients that must reconnect to another
//! node. Stopped (every connection cut) when dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running proxy.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    backend: Mutex<SocketAddr>,
    stop: AtomicBool,
    /// Both ends of every connection made, to cut them when the proxy stops.
    sockets: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// A proxy forwarding to `backend` (`host:port`).
    pub fn start(backend: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            backend: Mutex::new(backend.parse().expect("a backend address")),
            stop: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || accept_loop(&listener, &accepting));
        Proxy { addr, shared }
    }

    /// Where clients connect (`host:port`).
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// New connections go to `backend` from now on (open ones stay where they are).
    pub fn switch_to(&self, backend: &str) {
        *self.shared.backend.lock().expect("the backend") = backend.parse().expect("an address");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for socket in self.shared.sockets.lock().expect("the sockets").drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let backend = *shared.backend.lock().expect("the backend");
                // A backend that is gone: the client sees its connection closed, as behind a real balancer.
                let Ok(server) = TcpStream::connect_timeout(&backend, Duration::from_secs(2))
                else {
                    continue;
                };
                if client.set_nonblocking(false).is_err() {
                    continue;
                }
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                shared.sockets.lock().expect("the sockets").extend([c3, s3]);
                std::thread::spawn(move || pump(client, server));
                std::thread::spawn(move || pump(s2, c2));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Copies `from` to `to` until either ends, then cuts both (a dead backend ends its clients' connections).
fn pump(mut from: TcpStream, mut to: TcpStream) {
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
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
