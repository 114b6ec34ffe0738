//! The bytes of a Server-Sent Events stream's hub connection (PROTOCOL §8): a channel event's shared frame per
//! stream dialect, an error block, and the keep-alive comment every heartbeat. Where a stream is and how a
//! many-channel stream's own ids are made is [`sse_stream`](super::sse_stream)'s.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use serde_json::{Value, json};

use super::Hub;
use super::conn_table::ConnId;
use super::dialect::DialectKind;
use crate::time::Timestamp;
use crate::wire::project_stream::ProjectStreamMessage;
use crate::wire::sse_event::{self, KEEP_ALIVE, channel_event_data, event_block, event_name};
use crate::wire::sse_event_id::SseEventId;
use crate::wire::{ChannelName, ErrorCode};

/// The shared frame of one channel event for a stream of `kind`, its id the event's own position. `None` for a
/// project stream's frame on a channel outside `projects/`, and for a kind that is no stream.
pub(crate) fn stream_event_frame(
    kind: DialectKind,
    epoch: &str,
    now: Timestamp,
    channel: &ChannelName,
    offset: u64,
    event: &Value,
) -> Option<Arc<str>> {
    let id = SseEventId::single(epoch, offset).encode();
    let text = match kind {
        DialectKind::Sse => event_block(
            Some(&id),
            event_name(event),
            &channel_event_data(channel, offset, event),
        ),
        DialectKind::ProjectSse => {
            let project_id = channel.strip_prefix("projects/")?;
            let msg = ProjectStreamMessage::from_event(project_id, offset, event, now.as_millis());
            event_block(Some(&id), &msg.event_type, &msg.encode())
        }
        _ => return None,
    };
    Some(Arc::from(text))
}

/// A refusal or server error on a stream: `event: error` with `{code, message, details?}`.
pub(crate) fn error_block(code: ErrorCode, message: &str, details: Option<Value>) -> String {
    let mut data = json!({"code": code.as_str(), "message": message});
    if let Some(details) = details {
        data["details"] = details;
    }
    event_block(None, sse_event::ERROR, &data.to_string())
}

impl Hub {
    /// The keep-alive comment, every heartbeat.
    pub(super) fn send_keep_alive(&mut self, conn: ConnId) {
        self.send_frame(conn, Arc::from(KEEP_ALIVE));
    }
}
