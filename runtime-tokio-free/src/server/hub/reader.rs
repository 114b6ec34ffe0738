//! The reading end of a WebSocket session, polled by the session's one task between its writes.
//!
//! Every text and binary frame goes through the connection's `Intake` (size check, rate limit, decoding: no lock
//! needed) and the typed result to `handle_inbound`; pings and pongs to `handle_activity`. tungstenite reads the
//! socket's read half ([`ReadSide`]); its answers to pings and to the peer's close go into the connection's
//! [`Outbound`] queue. A message over `max_message_bytes`, a framing violation or text that is not UTF-8 fails
//! tungstenite's read; the reader then asks the hub to close with 1009, 1002 or 1007 ([`super::read_failure`]).
//!
//! Reading and writing share one task: an answer the hub queues while it handles a request is taken and written
//! in the same wake-up, and an idle connection costs one task, not two and the channel between them.

use std::task::{Context, Poll};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::StreamExt;
use switchboard_protocol::server::{ConnId, Intake};

use super::driver::{Core, HubHandle};
use super::outbound::Outbound;
use super::read_failure::close_for_read_error;
use super::read_side::ReadSide;
use crate::Runtime;

/// Messages handled in one poll before the task lets others run.
const READS_PER_POLL: usize = 64;

/// The reader's tungstenite stream.
pub(crate) type Reading<S> = WebSocketStream<ReadSide<S>>;

/// A connection's reading end while it reads.
pub(crate) struct Reader<S> {
    pub intake: Intake,
    pub ws: Reading<S>,
}

/// What one [`Reader::poll_read`] came to.
pub(crate) enum Read {
    /// Everything that had arrived is handled; the socket wakes the waker it was given when more comes.
    Waiting,
    /// [`READS_PER_POLL`] messages handled and more may be there: poll again soon, after other tasks.
    MoreLeft,
    /// Reading is over: the stream ended (`clean`) or a read failed (not clean; the hub was asked to close where
    /// the peer gets a close frame).
    Ended { clean: bool },
}

/// How the reader ended.
pub(crate) struct ReaderEnd<S> {
    pub ws: Reading<S>,
    /// The peer finished the close handshake or closed the stream: nothing left to drain.
    pub clean: bool,
}

impl<S> Reader<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Handles what has arrived, up to [`READS_PER_POLL`] messages. `cx` is what the socket wakes.
    pub fn poll_read<R: Runtime>(
        &mut self,
        cx: &mut Context<'_>,
        shared: &HubHandle<R>,
        conn: ConnId,
        outbound: &Outbound,
    ) -> Read {
        // What the peer asks is judged on an up-to-date account of what it has been sent (a replay must fit).
        let report = |core: &mut Core| {
            let written = outbound.take_written();
            if written > 0 {
                core.hub.handle_sent(conn, written);
            }
        };
        for _ in 0..READS_PER_POLL {
            let Poll::Ready(next) = self.ws.poll_next_unpin(cx) else {
                return Read::Waiting;
            };
            // One reading of the clock for the intake's checks and the hub.
            let now = shared.runtime.now();
            // Checked, rate-limited and decoded here, on the connection's own task: the hub's lock is taken only to
            // hand it the typed message.
            let inbound = match next {
                None => return Read::Ended { clean: true },
                Some(Ok(Message::Text(text))) => self.intake.text(now, text.as_str()),
                Some(Ok(Message::Binary(data))) => self.intake.binary(now, data.len()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    shared.with_at(now, |core, now| core.hub.handle_activity(now, conn));
                    continue;
                }
                // tungstenite queues the answering close; the next read hands it to the outbound queue and ends
                // the stream.
                Some(Ok(Message::Close(_) | Message::Frame(_))) => continue,
                Some(Err(e)) => {
                    tracing::debug!(%conn, error = %e, "websocket read failed");
                    if let Some((code, reason)) = close_for_read_error(&e) {
                        // The session sends the close frame and lingers for the peer's answer, as for any close.
                        shared.with_at(now, |core, now| core.hub.close(now, conn, code, reason));
                    }
                    return Read::Ended { clean: false };
                }
            };
            shared.with_at(now, |core, now| {
                report(core);
                core.hub.handle_inbound(now, conn, inbound)
            });
        }
        Read::MoreLeft
    }

    /// The end of reading, with the stream (to drain after a failed read).
    pub fn end(self, clean: bool) -> ReaderEnd<S> {
        ReaderEnd { ws: self.ws, clean }
    }
}
