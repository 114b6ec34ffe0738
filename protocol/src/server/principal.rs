//! [`Principal`]: whom a connection's credential names, so a routed call can tell its server who called
//! (`caller: {app_id, sub?, key?}` in the `server_request`). The driver sets it with the permissions at the
//! handshake; it never holds the credential itself.

use alloc::string::String;

/// Whom a credential names. Both parts are `None` on a server without authentication, and for verifiers that do
/// not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Principal {
    /// The `sub` claim of the token, when the connection authenticated with a token that has one.
    pub sub: Option<String>,
    /// The API key's non-secret name (`api-key:<index>`), when it authenticated with an API key.
    pub key: Option<String>,
}

impl Principal {
    /// The principal of a token with this `sub` claim.
    pub fn token(sub: impl Into<String>) -> Principal {
        Principal {
            sub: Some(sub.into()),
            key: None,
        }
    }

    /// The principal of the API key with this non-secret name.
    pub fn api_key(name: impl Into<String>) -> Principal {
        Principal {
            sub: None,
            key: Some(name.into()),
        }
    }
}
