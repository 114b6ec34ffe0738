//! [`ClusterConfig`]: how a server becomes one node of a cluster ([`ServerConfig::cluster`](super::ServerConfig::cluster));
//! the hub's side is `Hub::clustered`, the link between the two is the driver's `cluster_link`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::redis::RedisOptions;
use crate::redis::engine::REGISTRATION_TTL;

/// How a node reaches the engine it shares with the other nodes.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The Redis every node of the cluster uses.
    pub redis: RedisOptions,
    /// The prefix of every key and topic, the same on every node (several clusters can share a Redis).
    pub prefix: String,
    /// This node's id (in `/api/info` and logs).
    pub node_id: String,
    /// How long this node's entries in Redis (its serve registrations, its counts) live after their last refresh;
    /// they are refreshed every third of it. How long a node that died is still counted, and calls still sent to
    /// it. Default: [`REGISTRATION_TTL`].
    pub ttl: Duration,
}

impl ClusterConfig {
    /// A node on `redis`, with the default prefix `switchboard` and a random node id.
    pub fn new(redis: RedisOptions) -> ClusterConfig {
        let node_id = format!("{:08x}", random_u64() as u32);
        ClusterConfig {
            redis,
            prefix: "switchboard".into(),
            node_id,
            ttl: REGISTRATION_TTL,
        }
    }
}

/// A number from std's per-process random hash keys, mixed with the time.
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one(nanos)
}
