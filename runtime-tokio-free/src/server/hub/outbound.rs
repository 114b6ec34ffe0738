//! A WebSocket connection's outbound queue: what the driver (under the hub's lock) and the reader (tungstenite's
//! pong and close answers) hand the connection's writer, in order, and the bytes the writer has written since the
//! hub last heard of them.
//!
//! The queue is a `VecDeque` under a mutex only its three users take, each briefly. It wakes the writer only when
//! the writer waits (the queue went from empty to non-empty, or a close arrived): a fan-out to a thousand
//! subscribers is one push and at most one wake-up each, and the driver hands the wake-ups out after it has let go
//! of the hub's lock. The writer takes everything queued at once.
//!
//! A close frame (the hub's, or tungstenite's answer to the peer's) seals the queue: nothing is queued after it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::ws_frame::{close_frame, holds_close};

/// One thing to write, whole.
#[derive(Debug)]
pub(crate) enum Out {
    /// A frame the hub handed out: the shared frame bytes and the length of the hub's text in them (what
    /// `handle_sent` is told).
    Data {
        /// Header and payload, shared by every recipient.
        frame: Arc<[u8]>,
        /// The payload's length.
        text_len: usize,
    },
    /// Frames of the connection's own (pong, close): not counted by the hub.
    Control(Box<[u8]>),
}

impl Out {
    /// The bytes to write.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Out::Data { frame, .. } => frame,
            Out::Control(bytes) => bytes,
        }
    }

    /// What the hub counts of it once written.
    pub fn counted(&self) -> usize {
        match self {
            Out::Data { text_len, .. } => *text_len,
            Out::Control(_) => 0,
        }
    }
}

/// What the writer learns from [`Outbound::poll_take`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Frames were moved into the writer's queue.
    Frames,
    /// The hub closed the connection: write what was taken (ending in the close frame, if one was queued), then
    /// wait for the peer's answer.
    Closing,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Out>,
    /// The writer, when it waits for something to write.
    waker: Option<Waker>,
    /// A close frame is queued: nothing more is.
    sealed: bool,
    /// The hub closed the connection.
    closing: bool,
    /// Counted bytes the writer has written that the hub has not been told of.
    unreported: usize,
    /// The socket woke the connection's reading end ([`Outbound`] as a [`Waker`]): reading has something to do.
    readable: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    state: Mutex<State>,
}

impl Outbound {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned queue is still a consistent one.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a frame the hub handed out. Gives the writer's waker if it was waiting (the caller wakes it, after
    /// letting go of the hub's lock) and the counted bytes written since the hub last heard, which the caller
    /// reports with `handle_sent`.
    pub fn push(&self, item: Out) -> (Option<Waker>, usize) {
        let mut state = self.lock();
        let written = std::mem::take(&mut state.unreported);
        if state.sealed {
            return (None, written);
        }
        state.items.push_back(item);
        (state.waker.take(), written)
    }

    /// Queues frames tungstenite wrote while reading (a pong, or the answer to the peer's close, which seals the
    /// queue) and wakes the writer. Dropped after a close frame: the peer must get nothing after one.
    pub fn push_control(&self, bytes: &[u8]) {
        let waker = {
            let mut state = self.lock();
            if state.sealed {
                return;
            }
            state.sealed = holds_close(bytes);
            state.items.push_back(Out::Control(bytes.into()));
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The hub closed the connection with `code` and `reason`: queues the close frame (unless one is queued
    /// already) and tells the writer. Gives the writer's waker, like [`push`](Self::push).
    pub fn close(&self, code: u16, reason: &str) -> Option<Waker> {
        let mut state = self.lock();
        if !state.sealed {
            state
                .items
                .push_back(Out::Control(close_frame(code, reason)));
            state.sealed = true;
        }
        state.closing = true;
        state.waker.take()
    }

    /// Whether the socket woke the reading end since the last call. The session reads only then: a wake-up of the
    /// queue alone (a fan-out's delivery) costs no read that finds nothing.
    ///
    /// The task's waker is kept either way, before the session reads: the read may arm the socket's wait, and the
    /// socket may wake the queue while the task is still in this poll (a reactor on another thread). That wake-up
    /// must find a waker to wake, or the task sleeps with bytes waiting.
    pub fn poll_readable(&self, cx: &Context<'_>) -> bool {
        let mut state = self.lock();
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        std::mem::take(&mut state.readable)
    }

    /// Moves everything queued into `into` (the writer's queue); `Pending` (with the writer's waker kept) when
    /// there is nothing and no close.
    pub fn poll_take(&self, cx: &Context<'_>, into: &mut VecDeque<Out>) -> Poll<Taken> {
        let mut state = self.lock();
        if into.is_empty() {
            std::mem::swap(into, &mut state.items);
        } else {
            into.append(&mut state.items);
        }
        if state.closing {
            return Poll::Ready(Taken::Closing);
        }
        if !into.is_empty() {
            return Poll::Ready(Taken::Frames);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Whether the hub closed the connection; if not, the writer's waker is kept so that a close wakes it even
    /// while it waits on the socket.
    pub fn poll_closing(&self, cx: &Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.closing {
            return Poll::Ready(());
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Adds counted bytes the writer wrote; gives the total not yet reported.
    pub fn written(&self, bytes: usize) -> usize {
        let mut state = self.lock();
        state.unreported = state.unreported.saturating_add(bytes);
        state.unreported
    }

    /// Takes the counted bytes written and not yet reported (the caller reports them with `handle_sent`).
    pub fn take_written(&self) -> usize {
        std::mem::take(&mut self.lock().unreported)
    }
}

/// The reading end's waker: the socket's readiness marks the connection readable and wakes its task.
impl std::task::Wake for Outbound {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waker = {
            let mut state = self.lock();
            state.readable = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn data(text: &str) -> Out {
        Out::Data {
            frame: super::super::ws_frame::text_frame(text),
            text_len: text.len(),
        }
    }

    /// The socket's wake-up (the queue as a waker) marks the connection readable and wakes the waiting task; the
    /// queue's own wake-ups do not, so a task woken to write does not read; a wake-up while the task runs is kept.
    #[test]
    fn only_the_socket_makes_the_connection_readable() {
        let outbound = Arc::new(Outbound::default());
        let count = Arc::new(Count::default());
        let task = Waker::from(count.clone());
        let cx = Context::from_waker(&task);
        let socket = Waker::from(outbound.clone());
        assert!(!outbound.poll_readable(&cx), "nothing read yet");
        let (writer, _) = outbound.push(data("a"));
        writer.expect("the waiting task").wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(
            !outbound.poll_readable(&cx),
            "woken by the queue, not the socket"
        );
        socket.wake_by_ref();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            2,
            "the socket woke the task"
        );
        assert!(outbound.poll_readable(&cx));
        assert!(!outbound.poll_readable(&cx), "once per wake-up");
        // The socket wakes while the task runs (its waker taken by the queue): the next poll reads.
        let _ = outbound.push(data("b")).0.expect("the waiting task");
        socket.wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(outbound.poll_readable(&cx));
    }

    /// The task's waker is kept even by a poll that finds the connection readable: the session reads next, the
    /// read arms the socket's wait, and a wake-up of the socket's before the poll is over must reach the task.
    #[test]
    fn a_poll_that_reads_still_leaves_the_tasks_waker() {
        let outbound = Arc::new(Outbound::default());
        let count = Arc::new(Count::default());
        let task = Waker::from(count.clone());
        let cx = Context::from_waker(&task);
        let socket = Waker::from(outbound.clone());
        assert!(!outbound.poll_readable(&cx));
        socket.wake_by_ref();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the socket woke the task"
        );
        // The woken task polls: readable, so it reads; the socket wakes again during that read.
        assert!(outbound.poll_readable(&cx));
        socket.wake_by_ref();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            2,
            "the wake-up during the read reached the task"
        );
        assert!(outbound.poll_readable(&cx), "and it reads again");
    }

    #[test]
    fn the_writer_is_woken_once_per_empty_to_non_empty() {
        let outbound = Outbound::default();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let cx = Context::from_waker(&waker);
        let mut queue = VecDeque::new();
        assert_eq!(outbound.poll_take(&cx, &mut queue), Poll::Pending);
        let (first, _) = outbound.push(data("a"));
        first.expect("the waiting writer's waker").wake();
        for text in ["b", "c"] {
            assert!(outbound.push(data(text)).0.is_none(), "already woken");
        }
        assert_eq!(
            outbound.poll_take(&cx, &mut queue),
            Poll::Ready(Taken::Frames)
        );
        assert_eq!(queue.len(), 3);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_close_seals_the_queue_after_what_came_before() {
        let outbound = Outbound::default();
        let waker = Waker::noop();
        let cx = Context::from_waker(waker);
        outbound.push(data("before"));
        outbound.close(1013, "slow");
        outbound.push(data("after"));
        outbound.push_control(&[0x8A, 0x00]);
        let mut queue = VecDeque::new();
        assert_eq!(
            outbound.poll_take(&cx, &mut queue),
            Poll::Ready(Taken::Closing)
        );
        let bytes: Vec<&[u8]> = queue.iter().map(Out::bytes).collect();
        assert_eq!(bytes.len(), 2);
        assert_eq!(bytes[1], &*close_frame(1013, "slow"));
        assert_eq!(outbound.poll_closing(&cx), Poll::Ready(()));
    }

    #[test]
    fn the_peers_close_answer_seals_without_a_second_close() {
        let outbound = Outbound::default();
        outbound.push_control(&close_frame(1000, ""));
        outbound.close(1001, "going away");
        let mut queue = VecDeque::new();
        let cx = Context::from_waker(Waker::noop());
        assert_eq!(
            outbound.poll_take(&cx, &mut queue),
            Poll::Ready(Taken::Closing)
        );
        assert_eq!(queue.len(), 1, "only the answer to the peer's close");
    }

    #[test]
    fn written_bytes_are_handed_over_once() {
        let outbound = Outbound::default();
        assert_eq!(outbound.written(10), 10);
        assert_eq!(outbound.written(5), 15);
        assert_eq!(outbound.push(data("x")).1, 15);
        assert_eq!(outbound.take_written(), 0);
        outbound.written(7);
        assert_eq!(outbound.take_written(), 7);
    }
}
