//! Why authentication failed: [`AuthError`] tells the client nothing, [`AuthFailure`] tells the server's logs why.
//!
//! Faults split three ways here: the peer presented a bad credential ([`AuthError`], answered with HTTP 401), the
//! operator configured a bad secret ([`SecretError`], at startup), and a bad grant pattern
//! ([`GrantsError`](super::GrantsError), at startup or inside a token, where it becomes an [`AuthError`]).

use core::fmt;

/// A credential was refused. Its [`Display`](fmt::Display) is the same text for every reason, so the answer to a
/// client says nothing an attacker could use (which part was wrong, whether a key exists, how close a guess was).
/// [`AuthError::reason`] gives the reason for the server's own logs and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{}", AuthError::PUBLIC_MESSAGE)]
#[non_exhaustive]
pub struct AuthError {
    reason: AuthFailure,
}

impl AuthError {
    /// The text every [`AuthError`] displays, whatever the reason.
    pub const PUBLIC_MESSAGE: &'static str = "invalid or expired token";

    pub(crate) const fn new(reason: AuthFailure) -> Self {
        AuthError { reason }
    }

    /// Why the credential was refused. For server logs and tests only: never send it to the client.
    pub const fn reason(&self) -> AuthFailure {
        self.reason
    }
}

impl From<AuthFailure> for AuthError {
    fn from(reason: AuthFailure) -> Self {
        AuthError::new(reason)
    }
}

/// The internal reason behind an [`AuthError`]. Log it; never show it to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailure {
    /// Authentication is required and no token (or an empty one) was presented.
    MissingToken,
    /// The token is longer than [`MAX_TOKEN_BYTES`](super::jwt::MAX_TOKEN_BYTES); it was not decoded at all.
    TooLong,
    /// Not three base64url parts, a part that is not canonical unpadded base64url, a header or claims set that is
    /// not a JSON object (or repeats a key the verifier reads), or a header with a `crit` parameter.
    Malformed,
    /// The header's `alg` is missing, not a string, or anything but exactly `"HS256"` (`none` included).
    BadAlgorithm,
    /// The signature does not match the header and claims under the configured secret.
    BadSignature,
    /// `now` is at or past `exp` plus the leeway.
    Expired,
    /// `now` plus the leeway is before `nbf`.
    NotYetValid,
    /// A required claim is absent (or `null`).
    MissingClaim {
        /// The claim's name, e.g. `"exp"`.
        claim: &'static str,
    },
    /// A claim has the wrong type or an invalid value (e.g. a negative `exp`, a bad channel pattern).
    InvalidClaim {
        /// The claim's name, e.g. `"channels"`.
        claim: &'static str,
    },
    /// The token's `iss` is not the issuer the key requires.
    WrongIssuer,
    /// The token has an `aud` that does not name the audience the key requires (or the key requires none).
    WrongAudience,
    /// The token is not a JWT this server can check and matches no API key.
    UnknownApiKey,
}

impl AuthFailure {
    /// A short stable name for logs and metrics labels, e.g. `"expired"`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            AuthFailure::MissingToken => "missing_token",
            AuthFailure::TooLong => "too_long",
            AuthFailure::Malformed => "malformed",
            AuthFailure::BadAlgorithm => "bad_algorithm",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::MissingClaim { .. } => "missing_claim",
            AuthFailure::InvalidClaim { .. } => "invalid_claim",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::UnknownApiKey => "unknown_api_key",
        }
    }
}

impl fmt::Display for AuthFailure {
    /// The [`as_str`](AuthFailure::as_str) name, with the claim for claim failures (`missing_claim: exp`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::MissingClaim { claim } | AuthFailure::InvalidClaim { claim } => {
                write!(f, "{}: {claim}", self.as_str())
            }
            other => f.write_str(other.as_str()),
        }
    }
}

/// A secret given in configuration cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Zero bytes long: anyone could compute the MAC.
    #[error("the secret must not be empty")]
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn every_reason_displays_the_same_public_text() {
        let reasons = [
            AuthFailure::MissingToken,
            AuthFailure::TooLong,
            AuthFailure::Malformed,
            AuthFailure::BadAlgorithm,
            AuthFailure::BadSignature,
            AuthFailure::Expired,
            AuthFailure::NotYetValid,
            AuthFailure::MissingClaim { claim: "exp" },
            AuthFailure::InvalidClaim { claim: "sub" },
            AuthFailure::WrongIssuer,
            AuthFailure::WrongAudience,
            AuthFailure::UnknownApiKey,
        ];
        let mut names = std::collections::BTreeSet::new();
        for reason in reasons {
            let err = AuthError::from(reason);
            assert_eq!(err.to_string(), "invalid or expired token");
            assert_eq!(err.reason(), reason);
            names.insert(reason.as_str());
        }
        // Each reason has its own log name (the two claim reasons differ by kind, not claim).
        assert_eq!(names.len(), reasons.len());
        assert_eq!(
            AuthFailure::MissingClaim { claim: "exp" }.to_string(),
            "missing_claim: exp"
        );
        assert_eq!(AuthFailure::Expired.to_string(), "expired");
    }
}
