//! [`Trust`]: which limits a caller is held to. The rate limits protect the hub from its clients, not from its own
//! backends, so a caller that proves it is a backend gets the trusted limits (by default none) and everyone else
//! keeps the protective ones.
//!
//! Who is trusted (PROTOCOL appendix, "Limits by trust"):
//! - with authentication on, a caller whose valid credential (token or API key) grants publish on at least one
//!   channel: publishing is what a backend does, and whoever may publish can already fill the hub's history, so a
//!   rate limit on it protects nothing an operator did not grant;
//! - with authentication off, a caller from a loopback address: only processes on the same machine reach it, and
//!   the operator runs those.
//!
//! Everyone else is [`Trust::Untrusted`]: anonymous callers, callers whose credential was refused, subscribe-only
//! credentials, and with authentication off every caller from another machine or from an unknown address (a
//! transport without addresses). Trust changes the rate limits only; message size limits and the slow-consumer
//! rule apply to every connection.
//!
//! The runtime supplies the facts ([`CallerFacts`]); this file alone decides.

use super::permissions::{Action, Permissions};

/// Which limits a caller is held to. Trusted: with authentication on, a valid credential granting publish on at
/// least one channel; with authentication off, a loopback address. Everyone else is untrusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trust {
    /// The protective limits (`rate_per_sec`/`rate_burst`, and the HTTP front's per-address limit).
    Untrusted,
    /// The trusted limits (`trusted_rate_per_sec`/`trusted_rate_burst`; by default none).
    Trusted,
}

/// What the runtime knows about a caller when it opens a connection or answers a request.
#[derive(Debug, Clone, Copy)]
pub struct CallerFacts<'a> {
    /// Whether the server requires a credential (a token verifier is configured).
    pub auth_required: bool,
    /// The permissions of the credential the caller presented, when the verifier accepted it.
    pub credential: Option<&'a Permissions>,
    /// Whether the caller's address is a loopback address (`false` when the address is unknown).
    pub loopback: bool,
}

impl Trust {
    /// The trust the facts earn (the rules: [`Trust`]).
    pub fn of(facts: &CallerFacts<'_>) -> Trust {
        let trusted = if facts.auth_required {
            facts.credential.is_some_and(may_publish_somewhere)
        } else {
            facts.loopback
        };
        if trusted {
            Trust::Trusted
        } else {
            Trust::Untrusted
        }
    }

    /// Whether this is [`Trust::Trusted`].
    pub fn is_trusted(self) -> bool {
        self == Trust::Trusted
    }
}

/// Whether `permissions` grant publish on at least one channel (a pattern that can match something).
fn may_publish_somewhere(permissions: &Permissions) -> bool {
    permissions.patterns(Action::Publish).any(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    fn grants(subscribe: &[&str], publish: &[&str]) -> Permissions {
        let own = |p: &[&str]| p.iter().map(|s| String::from(*s)).collect::<Vec<_>>();
        Permissions::from_patterns(own(subscribe), own(publish), vec![], vec![])
    }

    /// Every combination of the facts, and the trust it earns.
    #[test]
    fn table_of_callers() {
        let publisher = grants(&[], &["jobs/*"]);
        let everything = Permissions::allow_all();
        let reader = grants(&["jobs/*"], &[]);
        let empty_pattern = grants(&["**"], &[""]);
        let nothing = Permissions::deny_all();
        type Case<'a> = (bool, Option<&'a Permissions>, bool, Trust, &'static str);
        let cases: &[Case<'_>] = &[
            (true, Some(&publisher), false, Trust::Trusted, "publisher"),
            (
                true,
                Some(&publisher),
                true,
                Trust::Trusted,
                "local publisher",
            ),
            (true, Some(&everything), false, Trust::Trusted, "admin key"),
            (true, Some(&reader), false, Trust::Untrusted, "subscriber"),
            (
                true,
                Some(&reader),
                true,
                Trust::Untrusted,
                "local subscriber",
            ),
            (
                true,
                Some(&empty_pattern),
                false,
                Trust::Untrusted,
                "no channel",
            ),
            (true, Some(&nothing), true, Trust::Untrusted, "no grants"),
            (true, None, false, Trust::Untrusted, "anonymous"),
            (true, None, true, Trust::Untrusted, "local anonymous"),
            (false, None, true, Trust::Trusted, "no auth, loopback"),
            (false, None, false, Trust::Untrusted, "no auth, remote"),
            (
                false,
                Some(&everything),
                false,
                Trust::Untrusted,
                "no auth, remote",
            ),
        ];
        for &(auth_required, credential, loopback, want, why) in cases {
            let facts = CallerFacts {
                auth_required,
                credential,
                loopback,
            };
            assert_eq!(Trust::of(&facts), want, "{why}");
            assert_eq!(Trust::of(&facts).is_trusted(), want == Trust::Trusted);
        }
    }
}
