//! A Server-Sent Events stream (PROTOCOL §8), served: the checks before the `200` (drain state, `Origin`, the
//! connection limits, the token from the header, `?token=` or the cookie, the stream's channels and resume point,
//! the grants on every channel; all decided by [`switchboard_protocol::rest::sse_request`]), then the stream as a
//! hub connection of its own dialect.
//!
//! The stream's writer takes the frames the hub queues for it, writes as many as are waiting with one flush, and
//! reports the bytes with `handle_sent`, so a browser that stops reading is closed by the same slow-consumer rule
//! as a WebSocket. A close from the hub (slow consumer, shutdown, a listener stopped) delivers what was queued
//! before it, bounded by `close_timeout`, and ends the response: the browser reconnects with `Last-Event-ID`. The
//! request side is read only to notice that the client went away.

use std::sync::Arc;

use futures_channel::{mpsc, oneshot};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_util::future::FutureExt;
use futures_util::{StreamExt, select_biased};
use switchboard_protocol::rest::{
    AuthRule, ErrorReply, Reply, RequestHead, Route, TokenCheck, authorize, check_stream,
    cors_origin, stream_head, stream_open, stream_token,
};
use switchboard_protocol::server::{ConnId, Dialect, Permissions, SseOpen, Trust};
use switchboard_protocol::wire::CloseCode;

use super::Front;
use super::limits::{ConnSlot, check_origin};
use super::verifier::TokenRefusal;
use crate::Runtime;
use crate::deadline::with_deadline;
use crate::server::hub::driver::{ConnLink, HubHandle, ListenerId, RawLink};

/// Most bytes written before one flush.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A checked stream request, before the hub hears of it.
struct Checked {
    open: SseOpen,
    permissions: Permissions,
    trust: Trust,
    slot: ConnSlot,
}

/// An accepted stream: a hub connection already (so nothing published after the `200` is missed), its `200` head
/// written, its frames queued for [`run`].
pub(crate) struct Accepted {
    conn: ConnId,
    frames: mpsc::UnboundedReceiver<Arc<str>>,
    close_rx: oneshot::Receiver<(CloseCode, String)>,
    slot: ConnSlot,
}

/// Checks a stream request and writes its `200` head, or its error answer (then `None`: the caller closes).
///
/// The stream joins the hub before its head is written: a client that publishes once it has the `200` (or learns
/// of it from one that has) finds its event in the stream.
pub(crate) async fn start<R, S>(
    front: &Front<R>,
    stream: &mut S,
    head: &RequestHead,
    route: &Route,
    peer: Option<std::net::SocketAddr>,
    listener: Option<ListenerId>,
) -> Option<Accepted>
where
    R: Runtime,
    S: AsyncWrite + Unpin,
{
    let origin = cors_origin(&front.config.allowed_origins, head);
    let (bytes, accepted) = match prepare(front, head, route, peer) {
        Ok(checked) => {
            front.metrics.count(200);
            (stream_head(origin), Some(join(front, checked, listener)))
        }
        Err(error) => {
            front.metrics.count(error.status);
            let mut reply = Reply::error(&error);
            if let Some(origin) = origin {
                reply = reply
                    .with_header("Access-Control-Allow-Origin", origin)
                    .with_header("Vary", "Origin");
            }
            (reply.to_bytes(false), None)
        }
    };
    let deadline = front.runtime.now() + front.config.handshake_timeout;
    let write = async {
        stream.write_all(&bytes).await?;
        stream.flush().await
    };
    match with_deadline(&front.runtime, deadline, write).await {
        Some(Ok(())) => accepted,
        _ => {
            if let Some(accepted) = accepted {
                leave(&front.hub, accepted.conn);
            }
            None
        }
    }
}

/// Opens the stream's hub connection; its frames wait in the queue until [`run`] writes them.
fn join<R: Runtime>(front: &Front<R>, checked: Checked, listener: Option<ListenerId>) -> Accepted {
    let Checked {
        open,
        permissions,
        trust,
        slot,
    } = checked;
    let (frames_tx, frames) = mpsc::unbounded();
    let (close_tx, close_rx) = oneshot::channel();
    let stopping = front.stopping.clone();
    let conn = front.hub.with(|core, now| {
        let (conn, _intake) = core
            .hub
            .handle_open(now, Dialect::Sse(open), permissions, trust);
        core.conns.insert(
            conn,
            ConnLink {
                outbound: Default::default(),
                raw: Some(RawLink {
                    frames: frames_tx,
                    close: Some(close_tx),
                }),
                listener,
            },
        );
        if stopping.fired() {
            core.hub
                .close(now, conn, CloseCode::GoingAway, "server going away");
        }
        conn
    });
    tracing::debug!(%conn, "event stream open");
    Accepted {
        conn,
        frames,
        close_rx,
        slot,
    }
}

/// The stream's transport is gone: the hub forgets the connection.
fn leave<R: Runtime>(shared: &HubHandle<R>, conn: ConnId) {
    shared.with(|core, now| {
        core.conns.remove(&conn);
        core.hub.handle_transport_closed(now, conn);
    });
}

fn prepare<R: Runtime>(
    front: &Front<R>,
    head: &RequestHead,
    route: &Route,
    peer: Option<std::net::SocketAddr>,
) -> Result<Checked, ErrorReply> {
    if front.is_draining() {
        return Err(ErrorReply::unavailable("the server is shutting down"));
    }
    check_origin(&front.config.allowed_origins, head)?;
    // Counted before the token is checked, as for WebSockets: a flood is refused without an HMAC per attempt.
    let slot = front.limits.acquire(peer.map(|p| p.ip()))?;
    let check = check_token(front, head)?;
    let trust = check.trust(peer.is_some_and(|p| p.ip().is_loopback()));
    let permissions = authorize(AuthRule::Token, check)?;
    let open = stream_open(route, head)?;
    check_stream(&open, &permissions, front.config.hub.max_subscriptions)?;
    Ok(Checked {
        open,
        permissions,
        trust,
        slot,
    })
}

/// The verifier's answer on the stream's token (header, query or cookie).
fn check_token<R: Runtime>(front: &Front<R>, head: &RequestHead) -> Result<TokenCheck, ErrorReply> {
    let Some(verifier) = &front.config.verifier else {
        return Ok(TokenCheck::NoVerifier);
    };
    let token = stream_token(head)?;
    Ok(match verifier.verify(token.as_deref(), head) {
        Ok(permissions) => TokenCheck::Accepted(permissions),
        Err(TokenRefusal::Missing) => TokenCheck::Missing,
        Err(e) => {
            tracing::debug!(error = %e, path = %head.path, "stream unauthorized");
            TokenCheck::Refused
        }
    })
}

/// Runs an accepted stream until the hub closes it or the client goes away.
pub(crate) async fn run<R, S>(front: Arc<Front<R>>, stream: S, accepted: Accepted)
where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Accepted {
        conn,
        mut frames,
        close_rx,
        slot,
    } = accepted;
    let shared = front.hub.clone();
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let gone = async {
        let mut scratch = [0u8; 512];
        while let Ok(n) = reader.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    };
    let close_timeout = front.config.close_timeout;
    or(
        write_loop(
            &shared,
            conn,
            &mut writer,
            &mut frames,
            close_rx,
            close_timeout,
        ),
        gone,
    )
    .await;
    let deadline = shared.runtime.now() + close_timeout;
    let _ = with_deadline(&shared.runtime, deadline, writer.close()).await;
    leave(&shared, conn);
    drop(slot);
    tracing::debug!(%conn, "event stream closed");
}

async fn write_loop<R, W>(
    shared: &HubHandle<R>,
    conn: ConnId,
    writer: &mut W,
    frames: &mut mpsc::UnboundedReceiver<Arc<str>>,
    close_rx: oneshot::Receiver<(CloseCode, String)>,
    close_timeout: std::time::Duration,
) where
    R: Runtime,
    W: AsyncWrite + Unpin,
{
    let mut close_rx = close_rx.fuse();
    let mut batch: Vec<u8> = Vec::new();
    // Written but not yet flushed when the close came: finished before what is still queued.
    let mut unfinished: Vec<u8> = Vec::new();
    loop {
        let frame = select_biased! {
            _ = close_rx => break,
            frame = frames.next() => frame,
        };
        let Some(frame) = frame else { return };
        batch.clear();
        batch.extend_from_slice(frame.as_bytes());
        while batch.len() < MAX_BATCH_BYTES {
            match frames.try_recv() {
                Ok(frame) => batch.extend_from_slice(frame.as_bytes()),
                Err(_) => break,
            }
        }
        let mut written = 0usize;
        let write = async {
            while written < batch.len() {
                match writer.write(&batch[written..]).await {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => written += n,
                    Err(e) => return Err(e),
                }
            }
            writer.flush().await
        }
        .fuse();
        futures_util::pin_mut!(write);
        select_biased! {
            // Closed (a slow consumer, or a shutdown) in the middle of a write: the rest of it still goes out
            // below, bounded in time.
            _ = close_rx => {}
            result = write => {
                match result {
                    Ok(()) => {
                        let bytes = batch.len();
                        shared.with(|core, _| core.hub.handle_sent(conn, bytes));
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(%conn, error = %e, "event stream write failed");
                        return;
                    }
                }
            }
        }
        unfinished.extend_from_slice(&batch[written..]);
        break;
    }
    // What was queued before the close still goes out, if the client takes it in time: the browser's
    // `Last-Event-ID` then asks only for what came after.
    while let Ok(frame) = frames.try_recv() {
        unfinished.extend_from_slice(frame.as_bytes());
    }
    let deadline = shared.runtime.now() + close_timeout;
    let flush = async {
        writer.write_all(&unfinished).await?;
        writer.flush().await
    };
    if with_deadline(&shared.runtime, deadline, flush)
        .await
        .is_none()
    {
        tracing::debug!(%conn, "event stream: queued events not delivered in time");
    }
}
