//! The patterns the machine keeps subscribed (PROTOCOL §3.2), and its position in every channel they reached.
//!
//! A pattern becomes wanted when its `subscribe` goes out. Its first answer lists the matching channels with their
//! offsets, which become positions; every event delivered for a channel a wanted pattern matches moves that channel's
//! position. On a reconnect the machine resubscribes with `since`: the positions of the channels the pattern
//! matches, so the server replays what follows each, and the whole history of channels made meanwhile (the map does
//! not name them). The map is the machine's own, so the application sees one continuous stream per channel.
//!
//! An event for a channel only a pattern follows is admitted like a channel subscription's: delivered when past the
//! position in the same epoch, dropped when at or before it, delivered with a resync when the epoch changed.

use alloc::collections::BTreeMap;

use super::subscriptions::Admission;
use crate::wire::{ChannelName, ChannelPattern, MessageId, PatternChannel, StreamPosition};

/// Wanted patterns and the positions of the channels they reached.
#[derive(Debug, Clone, Default)]
pub(crate) struct PatternSubscriptions {
    /// Wanted patterns: whether the server has answered one of their `subscribe`s (a first subscribe has no `since`:
    /// live events from now; later ones recover), and the last `subscribe` sent.
    patterns: BTreeMap<ChannelPattern, Wanted>,
    /// The last position seen per channel reached by a pattern.
    positions: BTreeMap<ChannelName, StreamPosition>,
}

#[derive(Debug, Clone)]
struct Wanted {
    answered: bool,
    /// The server follows it on this connection (a `subscribe` for it was answered since the connection opened).
    /// Until then, events of its channels that come on other subscriptions are left to its answer: its replay, or
    /// its resync, says where the application goes on from, and an event let through first would be a gap.
    live: bool,
    subscribe_id: MessageId,
}

impl PatternSubscriptions {
    /// A `subscribe` with this id went out for `pattern`.
    pub(crate) fn want(&mut self, pattern: &ChannelPattern, subscribe_id: MessageId) {
        let (answered, live) = self
            .patterns
            .get(pattern)
            .map_or((false, false), |w| (w.answered, w.live));
        self.patterns.insert(
            pattern.clone(),
            Wanted {
                answered,
                live,
                subscribe_id,
            },
        );
    }

    /// The connection is gone: no pattern is followed until its resubscribe is answered.
    pub(crate) fn connection_lost(&mut self) {
        for wanted in self.patterns.values_mut() {
            wanted.live = false;
        }
    }

    /// An `unsubscribe` went out for `pattern`: its events stop, and the positions no other pattern needs go.
    pub(crate) fn unwant(&mut self, pattern: &ChannelPattern) {
        self.patterns.remove(pattern);
        let patterns = &self.patterns;
        self.positions
            .retain(|channel, _| patterns.keys().any(|p| p.matches(channel)));
    }

    /// The server refused the `subscribe` with this id: the pattern is no longer wanted. Whether it was its latest.
    pub(crate) fn refused(&mut self, pattern: &ChannelPattern, id: &MessageId) -> bool {
        if self
            .patterns
            .get(pattern)
            .is_some_and(|w| &w.subscribe_id == id)
        {
            self.unwant(pattern);
            return true;
        }
        false
    }

    /// Whether `id` is the latest `subscribe` sent for `pattern` (an answer to an older one says nothing now).
    pub(crate) fn is_latest(&self, pattern: &ChannelPattern, id: &MessageId) -> bool {
        self.patterns
            .get(pattern)
            .is_some_and(|w| &w.subscribe_id == id)
    }

    /// The wanted patterns, in order.
    pub(crate) fn patterns(&self) -> impl Iterator<Item = &ChannelPattern> + '_ {
        self.patterns.keys()
    }

    /// What a `subscribe` for `pattern` sends as `since`: nothing before the server first answered (start live),
    /// the positions of every matching channel after.
    pub(crate) fn since(
        &self,
        pattern: &ChannelPattern,
    ) -> Option<BTreeMap<ChannelName, StreamPosition>> {
        if !self.patterns.get(pattern).is_some_and(|w| w.answered) {
            return None;
        }
        Some(
            self.positions
                .iter()
                .filter(|(channel, _)| pattern.matches(channel))
                .map(|(c, p)| (c.clone(), p.clone()))
                .collect(),
        )
    }

    /// The server answered a `subscribe` for `pattern`. Returns the channels whose events could not be recovered
    /// (a resync each).
    pub(crate) fn subscribed(
        &mut self,
        pattern: &ChannelPattern,
        channels: &[PatternChannel],
    ) -> alloc::vec::Vec<ChannelName> {
        let Some(wanted) = self.patterns.get_mut(pattern) else {
            return alloc::vec::Vec::new();
        };
        wanted.answered = true;
        wanted.live = true;
        let mut lost = alloc::vec::Vec::new();
        for c in channels {
            if !pattern.matches(&c.channel) {
                continue;
            }
            let at = StreamPosition {
                epoch: c.epoch.clone(),
                offset: c.offset,
            };
            match c.recovered {
                // The replay that follows moves the position.
                Some(true) => {}
                Some(false) => {
                    self.positions.insert(c.channel.clone(), at);
                    lost.push(c.channel.clone());
                }
                // A first subscribe: live from here, no replay. A position already held (another pattern, a
                // subscribe again, or a channel subscription let go while this one was on its way) at or past
                // the answer's loses nothing; one behind it, or in another epoch, had events published since that
                // nothing will replay now: the application resynchronises.
                None => match self.positions.get(&c.channel) {
                    Some(p) if p.epoch == c.epoch && p.offset >= c.offset => {}
                    Some(_) => {
                        self.positions.insert(c.channel.clone(), at);
                        lost.push(c.channel.clone());
                    }
                    None => {
                        self.positions.insert(c.channel.clone(), at);
                    }
                },
            }
        }
        lost
    }

    /// Whether a wanted pattern matches `channel`.
    pub(crate) fn follows(&self, channel: &ChannelName) -> bool {
        self.patterns.keys().any(|p| p.matches(channel))
    }

    /// What to do with an event of `channel` that only patterns may follow, moving the position when it is new.
    /// Only a pattern the server follows now takes it (see [`Wanted::live`]).
    pub(crate) fn admit(&mut self, channel: &ChannelName, epoch: &str, offset: u64) -> Admission {
        if !self
            .patterns
            .iter()
            .any(|(p, w)| w.live && p.matches(channel))
        {
            return Admission::NotWanted;
        }
        let admission = match self.positions.get(channel) {
            Some(p) if p.epoch == epoch && offset <= p.offset => return Admission::Duplicate,
            Some(p) if p.epoch != epoch => Admission::NewEpoch,
            _ => Admission::Deliver,
        };
        self.seen(channel, epoch, offset);
        admission
    }

    /// The last position delivered in `channel` while a pattern follows it: a channel subscription made meanwhile
    /// resumes from it rather than starting live past events the application has not seen.
    pub(crate) fn position(&self, channel: &ChannelName) -> Option<StreamPosition> {
        if !self.follows(channel) {
            return None;
        }
        self.positions.get(channel).cloned()
    }

    /// The application lets go of its subscription to `channel` at `position` while a pattern follows the channel,
    /// or the subscription resynchronised at `position`: the pattern carries on from there (a resubscribe then names
    /// it, so a new epoch is reported as a resync), unless it is already further on in that epoch.
    pub(crate) fn adopt(&mut self, channel: &ChannelName, position: StreamPosition) {
        if !self.follows(channel) {
            return;
        }
        let newer = match self.positions.get(channel) {
            Some(p) => p.epoch != position.epoch || p.offset < position.offset,
            None => true,
        };
        if newer {
            self.positions.insert(channel.clone(), position);
        }
    }

    /// What the position a pattern holds in `channel` says of an event a channel subscription admitted: already
    /// delivered (`Duplicate`), or in another epoch than the last one delivered (`NewEpoch`); `None` when no
    /// pattern holds a position there.
    pub(crate) fn judge(
        &self,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
    ) -> Option<Admission> {
        if !self.follows(channel) {
            return None;
        }
        let p = self.positions.get(channel)?;
        Some(if p.epoch != epoch {
            Admission::NewEpoch
        } else if offset <= p.offset {
            Admission::Duplicate
        } else {
            Admission::Deliver
        })
    }

    /// A channel subscription is at `position` in `channel`: a pattern that follows the channel and is behind it
    /// in that epoch (or holds no position there) moves up to it, so its resubscribe does not replay what the
    /// application already has (a replay that, too big for the connection's queue, would close it every time).
    pub(crate) fn catch_up(&mut self, channel: &ChannelName, position: &StreamPosition) {
        if !self.follows(channel) {
            return;
        }
        let behind = match self.positions.get(channel) {
            Some(p) => p.epoch == position.epoch && p.offset < position.offset,
            None => true,
        };
        if behind {
            self.positions.insert(channel.clone(), position.clone());
        }
    }

    /// An event of `channel` was delivered (by a channel subscription too): a pattern's resubscribe starts after it.
    pub(crate) fn seen(&mut self, channel: &ChannelName, epoch: &str, offset: u64) {
        if self.follows(channel) {
            self.positions.insert(
                channel.clone(),
                StreamPosition {
                    epoch: alloc::string::String::from(epoch),
                    offset,
                },
            );
        }
    }
}
