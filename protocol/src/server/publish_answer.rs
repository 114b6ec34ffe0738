//! [`Answer`]: who hears how a publish ended, and [`Kept`]: an event with the offset it was kept at — shared by the
//! single-node publish path and the cluster's.

use alloc::sync::Arc;
use serde_json::Value;

use super::conn_table::ConnId;
use super::publish_outcome::PublishTicket;
use alloc::boxed::Box;

use crate::wire::{ChannelName, IdempotencyKey, MessageId};

/// Who hears how a publish ended.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// A native client: `publish_res`, or an `error` with the request's id.
    Native { conn: ConnId, id: MessageId },
    /// A native client's batch of `count` events, on its first: `publish_res` with the first and last offsets.
    NativeBatch {
        conn: ConnId,
        id: MessageId,
        count: u64,
    },
    /// A channel-payload client: nothing on success, an `error` on failure.
    Edge { conn: ConnId },
    /// [`Hub::publish`] waiting on a ticket.
    Ticket(PublishTicket),
    /// Nobody (the caller already has the offset).
    Silent,
    /// A publish with an idempotency key: the key's entry in the dedupe table is settled (or forgotten) with the
    /// outcome, then `inner` is answered, and the answers held for the same key after it.
    Keyed(Box<Keyed>),
}

/// [`Answer::Keyed`]'s key, where it is filed, and the answer it wraps.
#[derive(Debug, Clone)]
pub(crate) struct Keyed {
    pub(crate) channel: ChannelName,
    pub(crate) key: IdempotencyKey,
    /// Events of the publish (1, or a batch's length), so the last offset is known from the first.
    pub(crate) count: u64,
    pub(crate) inner: Answer,
}

impl Answer {
    /// The answer for a publish whose caller learns the offset from the call itself: a ticket is not needed.
    pub(crate) fn without_ticket(self) -> Answer {
        match self {
            Answer::Ticket(_) => Answer::Silent,
            Answer::Keyed(mut keyed) => {
                keyed.inner = keyed.inner.without_ticket();
                Answer::Keyed(keyed)
            }
            other => other,
        }
    }
}

/// An event the store has: its offset, and the event shared with the store's copy.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub(crate) offset: u64,
    pub(crate) event: Arc<Value>,
}
