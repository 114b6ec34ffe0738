//! `switchboard history URL CHANNEL [--since N] [--json]`: every event of a channel's REST history, oldest first,
//! through the SDK's paginating stream ([`ChannelsApi::history`](switchboard_runtime::sdk::ChannelsApi::history)),
//! so every page goes through the SDK's retries, rate limiter and pagination checks.
//!
//! Plain output is `OFFSET EVENT` per line; `--json` is one `{"channel","offset","event"}` object per line (the
//! same shape as `sub --json`).

use std::io::Write;

use futures_util::StreamExt;
use serde_json::json;
use switchboard_runtime::sdk::{ApiClient, ApiConfig, HistoryQuery};
use switchboard_smol::SmolRuntime;

use crate::args::HistoryArgs;
use crate::error::CliError;

/// The SDK configuration `history` runs with: the `SWITCHBOARD_*` environment over the production preset (retries,
/// retry budget, rate limit), with the response cache off (a history read wants the server's answer) and `URL`
/// and `--token` on top.
pub fn api_config(args: &HistoryArgs) -> Result<ApiConfig, CliError> {
    let mut config = ApiConfig::from_env()
        .map_err(|e| CliError::Usage(e.to_string()))?
        .with_base_url(args.url.clone());
    config.cache = None;
    if let Some(token) = &args.token {
        config = config.with_token(token.clone());
    }
    config
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(config)
}

/// Prints every event of the channel's history after `--since`, then exits.
pub async fn history(args: HistoryArgs) -> Result<(), CliError> {
    let config = api_config(&args)?;
    let client =
        ApiClient::new(SmolRuntime::new(), config).map_err(|e| CliError::Usage(e.to_string()))?;
    let query = match args.since {
        Some(since) => HistoryQuery::since(since),
        None => HistoryQuery::default(),
    };
    let mut events = client.channels().history(&args.channel, query);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| {
            CliError::Failed(format!("reading the history of {}: {e}", args.channel))
        })?;
        if args.json {
            let line = json!({
                "channel": args.channel,
                "offset": event.offset,
                "event": event.event,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{} {}", event.offset, event.event)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str, token: Option<&str>) -> HistoryArgs {
        HistoryArgs {
            url: url.to_owned(),
            channel: "jobs/7".to_owned(),
            since: None,
            json: false,
            token: token.map(str::to_owned),
        }
    }

    #[test]
    fn the_config_takes_the_url_and_token_and_drops_the_cache() {
        let config = api_config(&args("http://127.0.0.1:9/base", Some("t0k"))).unwrap();
        assert_eq!(config.base_url, "http://127.0.0.1:9/base");
        assert_eq!(config.token.as_deref(), Some("t0k"));
        assert!(config.cache.is_none());
        assert!(config.retry.max_attempts > 1);
    }

    #[test]
    fn a_websocket_url_is_a_usage_mistake() {
        let e = api_config(&args("ws://127.0.0.1:9/api/ws", None)).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)), "{e}");
    }
}
