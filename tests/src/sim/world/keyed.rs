//! Idempotent publishing in the simulation. The server application publishes some of its events under an
//! idempotency key and later publishes some of them again under the same key, as a backend retries after a
//! timeout, a crash of its own, or a restart of the server. A retry carries the original's event, tag included,
//! so a retry that lands a second time is caught by the truth ("applied twice"), and a retry answered as a
//! duplicate must name the offset where the original's tag was published.
//!
//! A retry is made only while the hub must still remember the key: within the dedupe window of the original
//! publish, and while the channel's log is the one the original was published in (a key answers only in its
//! epoch). Over the durable store that spans restarts: the key is written with its events; a hub over the memory
//! store starts every channel in a new log, so its keys end with it.
//!
//! The keys' choices come from a generator of their own, so every other draw of a seed is what it was before keys.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;
use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::Publish;
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, IdempotencyKey};

use super::World;

/// Keyed publishes a retry may pick from (the newest).
const LEDGER: usize = 32;

/// A retry is not made this close to the end of the original's window (the hub counts the window from when the
/// key settled, a restored hub from the publish itself).
const WINDOW_MARGIN: Duration = Duration::from_secs(2);

/// One keyed publish of the server application.
#[derive(Debug, Clone)]
pub(super) struct KeyedPublish {
    key: IdempotencyKey,
    channel: ChannelName,
    tag: u64,
    event: Value,
    retain: bool,
    at: Timestamp,
}

/// The keyed publishes made so far, and the generator of the keys' choices.
#[derive(Debug)]
pub(super) struct Keys {
    rng: Rng,
    ledger: VecDeque<KeyedPublish>,
}

impl Keys {
    /// The keys of `seed`'s world.
    pub(super) fn new(seed: u64) -> Keys {
        Keys {
            rng: Rng::from_seed(seed ^ 0x6b65_7973_5f72_6574),
            ledger: VecDeque::new(),
        }
    }

    /// A key for a fresh publish (about half of them get one).
    fn key_for(
        &mut self,
        at: Timestamp,
        channel: &ChannelName,
        tag: u64,
        event: &Value,
        retain: bool,
    ) -> Option<IdempotencyKey> {
        if !self.rng.chance(0.5) {
            return None;
        }
        let key = IdempotencyKey::new(format!("job-{tag}")).expect("a valid key");
        if self.ledger.len() == LEDGER {
            self.ledger.pop_front();
        }
        self.ledger.push_back(KeyedPublish {
            key: key.clone(),
            channel: channel.clone(),
            tag,
            event: event.clone(),
            retain,
            at,
        });
        Some(key)
    }

    /// A keyed publish to make again, now and then.
    fn pick(&mut self) -> Option<KeyedPublish> {
        if self.ledger.is_empty() || !self.rng.chance(0.3) {
            return None;
        }
        let i = self.rng.below_inclusive(self.ledger.len() as u64 - 1) as usize;
        self.ledger.get(i).cloned()
    }
}

impl World {
    /// The server application publishes on `channel`, or now and then retries an earlier keyed publish.
    pub(super) fn hub_publish_or_retry(&mut self, channel: &ChannelName, retain: bool) {
        if let Some(original) = self.keys.pick()
            && self.may_retry(&original)
        {
            self.counts.keyed_retries += 1;
            let KeyedPublish {
                key,
                channel,
                tag,
                event,
                retain,
                ..
            } = original;
            self.log(|| format!("hub retries publish #{tag} under {}", key.as_str()));
            return self.hub_publish_tagged(&channel, tag, event, retain, Some(key));
        }
        self.hub_publish(channel, retain);
    }

    /// The server application publishes a fresh event on `channel`, under a key about half the time.
    pub(super) fn hub_publish(&mut self, channel: &ChannelName, retain: bool) {
        let now = self.clock.now();
        let (tag, event) = self.workload.event(retain);
        let key = self.keys.key_for(now, channel, tag, &event, retain);
        self.hub_publish_tagged(channel, tag, event, retain, key);
    }

    /// Whether the hub must still know `original`'s key: within its window, in the log it was published in.
    fn may_retry(&mut self, original: &KeyedPublish) -> bool {
        let now = self.clock.now();
        let window = self.hub.config().dedupe_window;
        if now + WINDOW_MARGIN >= original.at + window {
            return false;
        }
        let Some((channel, published)) = self.checker.truth.by_tag.get(&original.tag).cloned()
        else {
            // Not published (yet): still being written, refused, or lost unacknowledged with a crashed hub. The
            // retry waits for the first, publishes after the others.
            return true;
        };
        self.log_id(&channel) == Some(published.generation)
    }

    /// A publish answered as a duplicate of `tag`'s original at `first..=last`: the original must be in the truth
    /// there.
    pub(super) fn check_duplicate(
        &mut self,
        channel: &ChannelName,
        tag: u64,
        first: u64,
        last: u64,
    ) {
        self.counts.keyed_duplicates += 1;
        match self.checker.truth.by_tag.get(&tag) {
            Some((c, published)) if c == channel && published.offset == first && first == last => {}
            found => self.fail(format!(
                "a retry of publish #{tag} was answered as a duplicate at {channel}#{first}..={last}, but the \
                 original is at {found:?}"
            )),
        }
    }

    /// Publishes `event` (tagged `tag`) under `key`; the offset it gets must be the one the truth recorded.
    fn hub_publish_tagged(
        &mut self,
        channel: &ChannelName,
        tag: u64,
        event: Value,
        retain: bool,
        key: Option<IdempotencyKey>,
    ) {
        let now = self.clock.now();
        let keyed = key.is_some();
        match self.hub.publish_keyed(now, channel, event, retain, key) {
            Ok(Publish::Done(offset)) => {
                self.drain_hub();
                let Some(log) = self.log_id(channel) else {
                    return;
                };
                let head = self.checker.truth.head(log, channel);
                if head != offset {
                    self.fail(format!(
                        "hub publish #{tag} got offset {offset}, the truth is at {head}"
                    ));
                }
            }
            // The store writes first: the truth learns the offset when the hub reports the publish, and
            // `PublishDone` (or `PublishDuplicate`, for a retry) must then name that offset.
            Ok(Publish::Pending(ticket)) => {
                if self
                    .tickets
                    .insert(ticket, (channel.clone(), tag))
                    .is_some()
                {
                    return self.fail(format!("the hub gave ticket {ticket:?} twice"));
                }
                self.drain_hub();
            }
            Ok(Publish::Duplicate {
                first_offset,
                last_offset,
            }) if keyed => self.check_duplicate(channel, tag, first_offset, last_offset),
            Ok(Publish::Duplicate { .. }) => self.fail(format!(
                "hub publish #{tag} has no key, yet was a duplicate"
            )),
            Err(e) => self.fail(format!("the hub refused a valid publish: {e}")),
        }
    }
}
