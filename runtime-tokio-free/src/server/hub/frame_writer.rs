//! The writing end of a WebSocket connection: frames taken from the [`Outbound`](super::outbound::Outbound)
//! queue, written as they are with vectored writes (many frames per syscall), flushed once when the queue is empty.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::AsyncWrite;

use super::outbound::Out;

/// Most frames handed to one vectored write.
const MAX_SLICES: usize = 32;
/// Most bytes handed to one vectored write (a frame bigger than this goes alone).
const MAX_WRITE_BYTES: usize = 256 * 1024;
/// A queue's capacity kept while idle; bigger ones (after a burst) are given back.
const IDLE_CAPACITY: usize = 64;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    sink: W,
    /// Frames taken and not yet written whole, oldest first.
    pub queue: VecDeque<Out>,
    /// Bytes of the front frame already written.
    offset: usize,
    /// Everything written is not yet flushed.
    unflushed: bool,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(sink: W) -> Self {
        FrameWriter {
            sink,
            queue: VecDeque::new(),
            offset: 0,
            unflushed: false,
        }
    }

    /// Writes the queue until it is empty, then flushes. Gives the counted bytes of the frames written whole
    /// through `written` as they go (so a cancelled call loses no count). Cancel-safe: a frame leaves the queue
    /// only once written whole, and a partly written one resumes where it stopped.
    pub fn poll_write_all(
        &mut self,
        cx: &mut Context<'_>,
        written: &mut usize,
    ) -> Poll<io::Result<()>> {
        while let Some(front) = self.queue.front() {
            let first = &front.bytes()[self.offset..];
            let sink = Pin::new(&mut self.sink);
            let (result, bytes) = if self.queue.len() == 1 {
                // The usual case at a modest rate: one frame, a plain write.
                (sink.poll_write(cx, first), first.len())
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                slices[0] = IoSlice::new(first);
                let mut count = 1;
                let mut bytes = first.len();
                for item in self.queue.iter().skip(1) {
                    let data = item.bytes();
                    if count == MAX_SLICES || bytes + data.len() > MAX_WRITE_BYTES {
                        break;
                    }
                    slices[count] = IoSlice::new(data);
                    count += 1;
                    bytes += data.len();
                }
                (sink.poll_write_vectored(cx, &slices[..count]), bytes)
            };
            let n = match result {
                Poll::Ready(Ok(0)) if bytes > 0 => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.unflushed = true;
            self.advance(n, written);
        }
        if self.unflushed {
            match Pin::new(&mut self.sink).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                other => return other,
            }
        }
        if self.queue.capacity() > IDLE_CAPACITY {
            self.queue = VecDeque::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Drops the `n` bytes just written from the front of the queue.
    fn advance(&mut self, mut n: usize, written: &mut usize) {
        while let Some(front) = self.queue.front() {
            let left = front.bytes().len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            *written += front.counted();
            self.offset = 0;
            self.queue.pop_front();
        }
    }

    /// The sink, to look at (the write path's microbenchmark counts what it took).
    #[cfg(any(test, feature = "_internal_test_exports"))]
    pub fn sink(&self) -> &W {
        &self.sink
    }

    /// The socket's write half, for closing our direction.
    pub fn into_sink(self) -> W {
        self.sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::hub::ws_frame::text_frame;
    use std::task::Waker;

    /// A sink that takes at most `per_write` bytes per call and counts its calls.
    struct Trickle {
        got: Vec<u8>,
        per_write: usize,
        calls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            this.calls += 1;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(this.per_write - n);
                this.got.extend_from_slice(&buf[..take]);
                n += take;
            }
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn frames(n: usize) -> (VecDeque<Out>, Vec<u8>) {
        let mut queue = VecDeque::new();
        let mut expected = Vec::new();
        for i in 0..n {
            let text = format!("{{\"n\":{i}}}");
            let frame = text_frame(&text);
            expected.extend_from_slice(&frame);
            queue.push_back(Out::Data {
                frame,
                text_len: text.len(),
            });
        }
        queue.push_back(Out::Control(Box::new([0x8A, 0x00])));
        expected.extend_from_slice(&[0x8A, 0x00]);
        (queue, expected)
    }

    #[test]
    fn many_frames_go_in_few_writes_and_partial_writes_resume() {
        for per_write in [1, 7, 1 << 20] {
            let (queue, expected) = frames(100);
            let counted: usize = queue.iter().map(Out::counted).sum();
            let mut writer = FrameWriter::new(Trickle {
                got: Vec::new(),
                per_write,
                calls: 0,
            });
            writer.queue = queue;
            let mut written = 0;
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(
                writer.poll_write_all(&mut cx, &mut written),
                Poll::Ready(Ok(()))
            ));
            assert_eq!(written, counted);
            let sink = writer.into_sink();
            assert_eq!(sink.got, expected, "per write {per_write}");
            if per_write > expected.len() {
                assert_eq!(sink.calls, 101usize.div_ceil(MAX_SLICES));
            } else {
                assert!(sink.calls >= expected.len() / per_write);
            }
        }
    }
}
