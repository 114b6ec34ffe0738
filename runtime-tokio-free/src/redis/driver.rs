//! The background task of a [`RedisClient`](super::RedisClient) or [`RedisSubscriber`](super::RedisSubscriber):
//! it owns the [`RedisConnection`] machine and the socket and runs the loop of the machine's docs — drain outputs
//! (dial, write, close, hand events out, arm the alarm), wait for the dial, the socket, a command or the alarm,
//! feed what came, and go round again.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::{mpsc, oneshot};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::StreamExt;
use switchboard_protocol::redis::{
    Command, Event, Mode, Output, RedisConnection, RedisError, Reply, RequestId,
};
use switchboard_protocol::rng::Rng;
use switchboard_protocol::time::Timestamp;

use super::dial::{Stream, dial};
use super::link_status::LinkStatus;
use super::options::RedisOptions;
use super::pub_sub_event::PubSubEvent;
use crate::client::alarm::Alarm;
use crate::{BoxFuture, Runtime};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// At most this many commands are taken per wake before the machine's outputs are written.
const MAX_COMMANDS_PER_WAKE: usize = 256;

/// What a handle asks of the task.
pub(crate) enum Op {
    Request(Command, oneshot::Sender<Result<Reply, RedisError>>),
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    Close(oneshot::Sender<()>),
}

pub(crate) struct Driver<R: Runtime> {
    runtime: R,
    options: RedisOptions,
    machine: RedisConnection,
    dialing: Option<BoxFuture<'static, io::Result<Stream<R>>>>,
    socket: Option<Stream<R>>,
    write_buf: Vec<u8>,
    written: usize,
    needs_flush: bool,
    read_buf: Box<[u8]>,
    alarm: Alarm,
    ops: mpsc::UnboundedReceiver<Op>,
    ops_open: bool,
    waiting: HashMap<RequestId, oneshot::Sender<Result<Reply, RedisError>>>,
    events: Option<mpsc::UnboundedSender<PubSubEvent>>,
    close_waiters: Vec<oneshot::Sender<()>>,
    /// Whether the connection is logged in, for the handles to read (a node's readiness).
    status: LinkStatus,
    /// What the connection is for, in logs.
    role: &'static str,
    /// Since when the connection is down after having been up (`None` while up, or before the first `Up`): one
    /// warning when it goes, one line when it is back, and the failed dials between only at debug level.
    down_since: Option<Timestamp>,
    /// The connection was up at least once.
    ever_up: bool,
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(
        runtime: R,
        options: RedisOptions,
        mode: Mode,
        ops: mpsc::UnboundedReceiver<Op>,
        events: Option<mpsc::UnboundedSender<PubSubEvent>>,
        status: LinkStatus,
    ) -> Driver<R> {
        let machine = RedisConnection::new(
            options.config(mode),
            runtime.now(),
            Rng::from_seed(options.seed),
        );
        Driver {
            runtime,
            options,
            machine,
            dialing: None,
            socket: None,
            write_buf: Vec::new(),
            written: 0,
            needs_flush: false,
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            alarm: Alarm::new(),
            ops,
            ops_open: true,
            waiting: HashMap::new(),
            events,
            close_waiters: Vec::new(),
            status,
            role: match mode {
                Mode::Commands => "commands",
                Mode::PubSub => "pub/sub",
            },
            down_since: None,
            ever_up: false,
        }
    }

    /// Runs until closed, or until every handle is gone.
    pub(crate) async fn run(mut self) {
        tracing::debug!(url = %self.options.url, "redis connection task started");
        loop {
            self.drain();
            if self.machine.is_closed() {
                break;
            }
            poll_fn(|cx| self.poll_once(cx)).await;
        }
        self.socket = None;
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
        tracing::debug!(url = %self.options.url, "redis connection task ended");
    }

    /// Carries out the machine's outputs until it says when to wake it.
    fn drain(&mut self) {
        loop {
            match self.machine.poll_output() {
                Output::Connect => {
                    let dialing = dial(self.runtime.clone(), self.options.clone());
                    self.dialing = Some(Box::pin(dialing));
                }
                Output::Transmit(bytes) => {
                    if self.written == self.write_buf.len() {
                        self.write_buf = bytes;
                        self.written = 0;
                    } else {
                        self.write_buf.extend_from_slice(&bytes);
                    }
                }
                Output::Close => {
                    self.dialing = None;
                    self.socket = None;
                    self.write_buf.clear();
                    self.written = 0;
                    self.needs_flush = false;
                }
                Output::Event(event) => self.route(event),
                Output::Timeout(at) => {
                    self.alarm.set(at);
                    return;
                }
            }
        }
    }

    fn route(&mut self, event: Event) {
        let public = match event {
            Event::Reply { id, result } => {
                if let Some(waiter) = self.waiting.remove(&id) {
                    let _ = waiter.send(result);
                }
                return;
            }
            Event::Up => {
                self.status.set_up();
                let (url, role) = (&self.options.url, self.role);
                match self.down_since.take() {
                    Some(since) => {
                        let down_ms = u64::try_from((self.runtime.now() - since).as_millis())
                            .unwrap_or(u64::MAX);
                        tracing::warn!(%url, role, down_ms, "redis is back: connection up again");
                    }
                    None => tracing::info!(%url, role, "connected to redis"),
                }
                self.ever_up = true;
                PubSubEvent::Up
            }
            Event::Down(reason) => {
                self.status.set_down(self.runtime.now());
                let (url, role) = (&self.options.url, self.role);
                if self.down_since.is_none() {
                    self.down_since = Some(self.runtime.now());
                    if self.ever_up {
                        tracing::warn!(%url, role, %reason, "redis connection lost; reconnecting (publishes fail with STORAGE_UNAVAILABLE meanwhile)");
                    } else {
                        tracing::warn!(%url, role, %reason, "cannot reach redis; retrying");
                    }
                } else {
                    tracing::debug!(%url, role, %reason, "redis still unreachable");
                }
                PubSubEvent::Down(reason.to_string())
            }
            Event::Subscribed { channel } => PubSubEvent::Subscribed(channel),
            Event::Message { channel, payload } => PubSubEvent::Message { channel, payload },
        };
        if let Some(events) = &self.events {
            let _ = events.unbounded_send(public);
        }
    }

    /// Feeds whatever is ready to the machine; pending while nothing is.
    fn poll_once(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut progressed = false;
        if let Some(dialing) = &mut self.dialing
            && let Poll::Ready(result) = dialing.as_mut().poll(cx)
        {
            self.dialing = None;
            progressed = true;
            match result {
                Ok(stream) => {
                    self.socket = Some(stream);
                    self.machine.handle_connected(self.runtime.now());
                }
                Err(e) => {
                    let at = self.runtime.now();
                    self.machine.handle_connect_failed(at, &e.to_string());
                }
            }
        }
        if self.socket.is_some() {
            if let Err(e) = self.poll_write(cx) {
                self.socket = None;
                self.machine
                    .handle_disconnected(self.runtime.now(), &e.to_string());
                return Poll::Ready(());
            }
            if let Some(socket) = &mut self.socket {
                match Pin::new(socket).poll_read(cx, &mut self.read_buf) {
                    Poll::Ready(Ok(0)) => {
                        self.socket = None;
                        let at = self.runtime.now();
                        self.machine
                            .handle_disconnected(at, "redis closed the connection");
                        progressed = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        let at = self.runtime.now();
                        self.machine.handle_input(at, &self.read_buf[..n]);
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => {
                        self.socket = None;
                        self.machine
                            .handle_disconnected(self.runtime.now(), &e.to_string());
                        progressed = true;
                    }
                    Poll::Pending => {}
                }
            }
        }
        let mut taken = 0;
        while self.ops_open && taken < MAX_COMMANDS_PER_WAKE {
            match self.ops.poll_next_unpin(cx) {
                Poll::Ready(Some(op)) => {
                    self.apply(op);
                    taken += 1;
                    progressed = true;
                }
                Poll::Ready(None) => {
                    // Every handle is gone: nobody can ask or hear anything more.
                    self.ops_open = false;
                    self.machine.close(self.runtime.now());
                    progressed = true;
                }
                Poll::Pending => break,
            }
        }
        if self.alarm.poll(cx, &self.runtime).is_ready() {
            self.machine.handle_timeout(self.runtime.now());
            progressed = true;
        }
        if progressed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn apply(&mut self, op: Op) {
        let now = self.runtime.now();
        match op {
            Op::Request(command, waiter) => {
                let id = self.machine.request(now, command);
                // A refusal decided at once is still only queued as an output: the waiter is in place before
                // the next drain routes it.
                self.waiting.insert(id, waiter);
            }
            Op::Subscribe(channel) => self.machine.subscribe(now, &channel),
            Op::Unsubscribe(channel) => self.machine.unsubscribe(now, &channel),
            Op::Close(waiter) => {
                self.close_waiters.push(waiter);
                self.machine.close(now);
            }
        }
    }

    /// Writes what is queued, then flushes; `Err` when the socket failed.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(socket) = &mut self.socket else {
            return Ok(());
        };
        while self.written < self.write_buf.len() {
            match Pin::new(&mut *socket).poll_write(cx, &self.write_buf[self.written..]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.needs_flush = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(()),
            }
        }
        if self.written == self.write_buf.len() && !self.write_buf.is_empty() {
            self.write_buf.clear();
            self.written = 0;
        }
        if self.needs_flush {
            match Pin::new(socket).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        Ok(())
    }
}
