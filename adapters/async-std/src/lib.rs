//! # switchboard-async-std
//!
//! Switchboard on [async-std](https://docs.rs/async-std) (discontinued upstream; kept for its users): the [`Runtime`] implementation (clock, timers, spawning, TCP).
//! WebSocket framing is async-tungstenite's runtime-neutral API, used by `switchboard-runtime` over these streams.
//!
//! Feature `surf`: the `surf_backend` module, a surf `HttpClient` over the SDK's HTTP/1.1 transport and an SDK transport over
//! surf.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "surf")]
pub mod surf_backend;

use std::io;
use std::net::SocketAddr;

use async_std::net::{TcpListener, TcpStream};
use switchboard_protocol::time::Timestamp;
use switchboard_runtime::{BoxFuture, Clock, Runtime, TcpListen};

/// The async-std runtime: tasks go to async-std's executor, timers are its timers.
#[derive(Debug, Clone, Default)]
pub struct AsyncStdRuntime {
    clock: Clock,
}

impl AsyncStdRuntime {
    /// A runtime whose clock starts now.
    pub fn new() -> Self {
        AsyncStdRuntime {
            clock: Clock::new(),
        }
    }
}

impl Runtime for AsyncStdRuntime {
    type Tcp = TcpStream;
    type Listener = AsyncStdListener;

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        let at = self.clock.instant_at(deadline);
        Box::pin(async move {
            let wait = at.saturating_duration_since(std::time::Instant::now());
            async_std::task::sleep(wait).await;
        })
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        drop(async_std::task::spawn(future));
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<AsyncStdListener>> {
        Box::pin(async move { Ok(AsyncStdListener(TcpListener::bind(addr).await?)) })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<TcpStream>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    }

    fn resolve(&self, host_port: String) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            use async_std::net::ToSocketAddrs;
            Ok(host_port.to_socket_addrs().await?.collect())
        })
    }
}

/// A bound async-std TCP listener.
#[derive(Debug)]
pub struct AsyncStdListener(TcpListener);

impl TcpListen for AsyncStdListener {
    type Stream = TcpStream;

    fn accept(&self) -> BoxFuture<'_, io::Result<(TcpStream, SocketAddr)>> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            Ok((stream, peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::time::Duration;

    #[test]
    fn tcp_round_trip_and_timer() {
        async_std::task::block_on(async {
            let rt = AsyncStdRuntime::new();
            let listener = rt.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, rx) = async_std::channel::bounded(1);
            rt.spawn(Box::pin(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).await.unwrap();
                tx.send(buf).await.unwrap();
            }));
            let mut c = rt.connect(addr).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            let got = async_std::future::timeout(Duration::from_secs(10), rx.recv()).await;
            assert_eq!(got.ok().and_then(Result::ok), Some(*b"hello"));
            let before = rt.now();
            rt.sleep_until(before + Duration::from_millis(20)).await;
            assert!(rt.now() >= before + Duration::from_millis(20));
        });
    }
}
