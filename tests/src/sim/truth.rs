//! The hub's ground truth: what every hub generation published on every channel, recorded by the driver from each
//! `Published` event (reading the event back from the hub's history at once), independently of what any client
//! later receives. Delivered events, `publish_res` offsets and `get_state_res` states are checked against it.

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

/// The hub's ground truth: every event every hub published, by generation, channel and offset.
#[derive(Debug, Default)]
pub struct Truth {
    /// Epoch → hub generation.
    epochs: BTreeMap<String, u32>,
    /// (generation, channel) → the tag at each offset (index `offset - 1`).
    events: BTreeMap<(u32, ChannelName), Vec<(u64, bool)>>,
    /// Tag → where it was published.
    pub(super) by_tag: BTreeMap<u64, (ChannelName, PublishedEvent)>,
}

impl Truth {
    /// A new hub generation with its epoch.
    pub fn new_epoch(&mut self, generation: u32, epoch: &str) -> Result<(), String> {
        match self.epochs.insert(String::from(epoch), generation) {
            None => Ok(()),
            Some(old) => Err(format!(
                "hub generation {generation} reuses the epoch {epoch} of generation {old}"
            )),
        }
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

    /// The generation of an epoch.
    pub(super) fn generation(&self, epoch: &str) -> Result<u32, String> {
        self.epochs
            .get(epoch)
            .copied()
            .ok_or_else(|| format!("unknown epoch {epoch}"))
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
        assert!(t.new_epoch(0, "x").is_ok());
        assert!(t.new_epoch(1, "x").is_err());
    }
}
