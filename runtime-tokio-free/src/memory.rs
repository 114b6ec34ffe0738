//! An in-memory transport for tests: [`duplex`] makes a connected pair of [`MemoryStream`]s, each an
//! `AsyncRead + AsyncWrite`, with a bounded buffer per direction so backpressure (a peer that stops reading) behaves
//! as on a socket.
//!
//! Closing (or dropping) one end makes the other end's reads return end-of-file once the buffered bytes are read,
//! and its writes fail with `BrokenPipe`.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};

/// One direction of the pair.
#[derive(Debug)]
struct Pipe {
    buf: VecDeque<u8>,
    capacity: usize,
    /// The writing end closed or was dropped.
    write_closed: bool,
    /// The reading end was dropped.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

type SharedPipe = Arc<Mutex<Pipe>>;

fn lock(pipe: &SharedPipe) -> MutexGuard<'_, Pipe> {
    // A panic while holding this lock cannot leave the pipe inconsistent: every update is a single step.
    pipe.lock().unwrap_or_else(|e| e.into_inner())
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

/// One end of an in-memory connection. See [`duplex`].
#[derive(Debug)]
pub struct MemoryStream {
    read: SharedPipe,
    write: SharedPipe,
}

/// A connected pair of streams; each direction buffers at most `capacity` bytes (at least 1).
pub fn duplex(capacity: usize) -> (MemoryStream, MemoryStream) {
    let pipe = || {
        Arc::new(Mutex::new(Pipe {
            buf: VecDeque::new(),
            capacity: capacity.max(1),
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
        }))
    };
    let a_to_b = pipe();
    let b_to_a = pipe();
    (
        MemoryStream {
            read: b_to_a.clone(),
            write: a_to_b.clone(),
        },
        MemoryStream {
            read: a_to_b,
            write: b_to_a,
        },
    )
}

impl AsyncRead for MemoryStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.read);
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if pipe.buf.is_empty() {
            if pipe.write_closed {
                return Poll::Ready(Ok(0));
            }
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = out.len().min(pipe.buf.len());
        for (slot, byte) in out.iter_mut().zip(pipe.buf.drain(..n)) {
            *slot = byte;
        }
        wake(&mut pipe.writer);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.write);
        if pipe.read_closed || pipe.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = pipe.capacity.saturating_sub(pipe.buf.len());
        if room == 0 {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        pipe.buf.extend(&data[..n]);
        wake(&mut pipe.reader);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut pipe = lock(&self.write);
        pipe.write_closed = true;
        wake(&mut pipe.reader);
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemoryStream {
    fn drop(&mut self) {
        let mut w = lock(&self.write);
        w.write_closed = true;
        wake(&mut w.reader);
        drop(w);
        let mut r = lock(&self.read);
        r.read_closed = true;
        r.buf.clear();
        wake(&mut r.writer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn bytes_flow_both_ways_and_close_is_eof() {
        block_on(async {
            let (mut a, mut b) = duplex(64);
            a.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            b.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            b.write_all(b"pong").await.unwrap();
            a.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"pong");
            a.write_all(b"last").await.unwrap();
            a.close().await.unwrap();
            let mut rest = Vec::new();
            b.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, b"last");
        });
    }

    #[test]
    fn a_full_pipe_blocks_the_writer_until_read() {
        block_on(async {
            let (mut a, mut b) = duplex(4);
            assert_eq!(a.write(b"abcdef").await.unwrap(), 4);
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut a).poll_write(&mut cx, b"ef").is_pending());
            let mut buf = [0u8; 2];
            b.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ab");
            assert_eq!(a.write(b"ef").await.unwrap(), 2);
        });
    }

    #[test]
    fn dropping_one_end_breaks_the_other() {
        block_on(async {
            let (mut a, b) = duplex(8);
            drop(b);
            let err = a.write(b"x").await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
            let mut buf = [0u8; 1];
            assert_eq!(a.read(&mut buf).await.unwrap(), 0);
        });
    }
}
