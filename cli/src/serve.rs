//! `switchboard serve`: a server on smol until SIGINT or SIGTERM, then a graceful shutdown (readiness 503, every
//! WebSocket closed with 1001, writers flushed).

use std::io::Write;
use std::time::Duration;

use switchboard_runtime::server::WebhookConfig;
use switchboard_runtime::{Server, ServerConfig};
use switchboard_smol::SmolRuntime;

use crate::args::ServeArgs;
use crate::error::CliError;
use crate::signals::Shutdown;

/// The server configuration the arguments ask for; the rest are the defaults (the hub seeded from the OS, so every
/// run has a new epoch).
pub fn config(args: &ServeArgs) -> Result<ServerConfig, CliError> {
    let mut config = ServerConfig::default();
    if let Some(size) = args.history_size {
        config.hub.history_size = size;
    }
    if let Some(ms) = args.history_ttl_ms {
        config.hub.history_ttl = Duration::from_millis(ms);
    }
    if let Some(ms) = args.heartbeat_ms {
        config.hub.heartbeat = Duration::from_millis(ms);
    }
    if let Some(bytes) = args.max_message_bytes {
        config.hub.max_message_bytes = usize::try_from(bytes)
            .map_err(|_| CliError::Usage(format!("--max-message-bytes {bytes} is too large")))?;
    }
    crate::security::apply(&args.security, &mut config)?;
    if let (Some(url), Some(secret)) = (&args.webhook, &args.webhook_secret) {
        let webhook = WebhookConfig::new(url.clone(), secret.as_bytes())
            .with_channels(args.webhook_channels.iter().cloned());
        webhook
            .validate()
            .map_err(|e| CliError::Usage(format!("--webhook: {e}")))?;
        config.webhook = Some(webhook);
    }
    crate::limits::apply(&args.limits, &mut config)?;
    crate::storage::apply(&args.storage, &mut config);
    crate::cluster::apply(&args.cluster, &mut config)?;
    config.dashboard = !args.no_ui;
    Ok(config)
}

/// Runs until a signal.
pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    crate::security::refuse_open_bind(args.bind, &args.security)?;
    let config = config(&args)?;
    let mut shutdown = Shutdown::install()?;
    // A data directory that cannot be used (in use, newer format, not ours) is the caller's to fix: exit 2.
    let server =
        Server::open(SmolRuntime::new(), config).map_err(|e| CliError::Usage(e.to_string()))?;
    server
        .listen(args.bind)
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", args.bind)))?;
    let addr = server
        .local_addr()
        .ok_or_else(|| CliError::Failed("the listener has no address".to_owned()))?;
    // On stdout, alone on its line, for scripts and tests that bind port 0.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    let ws = if args.security.tls() { "wss" } else { "ws" };
    let http = if args.security.tls() { "https" } else { "http" };
    if !args.no_ui {
        tracing::info!(dashboard = %format!("{http}://{addr}/"), "the dashboard is served");
    }
    tracing::info!(%addr, ws = %format!("{ws}://{addr}/api/ws"), auth = args.security.requires_auth(), "switchboard is serving");
    if let Some(cluster) = &server.config().cluster {
        let url = &cluster.redis.url;
        tracing::info!(node_id = %cluster.node_id, redis = %format!("{}:{}/{}", url.host, url.port, url.db), prefix = %cluster.prefix, "a node of a cluster");
    }
    shutdown.wait().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_defaults() {
        let args = ServeArgs {
            bind: "127.0.0.1:0".parse().unwrap(),
            history_size: Some(5),
            history_ttl_ms: Some(1500),
            heartbeat_ms: None,
            max_message_bytes: Some(4096),
            security: crate::security::SecurityArgs::default(),
            webhook: None,
            webhook_secret: None,
            webhook_channels: Vec::new(),
            limits: crate::limits::LimitArgs::default(),
            storage: crate::storage::StorageArgs::default(),
            cluster: crate::cluster::ClusterArgs::default(),
            no_ui: true,
        };
        let config = config(&args).unwrap();
        assert!(!config.dashboard, "--no-ui");
        assert_eq!(config.hub.history_size, 5);
        assert_eq!(config.hub.history_ttl, Duration::from_millis(1500));
        assert_eq!(config.hub.heartbeat, ServerConfig::default().hub.heartbeat);
        assert_eq!(config.hub.max_message_bytes, 4096);
        assert_ne!(config.hub.seed, super::config(&args).unwrap().hub.seed);
        assert!(config.webhook.is_none());
    }

    #[test]
    fn webhook_flags_make_a_webhook_config() {
        let mut args = ServeArgs {
            bind: "127.0.0.1:0".parse().unwrap(),
            history_size: None,
            history_ttl_ms: None,
            heartbeat_ms: None,
            max_message_bytes: None,
            webhook: Some("http://127.0.0.1:9/hook".into()),
            webhook_secret: Some("s3cret".into()),
            webhook_channels: vec!["jobs/*".into()],
            security: crate::security::SecurityArgs::default(),
            limits: crate::limits::LimitArgs::default(),
            storage: crate::storage::StorageArgs::default(),
            cluster: crate::cluster::ClusterArgs::default(),
            no_ui: false,
        };
        assert!(config(&args).unwrap().dashboard);
        let webhook = config(&args).unwrap().webhook.unwrap();
        assert_eq!(webhook.url, "http://127.0.0.1:9/hook");
        assert_eq!(webhook.secret, b"s3cret");
        assert!(webhook.matches("jobs/1") && !webhook.matches("news"));
        args.webhook = Some("ws://127.0.0.1:9/hook".into());
        assert!(matches!(config(&args), Err(CliError::Usage(_))));
    }
}
