//! [`ChannelEvent`], [`SubscriptionItem`] and [`PatternItem`]: what a [`Subscription`](super::Subscription) and a
//! [`PatternSubscription`](super::PatternSubscription) yield.

use serde_json::Value;

use super::error::RequestError;

/// One event on a subscribed channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelEvent {
    /// The channel.
    pub channel: String,
    /// The channel's epoch; a new epoch means the channel's history started afresh.
    pub epoch: String,
    /// The event's offset: per channel and epoch, strictly increasing, none delivered twice, across reconnects.
    pub offset: u64,
    /// The event.
    pub event: Value,
}

/// What a [`Subscription`](super::Subscription) yields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SubscriptionItem {
    /// An event.
    Event(ChannelEvent),
    /// Some events are lost to this client: a reconnect could not recover what was missed, or the channel's
    /// history started afresh. Fetch the channel's state ([`Client::get_state`](super::Client::get_state)) to
    /// catch up; events keep coming.
    Resync,
    /// The server refused to re-establish the subscription after a reconnect (e.g. `FORBIDDEN`). The stream
    /// ends after this item.
    Lost(RequestError),
}

/// What a [`PatternSubscription`](super::PatternSubscription) yields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PatternItem {
    /// An event of a matching channel; per channel, offsets strictly increase, none delivered twice.
    Event(ChannelEvent),
    /// Some events of `channel` are lost to this client (a reconnect could not recover them, or its history
    /// started afresh): fetch its state to catch up; its events keep coming.
    Resync {
        /// The channel.
        channel: String,
    },
    /// The server refused to re-establish the pattern after a reconnect (e.g. `FORBIDDEN`). The stream ends after
    /// this item.
    Lost(RequestError),
}
