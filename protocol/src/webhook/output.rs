//! What the scheduler asks of its driver, and what it reports.

use crate::http_client::GiveUpReason;
use crate::time::Timestamp;
use crate::wire::ChannelName;

/// One thing for the driver to do or know, from [`poll_output`](super::DeliveryScheduler::poll_output).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutput {
    /// Read the first event of `channel` with an offset above `after` from the history, and answer with
    /// [`handle_fetched`](super::DeliveryScheduler::handle_fetched).
    Fetch {
        /// The channel.
        channel: ChannelName,
        /// The last offset handled.
        after: u64,
    },
    /// Send the event at `offset` of `channel` (attempt `attempt`, from 1), and answer with
    /// [`handle_delivered`](super::DeliveryScheduler::handle_delivered),
    /// [`handle_failed`](super::DeliveryScheduler::handle_failed) or
    /// [`handle_unsendable`](super::DeliveryScheduler::handle_unsendable).
    Send {
        /// The channel.
        channel: ChannelName,
        /// The event's offset.
        offset: u64,
        /// Which attempt this is, 1 for the first.
        attempt: u32,
    },
    /// The event was delivered (a 2xx) after `retries` failed attempts.
    Delivered {
        /// The channel.
        channel: ChannelName,
        /// The event's offset.
        offset: u64,
        /// Failed attempts before the delivery.
        retries: u32,
    },
    /// The event was given up on.
    Abandoned {
        /// The channel.
        channel: ChannelName,
        /// The event's offset.
        offset: u64,
        /// Why.
        reason: AbandonReason,
    },
    /// Offsets `from..=to` of `channel` left the history before they could be delivered.
    Skipped {
        /// The channel.
        channel: ChannelName,
        /// The first offset skipped.
        from: u64,
        /// The last offset skipped.
        to: u64,
    },
    /// Nothing else to do; call [`handle_timeout`](super::DeliveryScheduler::handle_timeout) at this time
    /// ([`Timestamp::MAX`]: no deadline).
    Timeout(Timestamp),
}

/// Why an event was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbandonReason {
    /// The answer is final and not a success (a status the policy does not retry).
    NotRetried,
    /// The retry policy stopped.
    RetriesExhausted(GiveUpReason),
    /// The request could not be made at all (the driver said so).
    Unsendable,
}

/// What the scheduler has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounters {
    /// Events delivered.
    pub delivered: u64,
    /// Events given up on.
    pub abandoned: u64,
    /// Events skipped because they left the history first.
    pub skipped: u64,
    /// Requests sent again after a failed attempt.
    pub retries: u64,
}
