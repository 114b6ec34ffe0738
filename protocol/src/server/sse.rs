//! A Server-Sent Events stream as a hub connection (PROTOCOL §5.4): what it asks for at open ([`SseOpen`]), where
//! it is in each of its channels ([`SseState`]), and how a channel event becomes its bytes.
//!
//! Fan-out encodes an event once per dialect, and a stream's frame carries the event's own position as its `id:`
//! (`epoch:offset`). A stream of one channel sends that shared frame as it is. A stream of several channels must
//! send the position of every channel in each id, which is its own: it gets the shared frame with the first line
//! replaced ([`SseState::frame_for`]) and pays one copy per event. The data itself is encoded once either way.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::Hub;
use super::conn_table::ConnId;
use super::dialect::{ConnDialect, DialectKind};
use crate::time::Timestamp;
use crate::wire::project_stream::ProjectStreamMessage;
use crate::wire::sse_event::{self, KEEP_ALIVE, channel_event_data, event_block, event_name};
use crate::wire::sse_event_id::{SseEventId, SsePosition};
use crate::wire::{ChannelName, ErrorCode};

/// The reconnect delay a stream asks of the browser (`retry:`), in milliseconds.
pub const SSE_RETRY_MS: u64 = 1_000;

/// What a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseTarget {
    /// These channels' events, in this order (the order of the id's entries).
    Channels(Vec<ChannelName>),
    /// The channel `projects/{project_id}`, as the project-stream dialect's messages.
    Project(String),
}

/// Where a stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseResume {
    /// At the channels' current positions.
    Fresh,
    /// After these positions (from `Last-Event-ID` or `?since=`): what was missed is replayed, or the channel
    /// gets a `resync`.
    From(SseEventId),
    /// A `Last-Event-ID` that could not be read: every channel gets a `resync` (a 400 would make the browser
    /// stop reconnecting for good).
    Unreadable,
}

/// A stream's request, checked by the driver (grants, channel count, project id) before the response started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseOpen {
    /// What it carries.
    pub target: SseTarget,
    /// Where it starts.
    pub resume: SseResume,
}

impl SseOpen {
    pub(crate) fn kind(&self) -> DialectKind {
        match self.target {
            SseTarget::Channels(_) => DialectKind::Sse,
            SseTarget::Project(_) => DialectKind::ProjectSse,
        }
    }
}

/// A stream's channels and its position in each: the text of its next id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseState {
    /// The project of a project stream.
    pub(crate) project_id: Option<String>,
    /// Its channels, in id order (a project stream's one channel is `None` when its id makes no channel name).
    pub(crate) channels: Vec<ChannelName>,
    /// The last position sent in each channel.
    pub(crate) positions: Vec<SsePosition>,
}

impl SseState {
    pub(crate) fn new(target: &SseTarget) -> SseState {
        let (project_id, channels) = match target {
            SseTarget::Channels(channels) => (None, channels.clone()),
            SseTarget::Project(id) => (
                Some(id.clone()),
                crate::wire::project_stream::project_channel(id)
                    .ok()
                    .into_iter()
                    .collect(),
            ),
        };
        let positions = channels
            .iter()
            .map(|_| SsePosition {
                epoch: String::new(),
                offset: 0,
            })
            .collect();
        SseState {
            project_id,
            channels,
            positions,
        }
    }

    pub(crate) fn kind(&self) -> DialectKind {
        if self.project_id.is_some() {
            DialectKind::ProjectSse
        } else {
            DialectKind::Sse
        }
    }

    /// The id text of the current positions.
    pub(crate) fn id(&self) -> String {
        SseEventId(self.positions.clone()).encode()
    }

    /// Records that `channel` is at `epoch:offset`.
    pub(crate) fn advance(&mut self, channel: &ChannelName, epoch: &str, offset: u64) {
        if let Some(i) = self.channels.iter().position(|c| c == channel) {
            let pos = &mut self.positions[i];
            if pos.epoch != epoch {
                pos.epoch = String::from(epoch);
            }
            pos.offset = offset;
        }
    }

    /// This stream's copy of a shared event frame (see the [module docs](self)), its position moved on.
    pub(crate) fn frame_for(
        &mut self,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
        shared: &Arc<str>,
    ) -> Arc<str> {
        self.advance(channel, epoch, offset);
        if self.channels.len() <= 1 {
            return Arc::clone(shared);
        }
        let rest = shared.split_once('\n').map_or("", |(_, rest)| rest);
        let id = self.id();
        let mut text = String::with_capacity(id.len() + rest.len() + 5);
        text.push_str("id: ");
        text.push_str(&id);
        text.push('\n');
        text.push_str(rest);
        Arc::from(text)
    }
}

impl ConnDialect {
    /// The frame of a fanned-out event for a connection of this dialect: the shared one, or a stream's own copy.
    pub(crate) fn frame_for(
        &mut self,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
        shared: &Arc<str>,
    ) -> Arc<str> {
        match self {
            ConnDialect::Sse(state) => state.frame_for(channel, epoch, offset, shared),
            _ => Arc::clone(shared),
        }
    }
}

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
