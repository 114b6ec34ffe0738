//! How a publish ends: [`Publish`] (kept at once, or waiting for the store under a [`PublishTicket`]) and
//! [`StorageError`] (the store could not keep it). A leaf, so the hub's outputs can name them without importing
//! the publishing code.

/// What [`Hub::publish`](super::Hub::publish) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Kept and delivered, at this offset.
    Done(u64),
    /// Waiting for the store's write; [`HubEvent::PublishDone`](super::HubEvent::PublishDone) with this ticket tells how it ended.
    Pending(PublishTicket),
    /// Nothing was published: the idempotency key was seen on the channel within the dedupe window, and the
    /// original publish was kept at these offsets (equal for a single event).
    Duplicate {
        /// The original's (first) offset.
        first_offset: u64,
        /// The original's last offset.
        last_offset: u64,
    },
}

/// Names a [`Hub::publish`](super::Hub::publish) waiting for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishTicket(pub(super) u64);

/// A publish the store could not keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The store's write failed (a full disk, an IO error: the server's log says which); nothing was published.
    #[error("the event could not be stored; it was not published")]
    WriteFailed,
    /// A node of a cluster: Redis did not confirm the publish (unreachable, the connection lost after the publish
    /// was sent, no answer in time). The event may or may not have been stored.
    #[error(
        "redis did not confirm the publish; the event may or may not have been stored (check the channel's history before publishing it again)"
    )]
    Unconfirmed,
}
