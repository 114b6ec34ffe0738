//! The start of a Server-Sent Events stream (PROTOCOL §8): subscribe to each channel, recovering from the
//! position the request carried exactly as a native `subscribe` with `since` does ([`recovery`](super::recovery)),
//! then send, in this order:
//!
//! 1. the opening block: `retry:` and the id of the starting positions (the position asked for where it is
//!    recovered, the current one elsewhere), so a stream that drops before its first event still resumes from
//!    where it started;
//! 2. a project stream's `connected` message;
//! 3. for each channel in order: the missed events (each with its id), or `event: resync` with the channel's
//!    current position (and retained state) when it was asked for a position it cannot replay.
//!
//! The hub handles one input at a time, so nothing published after the subscribe can come between these and the
//! live events: no gap, no duplicate.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::json;

use super::Hub;
use super::conn_table::ConnId;
use super::dialect::ConnDialect;
use super::reply::Refusal;
use super::sse::error_block;
use super::sse_stream::{SSE_RETRY_MS, SseResume};
use crate::time::Timestamp;
use crate::wire::project_stream::ProjectStreamMessage;
use crate::wire::sse_event::{RESYNC, event_block, opening_block};
use crate::wire::sse_event_id::SsePosition;
use crate::wire::{ChannelName, CloseCode, ErrorCode, StreamPosition};

/// What one channel of a new stream asked for.
enum Want {
    Current,
    After(StreamPosition),
    Resync,
}

/// What one channel of a new stream gets after the opening block.
enum Start {
    /// The events after this offset, at consecutive offsets (a replay has no gaps: the store answers all or
    /// nothing).
    Replay(u64, Vec<Arc<str>>),
    Resync,
}

impl Hub {
    /// Subscribes a new stream and queues its opening (see the [module docs](self)).
    pub(super) fn open_sse(&mut self, now: Timestamp, conn: ConnId, resume: SseResume) {
        let Some(ConnDialect::Sse(state)) = self.conns.get(conn).map(|c| &c.dialect) else {
            return;
        };
        let channels = state.channels.clone();
        let project_id = state.project_id.clone();
        if channels.is_empty() {
            let what = match &project_id {
                Some(id) => alloc::format!("{id:?} is not a valid project id"),
                None => String::from("a stream needs at least one channel"),
            };
            self.refuse_stream(conn, Refusal::new(ErrorCode::InvalidChannel, what));
            return;
        }
        let wants = self.wants(&channels, resume);
        let mut positions = Vec::with_capacity(channels.len());
        let mut starts = Vec::with_capacity(channels.len());
        for (name, want) in channels.iter().zip(wants) {
            let since = match &want {
                Want::After(pos) => Some(pos),
                Want::Current | Want::Resync => None,
            };
            let sub = match self.subscribe(now, conn, name, since) {
                Ok(sub) => sub,
                Err(refusal) => {
                    self.refuse_stream(conn, refusal);
                    return;
                }
            };
            let epoch = String::from(self.epoch(name));
            match (want, sub.recovered) {
                (Want::After(pos), Some(true)) => {
                    positions.push(SsePosition {
                        epoch,
                        offset: pos.offset,
                    });
                    starts.push(Start::Replay(pos.offset, sub.replay));
                }
                (Want::Current, _) => {
                    positions.push(SsePosition {
                        epoch,
                        offset: sub.offset,
                    });
                    starts.push(Start::Replay(sub.offset, Vec::new()));
                }
                _ => {
                    positions.push(SsePosition {
                        epoch,
                        offset: sub.offset,
                    });
                    starts.push(Start::Resync);
                }
            }
        }
        let id = match self.conns.get_mut(conn).map(|c| &mut c.dialect) {
            Some(ConnDialect::Sse(state)) => {
                state.positions = positions;
                state.id()
            }
            _ => return,
        };
        self.send_frame(conn, Arc::from(opening_block(SSE_RETRY_MS, &id)));
        if let Some(project_id) = &project_id {
            let mut connected = ProjectStreamMessage::connected(project_id, now.as_millis());
            connected.message = Some(String::from("event stream established"));
            let block = event_block(None, &connected.event_type, &connected.encode());
            self.send_frame(conn, Arc::from(block));
        }
        for (name, start) in channels.iter().zip(starts) {
            match start {
                Start::Replay(after, frames) => self.send_stream_replay(conn, name, after, frames),
                Start::Resync => self.send_resync(now, conn, name, project_id.as_deref()),
            }
        }
    }

    /// What each channel asked for: a position in an id whose entries do not match the channels one for one is
    /// no position (every channel resyncs), as is an unreadable `Last-Event-ID`.
    fn wants(&self, channels: &[ChannelName], resume: SseResume) -> Vec<Want> {
        match resume {
            SseResume::Fresh => channels.iter().map(|_| Want::Current).collect(),
            SseResume::From(id) if id.0.len() == channels.len() => channels
                .iter()
                .zip(id.0)
                .map(|(name, pos)| {
                    let epoch = if pos.epoch.is_empty() {
                        String::from(self.epoch(name))
                    } else {
                        pos.epoch
                    };
                    Want::After(StreamPosition {
                        epoch,
                        offset: pos.offset,
                    })
                })
                .collect(),
            _ => channels.iter().map(|_| Want::Resync).collect(),
        }
    }

    /// A replay's frames (the events after `after`), each with this stream's id; stops if the stream closes.
    fn send_stream_replay(
        &mut self,
        conn: ConnId,
        name: &ChannelName,
        after: u64,
        frames: Vec<Arc<str>>,
    ) {
        let epoch = String::from(self.epoch(name));
        for (offset, shared) in (after + 1..).zip(frames) {
            let Some(c) = self.conns.get_mut(conn) else {
                return;
            };
            let frame = c.dialect.frame_for(name, &epoch, offset, &shared);
            if !self.send_frame(conn, frame) {
                return;
            }
            self.counters.delivered += 1;
        }
    }

    /// `event: resync` for a channel whose asked-for position cannot be replayed: its current position, and its
    /// retained state (a project stream's is the dialect's `state` message).
    fn send_resync(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        name: &ChannelName,
        project_id: Option<&str>,
    ) {
        let Some(ConnDialect::Sse(state)) = self.conns.get(conn).map(|c| &c.dialect) else {
            return;
        };
        let id = state.id();
        let current = self.state_of(name);
        let data = match project_id {
            Some(project_id) => ProjectStreamMessage::state(
                project_id,
                now.as_millis(),
                current.offset,
                current.state,
            )
            .encode(),
            None => json!({
                "channel": name.as_str(),
                "epoch": current.epoch,
                "offset": current.offset,
                "state": current.state,
            })
            .to_string(),
        };
        self.send_frame(conn, Arc::from(event_block(Some(&id), RESYNC, &data)));
    }

    /// A stream that cannot be served (a channel it may not read, or no channel): `event: error`, then close.
    fn refuse_stream(&mut self, conn: ConnId, refusal: Refusal) {
        self.counters.errors_sent += 1;
        let block = error_block(refusal.code, &refusal.message, refusal.details);
        self.send_frame(conn, Arc::from(block));
        if let Some(c) = self.conns.get_mut(conn) {
            self.outbox
                .close(conn, c, CloseCode::PolicyViolation, "stream refused");
        }
    }
}
