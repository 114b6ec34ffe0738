//! The hub's ground truth: what every channel's log published, recorded by the driver from each
//! `Published` event (reading the event back from the hub's history at once), independently of what any client
//! later receives. Delivered events, `publish_res` offsets and `get_state_res` states are checked against it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::Value;
use switchboard_protocol::wire::ChannelName;

/// One event the hub published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PublishedEvent {
    pub(super) generation: u32,
    pub(super) offset: u64,
    pub(super) retain: bool,
}

/// The hub's ground truth: every event every hub published, by log, channel and offset. A log is named by its
/// epoch's number (a `generation`): every channel's log has its own epoch, and a forgotten channel's next log a new
/// one.
#[derive(Debug, Default)]
pub struct Truth {
    /// Epoch → its number, in order of appearance (numbered when first seen, by the hub or by a client: a log
    /// with no event yet is told to clients too).
    epochs: RefCell<BTreeMap<String, u32>>,
    /// Epochs numbered below this were given by hubs that are gone without keeping their history (memory hubs
    /// restarted): a hub that gives one again reuses an epoch.
    closed: u32,
    /// (generation, channel) → the tag at each offset (index `offset - 1`).
    events: BTreeMap<(u32, ChannelName), Vec<(u64, bool)>>,
    /// Tag → where it was published.
    pub(super) by_tag: BTreeMap<u64, (ChannelName, PublishedEvent)>,
}

impl Truth {
    /// The number of an epoch the current hub gives, numbered now if it is new.
    pub fn id(&mut self, epoch: &str) -> Result<u32, String> {
        let id = self.number(epoch);
        if id < self.closed {
            Err(format!(
                "the hub gives the epoch {epoch}, which a hub gone before it gave (log {id})"
            ))
        } else {
            Ok(id)
        }
    }

    fn number(&self, epoch: &str) -> u32 {
        let mut epochs = self.epochs.borrow_mut();
        if let Some(&id) = epochs.get(epoch) {
            return id;
        }
        let id = epochs.len() as u32;
        epochs.insert(String::from(epoch), id);
        id
    }

    /// The hub is gone with its history: no later hub may give any epoch known so far.
    pub fn close_all(&mut self) {
        self.closed = self.epochs.borrow().len() as u32;
    }

    /// The hub published `payload` at `offset` on `channel`.
    pub fn published(
        &mut self,
        generation: u32,
        channel: &ChannelName,
        offset: u64,
        payload: &Value,
    ) -> Result<(), String> {
        let (tag, retain) = tag_of(payload).ok_or_else(|| {
            format!("published event on {channel} is not the simulation's: {payload}")
        })?;
        let events = self
            .events
            .entry((generation, channel.clone()))
            .or_default();
        if offset != events.len() as u64 + 1 {
            return Err(format!(
                "{channel}: the hub published offset {offset} after {} (offsets must be consecutive)",
                events.len()
            ));
        }
        events.push((tag, retain));
        let published = PublishedEvent {
            generation,
            offset,
            retain,
        };
        if let Some((first_channel, first)) = self.by_tag.insert(tag, (channel.clone(), published))
        {
            return Err(format!(
                "publish #{tag} applied twice: at {first_channel}#{} and {channel}#{offset}",
                first.offset
            ));
        }
        Ok(())
    }

    /// The number of an epoch a client was told: numbered now if it is new (a log with no event yet).
    pub(super) fn generation(&self, epoch: &str) -> Result<u32, String> {
        Ok(self.number(epoch))
    }

    /// The newest offset of a channel in a generation (0 before the first event).
    pub fn head(&self, generation: u32, channel: &ChannelName) -> u64 {
        self.events
            .get(&(generation, channel.clone()))
            .map_or(0, |e| e.len() as u64)
    }

    /// The tag at an offset.
    pub(super) fn tag_at(
        &self,
        generation: u32,
        channel: &ChannelName,
        offset: u64,
    ) -> Option<u64> {
        let events = self.events.get(&(generation, channel.clone()))?;
        let index = usize::try_from(offset.checked_sub(1)?).ok()?;
        events.get(index).map(|&(tag, _)| tag)
    }

    /// The tag of the last retained event at or before `offset`.
    pub(super) fn retained_at(
        &self,
        generation: u32,
        channel: &ChannelName,
        offset: u64,
    ) -> Option<u64> {
        let events = self.events.get(&(generation, channel.clone()))?;
        let upto = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(events.len());
        events[..upto]
            .iter()
            .rev()
            .find(|(_, retain)| *retain)
            .map(|&(tag, _)| tag)
    }
}

/// The tag and retain flag of an event the simulation published: `{"tag": n, "retain": bool, …}`.
pub fn tag_of(event: &Value) -> Option<(u64, bool)> {
    let tag = event.get("tag")?.as_u64()?;
    let retain = event.get("retain")?.as_bool()?;
    Some((tag, retain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    #[test]
    fn the_truth_refuses_gaps_and_double_publishes() {
        let mut t = Truth::default();
        let p = |tag: u64| json!({"tag": tag, "retain": false});
        t.published(0, &ch("a"), 1, &p(1)).unwrap();
        assert!(t.published(0, &ch("a"), 3, &p(3)).is_err());
        assert!(t.published(0, &ch("a"), 2, &p(1)).is_err());
        assert_eq!(t.id("x"), Ok(0));
        assert_eq!(t.id("y"), Ok(1));
        assert_eq!(t.id("x"), Ok(0));
        t.close_all();
        assert!(t.id("x").is_err(), "an epoch of a hub gone");
        assert_eq!(t.id("z"), Ok(2));
    }
}
