//! # switchboard-smol
//!
//! Switchboard on [smol](https://docs.rs/smol): the [`Runtime`] implementation (clock, timers, spawning, TCP).
//! WebSocket framing is async-tungstenite's runtime-neutral API, used by `switchboard-runtime` over these streams.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::net::{SocketAddr, TcpListener};

use smol::Async;
use switchboard_protocol::time::Timestamp;
use switchboard_runtime::{BoxFuture, Clock, Runtime, TcpListen};

mod tcp;
pub use tcp::SmolTcp;

/// The smol runtime: tasks go to smol's global executor, timers are `async-io` timers.
#[derive(Debug, Clone, Default)]
pub struct SmolRuntime {
    clock: Clock,
}

impl SmolRuntime {
    /// A runtime whose clock starts now.
    pub fn new() -> Self {
        SmolRuntime {
            clock: Clock::new(),
        }
    }
}

impl Runtime for SmolRuntime {
    type Tcp = SmolTcp;
    type Listener = SmolListener;

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        let at = self.clock.instant_at(deadline);
        Box::pin(async move {
            smol::Timer::at(at).await;
        })
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        smol::spawn(future).detach();
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<SmolListener>> {
        Box::pin(async move { Ok(SmolListener(Async::<TcpListener>::bind(addr)?)) })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<SmolTcp>> {
        Box::pin(SmolTcp::connect(addr))
    }

    fn resolve(&self, host_port: String) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { smol::net::resolve(host_port).await })
    }
}

/// A bound smol TCP listener.
#[derive(Debug)]
pub struct SmolListener(Async<TcpListener>);

impl TcpListen for SmolListener {
    type Stream = SmolTcp;

    fn accept(&self) -> BoxFuture<'_, io::Result<(SmolTcp, SocketAddr)>> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            Ok((SmolTcp::new(stream)?, peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::time::Duration;

    #[test]
    fn tcp_round_trip_and_timer() {
        smol::block_on(async {
            let rt = SmolRuntime::new();
            let listener = rt.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, rx) = smol::channel::bounded(1);
            rt.spawn(Box::pin(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).await.unwrap();
                tx.send(buf).await.unwrap();
            }));
            let mut c = rt.connect(addr).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            let got = futures_lite::future::or(async { Some(rx.recv().await.unwrap()) }, async {
                smol::Timer::after(Duration::from_secs(10)).await;
                None
            })
            .await;
            assert_eq!(got, Some(*b"hello"));
            let before = rt.now();
            rt.sleep_until(before + Duration::from_millis(20)).await;
            assert!(rt.now() >= before + Duration::from_millis(20));
        });
    }
}
