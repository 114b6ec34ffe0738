//! [`LiveFeed`]: the publications a node hears from Redis pub/sub, turned into a gap-free, duplicate-free stream per
//! channel.
//!
//! Redis pub/sub is at-most-once: a message published while the subscriber's connection is down is lost to it, and
//! nothing says so. Offsets do: the feed knows the last offset it delivered for each channel it follows, so a
//! publication further ahead means something was missed. It then holds newer publications back, asks for a read of
//! the stream after the last delivered offset ([`FeedOutput::Read`]), delivers what the read returns, then what it
//! held back — every event once, in offset order. A read that cannot fill the gap (history trimmed or expired, or
//! the channel lost from Redis and started again under a new epoch) becomes one [`FeedOutput::Resync`] with the
//! channel's current position, so subscribers take the usual `recovered: false` path instead of a silent gap.
//!
//! Every (re)subscription confirmed after the pub/sub connection came back ([`LiveFeed::handle_subscribed`]) reads
//! too: whatever was published while it was down is in the stream. While a read is out, publications are held back
//! (at most [`FeedConfig::max_held`] per channel; past that they are dropped and read again from the stream), so a
//! read's answer always starts from the position it was asked for.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::read::{ChannelRead, Replay, StoredEvent};
use crate::time::Timestamp;
use crate::wire::ChannelName;

/// How the feed reads and holds back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// Events asked for per read.
    pub read_batch: usize,
    /// Events asked for by the first read of a channel, which loads its history (set it to the history size).
    pub load_events: usize,
    /// After a failed read, the next one is this much later.
    pub retry_after: Duration,
    /// Publications held back per channel while a read is out.
    pub max_held: usize,
    /// History's time-to-live (zero: none): older events in a read count as gone.
    pub history_ttl: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            read_batch: 1000,
            load_events: 1000,
            retry_after: Duration::from_millis(100),
            max_held: 10_000,
            history_ttl: Duration::ZERO,
        }
    }
}

/// What the driver does for the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedOutput {
    /// Hand this event to the channel's local subscribers.
    Deliver {
        /// The channel.
        channel: ChannelName,
        /// Its epoch.
        epoch: String,
        /// The event's offset.
        offset: u64,
        /// The event became the channel's retained state.
        retained: bool,
        /// The event, as JSON text.
        event: Vec<u8>,
    },
    /// Read the channel (the read script with `after`, `limit` and the retained state) and report with
    /// [`LiveFeed::handle_read`] or [`LiveFeed::handle_read_failed`].
    Read {
        /// The channel.
        channel: ChannelName,
        /// Read the events after this offset (`None`: from the oldest kept).
        after: Option<u64>,
        /// At most this many events.
        limit: usize,
    },
    /// The first read placed the feed: it delivers every event after this position. A node answers subscribers of
    /// the channel with its feed's position, so they miss nothing between; the read's history and state come
    /// along, so the node can serve recovery and state from them.
    Positioned {
        /// The channel.
        channel: ChannelName,
        /// Its epoch (`None`: no data in Redis yet).
        epoch: Option<String>,
        /// Its newest offset when read.
        offset: u64,
        /// The retained event and its offset.
        state: Option<(u64, Vec<u8>)>,
        /// The history read, oldest first (at most [`FeedConfig::load_events`]; it ends at `offset` unless the
        /// stream holds more than that).
        events: Vec<StoredEvent>,
    },
    /// Events were missed and cannot be read any more: the channel's subscribers must resynchronise to this
    /// position (`recovered: false`).
    Resync {
        /// The channel.
        channel: ChannelName,
        /// The channel's epoch now (`None`: it has no data in Redis).
        epoch: Option<String>,
        /// Its newest offset.
        offset: u64,
        /// The retained event and its offset.
        state: Option<(u64, Vec<u8>)>,
    },
    /// Nothing more until this time (or new input).
    Timeout(Timestamp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// No read out.
    Idle,
    /// A read is out.
    Reading,
    /// The last read failed; read again at this time.
    RetryAt(Timestamp),
}

#[derive(Debug)]
struct Followed {
    /// The epoch and last offset delivered; `None` until the first read says where the channel is.
    position: Option<(Option<String>, u64)>,
    fill: Fill,
    /// Read again once the current read is answered (the subscription came back, or held publications were
    /// dropped, after the read's snapshot).
    again: bool,
    /// Publications held back, by offset, with their epoch and retained flag.
    held: BTreeMap<u64, Held>,
}

/// A publication held back: epoch, retained flag, event.
type Held = (String, bool, Vec<u8>);

/// The per-channel ordering of a node's live feed (see the [module docs](self)).
#[derive(Debug)]
pub struct LiveFeed {
    config: FeedConfig,
    channels: BTreeMap<ChannelName, Followed>,
    /// Reads still out for channels unfollowed since they were asked: their answers describe the channel as it
    /// was for the old following, so they are dropped. The driver answers a channel's reads in the order asked
    /// (one command connection), so the next answers of such a channel are exactly these.
    orphaned: BTreeMap<ChannelName, usize>,
    outputs: VecDeque<FeedOutput>,
}

impl LiveFeed {
    /// A feed following no channel.
    pub fn new(config: FeedConfig) -> LiveFeed {
        LiveFeed {
            config,
            channels: BTreeMap::new(),
            orphaned: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Whether `channel` is followed.
    pub fn follows(&self, channel: &ChannelName) -> bool {
        self.channels.contains_key(channel)
    }

    /// The epoch and last offset delivered on `channel`, once known.
    pub fn position(&self, channel: &ChannelName) -> Option<(Option<&str>, u64)> {
        let followed = self.channels.get(channel)?;
        let (epoch, offset) = followed.position.as_ref()?;
        Some((epoch.as_deref(), *offset))
    }

    /// Starts following `channel` (its topic is being subscribed; nothing is delivered before
    /// [`handle_subscribed`](Self::handle_subscribed) and the read it asks for).
    pub fn follow(&mut self, _now: Timestamp, channel: ChannelName) {
        self.channels.entry(channel).or_insert(Followed {
            position: None,
            fill: Fill::Idle,
            again: false,
            held: BTreeMap::new(),
        });
    }

    /// Stops following `channel`.
    pub fn unfollow(&mut self, _now: Timestamp, channel: &ChannelName) {
        if let Some(followed) = self.channels.remove(channel)
            && followed.fill == Fill::Reading
        {
            *self.orphaned.entry(channel.clone()).or_default() += 1;
        }
    }

    /// Whether the answer to a read of `channel` belongs to a following that ended (and drops it if so).
    fn orphan_answered(&mut self, channel: &ChannelName) -> bool {
        let Some(count) = self.orphaned.get_mut(channel) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            self.orphaned.remove(channel);
        }
        true
    }

    /// Redis confirmed the subscription to `channel`'s topic (first, or again after the connection came back):
    /// read what may have been missed.
    pub fn handle_subscribed(&mut self, _now: Timestamp, channel: &ChannelName) {
        let Some(followed) = self.channels.get_mut(channel) else {
            return;
        };
        match followed.fill {
            Fill::Reading => followed.again = true,
            Fill::Idle | Fill::RetryAt(_) => {
                followed.fill = Fill::Reading;
                let read = read_of(&self.config, channel, followed);
                self.outputs.push_back(read);
            }
        }
    }

    /// A publication heard on `channel`'s topic.
    pub fn handle_publication(
        &mut self,
        _now: Timestamp,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
        event: &[u8],
        retained: bool,
    ) {
        let max_held = self.config.max_held;
        let Some(followed) = self.channels.get_mut(channel) else {
            return;
        };
        let in_step = match (&followed.position, followed.fill) {
            (Some((Some(current), delivered)), Fill::Idle) => {
                if current == epoch && offset <= *delivered {
                    return;
                }
                current == epoch && offset == delivered + 1
            }
            _ => false,
        };
        if in_step {
            followed.position = Some((Some(epoch.into()), offset));
            self.outputs.push_back(FeedOutput::Deliver {
                channel: channel.clone(),
                epoch: epoch.into(),
                offset,
                retained,
                event: event.to_vec(),
            });
            return;
        }
        if followed.held.len() >= max_held {
            // The stream has them: read again rather than hold without bound.
            followed.held.clear();
            followed.again = true;
        } else {
            followed
                .held
                .insert(offset, (epoch.into(), retained, event.to_vec()));
        }
        if matches!(followed.fill, Fill::Idle) {
            followed.fill = Fill::Reading;
            let read = read_of(&self.config, channel, followed);
            self.outputs.push_back(read);
        }
    }

    /// The answer to a [`FeedOutput::Read`] of `channel`. A channel's reads must be answered (here or by
    /// [`handle_read_failed`](Self::handle_read_failed)) in the order they were asked: answers to reads asked before
    /// the channel was last unfollowed are recognised by their count and dropped.
    pub fn handle_read(&mut self, now: Timestamp, channel: &ChannelName, read: &ChannelRead) {
        if self.orphan_answered(channel) {
            return;
        }
        let oldest_ms = self.oldest_ms(now);
        let Some(followed) = self.channels.get_mut(channel) else {
            return;
        };
        if followed.fill != Fill::Reading {
            return;
        }
        followed.fill = Fill::Idle;
        let mut read_on = false;
        let (epoch, mut delivered) = match followed.position.take() {
            // The first read only says where the channel is.
            None => {
                self.outputs.push_back(FeedOutput::Positioned {
                    channel: channel.clone(),
                    epoch: read.epoch.clone(),
                    offset: read.offset,
                    state: read.state.clone(),
                    events: read
                        .events
                        .iter()
                        .filter(|event| event.offset <= read.offset)
                        .cloned()
                        .collect(),
                });
                (read.epoch.clone(), read.offset)
            }
            Some((None, delivered)) if read.epoch.is_none() => (None, delivered),
            Some((epoch, delivered)) => {
                // A channel that had no data when it was first read is replayed from its first offset.
                let (in_epoch, after) = match &epoch {
                    Some(epoch) => (epoch.as_str(), delivered),
                    None => (read.epoch.as_deref().unwrap_or_default(), 0),
                };
                match read.replay(in_epoch, after, oldest_ms) {
                    replay @ (Replay::Events(_) | Replay::Truncated) => {
                        let events = match replay {
                            Replay::Events(events) => events,
                            _ => &read.events[..],
                        };
                        read_on = matches!(replay, Replay::Truncated);
                        let current = read.epoch.clone().unwrap_or_default();
                        let mut last = after;
                        for event in events {
                            last = event.offset;
                            self.outputs.push_back(FeedOutput::Deliver {
                                channel: channel.clone(),
                                epoch: current.clone(),
                                offset: event.offset,
                                retained: event.retained,
                                event: event.event.clone(),
                            });
                        }
                        (read.epoch.clone(), last)
                    }
                    Replay::Gone => {
                        self.outputs.push_back(FeedOutput::Resync {
                            channel: channel.clone(),
                            epoch: read.epoch.clone(),
                            offset: read.offset,
                            state: read.state.clone(),
                        });
                        (read.epoch.clone(), read.offset)
                    }
                }
            }
        };
        // Held publications: deliver what follows on; drop what is delivered already or of another epoch (one more
        // read settles which epoch is current).
        let mut gap = false;
        while let Some((offset, (held_epoch, retained, event))) = followed.held.pop_first() {
            if epoch.as_deref() != Some(held_epoch.as_str()) {
                gap = true;
                continue;
            }
            if offset <= delivered {
                continue;
            }
            // The planted fault: deliver across the gap instead of reading it first.
            if offset != delivered + 1 && !cfg!(feature = "_internal_planted_feed_fault") {
                followed.held.insert(offset, (held_epoch, retained, event));
                gap = true;
                break;
            }
            delivered = offset;
            self.outputs.push_back(FeedOutput::Deliver {
                channel: channel.clone(),
                epoch: held_epoch,
                offset,
                retained,
                event,
            });
        }
        followed.position = Some((epoch, delivered));
        if read_on || gap || followed.again {
            followed.again = false;
            followed.fill = Fill::Reading;
            self.outputs.push_back(FeedOutput::Read {
                channel: channel.clone(),
                after: Some(delivered),
                limit: self.config.read_batch,
            });
        }
    }

    /// The read of `channel` failed (the command connection is down, or Redis refused): it is tried again after
    /// [`FeedConfig::retry_after`].
    pub fn handle_read_failed(&mut self, now: Timestamp, channel: &ChannelName) {
        if self.orphan_answered(channel) {
            return;
        }
        if let Some(followed) = self.channels.get_mut(channel)
            && followed.fill == Fill::Reading
        {
            followed.fill = Fill::RetryAt(now.saturating_add(self.config.retry_after));
        }
    }

    /// Time has reached a deadline given by [`FeedOutput::Timeout`].
    pub fn handle_timeout(&mut self, now: Timestamp) {
        for (channel, followed) in &mut self.channels {
            if let Fill::RetryAt(at) = followed.fill
                && now >= at
            {
                followed.fill = Fill::Reading;
                let read = read_of(&self.config, channel, followed);
                self.outputs.push_back(read);
            }
        }
    }

    /// The next thing to do; ends with [`FeedOutput::Timeout`].
    pub fn poll_output(&mut self) -> FeedOutput {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        let next = self
            .channels
            .values()
            .filter_map(|followed| match followed.fill {
                Fill::RetryAt(at) => Some(at),
                _ => None,
            })
            .min()
            .unwrap_or(Timestamp::MAX);
        FeedOutput::Timeout(next)
    }

    fn oldest_ms(&self, now: Timestamp) -> u64 {
        if self.config.history_ttl.is_zero() {
            return 0;
        }
        let now_ms = now.as_micros() / 1000;
        now_ms.saturating_sub(self.config.history_ttl.as_millis() as u64)
    }
}

/// The read that continues `followed`: after its last delivered offset, or, before the first, its whole history
/// (which places the feed and loads the node's copy).
fn read_of(config: &FeedConfig, channel: &ChannelName, followed: &Followed) -> FeedOutput {
    match &followed.position {
        Some((_, offset)) => FeedOutput::Read {
            channel: channel.clone(),
            after: Some(*offset),
            limit: config.read_batch,
        },
        None => FeedOutput::Read {
            channel: channel.clone(),
            after: None,
            limit: config.load_events,
        },
    }
}

#[cfg(test)]
mod tests;
