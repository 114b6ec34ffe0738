//! The Redis engine's data, sans-IO: which keys a channel has, the scripts that change and read them atomically,
//! and the parsers of their replies and of the live feed.
//!
//! Per channel (under a prefix, `switchboard` by default):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:m:{channel}` | hash | `epoch`, `offset` (the last offset given), `state` and `state_offset` (retained) |
//! | `{prefix}:h:{channel}` | stream | history: entry id `{offset}-0`, fields `t` (publish time, unix ms) and `e` (the event JSON) |
//! | `{prefix}:p:{channel}` | pub/sub channel | every publication, as `{epoch} {offset} {event JSON}` |
//! | `{prefix}:s:{channel}` | string, with a time-to-live | who serves the channel: `{node} {registration}` ([registry]) |
//!
//! Per node: `{prefix}:c:{node}`, a string with a time-to-live (the node's counts, [node_counts]), and one sorted
//! set `{prefix}:nodes` of the nodes with counts.
//!
//! **Offsets are given in Redis**, by the [publish script](publish): one `EVALSHA` reads or creates the epoch,
//! increments the offset, appends to the stream (trimmed to the history size with `MAXLEN`, its key expiring after
//! the history time-to-live), keeps the retained state and publishes, atomically, so every node sees one order.
//! The epoch changes only when the hash is lost (a Redis restarted without persistence, a flush): the next publish
//! draws a new one and every node's subscribers resynchronise through the usual `recovered: false` path.
//!
//! **Reads** go through the [read script](read): the epoch, the last offset, the retained state and a range of the
//! stream, from one atomic snapshot, so a replay can tell "nothing missed" from "history gone".

pub mod feed;
pub mod inbox;
pub mod keys;
pub mod node_counts;
pub mod publication;
pub mod publish;
pub mod read;
pub mod registry;
pub mod script;

pub use feed::{FeedConfig, FeedOutput, LiveFeed};
pub use inbox::InboxMessage;
pub use keys::Keys;
pub use node_counts::NodeCounts;
pub use publication::Publication;
pub use publish::{PUBLISH_SCRIPT, PublishRequest, Published};
pub use read::{ChannelRead, READ_SCRIPT, ReadRequest, Replay, StoredEvent};
pub use registry::{REFRESH_SCRIPT, REMOVE_SCRIPT, Registration};
pub use script::Script;

/// A reply that does not have the shape the engine's scripts give (a different script under the same name, a
/// foreign value in the engine's keys): the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineReplyError {
    /// The reply is not what the script returns.
    #[error("unexpected reply from redis to {what}")]
    Shape {
        /// Which script or message.
        what: &'static str,
    },
}
