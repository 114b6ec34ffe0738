//! One HTTP/1.1 connection: read a head (and body), answer it, repeat while keep-alive; or check a WebSocket
//! upgrade, answer 101 and hand the stream (with any bytes already read past the head) to the WebSocket driver.
//!
//! Timeouts: the first request must arrive within `handshake_timeout`, later ones within `idle_timeout` of the
//! previous answer, and a started request must be complete within `handshake_timeout`. A stopped listener or a
//! shutdown ends idle connections.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_util::FutureExt;
use switchboard_protocol::server::{Dialect, Permissions, Trust};
use switchboard_protocol::time::Timestamp;

use switchboard_protocol::rest::{
    BodyFraming, ErrorReply, NoRoute, Reply, RequestHead, Route, TokenCheck, match_route,
    stream_since, unrouted,
};

use super::Front;
use super::head::parse_head;
use super::limits::{ConnSlot, check_origin};
use super::rest;
use super::sse;
use super::upgrade::{check_upgrade, switching_protocols};
use crate::Runtime;
use crate::deadline::with_deadline;
use crate::server::hub::driver::ListenerId;
use crate::server::hub::session;
use crate::signal::Trigger;

/// Counts the task as a live HTTP connection for as long as it lives.
struct HttpTaskGuard<'a, R: Runtime>(&'a Front<R>);

impl<R: Runtime> Drop for HttpTaskGuard<'_, R> {
    fn drop(&mut self) {
        self.0.http_tasks.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What reading the next request gave.
enum Read {
    Request(RequestHead, Vec<u8>),
    Error(ErrorReply),
    /// End of stream, timeout, stop or IO error: just close.
    Gone,
}

/// Serves one connection until it closes, times out or is upgraded.
pub(crate) async fn serve<R, S>(
    front: Arc<Front<R>>,
    mut stream: S,
    peer: Option<std::net::SocketAddr>,
    listener: Option<ListenerId>,
    stop: Trigger,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    front.http_tasks.fetch_add(1, Ordering::SeqCst);
    let guard = HttpTaskGuard(&front);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut first = true;
    loop {
        let wait = if first {
            front.config.handshake_timeout
        } else {
            front.config.idle_timeout
        };
        let idle_deadline = front.runtime.now() + wait;
        let read = read_request(&front, &mut stream, &mut buf, idle_deadline, &stop).await;
        first = false;
        let (head, body) = match read {
            Read::Request(head, body) => (head, body),
            Read::Error(error) => {
                front.metrics.count(error.status);
                let answer = Reply::error(&error).to_bytes(false);
                if write_all(&front, &mut stream, &answer).await.is_ok() {
                    linger_close(&front, &mut stream).await;
                }
                return;
            }
            Read::Gone => return,
        };
        let keep_alive = head.keep_alive();
        let routed = match_route(&head.method, &head.path);
        if let Ok(r) = &routed
            && r.is_socket()
        {
            match prepare_upgrade(&front, &head, r, peer) {
                Ok((accept, dialect, (permissions, trust), slot)) => {
                    front.metrics.count(101);
                    if write_all(&front, &mut stream, &switching_protocols(&accept))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    drop(guard);
                    let mut leftover = std::mem::take(&mut buf);
                    // The WebSocket stream keeps this buffer for its life: only what was read past the head.
                    leftover.shrink_to_fit();
                    // A task of its own, and this one ends: an open WebSocket then holds only the session's
                    // state, not this HTTP future's read and linger buffers as well.
                    // The connection-limit slot lives as long as the session and is released when it ends.
                    let session = session::run(
                        front.hub.clone(),
                        front.session_limits(),
                        front.stopping.clone(),
                        stream,
                        leftover,
                        dialect,
                        permissions,
                        trust,
                        listener,
                    );
                    // `map`, not `async move { session.await; drop(slot) }`: an async block would hold the
                    // session's future twice (captured, and again while awaiting it).
                    front
                        .runtime
                        .spawn(Box::pin(FutureExt::map(session, move |()| drop(slot))));
                    return;
                }
                Err(error) => {
                    front.metrics.count(error.status);
                    let _ =
                        write_all(&front, &mut stream, &Reply::error(&error).to_bytes(false)).await;
                    return;
                }
            }
        }
        if let Ok(r) = &routed
            && r.is_stream()
        {
            let Some(accepted) = sse::start(&front, &mut stream, &head, r, peer, listener).await
            else {
                return;
            };
            drop(guard);
            // A task of its own, as for a WebSocket: the stream holds only its own state.
            let stream_task = sse::run(front.clone(), stream, accepted);
            front.runtime.spawn(Box::pin(stream_task));
            return;
        }
        let response = match routed {
            Ok(r) => rest::handle(&front, &r, &head, &body, peer.map(|p| p.ip())).await,
            Err(no_route) => Reply::error(&refuse(&front, &head, no_route)),
        };
        front.metrics.count(response.status);
        let keep = keep_alive && !front.stopping.fired() && response.status < 500;
        if write_reply(&front, &mut stream, &response, head.method != "HEAD", keep)
            .await
            .is_err()
            || !keep
        {
            let _ = stream.close().await;
            return;
        }
    }
}

/// The answer to a request without a route; the token is checked first when the answer depends on it.
fn refuse<R: Runtime>(front: &Front<R>, head: &RequestHead, no_route: NoRoute) -> ErrorReply {
    let check = if no_route.needs_token() {
        rest::check_token(front, head)
    } else {
        Ok(TokenCheck::NoVerifier)
    };
    match check {
        Ok(check) => unrouted(no_route, check),
        Err(malformed) => malformed,
    }
}

/// Checks the upgrade request, the drain state, the `Origin`, the connection limits and the token; gives the
/// accept key, dialect, permissions and the connection's place in the limits (held until it closes).
fn prepare_upgrade<R: Runtime>(
    front: &Front<R>,
    head: &RequestHead,
    route: &Route,
    peer: Option<std::net::SocketAddr>,
) -> Result<(String, Dialect, (Permissions, Trust), ConnSlot), ErrorReply> {
    let accept = check_upgrade(head)?;
    if front.is_draining() {
        return Err(ErrorReply::unavailable("the server is shutting down"));
    }
    check_origin(&front.config.allowed_origins, head)?;
    // Counted before the token is checked: a flood is refused without an HMAC per attempt.
    let slot = front.limits.acquire(peer.map(|p| p.ip()))?;
    let loopback = peer.is_some_and(|p| p.ip().is_loopback());
    let (permissions, trust) = rest::socket_permissions(front, head, loopback)?;
    let dialect = match route {
        Route::NativeSocket => Dialect::Native,
        Route::ChannelPayloadSocket => Dialect::ChannelPayload,
        Route::ProjectSocket { project_id } => Dialect::ProjectStream {
            project_id: project_id.clone(),
            since: stream_since(head)?,
        },
        _ => return Err(ErrorReply::not_found()),
    };
    Ok((accept, dialect, (permissions, trust), slot))
}

/// Reads one request head and its body. Bytes past them stay in `buf` (pipelining, or the first WebSocket frames).
async fn read_request<R, S>(
    front: &Front<R>,
    stream: &mut S,
    buf: &mut Vec<u8>,
    idle_deadline: Timestamp,
    stop: &Trigger,
) -> Read
where
    R: Runtime,
    S: AsyncRead + Unpin,
{
    let config = &front.config;
    let mut request_deadline: Option<Timestamp> = None;
    let head = loop {
        match parse_head(buf, config.max_head_bytes) {
            Ok(Some((head, len))) => {
                buf.drain(..len);
                break head;
            }
            Ok(None) => {}
            Err(e) => return Read::Error(e.into()),
        }
        // Waiting for the start of a request may be cut short by a stop; a started request may not.
        let deadline = match request_deadline {
            Some(d) => d,
            None if !buf.is_empty() => {
                let d = front.runtime.now() + config.handshake_timeout;
                request_deadline = Some(d);
                d
            }
            None => idle_deadline,
        };
        let idle = buf.is_empty();
        match read_some(front, stream, buf, deadline, idle.then_some(stop)).await {
            Some(n) if n > 0 => {}
            _ => return Read::Gone,
        }
    };
    let len = match head.body_framing(config.max_body_bytes) {
        Ok(BodyFraming::None) => 0,
        Ok(BodyFraming::Length(n)) => n,
        Err(e) => return Read::Error(e.into()),
    };
    let deadline =
        request_deadline.unwrap_or_else(|| front.runtime.now() + config.handshake_timeout);
    while buf.len() < len {
        match read_some(front, stream, buf, deadline, None).await {
            Some(n) if n > 0 => {}
            _ => return Read::Gone,
        }
    }
    let body = buf.drain(..len).collect();
    Read::Request(head, body)
}

/// Reads what is available into `buf`: `None` on timeout, stop, shutdown or error; `Some(0)` at end of stream.
async fn read_some<R, S>(
    front: &Front<R>,
    stream: &mut S,
    buf: &mut Vec<u8>,
    deadline: Timestamp,
    stop: Option<&Trigger>,
) -> Option<usize>
where
    R: Runtime,
    S: AsyncRead + Unpin,
{
    let mut chunk = [0u8; 4096];
    let read = async { stream.read(&mut chunk).await.ok() };
    let stopped = async {
        match stop {
            Some(stop) => or(stop.wait(), front.stopping.wait()).await,
            None => std::future::pending().await,
        }
        None
    };
    let n = with_deadline(&front.runtime, deadline, or(read, stopped))
        .await
        .flatten()?;
    buf.extend_from_slice(&chunk[..n]);
    Some(n)
}

/// Most bytes of an unread request discarded by [`linger_close`].
const MAX_LINGER_BYTES: usize = 2 * 1024 * 1024;

/// Ends our direction (FIN) after an error answer sent before the request was fully read, then reads and discards
/// what the client still sends (bounded in time and bytes), so the unread rest of its request does not make the
/// kernel reset the connection and destroy the answer before the client reads it.
async fn linger_close<R, S>(front: &Front<R>, stream: &mut S)
where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = stream.close().await;
    let deadline = front.runtime.now() + front.config.close_timeout;
    let drain = async {
        let mut scratch = [0u8; 8192];
        let mut total = 0usize;
        while let Ok(n) = stream.read(&mut scratch).await {
            total += n;
            if n == 0 || total > MAX_LINGER_BYTES {
                break;
            }
        }
    };
    let _ = with_deadline(&front.runtime, deadline, drain).await;
}

/// Writes and flushes, bounded by `handshake_timeout`.
/// Bodies from this size on are written after the head rather than copied behind it.
const SEPARATE_BODY_BYTES: usize = 64 * 1024;

/// Writes a response; a large body (a history page) is written from where it is, not copied into the head's buffer.
async fn write_reply<R, S>(
    front: &Front<R>,
    stream: &mut S,
    response: &Reply,
    with_body: bool,
    keep_alive: bool,
) -> Result<(), ()>
where
    R: Runtime,
    S: AsyncWrite + Unpin,
{
    if !with_body {
        return write_all(front, stream, &response.head_bytes(keep_alive)).await;
    }
    if response.body.len() < SEPARATE_BODY_BYTES {
        return write_all(front, stream, &response.to_bytes(keep_alive)).await;
    }
    write_all(front, stream, &response.head_bytes(keep_alive)).await?;
    write_all(front, stream, &response.body).await
}

async fn write_all<R, S>(front: &Front<R>, stream: &mut S, bytes: &[u8]) -> Result<(), ()>
where
    R: Runtime,
    S: AsyncWrite + Unpin,
{
    let deadline = front.runtime.now() + front.config.handshake_timeout;
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match with_deadline(&front.runtime, deadline, write).await {
        Some(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
