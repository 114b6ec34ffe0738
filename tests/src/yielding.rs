//! [`Yielding`]: a stream whose every read first answers `Pending` once, having woken the reader at once.
//!
//! That is what a reactor on another thread does when bytes arrive just after a read armed its wait: the wake-up
//! comes while the reading task is still in the poll that armed it. A task that stores its waker only later in that
//! poll misses it, and sleeps with bytes waiting. Wrapping a server's end of an in-memory connection in this makes
//! every read of the server's meet that moment, so a lost wake-up hangs the test instead of one run in fifty.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

/// See the module documentation.
#[derive(Debug)]
pub struct Yielding<S> {
    inner: S,
    /// The next read goes through to `inner` (the previous one yielded).
    pass: bool,
}

impl<S> Yielding<S> {
    /// Wraps `inner`: its reads yield once each, its writes go straight through.
    pub fn new(inner: S) -> Self {
        Yielding { inner, pass: false }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Yielding<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.pass = !this.pass;
        if this.pass {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Yielding<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
