//! Cluster mode: the channels live in an engine several nodes share (Redis), and this hub is one node.
//!
//! What changes against a single node, and nothing else does:
//! - **A publish** is handed to the engine ([`EngineCommand::Publish`]), which gives the offsets; the publisher is
//!   answered when the driver reports the engine's answer ([`Hub::handle_engine_published`]). The hub does not fan
//!   it out itself: every node, this one included, delivers what the engine's live feed hands it
//!   ([`Hub::handle_engine_delivery`]), so every node delivers every channel's events in one order.
//! - **A channel's position, history and retained state** come from a [`Mirror`] of the channel, loaded when the
//!   node starts following it ([`EngineCommand::Follow`], answered by [`Hub::handle_engine_following`]) and kept
//!   current by the feed. A node follows a channel while it has local subscribers, and for as long as it takes to
//!   answer a `get_state` or a subscribe.
//! - **A message that needs a channel the node does not hold yet** (`subscribe`, `get_state`, a project-stream
//!   open) waits until the channel is loaded, and so does everything that connection sends after it: a connection's
//!   messages are handled in the order they came.
//! - **Events missed and gone** (the feed's `Resync`: Redis lost the channel, or the node was cut off from it for
//!   longer than history reaches) close the channel's local subscribers with 1013, as a slow consumer is closed:
//!   they reconnect, resubscribe with their position and learn `recovered: false`.
//!
//! Routed calls, presence and webhooks stay node-local here: docs/SCALING.md says what that means for a deployment.
//! (`HubEvent::Published` comes from the feed's deliveries on every node that follows the channel: the runtime's
//! webhook sender takes a node's own publishes from the engine's answers instead.)

mod inputs;
mod mirror;
pub(crate) mod view;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::conn_table::ConnId;
use super::intake::Inbound;
use super::publish_answer::Answer;
use super::sse_stream::SseResume;
use core::time::Duration;

use crate::wire::{Caller, ChannelName, IdempotencyKey, MessageId};

pub(crate) use mirror::{Mirror, Retention};

/// Identifies one [`EngineCommand::Publish`] in [`Hub::handle_engine_published`](super::Hub::handle_engine_published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EngineTicket(pub u64);

/// What the driver does with the engine for a hub in cluster mode ([`HubOutput::Engine`](super::HubOutput::Engine)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EngineCommand {
    /// Follow `channel` (subscribe to its live feed); report the position and the history read with it through
    /// [`Hub::handle_engine_following`](super::Hub::handle_engine_following), then every event through
    /// [`Hub::handle_engine_delivery`](super::Hub::handle_engine_delivery).
    Follow {
        /// The channel.
        channel: ChannelName,
    },
    /// Stop following `channel`.
    Unfollow {
        /// The channel.
        channel: ChannelName,
    },
    /// Publish `events` at consecutive offsets of `channel`, keeping the last as its state when `retain_last`;
    /// report with [`Hub::handle_engine_published`](super::Hub::handle_engine_published).
    Publish {
        /// Names this publish in the report.
        ticket: EngineTicket,
        /// The channel.
        channel: ChannelName,
        /// The events, in order (at least one).
        events: Vec<Arc<Value>>,
        /// Keep the last as the channel's state.
        retain_last: bool,
        /// The epoch the channel gets if the engine has none for it (drawn from the hub's seeded RNG).
        fresh_epoch: String,
        /// The publish's idempotency key: the engine checks and sets it with the publish, in one step, and
        /// answers a key it holds in the channel's epoch with
        /// [`Hub::handle_engine_duplicate`](super::Hub::handle_engine_duplicate).
        idempotency_key: Option<IdempotencyKey>,
        /// How long the engine keeps the key.
        dedupe_window: Duration,
    },
    /// A local connection serves `channel` now: register this node as its server (the newest registration wins,
    /// as on one node), and keep the registration alive while it lasts.
    Register {
        /// The channel.
        channel: ChannelName,
    },
    /// No local connection serves `channel` any more: remove this node's registration (only if it is still
    /// this node's).
    Unregister {
        /// The channel.
        channel: ChannelName,
    },
    /// A local caller's `call` for a channel no local connection serves: send it to the node registered as its
    /// server ([`InboxMessage::Call`](crate::redis::engine::InboxMessage::Call)), and report
    /// [`Hub::handle_remote_unreachable`](super::Hub::handle_remote_unreachable) when no node is. Its answer comes
    /// back through [`Hub::handle_remote_answer`](super::Hub::handle_remote_answer).
    Call {
        /// The call's id on this node.
        call: MessageId,
        /// The channel.
        channel: ChannelName,
        /// The method.
        method: String,
        /// The parameters.
        params: Value,
        /// Who called.
        caller: Caller,
    },
    /// The answer to a call another node sent this one: send `data` to node `node`
    /// ([`InboxMessage::Answer`](crate::redis::engine::InboxMessage::Answer)).
    Answer {
        /// The calling node.
        node: String,
        /// The call's id there.
        call: MessageId,
        /// The serving connection's `server_response` data, or the error this node answers with.
        data: Map<String, Value>,
    },
}

/// Why the engine did not take a publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineFailure {
    /// The engine could not be reached, or did not answer in time: the publish may or may not have happened.
    #[error("the engine is unavailable")]
    Unavailable,
    /// The engine answered with an error.
    #[error("the engine refused the publish")]
    Refused,
}

/// A message, or a project-stream open, waiting for a channel to be loaded.
#[derive(Debug)]
pub(crate) enum Waiting {
    Inbound(Inbound),
    ProjectOpen {
        since: Option<u64>,
    },
    /// An event stream's open: it waits until every one of its channels is loaded (they are loaded together).
    SseOpen {
        resume: SseResume,
    },
}

/// What a hub in cluster mode keeps besides what every hub keeps.
#[derive(Debug)]
pub(crate) struct Cluster {
    retention: Retention,
    /// Followed channels whose position is known.
    mirrors: BTreeMap<ChannelName, Mirror>,
    /// Followed channels whose first read is out, with the connections whose first waiting message needs them.
    loading: BTreeMap<ChannelName, BTreeSet<ConnId>>,
    /// Per connection, the messages held back (the first waits for a channel; the rest for the first).
    waiting: BTreeMap<ConnId, VecDeque<Waiting>>,
    /// Publishes the engine has not answered yet.
    publishes: BTreeMap<EngineTicket, (ChannelName, u64, Answer)>,
    next_ticket: u64,
    commands: VecDeque<EngineCommand>,
}

impl Cluster {
    pub(crate) fn new(retention: Retention) -> Cluster {
        Cluster {
            retention,
            mirrors: BTreeMap::new(),
            loading: BTreeMap::new(),
            waiting: BTreeMap::new(),
            publishes: BTreeMap::new(),
            next_ticket: 1,
            commands: VecDeque::new(),
        }
    }

    pub(crate) fn mirror(&self, channel: &ChannelName) -> Option<&Mirror> {
        self.mirrors.get(channel)
    }

    pub(crate) fn retention(&self) -> Retention {
        self.retention
    }

    pub(crate) fn poll_command(&mut self) -> Option<EngineCommand> {
        self.commands.pop_front()
    }

    /// Channels followed (loaded or loading).
    pub(crate) fn followed(&self) -> usize {
        self.mirrors.len() + self.loading.len()
    }

    /// Events held in mirrors.
    pub(crate) fn events_held(&self) -> usize {
        self.mirrors.values().map(Mirror::len).sum()
    }

    /// Publishes waiting for the engine.
    pub(crate) fn pending_publishes(&self) -> usize {
        self.publishes.len()
    }

    /// Starts loading `channel` (once) on behalf of `conn`.
    fn load(&mut self, channel: &ChannelName, conn: ConnId) {
        match self.loading.get_mut(channel) {
            Some(waiters) => {
                waiters.insert(conn);
            }
            None => {
                self.loading.insert(channel.clone(), BTreeSet::from([conn]));
                self.commands.push_back(EngineCommand::Follow {
                    channel: channel.clone(),
                });
            }
        }
    }
}
