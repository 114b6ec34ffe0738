//! [`Link`]: the one connection the driver has at a time — none, being dialed, or open — and how it makes
//! progress inside one poll: frames queued for writing are fed in a batch and flushed once, then incoming frames are
//! read, at most a capped number per wake.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::Utf8Bytes;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use switchboard_protocol::client::ConnectFailure;
use switchboard_protocol::wire::CloseCode;

use super::dial::Socket;
use crate::{BoxFuture, Runtime};

/// What happened on the link during a poll.
#[derive(Debug)]
pub(crate) enum LinkEvent<R: Runtime> {
    /// The dial finished: the WebSocket is open.
    Up,
    /// The dial failed.
    Failed(ConnectFailure),
    /// A text frame.
    Text(Utf8Bytes),
    /// The server sent a close frame. The socket still has to answer it and see the TCP end; the driver hands it
    /// to [`shut`].
    Closed {
        /// The close code (1005 when the frame had none).
        code: CloseCode,
        /// The close reason.
        reason: String,
        /// The socket, to finish the close handshake.
        open: Box<Open<R>>,
    },
    /// The connection broke without a close frame (an IO or protocol error, or the TCP end).
    Lost(String),
}

/// An open WebSocket with the frames waiting to be written.
pub(crate) struct Open<R: Runtime> {
    socket: Socket<R>,
    outgoing: VecDeque<Message>,
    unflushed: bool,
}

impl<R: Runtime> std::fmt::Debug for Open<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("outgoing", &self.outgoing.len())
            .field("unflushed", &self.unflushed)
            .finish_non_exhaustive()
    }
}

/// The driver's connection.
pub(crate) enum Link<R: Runtime> {
    /// None.
    Idle,
    /// Being dialed.
    Dialing(BoxFuture<'static, Result<Socket<R>, ConnectFailure>>),
    /// Open.
    Open(Box<Open<R>>),
}

impl<R: Runtime> std::fmt::Debug for Link<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Idle => f.write_str("Idle"),
            Link::Dialing(_) => f.write_str("Dialing"),
            Link::Open(open) => open.fmt(f),
        }
    }
}

impl<R: Runtime> Link<R> {
    /// Queues a text frame; written on the next poll. Without an open connection there is nobody to send it to
    /// (the machine only transmits on a connection it considers open, so this does not happen in practice).
    pub(crate) fn send(&mut self, frame: String) {
        match self {
            Link::Open(open) => open.outgoing.push_back(Message::text(frame)),
            _ => tracing::debug!("frame dropped: no open connection"),
        }
    }

    /// Lets go of the connection: the open socket is returned for [`shut`]; a dial in progress is abandoned.
    pub(crate) fn take(&mut self) -> Option<Box<Open<R>>> {
        match std::mem::replace(self, Link::Idle) {
            Link::Open(open) => Some(open),
            _ => None,
        }
    }

    /// Makes what progress it can: the dial, then writes, then up to `max_frames` reads. Events go to `out`.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        max_frames: usize,
        out: &mut Vec<LinkEvent<R>>,
    ) {
        if let Link::Dialing(dialing) = self {
            match dialing.as_mut().poll(cx) {
                Poll::Pending => return,
                Poll::Ready(Err(failure)) => {
                    *self = Link::Idle;
                    out.push(LinkEvent::Failed(failure));
                    return;
                }
                Poll::Ready(Ok(socket)) => {
                    *self = Link::Open(Box::new(Open {
                        socket,
                        outgoing: VecDeque::new(),
                        unflushed: false,
                    }));
                    out.push(LinkEvent::Up);
                }
            }
        }
        let Link::Open(open) = self else {
            return;
        };
        if let Poll::Ready(Err(e)) = open.poll_write(cx) {
            *self = Link::Idle;
            out.push(LinkEvent::Lost(format!("write failed: {e}")));
            return;
        }
        for _ in 0..max_frames {
            let Link::Open(open) = self else {
                return;
            };
            match Pin::new(&mut open.socket).poll_next(cx) {
                Poll::Pending => return,
                Poll::Ready(Some(Ok(Message::Text(text)))) => out.push(LinkEvent::Text(text)),
                Poll::Ready(Some(Ok(Message::Close(frame)))) => {
                    let (code, reason) = match frame {
                        Some(frame) => (
                            CloseCode::from_u16(u16::from(frame.code)),
                            frame.reason.as_str().to_owned(),
                        ),
                        None => (CloseCode::from_u16(1005), String::new()),
                    };
                    if let Some(open) = self.take() {
                        out.push(LinkEvent::Closed { code, reason, open });
                    }
                    return;
                }
                // The contract speaks text only; pings are answered by tungstenite itself.
                Poll::Ready(Some(Ok(other))) => {
                    tracing::trace!(kind = message_kind(&other), "ignored a non-text frame");
                }
                Poll::Ready(Some(Err(e))) => {
                    *self = Link::Idle;
                    out.push(LinkEvent::Lost(format!("read failed: {e}")));
                    return;
                }
                Poll::Ready(None) => {
                    *self = Link::Idle;
                    out.push(LinkEvent::Lost("the connection ended".to_owned()));
                    return;
                }
            }
        }
    }
}

impl<R: Runtime> Open<R> {
    /// Feeds every queued frame the socket will take, then flushes once.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), async_tungstenite::tungstenite::Error>> {
        while !self.outgoing.is_empty() {
            match Pin::new(&mut self.socket).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            if let Some(message) = self.outgoing.pop_front() {
                Pin::new(&mut self.socket).start_send(message)?;
                self.unflushed = true;
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.socket).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Ends a connection politely, within `timeout`: writes what was queued, sends the close frame (or, with `None`,
/// answers the server's), and reads until the server closes the TCP connection.
pub(crate) async fn shut<R: Runtime>(
    runtime: R,
    mut open: Box<Open<R>>,
    close: Option<(CloseCode, String)>,
    timeout: Duration,
) {
    let deadline = runtime.now() + timeout;
    let work = async move {
        while let Some(message) = open.outgoing.pop_front() {
            if open.socket.feed(message).await.is_err() {
                return;
            }
        }
        let sent = match close {
            Some((code, reason)) => {
                let frame = CloseFrame {
                    code: WsCloseCode::from(code.as_u16()),
                    reason: reason.into(),
                };
                open.socket.close(Some(frame)).await
            }
            None => open.socket.flush().await,
        };
        if sent.is_err() {
            return;
        }
        while let Some(Ok(_)) = open.socket.next().await {}
    };
    futures_lite::future::or(work, runtime.sleep_until(deadline)).await;
}

fn message_kind(message: &Message) -> &'static str {
    match message {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        Message::Ping(_) => "ping",
        Message::Pong(_) => "pong",
        Message::Close(_) => "close",
        Message::Frame(_) => "frame",
    }
}
