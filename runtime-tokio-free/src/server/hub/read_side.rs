//! The stream tungstenite reads a server connection through: the socket's read half, and in place of its write
//! half the connection's [`Outbound`] queue.
//!
//! tungstenite answers pings and the peer's close by itself, writing whole frames while it reads. Those frames go
//! into the outbound queue behind whatever is queued, so the session's writing stays the only writing to the socket
//! and every frame reaches the peer whole and in order.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::io::ReadHalf;

use super::outbound::Outbound;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct ReadSide<S> {
    /// The socket's read half.
    pub read: ReadHalf<S>,
    /// Where tungstenite's own frames go.
    pub outbound: Arc<Outbound>,
}

impl<S: AsyncRead + AsyncWrite> AsyncRead for ReadSide<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl<S> AsyncWrite for ReadSide<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // tungstenite writes only once a frame is whole in its buffer and hands all of it over; taking all of it
        // keeps its buffer empty, so every write is whole frames.
        self.outbound.push_control(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
