//! [`Yielding`]: a stream whose every read and every write first answers `Pending` once, having woken the caller
//! at once; [`YieldingRuntime`]: a runtime whose every connection, dialled or accepted, is one.
//!
//! That is what a reactor on another thread does when bytes arrive (or room frees up) just after a read or write
//! armed its wait: the wake-up comes while the task is still in the poll that armed it. A task that stores its
//! waker only later in that poll misses it and sleeps with bytes waiting. Over these streams every read and write
//! meets that moment, so a lost wake-up hangs a test every time instead of one run in fifty. The end-to-end
//! scenarios run over [`YieldingRuntime`] around smol as a third runtime.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use switchboard_protocol::time::Timestamp;
use switchboard_runtime::{BoxFuture, Runtime, TcpListen};

/// See the module documentation.
#[derive(Debug)]
pub struct Yielding<S> {
    inner: S,
    /// The next read goes through to `inner` (the previous one yielded).
    read_passes: bool,
    /// The next write goes through to `inner` (the previous one yielded).
    write_passes: bool,
}

impl<S> Yielding<S> {
    /// Wraps `inner`: its reads and writes yield once each.
    pub fn new(inner: S) -> Self {
        Yielding {
            inner,
            read_passes: false,
            write_passes: false,
        }
    }
}

/// Every other call: wakes the caller and answers `true` (the call yields).
fn yields(passes: &mut bool, cx: &Context<'_>) -> bool {
    *passes = !*passes;
    if *passes {
        return false;
    }
    cx.waker().wake_by_ref();
    true
}

impl<S: AsyncRead + Unpin> AsyncRead for Yielding<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if yields(&mut this.read_passes, cx) {
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
        let this = self.get_mut();
        if yields(&mut this.write_passes, cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if yields(&mut this.write_passes, cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// A runtime like `R` whose connections are [`Yielding`].
#[derive(Debug, Clone)]
pub struct YieldingRuntime<R>(pub R);

/// A listener whose accepted connections are [`Yielding`].
#[derive(Debug)]
pub struct YieldingListener<L>(L);

impl<L: TcpListen> TcpListen for YieldingListener<L> {
    type Stream = Yielding<L::Stream>;

    fn accept(&self) -> BoxFuture<'_, io::Result<(Self::Stream, SocketAddr)>> {
        let accepting = self.0.accept();
        Box::pin(async move {
            let (stream, peer) = accepting.await?;
            Ok((Yielding::new(stream), peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl<R: Runtime> Runtime for YieldingRuntime<R> {
    type Tcp = Yielding<R::Tcp>;
    type Listener = YieldingListener<R::Listener>;

    fn now(&self) -> Timestamp {
        self.0.now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        self.0.sleep_until(deadline)
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        self.0.spawn(future);
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>> {
        let binding = self.0.bind(addr);
        Box::pin(async move { binding.await.map(YieldingListener) })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Tcp>> {
        let dialling = self.0.connect(addr);
        Box::pin(async move { dialling.await.map(Yielding::new) })
    }

    fn resolve(&self, host_port: String) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        self.0.resolve(host_port)
    }
}
