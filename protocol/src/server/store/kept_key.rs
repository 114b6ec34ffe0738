//! [`KeptKey`]: an idempotency key as a store writes it down and reads it back, so a retry after a restart still
//! finds its original.

use alloc::string::String;

use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey};

/// A publish with an idempotency key, kept at `first..=last` in the channel's log of `epoch` at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptKey {
    /// The channel.
    pub channel: ChannelName,
    /// The key.
    pub key: IdempotencyKey,
    /// The epoch of the log the offsets belong to: in another epoch they name other events.
    pub epoch: String,
    /// The publish's first offset.
    pub first: u64,
    /// Its last offset.
    pub last: u64,
    /// When it was published: the dedupe window runs from here.
    pub at: Timestamp,
}
