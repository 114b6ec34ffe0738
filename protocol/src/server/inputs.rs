//! What arrives from a peer, after its [`Intake`](super::Intake): every frame counts as activity, a frame over
//! `max_message_bytes` closes the connection with 1009, a frame the rate limit dropped is answered with
//! `RATE_LIMITED`, and everything else goes to its dialect ([`native`](super::native),
//! [`project_stream`](super::project_stream), [`channel_payload`](super::channel_payload)). Frames of unknown or
//! closing connections are ignored.

use core::time::Duration;
use serde_json::json;

use super::Hub;
use super::conn_table::ConnId;
use super::intake::Inbound;
use super::rate_limit::retry_after_ms;
use crate::time::Timestamp;
use crate::wire::{CloseCode, ErrorCode, MessageId};

impl Hub {
    /// A frame arrived on `conn` and went through its [`Intake`](super::Intake). Answers, fan-out and events are
    /// queued for [`poll_output`](Hub::poll_output).
    pub fn handle_inbound(&mut self, now: Timestamp, conn: ConnId, inbound: Inbound) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.closing {
            return;
        }
        self.counters.frames_received += 1;
        c.touch(now);
        match inbound {
            Inbound::TooBig => {
                self.counters.oversized_messages += 1;
                self.outbox
                    .close(conn, c, CloseCode::TooBig, "message too big");
            }
            Inbound::RateLimited { message_id, wait } => {
                self.rate_limited(now, conn, message_id, wait)
            }
            Inbound::Binary => self.send_error(
                now,
                conn,
                None,
                ErrorCode::UnsupportedFrame,
                "binary frames are not supported: send JSON in text frames",
                None,
            ),
            message => {
                if let Some(message) = self.cluster_admit(conn, message) {
                    self.dispatch_inbound(now, conn, message);
                }
            }
        }
        self.reap(now);
    }

    /// Hands a message to its dialect.
    pub(super) fn dispatch_inbound(&mut self, now: Timestamp, conn: ConnId, inbound: Inbound) {
        match inbound {
            Inbound::Native(decoded) => self.native_frame(now, conn, decoded),
            Inbound::ProjectStream(decoded) => self.project_stream_request(now, conn, decoded),
            Inbound::ChannelPayload(decoded) => self.channel_payload_request(now, conn, decoded),
            Inbound::TooBig | Inbound::RateLimited { .. } | Inbound::Binary => {}
        }
    }

    /// The writer flushed `bytes` of frames handed out as [`HubOutput::Transmit`](super::HubOutput::Transmit)
    /// for `conn`: they no longer count against `max_queued_bytes`.
    pub fn handle_sent(&mut self, conn: ConnId, bytes: usize) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.sent(bytes);
        }
    }

    /// Something arrived from the peer that the hub does not see (a WebSocket ping or pong frame): it counts
    /// against the silence timeout like any message.
    pub fn handle_activity(&mut self, now: Timestamp, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.touch(now);
        }
    }

    /// Answers a dropped message with `RATE_LIMITED` and `retry_after_ms`.
    fn rate_limited(
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
