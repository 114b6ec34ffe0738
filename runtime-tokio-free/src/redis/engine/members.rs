//! [`Members`]: the live nodes of a cluster and what each counts (connections, by dialect, app ids, subscribers of
//! project channels), kept in Redis so that any node can answer for all of them.
//!
//! Each node writes its own entry every third of the time-to-live (the server's refresh task does, from its hub);
//! an entry not refreshed (its node died) expires, and the node drops out of the sums. What a node reads of the
//! other nodes is thus up to one refresh period old.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_protocol::redis::engine::{Keys, NodeCounts};

use super::Engine;
use super::error::EngineError;
use crate::redis::RedisClient;

/// This node's entry in the cluster's list of nodes, and the way to read the others'; clones share the state.
#[derive(Debug, Clone)]
pub struct Members {
    node: String,
    keys: Keys,
    commands: RedisClient,
    ttl: Duration,
    /// Set once the node has left: its entry is never written again.
    left: Arc<AtomicBool>,
}

impl Members {
    /// Node `node`'s membership on `engine`'s connection, its entry living `ttl` after each write.
    pub fn new(engine: &Engine, node: String, ttl: Duration) -> Members {
        Members {
            node,
            keys: engine.inner.keys.clone(),
            commands: engine.inner.commands.clone(),
            ttl,
            left: Arc::new(AtomicBool::new(false)),
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How often the entry is written: a third of its time-to-live, so one lost write does not let it expire.
    pub fn period(&self) -> Duration {
        self.ttl / 3
    }

    /// Writes this node's entry (nothing once it has [left](Self::leave)).
    pub async fn write(&self, counts: &NodeCounts) -> Result<(), EngineError> {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        for command in counts.write(&self.keys, &self.node, unix_ms(), ttl_ms) {
            // Checked before each command, so no write after a leave brings the entry back.
            if self.left.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.commands.request(command).await?;
        }
        Ok(())
    }

    /// Removes this node's entry for good (a node shutting down): the others stop counting it at once.
    pub async fn leave(&self) -> Result<(), EngineError> {
        self.left.store(true, Ordering::SeqCst);
        for command in NodeCounts::remove(&self.keys, &self.node) {
            self.commands.request(command).await?;
        }
        Ok(())
    }

    /// The other live nodes and their counts, by node id.
    pub async fn others(&self) -> Result<Vec<(String, NodeCounts)>, EngineError> {
        let reply = self
            .commands
            .request(NodeCounts::live_nodes(&self.keys, unix_ms()))
            .await?;
        let nodes: Vec<String> = NodeCounts::parse_nodes(&reply)?
            .into_iter()
            .filter(|node| *node != self.node)
            .collect();
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let reply = self
            .commands
            .request(NodeCounts::read(&self.keys, &nodes))
            .await?;
        let entries = NodeCounts::parse_read(&reply)?;
        Ok(nodes
            .into_iter()
            .zip(entries)
            .filter_map(|(node, counts)| counts.map(|counts| (node, counts)))
            .collect())
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
