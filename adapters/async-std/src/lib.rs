//! # switchboard-async-std
//!
//! Switchboard on [async-std](https://docs.rs/async-std) (discontinued upstream; kept for its users): the [`Runtime`] implementation (clock, timers, spawning, TCP).
//! WebSocket framing is async-tungstenite's runtime-neutral API, used by `switchboard-runtime` over these streams.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_std::io::{Read, Write};
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
    type Tcp = AsyncStdTcp;
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

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<AsyncStdTcp>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(AsyncStdTcp(stream))
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
    type Stream = AsyncStdTcp;

    fn accept(&self) -> BoxFuture<'_, io::Result<(AsyncStdTcp, SocketAddr)>> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            Ok((AsyncStdTcp(stream), peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// An async-std TCP stream whose `poll_close` shuts down the write direction (sends FIN), as the drivers expect
/// when they end a connection gracefully; async-std's own stream only flushes there.
#[derive(Debug)]
pub struct AsyncStdTcp(pub TcpStream);

impl Read for AsyncStdTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl Write for AsyncStdTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_lite::ready!(Pin::new(&mut self.0).poll_flush(cx))?;
        Poll::Ready(match self.0.shutdown(Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
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
                // The client's close is a FIN: the next read is end of stream.
                assert_eq!(s.read(&mut [0u8; 1]).await.unwrap(), 0);
                tx.send(buf).await.unwrap();
            }));
            let mut c = rt.connect(addr).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            c.close().await.unwrap();
            let got = async_std::future::timeout(Duration::from_secs(10), rx.recv()).await;
            assert_eq!(got.ok().and_then(Result::ok), Some(*b"hello"));
            let before = rt.now();
            rt.sleep_until(before + Duration::from_millis(20)).await;
            assert!(rt.now() >= before + Duration::from_millis(20));
        });
    }
}
