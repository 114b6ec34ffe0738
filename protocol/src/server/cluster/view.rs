//! Where the hub reads a channel's position, history and state: its store on a single node, its mirror on a node of
//! a cluster.

use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::Value;

use super::super::Hub;
use super::super::store::{ChannelState, HistoryPage, Store};
use super::Cluster;
use crate::time::Timestamp;
use crate::wire::{ChannelName, StreamPosition};

/// `name`'s epoch. A free function over the two fields, so the caller may borrow the hub's others meanwhile.
pub(in crate::server) fn epoch_of<'a>(
    cluster: Option<&'a Cluster>,
    store: &'a dyn Store,
    name: &ChannelName,
) -> &'a str {
    match cluster {
        Some(cluster) => cluster.mirror(name).map_or("", |m| m.epoch()),
        None => store.epoch(name),
    }
}

impl Hub {
    /// `name`'s newest offset.
    pub(in crate::server) fn offset_of(&self, name: &ChannelName) -> u64 {
        match self.cluster.as_deref() {
            Some(cluster) => cluster.mirror(name).map_or(0, |m| m.offset()),
            None => self.store.offset(name),
        }
    }

    /// Every event of `name` after `after`, or `None` when they are not all kept.
    pub(in crate::server) fn replay_of(
        &self,
        now: Timestamp,
        name: &ChannelName,
        after: &StreamPosition,
    ) -> Option<Vec<(u64, Arc<Value>)>> {
        match self.cluster.as_deref() {
            Some(cluster) => {
                cluster
                    .mirror(name)?
                    .replay(now.as_millis(), after, cluster.retention())
            }
            None => self.store.replay(now, name, after),
        }
    }

    /// `name`'s epoch, offset and retained state. On a node of a cluster, only a channel the node follows is
    /// known here; the runtime reads the engine for the others.
    pub(in crate::server) fn state_of(&self, name: &ChannelName) -> ChannelState {
        match self.cluster.as_deref() {
            Some(cluster) => match cluster.mirror(name) {
                Some(m) => ChannelState {
                    epoch: m.epoch().into(),
                    offset: m.offset(),
                    state: m.state().map(|s| Value::clone(s)),
                },
                None => ChannelState {
                    epoch: alloc::string::String::new(),
                    offset: 0,
                    state: None,
                },
            },
            None => self.store.state(name),
        }
    }

    /// A page of `name`'s history.
    pub(in crate::server) fn page_of(
        &self,
        now: Timestamp,
        name: &ChannelName,
        since: Option<u64>,
        limit: usize,
    ) -> HistoryPage {
        match self.cluster.as_deref() {
            Some(cluster) => {
                let Some(m) = cluster.mirror(name) else {
                    return HistoryPage {
                        epoch: alloc::string::String::new(),
                        events: Vec::new(),
                        next_since: None,
                    };
                };
                let mut events = m.page(
                    now.as_millis(),
                    since,
                    limit.saturating_add(1),
                    cluster.retention(),
                );
                let next_since = if events.len() > limit {
                    events.truncate(limit);
                    events.last().map(|(at, _)| *at)
                } else {
                    None
                };
                HistoryPage {
                    epoch: m.epoch().into(),
                    events,
                    next_since,
                }
            }
            None => self.store.page(now, name, since, limit),
        }
    }
}
