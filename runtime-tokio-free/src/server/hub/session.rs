//! One WebSocket connection after the upgrade: registered with the hub, then a reader task and a writer task.
//!
//! - The **reader** runs every text and binary frame through the connection's `Intake` (size check, rate limit,
//!   decoding: no lock needed) and feeds the typed result to `handle_inbound`, pings and pongs to
//!   `handle_activity` (tungstenite answers pings itself). A message over `max_message_bytes`, a framing violation
//!   or text that is not UTF-8 fails tungstenite's read; the reader then asks the hub to close with 1009, 1002 or
//!   1007 ([`super::read_failure`]). When it ends it hands its half of the socket back to the writer.
//! - The **writer** owns the connection's lifecycle. It waits for frames, feeds as many as are queued (up to a
//!   batch cap), flushes once and reports the flushed bytes with `handle_sent`: frames the hub handed out but that
//!   are stuck behind a peer that does not read count against `max_queued_bytes`. When the hub closes the
//!   connection, the writer delivers what was queued before the close, then the close frame, then waits (bounded by
//!   `close_timeout`) for the peer's answering close, draining and discarding anything the peer still sends so the
//!   close frame is not lost to a TCP reset. Finally it tells the hub the transport is gone.

use std::pin::Pin;
use std::sync::Arc;

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use futures_channel::{mpsc, oneshot};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_util::future::{FutureExt, poll_fn};
use futures_util::{Sink, StreamExt, select_biased};
use switchboard_protocol::server::{ConnId, Dialect, Intake, Permissions, Trust};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::CloseCode;

use super::driver::{ConnLink, HubHandle, ListenerId};
use super::read_failure::close_for_read_error;
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
pub const READ_BUFFER_BYTES: usize = 2 * 1024;

/// The tungstenite configuration for server sockets: small buffers (the driver batches writes itself) and
/// `max_message_bytes` as both the message and the frame limit, so an over-size message fails the read and the
/// connection is closed with 1009.
///
/// The read buffer is [`READ_BUFFER_BYTES`]: tungstenite zero-fills all of it before every read, so all of it is
/// resident for every idle connection (docs/BENCHMARKS.md, "memory per idle connection"). Bigger messages still
/// arrive whole; they are just read in chunks of that size.
pub fn websocket_config(max_message_bytes: usize) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = READ_BUFFER_BYTES;
    config.write_buffer_size = 16 * 1024;
    config.max_write_buffer_size = usize::MAX;
    config.max_message_size = Some(max_message_bytes);
    config.max_frame_size = Some(max_message_bytes);
    config
}

/// Most frames fed before one flush.
const MAX_BATCH_FRAMES: usize = 256;
/// Most bytes fed before one flush.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Messages the reader handles before yielding to other tasks.
const READS_PER_YIELD: usize = 64;
/// Longest close reason on the wire (a close frame's payload is at most 125 bytes, 2 of them the code).
const MAX_CLOSE_REASON: usize = 123;

/// How the reader ended.
struct ReaderEnd<S> {
    half: WebSocketReceiver<S>,
    /// The peer finished the close handshake or closed the stream: nothing left to drain.
    clean: bool,
}

/// Runs the WebSocket session on an upgraded stream until it ends. `leftover` holds bytes read past the HTTP head.
///
/// `stopping` is the server's shutdown signal: a connection upgraded just as it fired is closed like the others.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<R, S>(
    shared: Arc<HubHandle<R>>,
    limits: SessionLimits,
    stopping: Trigger,
    stream: S,
    leftover: Vec<u8>,
    dialect: Dialect,
    permissions: Permissions,
    trust: Trust,
    listener: Option<ListenerId>,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = websocket_config(limits.max_message_bytes);
    let ws =
        WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(config)).await;
    let (sink, source) = ws.split();
    let (frames_tx, frames_rx) = mpsc::unbounded();
    let (close_tx, close_rx) = oneshot::channel();
    let (conn, intake) = shared.with(|core, now| {
        let (conn, intake) = core.hub.handle_open(now, dialect, permissions, trust);
        core.conns.insert(
            conn,
            ConnLink {
                frames: frames_tx,
                close: Some(close_tx),
                listener,
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
        source,
        stop_reader.clone(),
        reader_tx,
    );
    shared.runtime.spawn(Box::pin(reader));
    write_loop(&shared, limits, conn, sink, frames_rx, close_rx, reader_rx).await;
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
    mut source: WebSocketReceiver<S>,
    stop: Trigger,
    done: oneshot::Sender<ReaderEnd<S>>,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut handled = 0usize;
    let clean = loop {
        let Some(next) = until_stopped(&stop, source.next()).await else {
            break true;
        };
        match next {
            None => break true,
            // Checked, rate-limited and decoded here, on the connection's own task: the hub's lock is taken only
            // to hand it the typed message.
            Some(Ok(Message::Text(text))) => {
                let inbound = intake.text(shared.runtime.now(), text.as_str());
                shared.with(|core, now| core.hub.handle_inbound(now, conn, inbound));
            }
            Some(Ok(Message::Binary(data))) => {
                let inbound = intake.binary(shared.runtime.now(), data.len());
                shared.with(|core, now| core.hub.handle_inbound(now, conn, inbound));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                shared.with(|core, now| core.hub.handle_activity(now, conn));
            }
            // tungstenite queues the answering close; the next read flushes it and ends the stream.
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
    let _ = done.send(ReaderEnd {
        half: source,
        clean,
    });
}

/// Why the writer stopped writing frames.
enum WriterEnd<S> {
    /// The hub closed the connection.
    Close(CloseCode, String),
    /// The reader ended first (the peer went away or broke the protocol).
    ReaderGone,
    /// Writing failed, or the driver dropped the queue.
    Broken(Option<ReaderEnd<S>>),
}

async fn write_loop<R, S>(
    shared: &HubHandle<R>,
    limits: SessionLimits,
    conn: ConnId,
    mut sink: WebSocketSender<S>,
    mut frames: mpsc::UnboundedReceiver<Arc<str>>,
    close_rx: oneshot::Receiver<(CloseCode, String)>,
    reader_rx: oneshot::Receiver<ReaderEnd<S>>,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut close_rx = close_rx.fuse();
    let mut reader_rx = reader_rx.fuse();
    let mut pending: Option<Arc<str>> = None;
    let end = loop {
        if pending.is_none() {
            select_biased! {
                close = close_rx => break match close {
                    Ok((code, reason)) => WriterEnd::Close(code, reason),
                    Err(_) => WriterEnd::Broken(None),
                },
                frame = frames.next() => match frame {
                    Some(frame) => pending = Some(frame),
                    None => break WriterEnd::Broken(None),
                },
                end = reader_rx => break match end {
                    Ok(end) if !end.clean => WriterEnd::Broken(Some(end)),
                    _ => WriterEnd::ReaderGone,
                },
            }
        }
        let batch = send_batch(&mut sink, &mut frames, &mut pending).fuse();
        futures_util::pin_mut!(batch);
        select_biased! {
            close = close_rx => break match close {
                Ok((code, reason)) => WriterEnd::Close(code, reason),
                Err(_) => WriterEnd::Broken(None),
            },
            sent = batch => match sent {
                Ok((bytes, open)) => {
                    if bytes > 0 {
                        shared.with(|core, _| core.hub.handle_sent(conn, bytes));
                    }
                    if !open {
                        break WriterEnd::Broken(None);
                    }
                }
                Err(e) => {
                    tracing::debug!(%conn, error = %e, "websocket write failed");
                    break WriterEnd::Broken(None);
                }
            },
            end = reader_rx => break match end {
                Ok(end) if !end.clean => WriterEnd::Broken(Some(end)),
                _ => WriterEnd::ReaderGone,
            },
        }
    };
    match end {
        WriterEnd::Close(code, reason) => {
            let deadline = shared.runtime.now() + limits.close_timeout;
            let closing = send_close(&mut sink, &mut frames, pending.take(), code, &reason);
            // The closing futures are boxed: inline they would size every session's future for its whole life.
            if with_deadline(&shared.runtime, deadline, Box::pin(closing))
                .await
                .is_none()
            {
                tracing::debug!(%conn, "close frame not delivered in time");
            }
            Box::pin(linger(shared, sink, reader_rx, deadline)).await;
        }
        WriterEnd::Broken(Some(end)) => {
            // A read failure the peer gets no close frame for: do not reset it mid-message either.
            let deadline = shared.runtime.now() + limits.close_timeout;
            Box::pin(drain_raw(shared, sink, end, deadline)).await;
        }
        WriterEnd::ReaderGone | WriterEnd::Broken(None) => {}
    }
}

/// Feeds queued frames while the sink takes them without waiting (up to the batch caps), then flushes once.
/// Gives the bytes flushed and whether the queue is still open. Cancel-safe: a frame leaves `pending` only when
/// the sink has room for it, and fed frames stay in tungstenite's buffer.
async fn send_batch<S>(
    sink: &mut WebSocketSender<S>,
    frames: &mut mpsc::UnboundedReceiver<Arc<str>>,
    pending: &mut Option<Arc<str>>,
) -> Result<(usize, bool), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bytes = 0usize;
    let mut count = 0usize;
    let mut open = true;
    loop {
        if pending.is_none() {
            match frames.try_recv() {
                Ok(frame) => *pending = Some(frame),
                Err(e) if e.is_closed() => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        if count >= MAX_BATCH_FRAMES || bytes >= MAX_BATCH_BYTES {
            break;
        }
        poll_fn(|cx| Pin::new(&mut *sink).poll_ready(cx)).await?;
        let Some(frame) = pending.take() else { break };
        bytes += frame.len();
        count += 1;
        Pin::new(&mut *sink).start_send(Message::text(&*frame))?;
    }
    poll_fn(|cx| Pin::new(&mut *sink).poll_flush(cx)).await?;
    Ok((bytes, open))
}

/// Delivers the frames queued before the close, then the close frame, and flushes.
async fn send_close<S>(
    sink: &mut WebSocketSender<S>,
    frames: &mut mpsc::UnboundedReceiver<Arc<str>>,
    mut pending: Option<Arc<str>>,
    code: CloseCode,
    reason: &str,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let frame = match pending.take() {
            Some(f) => f,
            None => match frames.try_recv() {
                Ok(f) => f,
                Err(_) => break,
            },
        };
        poll_fn(|cx| Pin::new(&mut *sink).poll_ready(cx)).await?;
        Pin::new(&mut *sink).start_send(Message::text(&*frame))?;
    }
    let frame = CloseFrame {
        code: WsCloseCode::from(code.as_u16()),
        reason: truncate(reason, MAX_CLOSE_REASON).into(),
    };
    poll_fn(|cx| Pin::new(&mut *sink).poll_ready(cx)).await?;
    Pin::new(&mut *sink).start_send(Message::Close(Some(frame)))?;
    poll_fn(|cx| Pin::new(&mut *sink).poll_flush(cx)).await
}

/// After our close frame: waits for the reader to see the peer's answering close; if the reader stopped on an
/// error instead, reads and discards what the peer still sends. Bounded by `deadline`.
async fn linger<R, S>(
    shared: &HubHandle<R>,
    sink: WebSocketSender<S>,
    reader_rx: futures_util::future::Fuse<oneshot::Receiver<ReaderEnd<S>>>,
    deadline: Timestamp,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match with_deadline(&shared.runtime, deadline, reader_rx).await {
        Some(Ok(end)) if !end.clean => drain_raw(shared, sink, end, deadline).await,
        _ => {}
    }
}

/// Reads and discards the raw stream until end of stream or `deadline`.
async fn drain_raw<R, S>(
    shared: &HubHandle<R>,
    sink: WebSocketSender<S>,
    end: ReaderEnd<S>,
    deadline: Timestamp,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(ws) = WebSocketStream::reunite(sink, end.half) else {
        return;
    };
    let mut raw = ws.into_inner();
    let drain = async {
        // Our close frame is out: end our direction so the peer, having answered it, closes too.
        let _ = raw.close().await;
        let mut scratch = vec![0u8; 8192];
        while let Ok(n) = raw.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = with_deadline(&shared.runtime, deadline, drain).await;
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn close_reasons_are_cut_on_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }
}
