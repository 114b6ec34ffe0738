//! [`AuthenticatorVerifier`]: the [`TokenVerifier`] over the protocol crate's
//! [`Authenticator`] (HS256 JWTs and API keys), reading the wall clock.
//!
//! The identity's [`ChannelGrants`] become the connection's [`Permissions`], naming its [`Principal`] (the JWT's
//! `sub`, or the API key's non-secret name) so routed calls can tell their server who called. A refusal is logged at debug level
//! with its internal reason ([`AuthFailure`](switchboard_protocol::auth::AuthFailure)) and the subject-free request
//! path; the client only ever sees the generic text of [`TokenRefusal`].

use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_protocol::auth::{
    self as core_auth, Authenticator, ChannelGrants, CredentialKind, Identity,
};
use switchboard_protocol::server::{Permissions, Principal};
use switchboard_protocol::time::Timestamp;

use super::verifier::{TokenRefusal, TokenVerifier};
use switchboard_protocol::rest::RequestHead;

/// Verifies tokens with an [`Authenticator`] at the current unix time.
#[derive(Debug, Clone)]
pub struct AuthenticatorVerifier {
    authenticator: Authenticator,
}

impl AuthenticatorVerifier {
    /// A verifier over `authenticator`. With nothing configured in it, everyone is let in with every permission.
    pub fn new(authenticator: Authenticator) -> Self {
        AuthenticatorVerifier { authenticator }
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// When permissions from a token with this `exp` lapse on the runtime's clock (unix microseconds): the last
    /// instant the handshake would still accept the token, `exp` plus the JWT key's leeway.
    pub fn lapses_at(&self, exp: u64) -> Timestamp {
        let leeway = self
            .authenticator
            .jwt()
            .map_or(core_auth::jwt::DEFAULT_LEEWAY_SECS, |k| k.leeway_secs());
        Timestamp::from_micros(exp.saturating_add(leeway).saturating_mul(1_000_000))
    }

    /// Who presents `token` at `now_unix_secs`, with the refusal mapped to the server's [`TokenRefusal`] and logged.
    pub fn identify(
        &self,
        token: Option<&str>,
        path: &str,
        now_unix_secs: u64,
    ) -> Result<Identity, TokenRefusal> {
        self.authenticator
            .authenticate(token, now_unix_secs)
            .map_err(|e| refusal(e, path))
    }
}

/// Logs the internal reason, answers with the public text only.
fn refusal(error: core_auth::AuthError, path: &str) -> TokenRefusal {
    let reason = error.reason();
    tracing::debug!(%reason, path, "token refused");
    match reason {
        core_auth::AuthFailure::MissingToken => TokenRefusal::Missing,
        _ => TokenRefusal::Invalid(core_auth::AuthError::PUBLIC_MESSAGE.to_owned()),
    }
}

/// The permissions an identity's grants give.
pub fn permissions_from_grants(grants: ChannelGrants) -> Permissions {
    let (subscribe, publish, serve, call) = grants.into_parts();
    Permissions::from_patterns(subscribe, publish, serve, call)
}

/// Seconds since the unix epoch (0 if the clock is before it).
fn now_unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenVerifier for AuthenticatorVerifier {
    fn verify(&self, token: Option<&str>, head: &RequestHead) -> Result<Permissions, TokenRefusal> {
        let identity = self.identify(token, &head.path, now_unix_secs())?;
        tracing::debug!(subject = %identity.subject, path = %head.path, "token accepted");
        // A routed call names its caller to the server by these (never by the credential itself).
        let principal = match identity.credential {
            CredentialKind::Jwt => Principal::token(identity.subject),
            CredentialKind::ApiKey { .. } => Principal::api_key(identity.subject),
            _ => Principal::default(),
        };
        let permissions = permissions_from_grants(identity.grants).with_principal(principal);
        Ok(match identity.expires_at {
            Some(exp) => permissions.with_expiry(self.lapses_at(exp)),
            None => permissions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::head::parse_head;
    use super::*;
    use switchboard_protocol::auth::{Claims, GrantAction, Hs256Key};
    use switchboard_protocol::server::Action;
    use switchboard_protocol::wire::ChannelName;

    fn head() -> RequestHead {
        parse_head(b"GET /api/ws HTTP/1.1\r\n\r\n", 1024)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn jwt_grants_become_permissions_and_refusals_say_nothing() {
        let key = Hs256Key::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let grants = ChannelGrants::none()
            .with(GrantAction::Subscribe, "news/*")
            .unwrap();
        let token = key.sign(&Claims::new("ada", now_unix_secs() + 60).with_channels(grants));
        let v = AuthenticatorVerifier::new(Authenticator::new().with_jwt(key));
        let p = v.verify(Some(&token), &head()).unwrap();
        let news = ChannelName::new("news/today").unwrap();
        assert!(p.allows(Action::Subscribe, &news));
        assert!(!p.allows(Action::Publish, &news));
        assert_eq!(v.verify(None, &head()), Err(TokenRefusal::Missing));
        let bad = v.verify(Some("a.b.c"), &head()).unwrap_err();
        assert_eq!(bad.to_string(), "invalid token: invalid or expired token");
    }

    #[test]
    fn an_empty_authenticator_is_open() {
        let v = AuthenticatorVerifier::new(Authenticator::new());
        assert_eq!(v.verify(None, &head()), Ok(Permissions::allow_all()));
    }
}
