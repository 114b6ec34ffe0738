//! Token verification at the handshake (PROTOCOL §1): the [`TokenVerifier`] trait, and [`StaticTokens`], a fixed
//! table of tokens for small deployments and tests.
//!
//! The token comes from `Authorization: Bearer <token>` or, for browsers, `?token=<token>`. A verifier that fails
//! makes the server answer HTTP 401 with a JSON body before any upgrade; one that succeeds gives the connection its
//! [`Permissions`] (checked by the hub on every subscribe, publish, serve and call, and by the channel routes).

use std::collections::HashMap;

use switchboard_protocol::server::Permissions;

use switchboard_protocol::rest::RequestHead;

/// Why a [`TokenVerifier`] refused a token. Every variant is answered with 401; only [`TokenRefusal::Missing`]
/// changes the text the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// No token where one is required.
    #[error("a token is required")]
    Missing,
    /// The token is unknown, malformed or expired.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Checks the token of a WebSocket handshake or a channel route. Called on the connection's task, so it must be
/// quick (a table lookup, an HMAC): do slow lookups ahead of time.
pub trait TokenVerifier: Send + Sync + 'static {
    /// Checks `token` (from the header or the query; `None` when neither is there) for the request `head`.
    fn verify(&self, token: Option<&str>, head: &RequestHead) -> Result<Permissions, TokenRefusal>;
}

impl<F> TokenVerifier for F
where
    F: Fn(Option<&str>, &RequestHead) -> Result<Permissions, TokenRefusal> + Send + Sync + 'static,
{
    fn verify(&self, token: Option<&str>, head: &RequestHead) -> Result<Permissions, TokenRefusal> {
        self(token, head)
    }
}

/// A fixed table of tokens, each with its permissions. A token is required.
#[derive(Debug, Clone, Default)]
pub struct StaticTokens {
    tokens: HashMap<String, Permissions>,
}

impl StaticTokens {
    /// An empty table (refuses everyone).
    pub fn new() -> StaticTokens {
        StaticTokens::default()
    }

    /// Adds a token.
    pub fn with(mut self, token: impl Into<String>, permissions: Permissions) -> StaticTokens {
        self.tokens.insert(token.into(), permissions);
        self
    }
}

impl TokenVerifier for StaticTokens {
    fn verify(
        &self,
        token: Option<&str>,
        _head: &RequestHead,
    ) -> Result<Permissions, TokenRefusal> {
        let token = token.ok_or(TokenRefusal::Missing)?;
        self.tokens
            .get(token)
            .cloned()
            .ok_or_else(|| TokenRefusal::Invalid("unknown token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::head::parse_head;
    use super::*;

    #[test]
    fn static_tokens() {
        let head = parse_head(b"GET / HTTP/1.1\r\n\r\n", 1024)
            .unwrap()
            .unwrap()
            .0;
        let v = StaticTokens::new().with("t1", Permissions::allow_all());
        assert_eq!(v.verify(None, &head), Err(TokenRefusal::Missing));
        assert!(matches!(
            v.verify(Some("x"), &head),
            Err(TokenRefusal::Invalid(_))
        ));
        assert_eq!(v.verify(Some("t1"), &head), Ok(Permissions::allow_all()));
    }
}
