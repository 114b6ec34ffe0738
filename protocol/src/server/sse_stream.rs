//! A Server-Sent Events stream as the hub keeps it (PROTOCOL §8): what it asks for at open ([`SseOpen`]) and
//! where it is in each of its channels ([`SseState`]).
//!
//! Fan-out encodes an event once per dialect, and a stream's frame carries the event's own position as its `id:`
//! (`epoch:offset`). A stream of one channel sends that shared frame as it is. A stream of several channels must
//! send the position of every channel in each id, which is its own: it gets the shared frame with the first line
//! replaced ([`SseState::frame_for`]) and pays one copy per event. The data itself is encoded once either way.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::wire::ChannelName;
use crate::wire::sse_event_id::{SseEventId, SsePosition};

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
