//! The server's per-delivery write path with the socket taken out (feature `_internal_test_exports`), for its
//! microbenchmark (`cargo bench -p switchboard-runtime --features _internal_test_exports --bench write_path`).
//!
//! [`WritePath::deliver`] runs what the hub's driver and the connections' tasks run for a batch of published
//! events, with the same code: each event's text is framed once (`FrameCache`); for every subscriber the driver
//! looks the connection up (`ConnMap`), pushes the shared frame onto its `Outbound` queue and keeps the waker
//! that push hands back; then every woken writer takes its queue and writes it with vectored writes
//! (`FrameWriter`) into a sink that takes every byte, and counts what it wrote. What is left out is the kernel
//! (the `writev` itself) and the executor's scheduling of the woken tasks: `bench fanout` measures those whole.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_io::AsyncWrite;
use switchboard_protocol::server::ConnId;

use crate::server::hub::conn_map::ConnMap;
use crate::server::hub::frame_writer::FrameWriter;
use crate::server::hub::outbound::{Out, Outbound, Taken};
use crate::server::hub::ws_frame::FrameCache;

/// The `seq`th event of a fan-out as the hub hands it out: `size` bytes of native `event` frame text (or the
/// fewest the frame takes, about 45, if that is more).
pub fn event_text(seq: usize, size: usize) -> Arc<str> {
    let head = format!("{{\"type\":\"event\",\"data\":{{\"seq\":{seq},\"pad\":\"");
    let pad = "x".repeat(size.saturating_sub(head.len() + 3));
    Arc::from(format!("{head}{pad}\"}}}}"))
}

/// A socket's write half that takes every byte at once and keeps a count of them.
#[derive(Debug, Default)]
pub struct CountingSink {
    /// Bytes written so far.
    pub bytes: usize,
}

impl AsyncWrite for CountingSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().bytes += buf.len();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = bufs.iter().map(|b| b.len()).sum();
        self.get_mut().bytes += n;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// One subscriber's end: its queue, as the driver holds it, and its writer, as its task holds it.
#[derive(Debug)]
struct Subscriber {
    outbound: Arc<Outbound>,
    writer: FrameWriter<CountingSink>,
}

/// `subscribers` connections, each waiting on its empty queue, as between two publishes.
#[derive(Debug)]
pub struct WritePath {
    ids: Vec<ConnId>,
    conns: ConnMap<Subscriber>,
    frames: FrameCache,
    wake: Vec<Waker>,
}

impl WritePath {
    /// Opens `subscribers` connections whose writers wait for something to write.
    pub fn new(subscribers: usize) -> WritePath {
        let mut conns = ConnMap::default();
        let mut ids = Vec::with_capacity(subscribers);
        for i in 0..subscribers {
            // Shaped as the hub hands ids out: the slot in the high half, the generation in the low one.
            let id = ConnId::from_u64(((i as u64) << 32) | 1);
            let mut subscriber = Subscriber {
                outbound: Arc::new(Outbound::default()),
                writer: FrameWriter::new(CountingSink::default()),
            };
            // The writer waits: its waker is parked in the queue, so the first push hands it back.
            let cx = Context::from_waker(Waker::noop());
            let waiting = subscriber
                .outbound
                .poll_take(&cx, &mut subscriber.writer.queue);
            debug_assert!(waiting.is_pending());
            conns.insert(id, subscriber);
            ids.push(id);
        }
        WritePath {
            ids,
            conns,
            frames: FrameCache::default(),
            wake: Vec::new(),
        }
    }

    /// Delivers every text in `texts` to every subscriber, in order: the driver's part for all of them (as one
    /// drain of the hub's output would), then each woken writer's. Gives the hub's bytes written (what
    /// `handle_sent` is told), which is `subscribers × Σ text lengths`.
    pub fn deliver(&mut self, texts: &[Arc<str>]) -> usize {
        for text in texts {
            for id in &self.ids {
                let Some(subscriber) = self.conns.get(id) else {
                    continue;
                };
                let item = Out::Data {
                    frame: self.frames.framed(text),
                    text_len: text.len(),
                };
                let (waker, _written) = subscriber.outbound.push(item);
                self.wake.extend(waker);
            }
        }
        self.frames.clear();
        // Waking a noop waker costs nothing; the woken writers are the connections whose queue went non-empty.
        let woken = self.wake.len();
        self.wake.clear();
        debug_assert_eq!(woken, if texts.is_empty() { 0 } else { self.ids.len() });
        let mut counted = 0;
        let mut cx = Context::from_waker(Waker::noop());
        for subscriber in self.conns.values_mut() {
            let Subscriber { outbound, writer } = subscriber;
            let mut written = 0;
            while let Poll::Ready(Taken::Frames) = outbound.poll_take(&cx, &mut writer.queue) {
                // The counting sink neither fails nor waits: this writes everything taken.
                let _ = writer.poll_write_all(&mut cx, &mut written);
            }
            counted += outbound.written(written);
            outbound.take_written();
        }
        counted
    }

    /// Every byte the subscribers' sockets took: frames, headers included.
    pub fn bytes_written(&self) -> usize {
        self.conns.values().map(|s| s.writer.sink().bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::hub::ws_frame::text_frame;

    #[test]
    fn event_texts_are_the_size_asked_for() {
        for size in [64, 100, 1000] {
            let text = event_text(7, size);
            assert_eq!(text.len(), size);
            assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
        }
    }

    #[test]
    fn every_subscriber_gets_every_frame_and_waits_again() {
        let texts: Vec<Arc<str>> = (0..5)
            .map(|i| Arc::from(format!("{{\"seq\":{i}}}")))
            .collect();
        let text_bytes: usize = texts.iter().map(|t| t.len()).sum();
        let frame_bytes: usize = texts.iter().map(|t| text_frame(t).len()).sum();
        let mut path = WritePath::new(3);
        assert_eq!(path.deliver(&texts), 3 * text_bytes);
        assert_eq!(path.bytes_written(), 3 * frame_bytes);
        // The writers wait again: a second batch wakes each of them once more.
        assert_eq!(
            path.deliver(&texts[..2]),
            3 * (texts[0].len() + texts[1].len())
        );
        assert_eq!(path.deliver(&[]), 0);
    }
}
