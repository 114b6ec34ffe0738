//! [`SmolTcp`]: a TCP stream on smol's reactor that, after a read which drained the socket, waits for readiness
//! instead of asking the socket again.
//!
//! async-io's own streams try a read before they wait, so the read after one that emptied the socket is a
//! `recvfrom` that finds nothing, and only then does the wait arm epoll. For a connection that gets one request at a
//! time that is one syscall in four. A read that filled less than its buffer has almost always emptied the socket,
//! so this stream arms the wait straight after one. Nothing is missed: readiness is level-triggered, so bytes that
//! arrived in between end the wait at once (one trip through the reactor instead of a read).

use std::io::{self, IoSlice, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};
use smol::Async;

/// See the module documentation.
#[derive(Debug)]
pub struct SmolTcp {
    io: Async<TcpStream>,
    /// The last read returned less than it was offered room for: the socket is most likely empty.
    drained: bool,
}

impl SmolTcp {
    /// Connects to `addr`, with Nagle's algorithm off (frames are written whole, and late).
    pub async fn connect(addr: SocketAddr) -> io::Result<SmolTcp> {
        SmolTcp::new(Async::<TcpStream>::connect(addr).await?)
    }

    /// Wraps a connected socket, with Nagle's algorithm off.
    pub fn new(io: Async<TcpStream>) -> io::Result<SmolTcp> {
        io.get_ref().set_nodelay(true)?;
        Ok(SmolTcp { io, drained: false })
    }

    /// Arms the wait for readability, after a read that found the socket empty or emptied it. A report of the
    /// reactor's still unconsumed (the reads go straight to the socket, so nothing consumed it) is from before that
    /// read: it is taken first, so that it does not send the caller back to a socket it knows is empty. If it was
    /// news instead (bytes arrived after the read), the armed wait ends at once: readiness is level-triggered.
    fn poll_wait_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Poll::Ready(result) = self.io.poll_readable(cx) {
            result?;
        }
        self.io.poll_readable(cx)
    }

    /// Runs `write` on the socket until it does not find the socket full, waiting for room in between.
    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match write(self.io.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.io.poll_writable(cx))?;
                }
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncRead for SmolTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if std::mem::take(&mut this.drained) {
            ready!(this.poll_wait_readable(cx))?;
        }
        loop {
            match this.io.get_ref().read(buf) {
                Ok(n) => {
                    // An end of stream (0) is not "drained": asking again answers at once.
                    this.drained = n > 0 && n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(this.poll_wait_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SmolTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |mut socket| socket.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |mut socket| socket.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TCP socket holds nothing back in user space.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.io.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::time::Duration;

    #[test]
    fn a_short_read_then_waits_and_misses_nothing() {
        let test = async {
            let listener = Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0))?;
            let mut client = SmolTcp::connect(listener.get_ref().local_addr()?).await?;
            let (server, _) = listener.accept().await?;
            let mut server = SmolTcp::new(server)?;
            let mut buf = [0u8; 64];

            client.write_all(b"hello").await?;
            assert_eq!(server.read(&mut buf).await?, 5);
            assert!(server.drained, "a short read counts the socket as empty");
            // Sent before the next read: the wait ends at once and the bytes are read.
            client.write_all(b"abc").await?;
            assert_eq!(server.read(&mut buf).await?, 3);
            assert_eq!(&buf[..3], b"abc");
            // A full read does not count it as empty.
            client.write_all(&[7u8; 100]).await?;
            let mut exact = [0u8; 100];
            server.read_exact(&mut exact).await?;
            assert_eq!(exact, [7u8; 100]);

            client.close().await?;
            assert_eq!(server.read(&mut buf).await?, 0);
            assert!(
                !server.drained,
                "the end of the stream is told again at once"
            );
            assert_eq!(server.read(&mut buf).await?, 0);
            io::Result::Ok(())
        };
        let bounded = futures_lite::future::or(async { Some(test.await) }, async {
            smol::Timer::after(Duration::from_secs(10)).await;
            None
        });
        match smol::block_on(bounded) {
            Some(result) => result.expect("the socket works"),
            None => panic!("the test did not finish in 10 s"),
        }
    }
}
