//! `switchboard serve`: a server on smol until SIGINT or SIGTERM, then a graceful shutdown (readiness 503, every
//! WebSocket closed with 1001, writers flushed).

use std::io::Write;
use std::time::Duration;

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
    if let Some(rate) = args.rate_per_sec {
        config.hub.rate_per_sec = rate;
    }
    Ok(config)
}

/// Runs until a signal.
pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let config = config(&args)?;
    let mut shutdown = Shutdown::install()?;
    let server = Server::bind(SmolRuntime::new(), args.bind, config)
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", args.bind)))?;
    let addr = server
        .local_addr()
        .ok_or_else(|| CliError::Failed("the listener has no address".to_owned()))?;
    // On stdout, alone on its line, for scripts and tests that bind port 0.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    tracing::info!(%addr, ws = %format!("ws://{addr}/api/ws"), "switchboard is serving");
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
            rate_per_sec: None,
        };
        let config = config(&args).unwrap();
        assert_eq!(config.hub.history_size, 5);
        assert_eq!(config.hub.history_ttl, Duration::from_millis(1500));
        assert_eq!(config.hub.heartbeat, ServerConfig::default().hub.heartbeat);
        assert_eq!(config.hub.max_message_bytes, 4096);
        assert_ne!(config.hub.seed, super::config(&args).unwrap().hub.seed);
    }
}
