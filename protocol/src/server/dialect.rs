//! What a connection speaks: the [`Dialect`] the driver picks from the URL, its parameterless [`DialectKind`], and
//! the form the hub keeps ([`ConnDialect`]: a project-stream connection's channel resolved once, at open).

use alloc::string::String;
use core::fmt;

use alloc::sync::Arc;

use super::sse_stream::{SseOpen, SseState, SseTarget};
use crate::wire::ChannelName;

/// What a connection speaks, with what its endpoint carried (PROTOCOL §5–§6). The driver picks it from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialect {
    /// `/api/ws`: the full protocol.
    Native,
    /// `/api/v1/ws/projects/{project_id}/stream`: subscribed to `projects/{project_id}` on open, resuming after
    /// `since` (the `?since=` query) in the current epoch.
    ProjectStream {
        /// From the path.
        project_id: String,
        /// From `?since=`.
        since: Option<u64>,
    },
    /// `/ws`: `{channel, payload}`.
    ChannelPayload,
    /// A Server-Sent Events stream (PROTOCOL §8): one or several channels, or a project's channel in the
    /// project-stream dialect's messages, resuming from the position the request carried.
    Sse(SseOpen),
}

impl Dialect {
    /// The dialect without its parameters.
    pub fn kind(&self) -> DialectKind {
        match self {
            Dialect::Native => DialectKind::Native,
            Dialect::ProjectStream { .. } => DialectKind::ProjectStream,
            Dialect::ChannelPayload => DialectKind::ChannelPayload,
            Dialect::Sse(open) => match open.target {
                SseTarget::Channels(_) => DialectKind::Sse,
                SseTarget::Project(_) => DialectKind::ProjectSse,
            },
        }
    }
}

/// A [`Dialect`] without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DialectKind {
    /// The native dialect.
    Native,
    /// The project-stream dialect.
    ProjectStream,
    /// The channel-payload dialect.
    ChannelPayload,
    /// Server-Sent Events carrying channel events.
    Sse,
    /// Server-Sent Events carrying the project-stream dialect's messages.
    ProjectSse,
}

impl DialectKind {
    /// Every dialect.
    pub const ALL: [DialectKind; DialectKind::COUNT] = [
        DialectKind::Native,
        DialectKind::ProjectStream,
        DialectKind::ChannelPayload,
        DialectKind::Sse,
        DialectKind::ProjectSse,
    ];

    /// How many dialects there are.
    pub const COUNT: usize = 5;

    /// `"native"`, `"project_stream"`, `"channel_payload"`, `"sse"` or `"project_stream_sse"` (the keys of the
    /// connections route's `by_dialect`).
    pub const fn as_str(self) -> &'static str {
        match self {
            DialectKind::Native => "native",
            DialectKind::ProjectStream => "project_stream",
            DialectKind::ChannelPayload => "channel_payload",
            DialectKind::Sse => "sse",
            DialectKind::ProjectSse => "project_stream_sse",
        }
    }

    /// Whether connections of this kind are Server-Sent Events streams (written to, never read from).
    pub const fn is_sse(self) -> bool {
        matches!(self, DialectKind::Sse | DialectKind::ProjectSse)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DialectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection's dialect as its [`Connection`](super::connection::Connection) keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnDialect {
    Native,
    /// `channel` is `None` only for a connection refused at open (bad project id), which is closed at once.
    ProjectStream {
        project_id: String,
        channel: Option<ChannelName>,
    },
    ChannelPayload,
    /// A Server-Sent Events stream and where it is in each of its channels.
    Sse(SseState),
}

impl ConnDialect {
    pub(crate) fn kind(&self) -> DialectKind {
        match self {
            ConnDialect::Native => DialectKind::Native,
            ConnDialect::ProjectStream { .. } => DialectKind::ProjectStream,
            ConnDialect::ChannelPayload => DialectKind::ChannelPayload,
            ConnDialect::Sse(state) if state.project_id.is_some() => DialectKind::ProjectSse,
            ConnDialect::Sse(_) => DialectKind::Sse,
        }
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
