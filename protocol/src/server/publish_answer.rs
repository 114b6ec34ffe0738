//! [`Answer`]: who hears how a publish ended, and [`Kept`]: an event with the offset it was kept at — shared by the
//! single-node publish path and the cluster's.

use alloc::sync::Arc;
use serde_json::Value;

use super::conn_table::ConnId;
use super::publish_outcome::PublishTicket;
use crate::wire::MessageId;

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
}

/// An event the store has: its offset, and the event shared with the store's copy.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub(crate) offset: u64,
    pub(crate) event: Arc<Value>,
}
