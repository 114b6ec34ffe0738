//! `serve`'s cluster options: `--redis`, `--redis-prefix`, `--node-id`, and how they make a node of a cluster.

use clap::Args;
use switchboard_runtime::ServerConfig;
use switchboard_runtime::redis::{RedisOptions, RedisUrl};
use switchboard_runtime::server::ClusterConfig;

use crate::error::CliError;

/// Several nodes sharing channels through Redis.
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// Be one node of a cluster: every node started with the same Redis shares every channel (offsets, history,
    /// retained state; see docs/SCALING.md). redis://[user:password@]host:port[/db], or rediss:// for TLS.
    /// Default: a single node, channels in memory.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", value_name = "URL")]
    pub redis: Option<String>,
    /// With --redis, the password (when the URL has none).
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub redis_password: Option<String>,
    /// With --redis, the prefix of every key and topic: the same on every node of one cluster (several clusters
    /// can share a Redis). Default: switchboard.
    #[arg(long, env = "SWITCHBOARD_REDIS_PREFIX", value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// With --redis, this node's id, shown in /api/info and the logs. Default: random.
    #[arg(long, env = "SWITCHBOARD_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
}

/// Makes the server a node of a cluster when `--redis` is given; refuses what a node cannot do.
pub fn apply(args: &ClusterArgs, config: &mut ServerConfig) -> Result<(), CliError> {
    let Some(url) = &args.redis else {
        if args.redis_password.is_some() || args.redis_prefix.is_some() || args.node_id.is_some() {
            return Err(CliError::Usage(
                "--redis-password, --redis-prefix and --node-id need --redis".into(),
            ));
        }
        return Ok(());
    };
    if config.data_dir.is_some() {
        return Err(CliError::Usage(
            "--redis and --data-dir together: a node of a cluster keeps its history in Redis"
                .into(),
        ));
    }
    if config.webhook.is_some() {
        return Err(CliError::Usage(
            "--redis and --webhook together: webhooks are not sent by a cluster yet".into(),
        ));
    }
    let mut url = RedisUrl::parse(url).map_err(|e| CliError::Usage(format!("--redis: {e}")))?;
    if let Some(password) = &args.redis_password
        && url.password.is_none()
    {
        url.password = Some(password.clone());
    }
    let mut cluster = ClusterConfig::new(RedisOptions::new(url));
    if let Some(prefix) = &args.redis_prefix {
        cluster.prefix = prefix.clone();
    }
    if let Some(node_id) = &args.node_id {
        cluster.node_id = node_id.clone();
    }
    config.cluster = Some(cluster);
    Ok(())
}
