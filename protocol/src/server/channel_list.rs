//! The channels the hub routes (with subscribers or a serving connection), for the channels route and the
//! dashboard: each with its offset, its subscriber count and whether it is served.

use alloc::vec::Vec;

use super::Hub;
use crate::wire::ChannelName;

/// One routed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSummary {
    /// The channel.
    pub channel: ChannelName,
    /// Its offset (the last event's).
    pub offset: u64,
    /// Subscribers, all dialects.
    pub subscribers: usize,
    /// Whether a connection serves its calls.
    pub served: bool,
}

impl Hub {
    /// The routed channels for which `keep` holds, in name order, at most `limit`.
    pub fn channel_list(
        &self,
        limit: usize,
        mut keep: impl FnMut(&ChannelName) -> bool,
    ) -> Vec<ChannelSummary> {
        self.channels
            .iter()
            .filter(|(name, _)| keep(name))
            .take(limit)
            .map(|(name, ch)| ChannelSummary {
                channel: name.clone(),
                offset: self.offset_of(name),
                subscribers: ch.subscribers.len(),
                served: ch.server.is_some(),
            })
            .collect()
    }
}
