//! A node's counts for the cluster: the refresh task writing this node's [`NodeCounts`] to Redis every
//! [`Members::period`], and the sums over every live node that `/api/connections` and
//! `/api/v1/projects/{id}/connections` answer with (this node's counts live, the others' as last written).

use std::sync::Weak;

use switchboard_protocol::redis::engine::NodeCounts;
use switchboard_protocol::rest::MAX_LISTED_APPS;
use switchboard_protocol::server::DialectKind;

use super::{Core, HubHandle};
use crate::Runtime;
use crate::redis::engine::Members;

/// The channels whose subscribers a node writes: those the project connections route asks about.
pub(crate) const COUNTED_PREFIX: &str = "projects/";

/// At most this many channels' subscribers are written per node (the busiest are not chosen: the first by name).
const MAX_COUNTED_CHANNELS: usize = 10_000;

/// This node's counts, now.
pub(crate) fn own_counts(core: &Core) -> NodeCounts {
    let hub = &core.hub;
    let stats = hub.stats();
    NodeCounts {
        connections: stats.connections as u64,
        by_dialect: DialectKind::ALL
            .iter()
            .map(|kind| (kind.as_str().to_owned(), stats.by_dialect.get(*kind) as u64))
            .collect(),
        apps: hub
            .connections()
            .map(|(_, c)| c.app_id().to_owned())
            .take(MAX_LISTED_APPS)
            .collect(),
        subscribers: hub
            .subscriber_counts(COUNTED_PREFIX)
            .take(MAX_COUNTED_CHANNELS)
            .map(|(channel, n)| (channel.as_str().to_owned(), n as u64))
            .collect(),
    }
}

/// The counts over the cluster: this node's, plus every other live node's as last written; and the ids of the
/// nodes summed, this one first. When Redis cannot be read, this node's counts alone.
pub(crate) async fn cluster_counts<R: Runtime>(
    hub: &HubHandle<R>,
    members: &Members,
) -> (NodeCounts, Vec<String>) {
    let mut sum = hub.read(|core, _| own_counts(core));
    let mut nodes = vec![members.node().to_owned()];
    match members.others().await {
        Ok(others) => {
            for (node, counts) in others {
                sum.add(&counts, MAX_LISTED_APPS);
                nodes.push(node);
            }
        }
        Err(error) => {
            tracing::warn!(%error, "could not read the other nodes' counts; this node's alone")
        }
    }
    (sum, nodes)
}

/// Writes this node's counts every [`Members::period`] until the hub is gone.
pub(crate) async fn refresh_task<R: Runtime>(
    runtime: R,
    hub: Weak<HubHandle<R>>,
    members: Members,
) {
    loop {
        let Some(counts) = hub
            .upgrade()
            .map(|hub| hub.read(|core, _| own_counts(core)))
        else {
            return;
        };
        if let Err(error) = members.write(&counts).await {
            tracing::warn!(%error, "could not write this node's counts; retried");
        }
        runtime.sleep_until(runtime.now() + members.period()).await;
    }
}
