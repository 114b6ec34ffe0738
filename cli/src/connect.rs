//! Setting up the client a command uses, and telling why a connection could not be made.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use switchboard_runtime::client::{
    Client, ClientOptions, ConnectionState, RequestError, StateChanges, TokenProvider,
};
use switchboard_runtime::sdk::TlsConfig;
use switchboard_smol::SmolRuntime;

use crate::args::ConnectArgs;
use crate::error::CliError;

/// How long a command may take to get a connection going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// `pub`, `call`, `state`: a couple of attempts, then fail (exit 1).
    OneShot,
    /// `sub`, `demo`: reconnect for as long as it takes.
    LongRunning,
}

/// A client of `url` on the smol runtime.
pub fn client(url: &str, connection: &ConnectArgs, patience: Patience) -> Result<Client, CliError> {
    let mut options = ClientOptions::default();
    options.token = connection.token.clone();
    if let Some(path) = &connection.token_file {
        options.token = Some(read_token(path)?);
        options.token_provider = Some(token_file_provider(path.clone()));
    }
    if let Some(path) = &connection.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        let tls = TlsConfig::with_roots_pem(&pem)
            .map_err(|e| CliError::Usage(format!("--ca-file {}: {e}", path.display())))?;
        options.tls = Some(tls);
    }
    if patience == Patience::OneShot {
        options.protocol.backoff.max_attempts = Some(2);
        options.protocol.connect_timeout = Duration::from_secs(5);
        options.protocol.request_timeout = Duration::from_secs(15);
    }
    Ok(Client::connect(SmolRuntime::new(), url, options)?)
}

/// The token in `path`: its content without surrounding whitespace, which must not be empty.
fn read_token(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!("cannot read --token-file {}: {e}", path.display()))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::Usage(format!(
            "--token-file {} is empty",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

/// Reads `path` each time the client asks. A file that cannot be read (being replaced, or gone) keeps the token the
/// client has, with a warning: the next ask tries again.
fn token_file_provider(path: PathBuf) -> TokenProvider {
    TokenProvider::new(move || match read_token(&path) {
        Ok(token) => Some(token),
        Err(e) => {
            tracing::warn!(error = %e, "keeping the current token");
            None
        }
    })
}

/// Runs a one-shot request; when it fails because the client gave up connecting, says why.
pub async fn one_shot<T>(
    client: &Client,
    request: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, CliError> {
    let outcome = explained(client, request).await;
    client.close().await;
    outcome
}

/// Runs a request; when it fails because the client gave up connecting, says why.
pub async fn explained<T>(
    client: &Client,
    request: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, CliError> {
    let mut states = client.state_changes();
    let outcome = request.await;
    match outcome {
        Ok(value) => Ok(value),
        Err(RequestError::Closed) => {
            Err(gave_up(&mut states).unwrap_or_else(|| RequestError::Closed.into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits for the first connection; fails when the client gives up.
pub async fn connected(states: &mut StateChanges) -> Result<String, CliError> {
    while let Some(state) = states.next().await {
        match state {
            ConnectionState::Connected { app_id } => return Ok(app_id),
            ConnectionState::GaveUp { reason } => return Err(could_not_connect(&reason)),
            _ => {}
        }
    }
    Err(CliError::Failed("the client stopped".to_owned()))
}

/// The reason the client gave up, if the feed already says so.
pub fn gave_up(states: &mut StateChanges) -> Option<CliError> {
    while let Some(Some(state)) = states.next().now_or_never() {
        if let ConnectionState::GaveUp { reason } = state {
            return Some(could_not_connect(&reason));
        }
    }
    None
}

fn could_not_connect(reason: &str) -> CliError {
    CliError::Failed(format!("could not connect: {reason}"))
}
