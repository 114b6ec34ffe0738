//! [`PubSubEvent`]: what a [`RedisSubscriber`](super::RedisSubscriber) hears.

/// What a [`RedisSubscriber`](super::RedisSubscriber) hears, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubEvent {
    /// Connected and logged in; every channel asked for is being subscribed again.
    Up,
    /// The connection is gone (why, for logs): messages published until the next [`PubSubEvent::Subscribed`] of
    /// a channel are lost to this subscriber.
    Down(String),
    /// Redis confirmed the subscription: every message published to the channel from here on arrives.
    Subscribed(Vec<u8>),
    /// A message published to a subscribed channel.
    Message {
        /// The channel.
        channel: Vec<u8>,
        /// What was published.
        payload: Vec<u8>,
    },
}
