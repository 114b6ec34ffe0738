//! `serve`'s security options: authentication (`--auth-secret`, `--api-key`), the refusal to serve a non-loopback
//! address without it (`--insecure-no-auth` overrides), TLS (`--tls-cert`, `--tls-key`), connection limits,
//! timeouts and the `Origin` allowlist. Kept apart from `serve.rs` so its flags and checks live in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use switchboard_protocol::auth::{ApiKeys, Authenticator, Hs256Key};
use switchboard_runtime::ServerConfig;
use switchboard_runtime::server::{AuthenticatorVerifier, ServerTls};

use crate::error::CliError;

/// The security flags of `switchboard serve`.
#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// The HS256 secret clients' JWTs are signed with (see `switchboard token`). At least 32 bytes recommended.
    #[arg(long, env = "SWITCHBOARD_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
    /// A static API key and what it grants, KEY:SPEC, e.g. `k3y:subscribe=projects/*,publish=projects/*`
    /// (actions subscribe, publish, serve, call, or all). Repeatable.
    #[arg(long = "api-key", value_name = "KEY:SPEC")]
    pub api_keys: Vec<String>,
    /// Serve a non-loopback address without authentication. Anyone who can reach the port can then read and
    /// write every channel.
    #[arg(long, env = "SWITCHBOARD_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// The TLS certificate chain (PEM, leaf first): the port then serves https:// and wss://.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Most WebSocket connections and event streams at once; past it, upgrades and streams get HTTP 503 (0: no limit).
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most WebSocket connections and event streams at once from one IP address; past it, HTTP 429 (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP",
        default_value_t = 1_000
    )]
    pub max_connections_per_ip: usize,
    /// Only WebSocket upgrades from this browser origin (e.g. `https://app.example.com`) are accepted; others get
    /// HTTP 403. Repeatable; none given: any origin.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// How long a new connection may take to send its request (and a TLS handshake to finish), in ms.
    #[arg(long, env = "SWITCHBOARD_HANDSHAKE_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub handshake_timeout_ms: Option<u64>,
    /// How long a keep-alive HTTP connection may sit idle between requests, in ms (default 60000).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_ms: Option<u64>,
}

/// What the flags default to.
impl Default for SecurityArgs {
    fn default() -> Self {
        SecurityArgs {
            auth_secret: None,
            api_keys: Vec::new(),
            insecure_no_auth: false,
            tls_cert: None,
            tls_key: None,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            allowed_origins: Vec::new(),
            handshake_timeout_ms: None,
            idle_timeout_ms: None,
        }
    }
}

impl SecurityArgs {
    /// Whether a credential is required.
    pub fn requires_auth(&self) -> bool {
        self.auth_secret.is_some() || !self.api_keys.is_empty()
    }

    /// Whether TLS is configured.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }
}

/// Why `serve` will not listen on `bind` as configured, if it will not: a non-loopback address needs
/// authentication or `--insecure-no-auth`.
pub fn refuse_open_bind(bind: SocketAddr, args: &SecurityArgs) -> Result<(), CliError> {
    if bind.ip().is_loopback() || args.requires_auth() || args.insecure_no_auth {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "refusing to serve {bind} without authentication: it is not a loopback address, so anyone who can \
         reach it could read and publish on every channel. Give --auth-secret (or SWITCHBOARD_AUTH_SECRET) \
         and/or --api-key KEY:SPEC, bind 127.0.0.1, or pass --insecure-no-auth if this is really what you want"
    )))
}

/// Applies the security flags to `config`.
pub fn apply(args: &SecurityArgs, config: &mut ServerConfig) -> Result<(), CliError> {
    let mut authenticator = Authenticator::new();
    if let Some(secret) = &args.auth_secret {
        let key = Hs256Key::new(secret.as_bytes())
            .map_err(|e| CliError::Usage(format!("--auth-secret: {e}")))?;
        if key.is_short() {
            tracing::warn!("--auth-secret is short: use at least 32 random bytes");
        }
        authenticator = authenticator.with_jwt(key);
    }
    if !args.api_keys.is_empty() {
        let mut keys = ApiKeys::new();
        for (i, entry) in args.api_keys.iter().enumerate() {
            // Never echo the entry: it holds the key.
            keys.insert_spec(entry)
                .map_err(|e| CliError::Usage(format!("--api-key #{}: {e}", i + 1)))?;
        }
        authenticator = authenticator.with_api_keys(keys);
    }
    if authenticator.is_required() {
        config.verifier = Some(std::sync::Arc::new(AuthenticatorVerifier::new(
            authenticator,
        )));
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
        };
        let tls = ServerTls::from_pem(&read(cert)?, &read(key)?)
            .map_err(|e| CliError::Usage(format!("--tls-cert/--tls-key: {e}")))?;
        config.tls = Some(tls);
    }
    config.max_connections = args.max_connections;
    config.max_connections_per_ip = args.max_connections_per_ip;
    config.allowed_origins = args.allowed_origins.clone();
    if let Some(ms) = args.handshake_timeout_ms {
        config.handshake_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = args.idle_timeout_ms {
        config.idle_timeout = Duration::from_millis(ms);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> SecurityArgs {
        SecurityArgs::default()
    }

    #[test]
    fn non_loopback_needs_auth_or_the_override() {
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let err = refuse_open_bind(any, &open()).unwrap_err();
        assert_eq!(err.exit_code(), std::process::ExitCode::from(2));
        assert!(err.to_string().contains("--insecure-no-auth"));
        assert!(refuse_open_bind(local, &open()).is_ok());
        assert!(refuse_open_bind("[::1]:80".parse().unwrap(), &open()).is_ok());
        let with_secret = SecurityArgs {
            auth_secret: Some("s".repeat(32)),
            ..open()
        };
        assert!(refuse_open_bind(any, &with_secret).is_ok());
        let insecure = SecurityArgs {
            insecure_no_auth: true,
            ..open()
        };
        assert!(refuse_open_bind(any, &insecure).is_ok());
    }

    #[test]
    fn flags_set_the_config_and_bad_keys_are_usage_errors() {
        let args = SecurityArgs {
            api_keys: vec!["k:subscribe=news".into()],
            max_connections: 5,
            max_connections_per_ip: 2,
            allowed_origins: vec!["https://a.example".into()],
            idle_timeout_ms: Some(1500),
            ..open()
        };
        let mut config = ServerConfig::default();
        apply(&args, &mut config).unwrap();
        assert!(config.verifier.is_some());
        assert_eq!(
            (config.max_connections, config.max_connections_per_ip),
            (5, 2)
        );
        assert_eq!(config.idle_timeout, Duration::from_millis(1500));
        let bad = SecurityArgs {
            api_keys: vec!["secretkey-no-spec".into()],
            ..open()
        };
        let err = apply(&bad, &mut ServerConfig::default()).unwrap_err();
        assert!(!err.to_string().contains("secretkey"), "{err}");
        let mut config = ServerConfig::default();
        apply(&open(), &mut config).unwrap();
        assert!(config.verifier.is_none());
    }
}
