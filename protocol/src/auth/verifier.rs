//! [`Authenticator`]: the handshake's one question, "who is this and what may they do?", for a JWT key and API
//! keys together.
//!
//! The driver takes the token from `Authorization: Bearer <token>` ([`bearer_token`]) or from `?token=<token>`,
//! calls [`Authenticator::authenticate`] with the current unix time, and either upgrades with the
//! [`Identity`]'s grants or answers HTTP 401 with [`AuthError`]'s generic text, logging
//! [`AuthError::reason`].
//!
//! # Rules
//!
//! - Nothing configured (no JWT key, no API keys): the server is open. Every connection is
//!   [`CredentialKind::Anonymous`] with [`ChannelGrants::all`], and a presented token is ignored.
//! - Otherwise a token is required; none, or an empty one, is refused with
//!   [`AuthFailure::MissingToken`]. A token over [`MAX_TOKEN_BYTES`] is refused with
//!   [`AuthFailure::TooLong`] before it is hashed or decoded.
//! - The token is compared with every API key (constant time, see [`ApiKeys`]); a match wins.
//! - Otherwise, with a JWT key, it is verified as a JWT ([`Hs256Key::verify`]). When it fails and API keys are
//!   configured too, a token that is not JWT-shaped (not exactly two `.`) is reported as
//!   [`AuthFailure::UnknownApiKey`] rather than [`AuthFailure::Malformed`], which is what the operator wants in the log.
//! - With API keys only, a token that matches none is [`AuthFailure::UnknownApiKey`].

use alloc::string::String;

use super::api_keys::ApiKeys;
use super::error::{AuthError, AuthFailure};
use super::grants::ChannelGrants;
use super::jwt::{Hs256Key, MAX_TOKEN_BYTES};

/// Which kind of credential an [`Identity`] was proven with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// No credential: the server requires none.
    Anonymous,
    /// An API key: the one at this index in the [`ApiKeys`].
    ApiKey {
        /// Insertion index of the key.
        index: usize,
    },
    /// An HS256 JWT.
    Jwt,
}

/// Who a connection belongs to and what it may do, as proven at the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The JWT's `sub`; `api-key:<index>` for an API key ([`ApiKeys::subject`]); `anonymous` on an open server.
    /// Fit for logs: never the secret itself.
    pub subject: String,
    /// What the connection may do on which channels.
    pub grants: ChannelGrants,
    /// The JWT's `exp` (unix seconds); `None` for credentials that do not expire.
    pub expires_at: Option<u64>,
    /// How the identity was proven.
    pub credential: CredentialKind,
}

impl Identity {
    /// The identity of every connection to an open server.
    fn anonymous() -> Self {
        Identity {
            subject: String::from("anonymous"),
            grants: ChannelGrants::all(),
            expires_at: None,
            credential: CredentialKind::Anonymous,
        }
    }
}

/// A JWT key and API keys, checked together (rules in the [module docs](self)). Stateless: share one per server.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    jwt: Option<Hs256Key>,
    api_keys: ApiKeys,
}

impl Authenticator {
    /// An authenticator with nothing configured: an open server, until [`with_jwt`](Self::with_jwt) or
    /// [`with_api_keys`](Self::with_api_keys).
    pub fn new() -> Self {
        Authenticator::default()
    }

    /// `self` accepting JWTs signed with `key`.
    pub fn with_jwt(mut self, key: Hs256Key) -> Self {
        self.jwt = Some(key);
        self
    }

    /// `self` accepting these API keys (replacing any set before).
    pub fn with_api_keys(mut self, keys: ApiKeys) -> Self {
        self.api_keys = keys;
        self
    }

    /// The JWT key, if any.
    pub fn jwt(&self) -> Option<&Hs256Key> {
        self.jwt.as_ref()
    }

    /// The API keys (possibly none).
    pub fn api_keys(&self) -> &ApiKeys {
        &self.api_keys
    }

    /// True when a connection must present a credential: a JWT key or at least one API key is configured.
    pub fn is_required(&self) -> bool {
        self.jwt.is_some() || !self.api_keys.is_empty()
    }

    /// Who presents `token` at `now_unix_secs`, or why they are refused.
    pub fn authenticate(
        &self,
        token: Option<&str>,
        now_unix_secs: u64,
    ) -> Result<Identity, AuthError> {
        if !self.is_required() {
            return Ok(Identity::anonymous());
        }
        let token = match token {
            None | Some("") => return Err(AuthFailure::MissingToken.into()),
            Some(t) if t.len() > MAX_TOKEN_BYTES => return Err(AuthFailure::TooLong.into()),
            Some(t) => t,
        };
        if let Some((index, grants)) = self.api_keys.verify_indexed(token) {
            return Ok(Identity {
                subject: ApiKeys::subject(index),
                grants: grants.clone(),
                expires_at: None,
                credential: CredentialKind::ApiKey { index },
            });
        }
        let Some(jwt) = &self.jwt else {
            return Err(AuthFailure::UnknownApiKey.into());
        };
        match jwt.verify(token, now_unix_secs) {
            Ok(claims) => Ok(Identity {
                subject: claims.sub,
                grants: claims.channels,
                expires_at: Some(claims.exp),
                credential: CredentialKind::Jwt,
            }),
            Err(_) if !self.api_keys.is_empty() && token.matches('.').count() != 2 => {
                Err(AuthFailure::UnknownApiKey.into())
            }
            Err(err) => Err(err),
        }
    }
}

/// The token in an `Authorization` header value of the `Bearer` scheme (RFC 6750 §2.1): the scheme name in any
/// case, one or more spaces, then the token (surrounding blanks trimmed). `None` for another scheme or no token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let value = authorization.trim_matches([' ', '\t']);
    let (scheme, token) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_matches([' ', '\t']);
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::Claims;
    use alloc::string::ToString;

    const SECRET: &[u8] = b"switchboard-test-secret-0123456789abcdef";
    const NOW: u64 = 1_750_000_000;

    fn jwt_key() -> Hs256Key {
        Hs256Key::new(SECRET).unwrap()
    }

    fn keys() -> ApiKeys {
        let mut keys = ApiKeys::new();
        keys.insert_spec("dashboard-key:subscribe=projects/*")
            .unwrap();
        keys.insert_spec("worker-key:serve=rpc/**,publish=projects/**")
            .unwrap();
        keys
    }

    fn token(sub: &str, exp: u64, spec: &str) -> String {
        jwt_key()
            .sign(&Claims::new(sub, exp).with_channels(ChannelGrants::parse_spec(spec).unwrap()))
    }

    fn reason(result: Result<Identity, AuthError>) -> AuthFailure {
        match result {
            Ok(identity) => panic!("expected a refusal, got {identity:?}"),
            Err(err) => {
                assert_eq!(err.to_string(), "invalid or expired token");
                err.reason()
            }
        }
    }

    #[test]
    fn open_server_lets_everyone_in_with_every_right() {
        let open = Authenticator::new();
        assert!(!open.is_required());
        for presented in [None, Some(""), Some("garbage"), Some("a.b.c")] {
            let id = open.authenticate(presented, NOW).unwrap();
            assert_eq!(id.subject, "anonymous");
            assert_eq!(id.grants, ChannelGrants::all());
            assert_eq!(id.expires_at, None);
            assert_eq!(id.credential, CredentialKind::Anonymous);
        }
    }

    #[test]
    fn missing_token_when_required() {
        for auth in [
            Authenticator::new().with_jwt(jwt_key()),
            Authenticator::new().with_api_keys(keys()),
            Authenticator::new()
                .with_jwt(jwt_key())
                .with_api_keys(keys()),
        ] {
            assert!(auth.is_required());
            assert_eq!(
                reason(auth.authenticate(None, NOW)),
                AuthFailure::MissingToken
            );
            assert_eq!(
                reason(auth.authenticate(Some(""), NOW)),
                AuthFailure::MissingToken
            );
            let long = "k".repeat(MAX_TOKEN_BYTES + 1);
            assert_eq!(
                reason(auth.authenticate(Some(&long), NOW)),
                AuthFailure::TooLong
            );
        }
    }

    #[test]
    fn jwt_identity() {
        let auth = Authenticator::new().with_jwt(jwt_key());
        let t = token("alice", NOW + 60, "subscribe=projects/*");
        let id = auth.authenticate(Some(&t), NOW).unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(
            id.grants,
            ChannelGrants::parse_spec("subscribe=projects/*").unwrap()
        );
        assert_eq!(id.expires_at, Some(NOW + 60));
        assert_eq!(id.credential, CredentialKind::Jwt);

        let expired = token("alice", NOW - 60, "subscribe=projects/*");
        assert_eq!(
            reason(auth.authenticate(Some(&expired), NOW)),
            AuthFailure::Expired
        );
        assert_eq!(
            reason(auth.authenticate(Some("dashboard-key"), NOW)),
            AuthFailure::Malformed
        );
    }

    #[test]
    fn api_key_identity() {
        let auth = Authenticator::new().with_api_keys(keys());
        let id = auth.authenticate(Some("worker-key"), NOW).unwrap();
        assert_eq!(id.subject, "api-key:1");
        assert_eq!(
            id.grants,
            ChannelGrants::parse_spec("serve=rpc/**,publish=projects/**").unwrap()
        );
        assert_eq!(id.expires_at, None);
        assert_eq!(id.credential, CredentialKind::ApiKey { index: 1 });

        assert_eq!(
            reason(auth.authenticate(Some("worker-kex"), NOW)),
            AuthFailure::UnknownApiKey
        );
        // Without a JWT key, even a valid JWT is just an unknown key.
        let t = token("alice", NOW + 60, "all=**");
        assert_eq!(
            reason(auth.authenticate(Some(&t), NOW)),
            AuthFailure::UnknownApiKey
        );
    }

    #[test]
    fn both_configured() {
        let auth = Authenticator::new()
            .with_jwt(jwt_key())
            .with_api_keys(keys());
        assert_eq!(
            auth.authenticate(Some("dashboard-key"), NOW)
                .unwrap()
                .credential,
            CredentialKind::ApiKey { index: 0 }
        );
        let t = token("bob", NOW + 60, "call=rpc/*");
        assert_eq!(
            auth.authenticate(Some(&t), NOW).unwrap().credential,
            CredentialKind::Jwt
        );
        // Not JWT-shaped: the operator sees an unknown key, not a malformed JWT.
        assert_eq!(
            reason(auth.authenticate(Some("nope"), NOW)),
            AuthFailure::UnknownApiKey
        );
        assert_eq!(
            reason(auth.authenticate(Some("a.b"), NOW)),
            AuthFailure::UnknownApiKey
        );
        // JWT-shaped: the JWT's own reason.
        assert_eq!(
            reason(auth.authenticate(Some("a.b.c"), NOW)),
            AuthFailure::Malformed
        );
        let mut forged = t.clone();
        forged.pop();
        forged.push(if t.ends_with('A') { 'Q' } else { 'A' });
        assert_eq!(
            reason(auth.authenticate(Some(&forged), NOW)),
            AuthFailure::BadSignature
        );
        let not_yet = jwt_key().sign(&{
            let mut c = Claims::new("bob", NOW + 3600);
            c.nbf = Some(NOW + 600);
            c
        });
        assert_eq!(
            reason(auth.authenticate(Some(&not_yet), NOW)),
            AuthFailure::NotYetValid
        );
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER   abc  "), Some("abc"));
        assert_eq!(bearer_token("  Bearer\tabc"), Some("abc"));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(bearer_token(""), None);
    }
}
