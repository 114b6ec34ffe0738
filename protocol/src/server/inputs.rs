//! Frame intake, common to every dialect: unknown connections are ignored, every frame counts as activity, a frame
//! over `max_message_bytes` closes the connection with 1009, and the rate limit takes one token per frame; then the
//! frame goes to its dialect ([`native`](super::native), [`project_stream`](super::project_stream),
//! [`channel_payload`](super::channel_payload)).

use core::time::Duration;
use serde_json::json;

use super::Hub;
use super::conn::{ConnId, DialectKind};
use super::rate_limit::retry_after_ms;
use crate::time::Timestamp;
use crate::wire::{CloseCode, ErrorCode, MessageId};

impl Hub {
    /// A text frame arrived on `conn`. Answers, fan-out and events are queued for [`poll_output`](Hub::poll_output).
    pub fn handle_text(&mut self, now: Timestamp, conn: ConnId, text: &str) {
        let Some(kind) = self.intake(now, conn, text.len()) else {
            self.reap(now);
            return;
        };
        match kind {
            DialectKind::Native => self.native_text(now, conn, text),
            DialectKind::ProjectStream => self.project_stream_text(now, conn, text),
            DialectKind::ChannelPayload => self.channel_payload_text(now, conn, text),
        }
        self.reap(now);
    }

    /// A binary frame of `len` bytes arrived on `conn`: answered with `UNSUPPORTED_FRAME` in the connection's
    /// dialect (over `max_message_bytes`: closed with 1009). The connection stays open.
    pub fn handle_binary(&mut self, now: Timestamp, conn: ConnId, len: usize) {
        if self.intake(now, conn, len).is_some() {
            match self.take_token(now, conn) {
                Err(wait) => self.rate_limited(now, conn, None, wait),
                Ok(()) => self.send_error(
                    now,
                    conn,
                    None,
                    ErrorCode::UnsupportedFrame,
                    "binary frames are not supported: send JSON in text frames",
                    None,
                ),
            }
        }
        self.reap(now);
    }

    /// The writer flushed `bytes` of frames handed out as [`HubOutput::Transmit`](super::HubOutput::Transmit)
    /// for `conn`: they no longer count against `max_queued_bytes`.
    pub fn handle_sent(&mut self, conn: ConnId, bytes: usize) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.queued_bytes = c.queued_bytes.saturating_sub(bytes);
        }
    }

    /// The checks before a frame reaches its dialect. `None` when the frame goes no further.
    fn intake(&mut self, now: Timestamp, conn: ConnId, len: usize) -> Option<DialectKind> {
        let max = self.config.max_message_bytes;
        let c = self.conns.get_mut(conn)?;
        if c.closing {
            return None;
        }
        self.counters.frames_received += 1;
        c.last_activity = c.last_activity.max(now);
        if len > max {
            self.counters.oversized_messages += 1;
            self.outbox
                .close(conn, c, CloseCode::TooBig, "message too big");
            return None;
        }
        Some(c.kind())
    }

    /// Takes a token from `conn`'s bucket, or says how long until one is there.
    pub(super) fn take_token(&mut self, now: Timestamp, conn: ConnId) -> Result<(), Duration> {
        match self.conns.get_mut(conn) {
            Some(c) => c.bucket.try_take(now),
            None => Ok(()),
        }
    }

    /// Answers a dropped message with `RATE_LIMITED` and `retry_after_ms`.
    pub(super) fn rate_limited(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        message_id: Option<MessageId>,
        wait: Duration,
    ) {
        self.counters.rate_limited += 1;
        self.send_error(
            now,
            conn,
            message_id,
            ErrorCode::RateLimited,
            "too many messages: this one was dropped",
            Some(json!({ "retry_after_ms": retry_after_ms(wait) })),
        );
    }
}
