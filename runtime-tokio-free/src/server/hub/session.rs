//! One WebSocket connection after the upgrade: registered with the hub, then one task that reads and writes.
//!
//! - **Reading** ([`Reader`]): every frame that has arrived is handed to the hub, before the task writes; see
//!   [`super::reader`].
//! - **Writing**: the task owns the socket's write half and the connection's lifecycle. It sleeps until the outbound
//!   queue goes from empty to non-empty (or the socket has something to read), takes everything queued, writes it
//!   with vectored writes (the frames' bytes as the driver built them, once per publish: [`super::ws_frame`]),
//!   flushes once, and tells the outbound queue how many of the hub's bytes went out; the driver passes that on
//!   with `handle_sent` the next time it queues a frame for the connection (the reader before each message it
//!   hands the hub, the writer itself past [`REPORT_BYTES`]), so frames stuck behind a peer that does not read
//!   count against `max_queued_bytes`. An answer the hub queued for a request read in this wake-up is written in
//!   it too.
//!   When the hub closes the connection, the task delivers what was queued before the close, then the close
//!   frame, then waits (bounded by `close_timeout`) for the peer's answering close, reading and discarding
//!   anything the peer still sends so the close frame is not lost to a TCP reset. Finally it tells the hub the
//!   transport is gone.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::Role;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::poll_fn;
use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _, WriteHalf};
use switchboard_protocol::server::{ConnId, Dialect, Permissions, Trust};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::CloseCode;

use super::driver::{ConnLink, HubHandle, ListenerId};
use super::frame_writer::FrameWriter;
use super::outbound::{Outbound, Taken};
use super::read_side::ReadSide;
use super::reader::{Read, Reader, ReaderEnd};
use crate::Runtime;
use crate::deadline::with_deadline;
use crate::signal::Trigger;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What a session is configured with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLimits {
    /// The hub's `max_message_bytes`: tungstenite's message and frame limit.
    pub max_message_bytes: usize,
    /// How long the closing handshake may take.
    pub close_timeout: std::time::Duration,
}

/// Bytes of tungstenite's read buffer per server socket (and the most read per syscall).
pub const READ_BUFFER_BYTES: usize = 256;

/// The tungstenite configuration for server sockets: a small read buffer and `max_message_bytes` as both the
/// message and the frame limit, so an over-size message fails the read and the connection is closed with 1009.
/// tungstenite writes only its own small answers (pong, close), straight into the outbound queue.
///
/// The read buffer is [`READ_BUFFER_BYTES`]: tungstenite zero-fills all of it before every read, so all of it is
/// resident for every idle connection (docs/BENCHMARKS.md, "memory per idle connection"). Bigger messages still
/// arrive whole; they are just read in chunks of that size.
pub fn websocket_config(max_message_bytes: usize) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = READ_BUFFER_BYTES;
    config.write_buffer_size = 0;
    config.max_write_buffer_size = usize::MAX;
    config.max_message_size = Some(max_message_bytes);
    config.max_frame_size = Some(max_message_bytes);
    config
}

/// Counted bytes written past which the writer tells the hub itself rather than waiting for the next frame or
/// message to carry the count (so the hub's account of a connection is never more than this behind).
const REPORT_BYTES: usize = 64 * 1024;

/// What a session starts from: everything but the hub and its limits.
struct Opening<S> {
    stopping: Trigger,
    stream: S,
    leftover: Vec<u8>,
    dialect: Dialect,
    permissions: Permissions,
    trust: Trust,
    listener: Option<ListenerId>,
}

/// Runs the WebSocket session on an upgraded stream until it ends. `leftover` holds bytes read past the HTTP head.
///
/// `stopping` is the server's shutdown signal: a connection upgraded just as it fired is closed like the others.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<R, S>(
    shared: Arc<HubHandle<R>>,
    limits: SessionLimits,
    stopping: Trigger,
    stream: S,
    leftover: Vec<u8>,
    dialect: Dialect,
    permissions: Permissions,
    trust: Trust,
    listener: Option<ListenerId>,
) -> impl Future<Output = ()> + Send
where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // An async fn keeps its arguments for its whole life, whatever it does with them: boxed, they cost every open
    // connection one pointer instead of the permissions, the HTTP buffer and the rest.
    let opening = Box::new(Opening {
        stopping,
        stream,
        leftover,
        dialect,
        permissions,
        trust,
        listener,
    });
    session(shared, limits, opening)
}

async fn session<R, S>(shared: Arc<HubHandle<R>>, limits: SessionLimits, opening: Box<Opening<S>>)
where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Opening {
        stopping,
        stream,
        leftover,
        dialect,
        permissions,
        trust,
        listener,
    } = {
        // Moved out of its box here, so the box is freed now rather than when the session ends.
        let opening = opening;
        *opening
    };
    let config = websocket_config(limits.max_message_bytes);
    let (read, write) = stream.split();
    let outbound = Arc::new(Outbound::default());
    let side = ReadSide {
        read,
        outbound: outbound.clone(),
    };
    // Boxed: inline, this future (a whole WebSocket stream under construction) would size the session's future,
    // and so every open connection, for its whole life.
    let ws = Box::pin(WebSocketStream::from_partially_read(
        side,
        leftover,
        Role::Server,
        Some(config),
    ))
    .await;
    let (conn, intake) = shared.with(|core, now| {
        let (conn, intake) = core.hub.handle_open(now, dialect, permissions, trust);
        core.conns.insert(
            conn,
            ConnLink {
                outbound: outbound.clone(),
                listener,
                raw: None,
            },
        );
        if stopping.fired() {
            // Upgraded just as the server began shutting down: close it like the others.
            core.hub
                .close(now, conn, CloseCode::GoingAway, "server going away");
        }
        (conn, intake)
    });
    tracing::debug!(%conn, "websocket open");
    let reader = Reader { intake, ws };
    serve_socket(&shared, limits, conn, write, &outbound, reader).await;
    shared.with(|core, now| {
        core.conns.remove(&conn);
        core.hub.handle_transport_closed(now, conn);
    });
    tracing::debug!(%conn, "websocket closed");
}

/// Why the task stopped writing frames.
enum WriterEnd<S> {
    /// The hub closed the connection: the close frame is queued.
    Close,
    /// Reading ended first, cleanly (the peer closed): the answering close, if any, is queued.
    ReaderGone,
    /// Writing failed, or reading ended on an error with no close to send.
    Broken(Option<Box<ReaderEnd<S>>>),
}

/// What one turn of the task saw.
enum Turn<S> {
    /// Everything taken is written and flushed.
    Wrote,
    Ended(WriterEnd<S>),
    Failed(std::io::Error),
}

/// The reading end: still reading, or how it ended.
struct ReadEnd<S> {
    reader: Option<Reader<S>>,
    ended: Option<ReaderEnd<S>>,
    /// What the socket wakes when it has something to read: the connection's [`Outbound`], which marks it
    /// readable and wakes the task.
    waker: std::task::Waker,
    /// Read at the next poll whatever the socket says: at the first, and after a poll that stopped with messages
    /// left.
    read_next: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadEnd<S> {
    /// Reads what has arrived; `Ready` once reading is over (now or before).
    fn poll<R: Runtime>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        shared: &HubHandle<R>,
        conn: ConnId,
        outbound: &Outbound,
    ) -> Poll<()> {
        let Some(reader) = self.reader.as_mut() else {
            return Poll::Ready(());
        };
        // Asked even when this poll reads anyway: it keeps the task's waker in the queue before the read, for a
        // wake-up of the socket's that comes while this poll runs.
        let readable = outbound.poll_readable(cx);
        if !(std::mem::take(&mut self.read_next) || readable) {
            return Poll::Pending;
        }
        let mut socket_cx = std::task::Context::from_waker(&self.waker);
        match reader.poll_read(&mut socket_cx, shared, conn, outbound) {
            Read::Waiting => Poll::Pending,
            Read::MoreLeft => {
                // Other tasks first; then this one reads on.
                self.read_next = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Read::Ended { clean } => {
                self.ended = self.reader.take().map(|r| r.end(clean));
                Poll::Ready(())
            }
        }
    }
}

/// Reads and writes the connection until it ends.
async fn serve_socket<R, S>(
    shared: &HubHandle<R>,
    limits: SessionLimits,
    conn: ConnId,
    sink: WriteHalf<S>,
    outbound: &Arc<Outbound>,
    reader: Reader<S>,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut writer = FrameWriter::new(sink);
    let mut read = ReadEnd {
        reader: Some(reader),
        ended: None,
        waker: std::task::Waker::from(Arc::clone(outbound)),
        read_next: true,
    };
    let end = loop {
        let mut written = 0usize;
        let turn = poll_fn(|cx| {
            // Reading first: what the hub answers to it is taken below and goes out in this turn.
            let reading_over = read.poll(cx, shared, conn, outbound).is_ready();
            if writer.queue.is_empty() {
                match outbound.poll_take(cx, &mut writer.queue) {
                    Poll::Ready(Taken::Closing) => {
                        return Poll::Ready(Turn::Ended(WriterEnd::Close));
                    }
                    Poll::Ready(Taken::Frames) => {}
                    Poll::Pending => {}
                }
            } else if outbound.poll_closing(cx).is_ready() {
                return Poll::Ready(Turn::Ended(WriterEnd::Close));
            }
            if reading_over {
                return Poll::Ready(Turn::Ended(match read.ended.take() {
                    Some(end) if !end.clean => WriterEnd::Broken(Some(Box::new(end))),
                    _ => WriterEnd::ReaderGone,
                }));
            }
            if writer.queue.is_empty() {
                return Poll::Pending;
            }
            match writer.poll_write_all(cx, &mut written) {
                Poll::Ready(Ok(())) => Poll::Ready(Turn::Wrote),
                Poll::Ready(Err(e)) => Poll::Ready(Turn::Failed(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        if written > 0 && outbound.written(written) >= REPORT_BYTES {
            let written = outbound.take_written();
            shared.with(|core, _| core.hub.handle_sent(conn, written));
        }
        match turn {
            Turn::Wrote => {}
            Turn::Ended(end) => break end,
            Turn::Failed(e) => {
                tracing::debug!(%conn, error = %e, "websocket write failed");
                break WriterEnd::Broken(None);
            }
        }
    };
    match end {
        WriterEnd::Close => {
            let deadline = shared.runtime.now() + limits.close_timeout;
            // The closing futures are boxed: inline they would size every session's future for its whole life.
            // Reading goes on meanwhile, so a peer that writes until it reads our close is not stuck behind us.
            let delivered = with_deadline(
                &shared.runtime,
                deadline,
                Box::pin(write_out(
                    &mut writer,
                    outbound,
                    Some((&mut read, shared, conn)),
                )),
            )
            .await;
            if delivered.is_none_or(|r| r.is_err()) {
                tracing::debug!(%conn, "close frame not delivered in time");
            }
            Box::pin(linger(
                shared,
                conn,
                outbound,
                writer.into_sink(),
                read,
                deadline,
            ))
            .await;
        }
        WriterEnd::ReaderGone => {
            // The peer closed: its answer (queued by tungstenite) goes out, then the connection ends.
            let deadline = shared.runtime.now() + limits.close_timeout;
            let _ = with_deadline(
                &shared.runtime,
                deadline,
                Box::pin(write_out::<R, S, _>(&mut writer, outbound, None)),
            )
            .await;
        }
        WriterEnd::Broken(Some(end)) => {
            // A read failure the peer gets no close frame for: do not reset it mid-message either.
            let deadline = shared.runtime.now() + limits.close_timeout;
            Box::pin(drain_raw(shared, writer.into_sink(), *end, deadline)).await;
        }
        WriterEnd::Broken(None) => {}
    }
}

/// Writes everything queued, up to the close frame that sealed the queue, reading meanwhile when given the
/// reading end.
async fn write_out<R, S, W>(
    writer: &mut FrameWriter<W>,
    outbound: &Outbound,
    mut read: Option<(&mut ReadEnd<S>, &HubHandle<R>, ConnId)>,
) -> std::io::Result<()>
where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut written = 0usize;
    poll_fn(|cx| {
        if let Some((read, shared, conn)) = read.as_mut() {
            let _ = read.poll(cx, shared, *conn, outbound);
        }
        loop {
            if writer.queue.is_empty() {
                // Ready whether closing or not; nothing taken means nothing is left.
                let _ = outbound.poll_take(cx, &mut writer.queue);
                if writer.queue.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            }
            match writer.poll_write_all(cx, &mut written) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
    })
    .await
}

/// After our close frame: reads until the peer's answering close ends the stream; if reading ended on an error
/// instead, reads and discards what the peer still sends. Bounded by `deadline`.
async fn linger<R, S>(
    shared: &HubHandle<R>,
    conn: ConnId,
    outbound: &Outbound,
    sink: WriteHalf<S>,
    mut read: ReadEnd<S>,
    deadline: Timestamp,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let over = with_deadline(
        &shared.runtime,
        deadline,
        poll_fn(|cx| read.poll(cx, shared, conn, outbound)),
    )
    .await;
    if over.is_some()
        && let Some(end) = read.ended.take()
        && !end.clean
    {
        drain_raw(shared, sink, end, deadline).await;
    }
}

/// Ends our direction, then reads and discards the raw stream until end of stream or `deadline`.
async fn drain_raw<R, S>(
    shared: &HubHandle<R>,
    mut sink: WriteHalf<S>,
    end: ReaderEnd<S>,
    deadline: Timestamp,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut raw = end.ws.into_inner().read;
    let drain = async {
        // Our close frame is out: end our direction so the peer, having answered it, closes too.
        let _ = sink.close().await;
        let mut scratch = vec![0u8; 8192];
        while let Ok(n) = raw.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = with_deadline(&shared.runtime, deadline, drain).await;
}
