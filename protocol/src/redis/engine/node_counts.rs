//! What each node of a cluster counts, shared through Redis so any node can answer for all of them: every node
//! writes its own [`NodeCounts`] under `{prefix}:c:{node}` (a JSON string with a time-to-live) and keeps its id in
//! the sorted set `{prefix}:nodes`, scored with the time its entry expires (unix ms). A node answering for the
//! cluster reads the ids still live ([`NodeCounts::live_nodes`]) and their entries in one `MGET`
//! ([`NodeCounts::read`]); an entry gone (its node died and the time-to-live passed) counts for nothing.
//!
//! The entries are as old as the writers' refresh period: a sum over nodes is that stale for the other nodes.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::EngineReplyError;
use super::keys::Keys;
use crate::redis::{Command, Reply};

/// One node's counts: its connections, by dialect, the app ids connected (capped by the writer), and the
/// subscribers of each of its channels that has some (capped by the writer too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCounts {
    /// Open connections.
    #[serde(default)]
    pub connections: u64,
    /// Open connections per dialect name.
    #[serde(default)]
    pub by_dialect: BTreeMap<String, u64>,
    /// App ids of open connections.
    #[serde(default)]
    pub apps: Vec<String>,
    /// Subscribers per channel name (channels with none are left out).
    #[serde(default)]
    pub subscribers: BTreeMap<String, u64>,
}

impl NodeCounts {
    /// The JSON stored.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored entry.
    pub fn parse(value: &[u8]) -> Result<NodeCounts, EngineReplyError> {
        serde_json::from_slice(value).map_err(|_| EngineReplyError::Shape {
            what: "a node's counts",
        })
    }

    /// Adds `other`'s counts to these (app ids appended, at most `max_apps` in all).
    pub fn add(&mut self, other: &NodeCounts, max_apps: usize) {
        self.connections += other.connections;
        for (dialect, n) in &other.by_dialect {
            *self.by_dialect.entry(dialect.clone()).or_default() += n;
        }
        let room = max_apps.saturating_sub(self.apps.len());
        self.apps.extend(other.apps.iter().take(room).cloned());
        for (channel, n) in &other.subscribers {
            *self.subscribers.entry(channel.clone()).or_default() += n;
        }
    }

    /// Writes node `node`'s entry, live until `now_ms + ttl_ms`: `SET {prefix}:c:{node} … PX ttl`, then its
    /// place in the set of nodes, then drops from that set the nodes whose entries have expired.
    pub fn write(&self, keys: &Keys, node: &str, now_ms: u64, ttl_ms: u64) -> [Command; 3] {
        let ttl_ms = ttl_ms.max(1);
        [
            Command::new("SET")
                .arg(keys.counts(node))
                .arg(self.encode())
                .arg("PX")
                .uint(ttl_ms),
            Command::new("ZADD")
                .arg(keys.nodes())
                .uint(now_ms.saturating_add(ttl_ms))
                .arg(node),
            Command::new("ZREMRANGEBYSCORE")
                .arg(keys.nodes())
                .arg("-inf")
                .arg(alloc::format!("({now_ms}")),
        ]
    }

    /// `DEL` of node `node`'s entry and `ZREM` of its id: a node leaving the cluster on purpose.
    pub fn remove(keys: &Keys, node: &str) -> [Command; 2] {
        [
            Command::new("DEL").arg(keys.counts(node)),
            Command::new("ZREM").arg(keys.nodes()).arg(node),
        ]
    }

    /// The ids of the nodes whose entries are live at `now_ms`: `ZRANGEBYSCORE {prefix}:nodes now +inf`.
    pub fn live_nodes(keys: &Keys, now_ms: u64) -> Command {
        Command::new("ZRANGEBYSCORE")
            .arg(keys.nodes())
            .uint(now_ms)
            .arg("+inf")
    }

    /// Reads the reply to [`live_nodes`](Self::live_nodes).
    pub fn parse_nodes(reply: &Reply) -> Result<Vec<String>, EngineReplyError> {
        let bad = || EngineReplyError::Shape {
            what: "the set of nodes",
        };
        reply
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|id| {
                id.as_bytes()
                    .and_then(|b| core::str::from_utf8(b).ok())
                    .map(String::from)
                    .ok_or_else(bad)
            })
            .collect()
    }

    /// `MGET` of the entries of `nodes` (at least one).
    pub fn read(keys: &Keys, nodes: &[String]) -> Command {
        nodes.iter().fold(Command::new("MGET"), |command, node| {
            command.arg(keys.counts(node))
        })
    }

    /// Reads the reply to [`read`](Self::read): each node's entry, `None` for one gone or unreadable.
    pub fn parse_read(reply: &Reply) -> Result<Vec<Option<NodeCounts>>, EngineReplyError> {
        let entries = reply.as_array().ok_or(EngineReplyError::Shape {
            what: "the nodes' counts",
        })?;
        Ok(entries
            .iter()
            .map(|entry| entry.as_bytes().and_then(|b| NodeCounts::parse(b).ok()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(command: &Command) -> Vec<u8> {
        let mut out = Vec::new();
        command.encode_into(&mut out);
        out
    }

    #[test]
    fn an_entry_round_trips_and_sums() {
        let mut a = NodeCounts {
            connections: 2,
            by_dialect: [("native".into(), 2)].into_iter().collect(),
            apps: alloc::vec!["x".into(), "y".into()],
            subscribers: [("projects/p".into(), 1)].into_iter().collect(),
        };
        let b = NodeCounts::parse(&a.encode()).unwrap();
        assert_eq!(a, b);
        a.add(&b, 3);
        assert_eq!(a.connections, 4);
        assert_eq!(a.by_dialect["native"], 4);
        assert_eq!(a.apps, ["x", "y", "x"]);
        assert_eq!(a.subscribers["projects/p"], 2);
        assert!(NodeCounts::parse(b"\"x\"").is_err());
        assert_eq!(NodeCounts::parse(b"{}").unwrap(), NodeCounts::default());
    }

    #[test]
    fn commands_name_the_node_keys() {
        let keys = Keys::new("sb");
        let [set, zadd, trim] = NodeCounts::default().write(&keys, "n1", 1000, 15);
        let set = encoded(&set);
        assert!(set.windows(7).any(|w| w == b"sb:c:n1"));
        assert!(encoded(&zadd).windows(4).any(|w| w == b"1015"));
        assert!(encoded(&trim).windows(5).any(|w| w == b"(1000"));
        let read = encoded(&NodeCounts::read(&keys, &["n1".into(), "n2".into()]));
        assert!(read.starts_with(b"*3\r\n$4\r\nMGET\r\n"));
    }

    #[test]
    fn replies_are_read_and_foreign_ones_refused() {
        let nodes = Reply::Array(alloc::vec![
            Reply::Bulk(b"a".to_vec()),
            Reply::Bulk(b"b".to_vec())
        ]);
        assert_eq!(NodeCounts::parse_nodes(&nodes).unwrap(), ["a", "b"]);
        assert!(NodeCounts::parse_nodes(&Reply::Integer(1)).is_err());
        let read = Reply::Array(alloc::vec![
            Reply::Bulk(br#"{"connections":3}"#.to_vec()),
            Reply::Nil,
            Reply::Bulk(b"junk".to_vec()),
        ]);
        let entries = NodeCounts::parse_read(&read).unwrap();
        assert_eq!(entries[0].as_ref().map(|c| c.connections), Some(3));
        assert!(entries[1].is_none() && entries[2].is_none());
        assert!(NodeCounts::parse_read(&Reply::Nil).is_err());
    }
}
