//! Subscribing by pattern (PROTOCOL §3.2): the connection gets the events of every channel its pattern matches,
//! those that exist and those made later, each as the channel's own `event` with its epoch and offset.
//!
//! - **Delivery** is by the [pattern index](super::pattern_index) at every publish ([`Hub::fan_out`]). A connection
//!   reached more than once for one event (subscribed to the channel and to a matching pattern, or to two matching
//!   patterns) gets it **once**: per channel, its offsets still strictly increase with no gap and no duplicate.
//! - **Recovery**: `since` is a map channel → position. A resubscribe replays, for every matching channel the
//!   store has and every channel the map names, the events after the client's position, and for a channel the map
//!   does not name (made while the client was away), its history from the start; `recovered` is per channel, as
//!   for a single subscribe. The answer lists every matching channel with its position, so a client that starts
//!   without `since` learns where each channel is and keeps positions from there.
//! - **Replay size** is held to the outbound queue rule like every frame: a replay past `max_queued_bytes` closes
//!   the connection as a slow consumer (1013) with what was queued sent first; the client comes back with the
//!   positions it reached and the rest follows. (A single channel's replay is refused with `recovered: false`
//!   instead, since it would otherwise ask for the same replay forever; a pattern's resumes where it stopped.)
//! - **Grants**: one of the connection's subscribe patterns must cover the whole pattern
//!   ([`pattern_covers`](super::pattern_covers)), so no channel outside its grants ever reaches it.
//! - **Limits**: `max_patterns` per connection (`TOO_MANY_SUBSCRIPTIONS`). A node of a cluster refuses pattern
//!   subscriptions (`VALIDATION_ERROR`): it would have to follow channels it does not know of.
//!
//! A channel a pattern follows is not held by the hub ([`Store::hold`](super::Store::hold)): its log is forgotten
//! when its history expires, as any channel's, and its next event starts a new epoch, which the subscriber sees in
//! the event.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::Hub;
use super::conn_table::ConnId;
use super::permissions::Action;
use super::publish::event_frame;
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::{ChannelName, ChannelPattern, ErrorCode, PatternChannel, StreamPosition};

/// An accepted pattern subscribe.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PatternSubscribed {
    /// `subscribe_res.channels`.
    pub(crate) channels: Vec<PatternChannel>,
    /// The events to send after the answer, channel by channel, encoded for the subscriber's dialect.
    pub(crate) replay: Vec<Arc<str>>,
}

impl Hub {
    /// Subscribes `conn` to `pattern`, checking grants and `max_patterns`, and plans the replay.
    pub(super) fn subscribe_pattern(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        pattern: &ChannelPattern,
        since: Option<&BTreeMap<ChannelName, StreamPosition>>,
    ) -> Result<PatternSubscribed, Refusal> {
        if self.is_clustered() {
            return Err(Refusal::new(
                ErrorCode::ValidationError,
                "pattern subscriptions are not available on a cluster node yet",
            ));
        }
        let max = self.config.max_patterns;
        let Some(c) = self.conns.get(conn) else {
            return Err(Refusal::new(ErrorCode::InternalError, "connection gone"));
        };
        if !c.permissions.allows_pattern(Action::Subscribe, pattern) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                alloc::format!("not allowed to subscribe to every channel {pattern} matches"),
            ));
        }
        let already = c.patterns.contains(pattern);
        if !already && c.patterns.len() >= max {
            return Err(Refusal::new(
                ErrorCode::TooManySubscriptions,
                alloc::format!("this connection already has {max} pattern subscriptions"),
            ));
        }
        let kind = c.kind();
        let mut names: BTreeSet<ChannelName> = self
            .store
            .channels_with_prefix(pattern.literal_prefix())
            .into_iter()
            .filter(|name| pattern.matches(name))
            .collect();
        // The decoder checked every entry matches the pattern.
        if let Some(since) = since {
            names.extend(since.keys().cloned());
        }
        // Subscribing again to a pattern already followed misses nothing: no replay, as for a channel.
        let since = since.filter(|_| !already);
        let mut channels = Vec::with_capacity(names.len());
        let mut replay = Vec::new();
        for name in names {
            let epoch = String::from(self.epoch(&name));
            let offset = self.offset_of(&name);
            let recovered = since.map(|since| {
                let from = since.get(&name).cloned().unwrap_or(StreamPosition {
                    epoch: epoch.clone(),
                    offset: 0,
                });
                let Some(events) = self.replay_of(now, &name, &from) else {
                    return false;
                };
                for (offset, event) in &events {
                    if let Some(frame) =
                        event_frame(&mut self.rng, &epoch, now, kind, &name, *offset, event)
                    {
                        replay.push(frame);
                    }
                }
                true
            });
            channels.push(PatternChannel {
                channel: name,
                epoch,
                offset,
                recovered,
            });
        }
        if let Some(c) = self.conns.get_mut(conn) {
            c.patterns.insert(pattern.clone());
        }
        self.patterns.insert(pattern, conn);
        Ok(PatternSubscribed { channels, replay })
    }

    /// Ends `conn`'s subscription to `pattern`, or `NOT_SUBSCRIBED`. Its direct subscriptions stay.
    pub(super) fn unsubscribe_pattern(
        &mut self,
        conn: ConnId,
        pattern: &ChannelPattern,
    ) -> Result<(), Refusal> {
        let removed = self
            .conns
            .get_mut(conn)
            .is_some_and(|c| c.patterns.remove(pattern));
        if !removed {
            return Err(Refusal::new(
                ErrorCode::NotSubscribed,
                alloc::format!("not subscribed to {pattern}"),
            ));
        }
        self.patterns.remove(pattern, conn);
        Ok(())
    }

    /// Drops every pattern subscription of a connection that is going away.
    pub(super) fn drop_patterns(&mut self, conn: ConnId, patterns: &BTreeSet<ChannelPattern>) {
        for pattern in patterns {
            self.patterns.remove(pattern, conn);
        }
    }
}
