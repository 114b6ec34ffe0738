//! [`OwnEvents`]: on a node of a cluster, the events this node published, held until their webhook is done.
//!
//! A cluster sends each event's webhook once: from the node that took the publish (the one that got the publish
//! script's answer with the offsets). That node's events of a channel are not consecutive offsets (other nodes
//! publish on it too), so the delivery scheduler is not told offsets but numbers: the n-th event this node
//! published on the channel (counting again from 1 once the channel has nothing held). Asked for the event after
//! number `n`, this store hands out the held event with the lowest offset as number `n + 1`, so a channel's
//! webhooks go in offset order even when two publishes' answers came back in the other order.
//!
//! Memory is bounded like the history the single-node sender reads from: at most `per_channel` events held per
//! channel; the oldest beyond that is dropped, and the scheduler counts it as skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use switchboard_protocol::wire::ChannelName;

/// One held event.
#[derive(Debug, Clone)]
pub(crate) struct OwnEvent {
    pub epoch: Arc<str>,
    pub offset: u64,
    pub event: Arc<Value>,
}

#[derive(Debug, Default)]
struct Held {
    /// Events pushed while the channel was held: the number the last one was told as.
    pushed: u64,
    /// By offset.
    events: BTreeMap<u64, (Arc<str>, Arc<Value>)>,
    /// The event handed out and not finished yet: its number and offset.
    sending: Option<(u64, u64)>,
}

/// This node's published events waiting for their webhook, by channel.
#[derive(Debug)]
pub(crate) struct OwnEvents {
    per_channel: usize,
    channels: HashMap<ChannelName, Held>,
}

impl OwnEvents {
    /// Holding at most `per_channel` events per channel (at least one).
    pub fn new(per_channel: usize) -> OwnEvents {
        OwnEvents {
            per_channel: per_channel.max(1),
            channels: HashMap::new(),
        }
    }

    /// Holds `event`; returns the number to tell the scheduler.
    pub fn push(&mut self, channel: &ChannelName, event: OwnEvent) -> u64 {
        let held = self.channels.entry(channel.clone()).or_default();
        held.pushed += 1;
        held.events.insert(event.offset, (event.epoch, event.event));
        while held.events.len() > self.per_channel {
            held.events.pop_first();
        }
        held.pushed
    }

    /// The held event of `channel` with the lowest offset, handed out as number `after + 1`; `None` when none is
    /// held (the channel is then forgotten).
    pub fn take(&mut self, channel: &ChannelName, after: u64) -> Option<(u64, OwnEvent)> {
        let held = self.channels.get_mut(channel)?;
        let Some((offset, (epoch, event))) = held.events.pop_first() else {
            self.channels.remove(channel);
            return None;
        };
        let number = after + 1;
        held.sending = Some((number, offset));
        Some((
            number,
            OwnEvent {
                epoch,
                offset,
                event,
            },
        ))
    }

    /// The offset of the event handed out as `number` on `channel`, while it is being sent.
    pub fn offset_of(&self, channel: &ChannelName, number: u64) -> Option<u64> {
        match self.channels.get(channel)?.sending {
            Some((n, offset)) if n == number => Some(offset),
            _ => None,
        }
    }

    /// The event handed out as `number` is done (delivered or given up on). A channel with nothing held and every
    /// number it told done is forgotten: the scheduler has nothing pending for it either.
    pub fn finish(&mut self, channel: &ChannelName, number: u64) {
        let Some(held) = self.channels.get_mut(channel) else {
            return;
        };
        held.sending = None;
        if held.events.is_empty() && number >= held.pushed {
            self.channels.remove(channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(offset: u64) -> OwnEvent {
        OwnEvent {
            epoch: "e".into(),
            offset,
            event: Arc::new(serde_json::json!({ "n": offset })),
        }
    }

    fn channel() -> ChannelName {
        ChannelName::new("jobs/1").unwrap()
    }

    #[test]
    fn events_go_out_in_offset_order_whatever_order_they_came_in() {
        let mut own = OwnEvents::new(10);
        let c = channel();
        assert_eq!(own.push(&c, event(7)), 1);
        assert_eq!(own.push(&c, event(3)), 2);
        let (number, first) = own.take(&c, 0).unwrap();
        assert_eq!((number, first.offset), (1, 3));
        assert_eq!(own.offset_of(&c, 1), Some(3));
        own.finish(&c, 1);
        let (number, second) = own.take(&c, 1).unwrap();
        assert_eq!((number, second.offset), (2, 7));
        own.finish(&c, 2);
        assert!(own.take(&c, 2).is_none());
        assert_eq!(
            own.push(&c, event(9)),
            1,
            "a forgotten channel numbers from 1 again"
        );
    }

    #[test]
    fn the_oldest_beyond_the_bound_is_dropped_and_shows_as_missing() {
        let mut own = OwnEvents::new(2);
        let c = channel();
        for offset in 1..=3 {
            own.push(&c, event(offset));
        }
        let (_, kept) = own.take(&c, 0).unwrap();
        assert_eq!(kept.offset, 2, "the first was dropped");
        own.finish(&c, 1);
        let (_, kept) = own.take(&c, 1).unwrap();
        assert_eq!(kept.offset, 3);
        own.finish(&c, 2);
        assert!(
            own.take(&c, 2).is_none(),
            "number 3 has no event: the scheduler skips it"
        );
        assert_eq!(own.push(&c, event(4)), 1);
    }
}
