//! What the machine re-establishes on every connection: the wanted channels with the last position seen on each
//! ([`Subscriptions`]), and the channels this client serves ([`Served`]).
//!
//! A channel becomes wanted when its `subscribe` goes on the wire and stops being wanted when its `unsubscribe`
//! does, so the set always describes what the server was last asked for. Events are admitted against it: an event
//! for a channel not wanted is dropped (a late one after `unsubscribe`), and so is one whose offset is not past the
//! last position in the same epoch (a replay overlapping what was already delivered). A new epoch starts afresh; one
//! that shows up in an event, or in a `subscribe_res` that is not a replay while a position is held, also calls for
//! a resync.
//!
//! Late events of an ended subscription are dropped until the server answers its `unsubscribe` (a late answer to one
//! that timed out counts) or the connection ends, even when the channel is wanted again meanwhile: the server
//! answers in order, so whatever precedes that answer belongs to the old subscription, and delivering it to the new
//! one would make the new one look continuous with the old one across the events published in between.

use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BTreeSet};

use crate::wire::{ChannelName, MessageId, StreamPosition};

/// The wanted channels and their positions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscriptions {
    channels: BTreeMap<ChannelName, Wanted>,
    /// Channels whose last `unsubscribe` went out on this connection and is not yet answered, with its id.
    leaving: BTreeMap<ChannelName, MessageId>,
    /// `subscribe`s of this connection that timed out on our side, by id: the server still answers them, in order,
    /// and the answer still says where the subscription starts and whether events were lost.
    late: BTreeMap<MessageId, ChannelName>,
    /// Channels whose last `subscribe` asked for `join`/`leave` notifications; resubscriptions ask again.
    presence: BTreeSet<ChannelName>,
}

#[derive(Debug, Clone)]
struct Wanted {
    /// The last position seen: the last event delivered, or where the server said the subscription starts.
    position: Option<StreamPosition>,
    /// The last `subscribe` sent for the channel; only its refusal drops the channel.
    subscribe_id: MessageId,
}

/// What to do with an incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// New: deliver it.
    Deliver,
    /// New, in an epoch other than the last position's, with no `subscribe_res` having said so: the history
    /// started afresh and events may be missing. Resync, then deliver it.
    NewEpoch,
    /// At or before the last position in the same epoch: already delivered.
    Duplicate,
    /// The channel is not wanted.
    NotWanted,
}

impl Subscriptions {
    /// A `subscribe` with this id went out: the channel is wanted, keeping any position it already had.
    pub(crate) fn want(&mut self, channel: &ChannelName, subscribe_id: MessageId) {
        match self.channels.get_mut(channel) {
            Some(wanted) => wanted.subscribe_id = subscribe_id,
            None => {
                self.channels.insert(
                    channel.clone(),
                    Wanted {
                        position: None,
                        subscribe_id,
                    },
                );
            }
        }
    }

    /// An `unsubscribe` with this id went out: the channel and its position are forgotten, and its events are
    /// dropped until the server answers it ([`answered`](Self::answered)) or the connection ends.
    pub(crate) fn unwant(&mut self, channel: &ChannelName, unsubscribe_id: MessageId) {
        self.channels.remove(channel);
        self.presence.remove(channel);
        self.leaving.insert(channel.clone(), unsubscribe_id);
    }

    /// The server answered (or refused) the request with this id, late or not: if it was an `unsubscribe`, no more
    /// events of the subscription it ended can follow.
    pub(crate) fn answered(&mut self, id: &MessageId) {
        self.leaving
            .retain(|_, unsubscribe_id| unsubscribe_id != id);
    }

    /// The connection ended: nothing more arrives from it.
    pub(crate) fn connection_lost(&mut self) {
        self.leaving.clear();
        self.late.clear();
    }

    /// The `subscribe` with this id, on the wire, timed out on our side; its answer may still come.
    pub(crate) fn timed_out(&mut self, subscribe_id: MessageId, channel: ChannelName) {
        self.late.insert(subscribe_id, channel);
    }

    /// The channel of a `subscribe` that had timed out on our side and is answered now.
    pub(crate) fn late_answer(&mut self, id: &MessageId) -> Option<ChannelName> {
        self.late.remove(id)
    }

    /// The server refused the `subscribe` with this id: the channel is dropped unless a later `subscribe` has
    /// superseded that one. Returns whether it was dropped.
    pub(crate) fn refused(&mut self, channel: &ChannelName, subscribe_id: &MessageId) -> bool {
        let current = self
            .channels
            .get(channel)
            .is_some_and(|w| &w.subscribe_id == subscribe_id);
        if current {
            self.channels.remove(channel);
        }
        current
    }

    /// The server ended the channel's subscription on its own (the connection's new token does not allow it): the
    /// channel and its position are forgotten. Returns whether it was wanted.
    pub(crate) fn ended(&mut self, channel: &ChannelName) -> bool {
        self.channels.remove(channel).is_some()
    }

    /// The server refused the `subscribe` with this id after it had timed out on our side: the channel whose
    /// latest `subscribe` it was is dropped (see [`refused`](Self::refused)) and returned.
    pub(crate) fn refused_by_id(&mut self, subscribe_id: &MessageId) -> Option<ChannelName> {
        let channel = self
            .channels
            .iter()
            .find(|(_, w)| &w.subscribe_id == subscribe_id)
            .map(|(c, _)| c.clone())?;
        self.channels.remove(&channel);
        Some(channel)
    }

    /// Whether the channel is wanted.
    #[cfg(test)]
    pub(crate) fn is_wanted(&self, channel: &ChannelName) -> bool {
        self.channels.contains_key(channel)
    }

    /// The position to resubscribe from.
    pub(crate) fn since(&self, channel: &ChannelName) -> Option<StreamPosition> {
        self.channels.get(channel).and_then(|w| w.position.clone())
    }

    /// Records whether the latest `subscribe` of the channel asks for presence notifications.
    pub(crate) fn set_presence(&mut self, channel: &ChannelName, presence: bool) {
        if presence {
            self.presence.insert(channel.clone());
        } else {
            self.presence.remove(channel);
        }
    }

    /// Whether resubscribing to the channel asks for presence notifications.
    pub(crate) fn presence(&self, channel: &ChannelName) -> bool {
        self.presence.contains(channel)
    }

    /// Every wanted channel, in name order.
    pub(crate) fn channels(&self) -> impl Iterator<Item = &ChannelName> + '_ {
        self.channels.keys()
    }

    /// A `subscribe_res` came for a wanted channel. With `recovered: true` the replay follows and the position
    /// stays where it is; otherwise the subscription starts at `(epoch, offset)`, which becomes the position (never
    /// moving backwards within an epoch, in case live events overtook the answer). Returns whether the application
    /// must resync: `recovered: false`, or an answer without a replay that moves a position already held to another
    /// epoch or past its offset (a `recovered: null` a hostile or confused server sent to a `since`, or that came
    /// after events overtook it): the events in between will never be delivered, and saying nothing would be a
    /// silent gap.
    pub(crate) fn subscribed(
        &mut self,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
        recovered: Option<bool>,
    ) -> bool {
        let Some(wanted) = self.channels.get_mut(channel) else {
            return false;
        };
        if recovered == Some(true) {
            return false;
        }
        let skipped = match &mut wanted.position {
            Some(pos) if pos.epoch == epoch => {
                let ahead = offset > pos.offset;
                pos.offset = pos.offset.max(offset);
                ahead
            }
            slot => {
                let held = slot.is_some();
                *slot = Some(StreamPosition {
                    epoch: epoch.to_owned(),
                    offset,
                });
                held
            }
        };
        recovered == Some(false) || skipped
    }

    /// Decides on an incoming event and, when it is delivered, moves the position to it.
    pub(crate) fn admit(&mut self, channel: &ChannelName, epoch: &str, offset: u64) -> Admission {
        let Some(wanted) = self.channels.get_mut(channel) else {
            return Admission::NotWanted;
        };
        if self.leaving.contains_key(channel) {
            return Admission::NotWanted;
        }
        let admission = match &mut wanted.position {
            Some(pos) if pos.epoch == epoch => {
                if offset <= pos.offset {
                    return Admission::Duplicate;
                }
                pos.offset = offset;
                return Admission::Deliver;
            }
            Some(_) => Admission::NewEpoch,
            None => Admission::Deliver,
        };
        wanted.position = Some(StreamPosition {
            epoch: epoch.to_owned(),
            offset,
        });
        admission
    }
}

/// The channels this client serves, each with the last `serve` sent for it. The protocol has no `unserve`: a
/// registration lasts until the server refuses it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Served {
    channels: BTreeMap<ChannelName, MessageId>,
}

impl Served {
    /// A `serve` with this id went out.
    pub(crate) fn serve(&mut self, channel: &ChannelName, serve_id: MessageId) {
        self.channels.insert(channel.clone(), serve_id);
    }

    /// The server refused the `serve` with this id; see [`Subscriptions::refused`].
    pub(crate) fn refused(&mut self, channel: &ChannelName, serve_id: &MessageId) -> bool {
        let current = self.channels.get(channel) == Some(serve_id);
        if current {
            self.channels.remove(channel);
        }
        current
    }

    /// The server ended the registration on its own; see [`Subscriptions::ended`].
    pub(crate) fn ended(&mut self, channel: &ChannelName) -> bool {
        self.channels.remove(channel).is_some()
    }

    /// The server refused the `serve` with this id after it had timed out on our side; see
    /// [`Subscriptions::refused_by_id`].
    pub(crate) fn refused_by_id(&mut self, serve_id: &MessageId) -> Option<ChannelName> {
        let channel = self
            .channels
            .iter()
            .find(|(_, id)| *id == serve_id)
            .map(|(c, _)| c.clone())?;
        self.channels.remove(&channel);
        Some(channel)
    }

    /// Whether calls on the channel are expected here.
    pub(crate) fn contains(&self, channel: &ChannelName) -> bool {
        self.channels.contains_key(channel)
    }

    /// Every served channel, in name order.
    pub(crate) fn channels(&self) -> impl Iterator<Item = &ChannelName> + '_ {
        self.channels.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    fn id(s: &str) -> MessageId {
        MessageId::new(s).unwrap()
    }

    fn pos(epoch: &str, offset: u64) -> Option<StreamPosition> {
        Some(StreamPosition {
            epoch: epoch.into(),
            offset,
        })
    }

    #[test]
    fn events_are_admitted_once_in_order_per_epoch() {
        let mut s = Subscriptions::default();
        assert_eq!(s.admit(&ch("a"), "e1", 1), Admission::NotWanted);
        s.want(&ch("a"), id("1"));
        assert_eq!(s.admit(&ch("a"), "e1", 3), Admission::Deliver);
        assert_eq!(s.admit(&ch("a"), "e1", 3), Admission::Duplicate);
        assert_eq!(s.admit(&ch("a"), "e1", 2), Admission::Duplicate);
        assert_eq!(s.admit(&ch("a"), "e1", 4), Admission::Deliver);
        assert_eq!(s.since(&ch("a")), pos("e1", 4));
        // A new epoch starts afresh, even at a lower offset, and events of the old one may be lost.
        assert_eq!(s.admit(&ch("a"), "e2", 1), Admission::NewEpoch);
        assert_eq!(s.admit(&ch("a"), "e2", 2), Admission::Deliver);
        assert_eq!(s.since(&ch("a")), pos("e2", 2));
        assert_eq!(s.admit(&ch("b"), "e2", 1), Admission::NotWanted);
    }

    #[test]
    fn subscribe_answers_set_the_position_unless_a_replay_follows() {
        let mut s = Subscriptions::default();
        s.want(&ch("a"), id("1"));
        assert!(!s.subscribed(&ch("a"), "e1", 10, None));
        assert_eq!(s.since(&ch("a")), pos("e1", 10));
        assert_eq!(s.admit(&ch("a"), "e1", 10), Admission::Duplicate);
        assert_eq!(s.admit(&ch("a"), "e1", 11), Admission::Deliver);
        // Recovered: the replay after 11 follows; the answer's offset must not skip it.
        assert!(!s.subscribed(&ch("a"), "e1", 15, Some(true)));
        assert_eq!(s.since(&ch("a")), pos("e1", 11));
        // Not recovered: resync, and live events continue from the answer's offset.
        assert!(s.subscribed(&ch("a"), "e1", 20, Some(false)));
        assert_eq!(s.since(&ch("a")), pos("e1", 20));
        // Never backwards within an epoch.
        assert!(!s.subscribed(&ch("a"), "e1", 5, None));
        assert_eq!(s.since(&ch("a")), pos("e1", 20));
        // A new epoch replaces the position.
        assert!(s.subscribed(&ch("a"), "e2", 0, Some(false)));
        assert_eq!(s.since(&ch("a")), pos("e2", 0));
        // No replay, yet the position moves on from one already held: events are skipped, so resync.
        assert!(s.subscribed(&ch("a"), "e2", 3, None));
        assert_eq!(s.since(&ch("a")), pos("e2", 3));
        assert!(s.subscribed(&ch("a"), "e1", 1, None));
        assert_eq!(s.since(&ch("a")), pos("e1", 1));
        assert!(!s.subscribed(&ch("a"), "e1", 1, None));
        // Not wanted: nothing happens.
        assert!(!s.subscribed(&ch("zz"), "e", 1, Some(false)));
    }

    #[test]
    fn want_keeps_the_position_and_unwant_forgets_it() {
        let mut s = Subscriptions::default();
        s.want(&ch("a"), id("1"));
        s.admit(&ch("a"), "e", 7);
        s.want(&ch("a"), id("2"));
        assert_eq!(s.since(&ch("a")), pos("e", 7));
        s.want(&ch("b"), id("3"));
        assert_eq!(
            s.channels().map(|c| c.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        s.unwant(&ch("a"), id("u"));
        assert!(!s.is_wanted(&ch("a")));
        s.want(&ch("a"), id("4"));
        assert_eq!(s.since(&ch("a")), None);
        // Until the unsubscribe is answered, the channel's events belong to the old subscription.
        assert_eq!(s.admit(&ch("a"), "e", 8), Admission::NotWanted);
        s.answered(&id("other"));
        assert_eq!(s.admit(&ch("a"), "e", 8), Admission::NotWanted);
        s.answered(&id("u"));
        assert_eq!(s.admit(&ch("a"), "e", 8), Admission::Deliver);
        s.unwant(&ch("a"), id("u2"));
        s.want(&ch("a"), id("5"));
        s.connection_lost();
        assert_eq!(s.admit(&ch("a"), "e", 9), Admission::Deliver);
    }

    #[test]
    fn only_the_latest_subscribe_can_be_refused() {
        let mut s = Subscriptions::default();
        s.want(&ch("a"), id("1"));
        s.want(&ch("a"), id("2"));
        assert!(!s.refused(&ch("a"), &id("1")));
        assert!(s.is_wanted(&ch("a")));
        assert!(s.refused(&ch("a"), &id("2")));
        assert!(!s.is_wanted(&ch("a")));

        let mut v = Served::default();
        v.serve(&ch("x"), id("1"));
        v.serve(&ch("x"), id("2"));
        assert!(!v.refused(&ch("x"), &id("1")));
        assert!(v.contains(&ch("x")));
        assert_eq!(v.channels().count(), 1);
        assert!(v.refused(&ch("x"), &id("2")));
        assert!(!v.contains(&ch("x")));

        // A refusal that comes after the request timed out finds its channel by id, if still the latest.
        s.want(&ch("a"), id("5"));
        s.want(&ch("a"), id("6"));
        assert_eq!(s.refused_by_id(&id("5")), None);
        assert_eq!(s.refused_by_id(&id("6")), Some(ch("a")));
        assert!(!s.is_wanted(&ch("a")));
        // Late answers are matched to the subscribes that timed out on this connection.
        s.timed_out(id("9"), ch("b"));
        assert_eq!(s.late_answer(&id("9")), Some(ch("b")));
        assert_eq!(s.late_answer(&id("9")), None);
        s.timed_out(id("10"), ch("b"));
        s.connection_lost();
        assert_eq!(s.late_answer(&id("10")), None);
        v.serve(&ch("x"), id("7"));
        assert_eq!(v.refused_by_id(&id("8")), None);
        assert_eq!(v.refused_by_id(&id("7")), Some(ch("x")));
    }
}
