//! One WebSocket connection after the upgrade: registered with the hub, then a reader task and a writer task.
//!
//! - The **reader** runs every text and binary frame through the connection's `Intake` (size check, rate limit,
//!   decoding: no lock needed) and feeds the typed result to `handle_inbound`, pings and pongs to
//!   `handle_activity`. tungstenite reads the socket's read half ([`ReadSide`]); its answers to pings and to the
//!   peer's close go into the connection's [`Outbound`] queue. A message over `max_message_bytes`, a framing
//!   violation or text that is not UTF-8 fails tungstenite's read; the reader then asks the hub to close with
//!   1009, 1002 or 1007 ([`super::read_failure`]). When it ends it hands its half of the socket back to the writer.
//! - The **writer** owns the socket's write half and the connection's lifecycle. It sleeps until the outbound
//!   queue goes from empty to non-empty, takes everything queued, writes it with vectored writes (the frames'
//!   bytes as the driver built them, once per publish: [`super::ws_frame`]), flushes once, and tells the
//!   outbound queue how many of the hub's bytes went out; the driver passes that on with `handle_sent` the next
//!   time it queues a frame for the connection (the reader before each message it hands the hub, the writer itself
//!   past [`REPORT_BYTES`]), so frames stuck behind a peer that does not read count against `max_queued_bytes`.
//!   When the hub closes the connection, the writer delivers what was queued before the close, then the close
//!   frame, then waits (bounded by `close_timeout`) for the peer's answering close, draining and discarding
//!   anything the peer still sends so the close frame is not lost to a TCP reset. Finally it tells the hub the
//!   transport is gone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::Role;
use futures_channel::oneshot;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::StreamExt;
use futures_util::future::poll_fn;
use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _, WriteHalf};
use switchboard_protocol::server::{ConnId, Dialect, Intake, Permissions, Trust};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::CloseCode;

use super::driver::{ConnLink, HubHandle, ListenerId};
use super::frame_writer::FrameWriter;
use super::outbound::{Outbound, Taken};
use super::read_failure::close_for_read_error;
use super::read_side::ReadSide;
use crate::Runtime;
use crate::deadline::{until_stopped, with_deadline};
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
/// Messages the reader handles before yielding to other tasks.
const READS_PER_YIELD: usize = 64;

/// The reader's tungstenite stream.
type Reading<S> = WebSocketStream<ReadSide<S>>;

/// How the reader ended.
struct ReaderEnd<S> {
    ws: Reading<S>,
    /// The peer finished the close handshake or closed the stream: nothing left to drain.
    clean: bool,
}

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
    let stop_reader = Trigger::new();
    let (reader_tx, reader_rx) = oneshot::channel();
    let reader = read_loop(
        shared.clone(),
        conn,
        intake,
        ws,
        outbound.clone(),
        stop_reader.clone(),
        reader_tx,
    );
    shared.runtime.spawn(Box::pin(reader));
    write_loop(&shared, limits, conn, write, &outbound, reader_rx).await;
    stop_reader.fire();
    shared.with(|core, now| {
        core.conns.remove(&conn);
        core.hub.handle_transport_closed(now, conn);
    });
    tracing::debug!(%conn, "websocket closed");
}

async fn read_loop<R, S>(
    shared: Arc<HubHandle<R>>,
    conn: ConnId,
    mut intake: Intake,
    mut ws: Reading<S>,
    outbound: Arc<Outbound>,
    stop: Trigger,
    done: oneshot::Sender<Box<ReaderEnd<S>>>,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut handled = 0usize;
    // What the peer asks is judged on an up-to-date account of what it has been sent (a replay must fit).
    let report = |core: &mut super::driver::Core| {
        let written = outbound.take_written();
        if written > 0 {
            core.hub.handle_sent(conn, written);
        }
    };
    let clean = loop {
        let Some(next) = until_stopped(&stop, ws.next()).await else {
            break true;
        };
        match next {
            None => break true,
            // Checked, rate-limited and decoded here, on the connection's own task: the hub's lock is taken only
            // to hand it the typed message.
            Some(Ok(Message::Text(text))) => {
                let inbound = intake.text(shared.runtime.now(), text.as_str());
                shared.with(|core, now| {
                    report(core);
                    core.hub.handle_inbound(now, conn, inbound)
                });
            }
            Some(Ok(Message::Binary(data))) => {
                let inbound = intake.binary(shared.runtime.now(), data.len());
                shared.with(|core, now| {
                    report(core);
                    core.hub.handle_inbound(now, conn, inbound)
                });
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                shared.with(|core, now| core.hub.handle_activity(now, conn));
            }
            // tungstenite queues the answering close; the next read hands it to the outbound queue and ends the
            // stream.
            Some(Ok(Message::Close(_) | Message::Frame(_))) => {}
            Some(Err(e)) => {
                tracing::debug!(%conn, error = %e, "websocket read failed");
                if let Some((code, reason)) = close_for_read_error(&e) {
                    // The writer sends the close frame and lingers for the peer's answer, as for any close.
                    shared.with(|core, now| core.hub.close(now, conn, code, reason));
                }
                break false;
            }
        }
        handled += 1;
        if handled.is_multiple_of(READS_PER_YIELD) {
            futures_lite::future::yield_now().await;
        }
    };
    // Boxed: the channel's shared state holds the whole WebSocket stream otherwise, for the connection's life.
    let _ = done.send(Box::new(ReaderEnd { ws, clean }));
}

/// Why the writer stopped writing frames.
enum WriterEnd<S> {
    /// The hub closed the connection: the close frame is queued.
    Close,
    /// The reader ended first, cleanly (the peer closed): its answering close, if any, is queued.
    ReaderGone,
    /// Writing failed, or the reader ended on an error with no close to send.
    Broken(Option<Box<ReaderEnd<S>>>),
}

/// What one turn of the writer saw.
enum Turn<S> {
    /// Everything taken is written and flushed.
    Wrote,
    Ended(WriterEnd<S>),
    Failed(std::io::Error),
}

async fn write_loop<R, S>(
    shared: &HubHandle<R>,
    limits: SessionLimits,
    conn: ConnId,
    sink: WriteHalf<S>,
    outbound: &Outbound,
    reader_rx: oneshot::Receiver<Box<ReaderEnd<S>>>,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut writer = FrameWriter::new(sink);
    let mut reader_rx = Some(reader_rx);
    let end = loop {
        let mut written = 0usize;
        let turn = poll_fn(|cx| {
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
            if let Some(rx) = reader_rx.as_mut()
                && let Poll::Ready(end) = Pin::new(rx).poll(cx)
            {
                reader_rx = None;
                return Poll::Ready(Turn::Ended(match end {
                    Ok(end) if !end.clean => WriterEnd::Broken(Some(end)),
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
            if with_deadline(
                &shared.runtime,
                deadline,
                Box::pin(write_out(&mut writer, outbound)),
            )
            .await
            .is_none_or(|r| r.is_err())
            {
                tracing::debug!(%conn, "close frame not delivered in time");
            }
            if let Some(rx) = reader_rx {
                Box::pin(linger(shared, writer.into_sink(), rx, deadline)).await;
            }
        }
        WriterEnd::ReaderGone => {
            // The peer closed: its answer (queued by tungstenite) goes out, then the connection ends.
            let deadline = shared.runtime.now() + limits.close_timeout;
            let _ = with_deadline(
                &shared.runtime,
                deadline,
                Box::pin(write_out(&mut writer, outbound)),
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

/// Writes everything queued, up to the close frame that sealed the queue.
async fn write_out<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    outbound: &Outbound,
) -> std::io::Result<()> {
    let mut written = 0usize;
    poll_fn(|cx| {
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

/// After our close frame: waits for the reader to see the peer's answering close; if the reader stopped on an
/// error instead, reads and discards what the peer still sends. Bounded by `deadline`.
async fn linger<R, S>(
    shared: &HubHandle<R>,
    sink: WriteHalf<S>,
    reader_rx: oneshot::Receiver<Box<ReaderEnd<S>>>,
    deadline: Timestamp,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match with_deadline(&shared.runtime, deadline, reader_rx).await {
        Some(Ok(end)) if !end.clean => drain_raw(shared, sink, *end, deadline).await,
        _ => {}
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
