//! Forgetting idle channels, the hub's side. The hub knows who has an interest in a channel (its routing entry:
//! subscribers, presence watchers, a server); the [store](super::store) knows what the channel keeps (history,
//! retained state). The hub tells the store when its interest begins ([`Store::hold`](super::Store::hold)) and
//! ends ([`Store::release`](super::Store::release)); the store forgets a log once neither keeps it, and its next
//! event starts a new log in a new epoch (PROTOCOL §3). Nothing here scans the channels.
//!
//! `max_channels` bounds the channels with events: a publish that would start one more is refused
//! (`CHANNEL_LIMIT`, PROTOCOL §2.4), while publishing to a channel that has events goes on.

use super::Hub;
use super::channel::Channel;
use super::error::LimitError;
use super::reply::Refusal;
use crate::wire::{ChannelName, ErrorCode};

impl Hub {
    /// `name`'s routing entry, made (and the store's log held) when it has none.
    pub(super) fn route_entry(&mut self, name: &ChannelName) -> &mut Channel {
        if !self.channels.contains_key(name) {
            self.store.hold(name);
        }
        self.channels.entry(name.clone()).or_default()
    }

    /// Drops a channel's routing entry once nobody subscribes to or serves it, and releases the store's log (which
    /// the store forgets if it keeps nothing).
    pub(super) fn forget_if_unused(&mut self, name: &ChannelName) {
        if self.channels.get(name).is_some_and(|ch| ch.is_unused()) {
            self.channels.remove(name);
            self.store.release(name);
        }
        self.cluster_release(name);
    }

    /// Refuses a publish to `channel` that would start a channel past `max_channels`.
    pub(super) fn check_channel_limit(&self, channel: &ChannelName) -> Result<(), LimitError> {
        let max = self.config.max_channels;
        if self.store.admits(channel, max) {
            Ok(())
        } else {
            Err(LimitError::ChannelLimit { max })
        }
    }

    /// [`check_channel_limit`](Self::check_channel_limit) as a client's refusal.
    pub(super) fn channel_limit_refusal(&self, channel: &ChannelName) -> Option<Refusal> {
        self.check_channel_limit(channel).err().map(|e| {
            Refusal::new(
                ErrorCode::ChannelLimit,
                alloc::string::ToString::to_string(&e),
            )
        })
    }
}
