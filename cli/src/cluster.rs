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
    /// retained state; see docs/SCALING.md). `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
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
    /// With --redis, this node's id (letters, digits, '.', '_', '-'; unique in the cluster), shown in /api/info and
    /// the logs. Default: random.
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
        let fits = !node_id.is_empty()
            && node_id.len() <= 64
            && node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !fits {
            return Err(CliError::Usage(format!(
                "--node-id {node_id:?}: use 1 to 64 letters, digits, '.', '_' or '-'"
            )));
        }
        cluster.node_id = node_id.clone();
    }
    config.cluster = Some(cluster);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(redis: Option<&str>, node_id: Option<&str>) -> ClusterArgs {
        ClusterArgs {
            redis: redis.map(Into::into),
            redis_password: Some("pw".into()),
            redis_prefix: None,
            node_id: node_id.map(Into::into),
        }
    }

    #[test]
    fn redis_makes_a_node_and_refuses_what_a_node_cannot_do() {
        let mut config = ServerConfig::default();
        apply(
            &args(Some("redis://10.0.0.5:6380/2"), Some("eu-1")),
            &mut config,
        )
        .unwrap();
        let cluster = config.cluster.as_ref().expect("a node");
        assert_eq!(cluster.node_id, "eu-1");
        assert_eq!(
            cluster.redis.url.password.as_deref(),
            Some("pw"),
            "the password flag fills the URL's"
        );
        assert_eq!((cluster.redis.url.port, cluster.redis.url.db), (6380, 2));
        for bad in ["a b", "", "x/y"] {
            assert!(
                apply(
                    &args(Some("redis://h"), Some(bad)),
                    &mut ServerConfig::default()
                )
                .is_err(),
                "{bad:?}"
            );
        }
        assert!(
            apply(&args(None, Some("n")), &mut ServerConfig::default()).is_err(),
            "--node-id needs --redis"
        );
        let mut durable = ServerConfig::default().with_data_dir("/tmp/x");
        assert!(
            apply(&args(Some("redis://h"), None), &mut durable).is_err(),
            "--data-dir with --redis"
        );
        assert!(apply(&args(Some("http://h"), None), &mut ServerConfig::default()).is_err());
        let mut hooked = ServerConfig {
            webhook: Some(switchboard_runtime::server::WebhookConfig::new(
                "http://127.0.0.1:1/hook",
                "s",
            )),
            ..ServerConfig::default()
        };
        assert!(
            apply(&args(Some("redis://h"), None), &mut hooked).is_ok(),
            "a node of a cluster sends webhooks"
        );
    }
}
