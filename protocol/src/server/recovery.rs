//! Subscribing, with recovery exactly as PROTOCOL §3 says, for every dialect.
//!
//! `subscribe` with `since: {epoch, offset: k}` asks the [store](super::store) for the events after `k`:
//! - the epoch is the channel's and every event after `k` up to the channel's offset is still kept and unexpired →
//!   `recovered: true`, and those events follow the answer, in order, before any live event;
//! - otherwise (another epoch, `k` ahead of the channel, or history no longer reaching back to `k + 1`) →
//!   `recovered: false` and nothing is replayed;
//! - no `since` → `recovered: null`, and the subscription starts at the current offset.
//!
//! The hub is one machine handling one input at a time, so the answer and the replay are queued before any later
//! publish can queue a live event: no gap, no duplicate.
//!
//! One more case answers `recovered: false`: a replay that would not fit in the connection's outbound queue
//! (`max_queued_bytes`, with [`ANSWER_ROOM`] bytes left for the answer). Sending it would close the connection as a
//! slow consumer, and it would reconnect and ask for the same replay again, forever; instead it learns at once that it
//! must catch up another way (`get_state`, the history route).

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::Hub;
use super::conn_table::ConnId;
use super::permissions::Action;
use super::publish::event_frame;
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::{ChannelName, ErrorCode, StreamPosition};

/// Room kept in the outbound queue for the answer that precedes a replay.
pub(crate) const ANSWER_ROOM: usize = 512;

/// An accepted subscribe.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Subscribed {
    /// The channel's offset: live events start after it.
    pub(crate) offset: u64,
    /// `subscribe_res.recovered`.
    pub(crate) recovered: Option<bool>,
    /// The events to send after the answer, encoded for the subscriber's dialect (only when `recovered` is
    /// `Some(true)`).
    pub(crate) replay: Vec<Arc<str>>,
}

impl Hub {
    /// Subscribes `conn` to `name`, checking permission and `max_subscriptions`, and plans the replay.
    pub(super) fn subscribe(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        name: &ChannelName,
        since: Option<&StreamPosition>,
    ) -> Result<Subscribed, Refusal> {
        let max = self.config.max_subscriptions;
        let Some(c) = self.conns.get_mut(conn) else {
            return Err(Refusal::new(ErrorCode::InternalError, "connection gone"));
        };
        if !c.permissions.allows(Action::Subscribe, name) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                alloc::format!("not allowed to subscribe to {name}"),
            ));
        }
        let already = c.subscriptions.contains(name);
        if !already && c.subscriptions.len() >= max {
            return Err(Refusal::new(
                ErrorCode::TooManySubscriptions,
                alloc::format!("this connection already has {max} subscriptions"),
            ));
        }
        let kind = c.kind();
        if already {
            return Ok(Subscribed {
                offset: self.offset_of(name),
                recovered: None,
                replay: Vec::new(),
            });
        }
        let (recovered, events) = match since {
            None => (None, Vec::new()),
            Some(pos) => match self.replay_of(now, name, pos) {
                Some(events) => (Some(true), events),
                None => (Some(false), Vec::new()),
            },
        };
        let offset = self.offset_of(name);
        let watched = super::presence::role_before(&self.channels, name, conn);
        // The store keeps the log (and its epoch) while the channel is routed.
        self.store.hold(name);
        let Some(c) = self.conns.get_mut(conn) else {
            return Err(Refusal::new(ErrorCode::InternalError, "connection gone"));
        };
        self.channels
            .entry(name.clone())
            .or_default()
            .subscribe(conn, kind);
        c.subscriptions.insert(name.clone());
        let queued = c.queued_bytes;
        self.presence_changed(name, conn, watched);
        let mut replay = Vec::with_capacity(events.len());
        let mut bytes = queued.saturating_add(ANSWER_ROOM);
        let epoch =
            super::cluster::view::epoch_of(self.cluster.as_deref(), self.store.as_ref(), name);
        for (offset, event) in &events {
            if let Some(frame) = event_frame(&mut self.rng, epoch, now, kind, name, *offset, event)
            {
                bytes = bytes.saturating_add(frame.len());
                replay.push(frame);
            }
        }
        if recovered == Some(true) && bytes > self.config.max_queued_bytes {
            return Ok(Subscribed {
                offset,
                recovered: Some(false),
                replay: Vec::new(),
            });
        }
        Ok(Subscribed {
            offset,
            recovered,
            replay,
        })
    }

    /// Sends a replay after the answer to its subscribe; stops if the connection closes.
    pub(super) fn send_replay(&mut self, conn: ConnId, replay: Vec<Arc<str>>) {
        for frame in replay {
            if !self.send_frame(conn, frame) {
                return;
            }
            self.counters.delivered += 1;
        }
    }

    /// Unsubscribes `conn` from `name`, or `NOT_SUBSCRIBED`.
    pub(super) fn unsubscribe(&mut self, conn: ConnId, name: &ChannelName) -> Result<(), Refusal> {
        let removed = self
            .conns
            .get_mut(conn)
            .is_some_and(|c| c.subscriptions.remove(name));
        if !removed {
            return Err(Refusal::new(
                ErrorCode::NotSubscribed,
                alloc::format!("not subscribed to {name}"),
            ));
        }
        let watched = super::presence::role_before(&self.channels, name, conn);
        if let Some(ch) = self.channels.get_mut(name) {
            ch.unsubscribe(conn);
        }
        self.presence_changed(name, conn, watched);
        self.forget_if_unused(name);
        Ok(())
    }
}
