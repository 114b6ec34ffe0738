//! `switchboard token`: mints an HS256 JWT for development, signed with the server's `--auth-secret`.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use switchboard_protocol::auth::{ChannelGrants, Claims, GrantAction, Hs256Key};

use crate::error::CliError;

/// `switchboard token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The HS256 secret (the server's --auth-secret).
    #[arg(long, env = "SWITCHBOARD_AUTH_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Who the token is for (the `sub` claim).
    #[arg(long)]
    pub sub: String,
    /// A channel pattern the bearer may subscribe to (and read over REST). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub subscribe: Vec<String>,
    /// A channel pattern the bearer may publish on. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub publish: Vec<String>,
    /// A channel pattern the bearer may serve calls on. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub serve: Vec<String>,
    /// A channel pattern the bearer may call. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub call: Vec<String>,
    /// How long the token is valid: a number with s, m, h or d (e.g. 90s, 30m, 1h, 7d).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
}

/// Parses `90s`, `30m`, `1h`, `7d` (a bare number is seconds); at least one second.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "a number followed by s, m, h or d, e.g. 1h".to_owned())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    }
    .ok_or_else(|| "too long".to_owned())?;
    if secs == 0 {
        return Err("must be at least one second".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

/// The token the arguments describe, issued at `now` (unix seconds).
pub fn mint(args: &TokenArgs, now: u64) -> Result<String, CliError> {
    let key = Hs256Key::new(args.secret.as_bytes())
        .map_err(|e| CliError::Usage(format!("--secret: {e}")))?;
    let mut grants = ChannelGrants::none();
    for (action, patterns) in [
        (GrantAction::Subscribe, &args.subscribe),
        (GrantAction::Publish, &args.publish),
        (GrantAction::Serve, &args.serve),
        (GrantAction::Call, &args.call),
    ] {
        for pattern in patterns {
            grants
                .allow(action, pattern)
                .map_err(|e| CliError::Usage(format!("--{action}: {e}")))?;
        }
    }
    let exp = now
        .checked_add(args.ttl.as_secs())
        .ok_or_else(|| CliError::Usage("--ttl is too long".to_owned()))?;
    let mut claims = Claims::new(args.sub.clone(), exp).with_channels(grants);
    claims.iat = Some(now);
    Ok(key.sign(&claims))
}

/// Prints the token on stdout.
pub fn token(args: TokenArgs) -> Result<(), CliError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let token = mint(&args, now)?;
    if args.subscribe.is_empty()
        && args.publish.is_empty()
        && args.serve.is_empty()
        && args.call.is_empty()
    {
        eprintln!(
            "warning: the token grants nothing; add --subscribe, --publish, --serve or --call"
        );
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{token}")?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_ttl("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "0s", "h", "1w", "-1h", "1.5h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn minted_tokens_verify_with_their_grants() {
        let args = TokenArgs {
            secret: "s".repeat(32),
            sub: "ada".into(),
            subscribe: vec!["projects/*".into()],
            publish: vec![],
            serve: vec![],
            call: vec!["tools/**".into()],
            ttl: Duration::from_secs(60),
        };
        let token = mint(&args, 1_000).unwrap();
        let key = Hs256Key::new(args.secret.as_bytes()).unwrap();
        let claims = key.verify(&token, 1_010).unwrap();
        assert_eq!(claims.sub, "ada");
        assert_eq!(claims.exp, 1_060);
        assert_eq!(claims.channels.subscribe(), ["projects/*"]);
        assert_eq!(claims.channels.call(), ["tools/**"]);
        assert!(key.verify(&token, 1_060 + 3_600).is_err());
        let bad = TokenArgs {
            subscribe: vec!["/bad".into()],
            ..args
        };
        assert_eq!(
            mint(&bad, 0).unwrap_err().exit_code(),
            std::process::ExitCode::from(2)
        );
    }
}
