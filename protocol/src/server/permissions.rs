//! What a connection may do on which channels: [`Permissions`], set by the driver at the handshake (from the token)
//! and checked by the hub on every `subscribe`, `publish`, `serve` and `call`. A refusal is `FORBIDDEN`.
//!
//! Permissions are data, not closures, so the hub stays `Debug`, comparable and deterministic. A pattern is a channel
//! name whose `/`-separated segments may be `*` (exactly one segment) or, as the last segment, `**` (one or more
//! segments: the rest of the name). `**` anywhere else matches nothing. So `projects/*` matches `projects/p1` but not
//! `projects/p1/logs`; `projects/**` matches both but not `projects`; `**` matches every channel.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::principal::Principal;
use crate::time::Timestamp;
use crate::wire::ChannelName;

/// Something a connection does on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `subscribe` (and reading the channel's state with `get_state`).
    Subscribe,
    /// `publish`.
    Publish,
    /// `serve`: answer `call`s on the channel.
    Serve,
    /// `call` (and the project-stream dialect's `cancel`, which is a call).
    Call,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 4] = [
        Action::Subscribe,
        Action::Publish,
        Action::Serve,
        Action::Call,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The channel patterns a connection may act on, one list per [`Action`]. [`Default`] allows everything.
///
/// A pattern is a channel name whose `/`-separated segments may be `*` (exactly one segment) or, as the last
/// segment, `**` (one or more segments: the rest of the name); `**` anywhere else matches nothing. So `projects/*`
/// matches `projects/p1` but not `projects/p1/logs`; `projects/**` matches both but not `projects`; `**` matches
/// every channel.
///
/// A token's permissions may also carry the instant they lapse ([`with_expiry`](Permissions::with_expiry)): the
/// hub warns the connection ahead of it and closes it with 4401 at it, unless a `refresh` replaces them first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    patterns: Patterns,
    /// Whom the credential that granted them names.
    principal: Principal,
    /// When they lapse, on the driver's clock; `None`: never.
    expires_at: Option<Timestamp>,
}

/// The patterns of the four actions. Every connection of a server without authentication holds
/// [`Patterns::Everything`]: it costs them no allocation, and a pointer's room where the lists would take four
/// vectors'.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Patterns {
    /// `**` alone, for every action.
    Everything,
    /// `lists[action.index()]`.
    Listed(Arc<[Vec<String>; 4]>),
}

/// The pattern that matches every channel.
const EVERYTHING: &str = "**";

impl Patterns {
    fn new(lists: [Vec<String>; 4]) -> Patterns {
        if lists
            .iter()
            .all(|list| list.len() == 1 && list[0] == EVERYTHING)
        {
            Patterns::Everything
        } else {
            Patterns::Listed(Arc::new(lists))
        }
    }

    fn of(&self, action: Action) -> impl Iterator<Item = &str> {
        let (everything, listed): (&[&str], &[String]) = match self {
            Patterns::Everything => (&[EVERYTHING], &[]),
            Patterns::Listed(lists) => (&[], &lists[action.index()]),
        };
        everything
            .iter()
            .copied()
            .chain(listed.iter().map(String::as_str))
    }
}

impl Permissions {
    /// Every action on every channel (the default, for servers without authentication).
    pub fn allow_all() -> Permissions {
        Permissions {
            patterns: Patterns::Everything,
            principal: Principal::default(),
            expires_at: None,
        }
    }

    /// Nothing at all.
    pub fn deny_all() -> Permissions {
        Permissions {
            patterns: Patterns::Listed(Arc::new([const { Vec::new() }; 4])),
            principal: Principal::default(),
            expires_at: None,
        }
    }

    /// One pattern list per action (see [`Permissions`] for the pattern syntax).
    pub fn from_patterns(
        subscribe: Vec<String>,
        publish: Vec<String>,
        serve: Vec<String>,
        call: Vec<String>,
    ) -> Permissions {
        Permissions {
            patterns: Patterns::new([subscribe, publish, serve, call]),
            principal: Principal::default(),
            expires_at: None,
        }
    }

    /// These permissions, granted by a credential naming `principal` (a routed call tells its server).
    pub fn with_principal(mut self, principal: Principal) -> Permissions {
        self.principal = principal;
        self
    }

    /// Whom the credential that granted these permissions names.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// `self`, lapsing at `at` (a token's `exp` plus the verifier's leeway, on the same clock as the hub's `now`).
    pub fn with_expiry(mut self, at: Timestamp) -> Permissions {
        self.expires_at = Some(at);
        self
    }

    /// When they lapse; `None`: never.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }

    /// The patterns for one action.
    pub fn patterns(&self, action: Action) -> impl Iterator<Item = &str> {
        self.patterns.of(action)
    }

    /// Whether `action` on `channel` is allowed.
    pub fn allows(&self, action: Action, channel: &ChannelName) -> bool {
        self.patterns
            .of(action)
            .any(|p| pattern_matches(p, channel))
    }

    /// Whether `action` is allowed on every channel `pattern` can match: one granted pattern covers it (a
    /// pattern subscription never delivers a channel its grants do not allow).
    pub fn allows_pattern(&self, action: Action, pattern: &str) -> bool {
        self.patterns.of(action).any(|g| pattern_covers(g, pattern))
    }
}

impl Default for Permissions {
    fn default() -> Self {
        Permissions::allow_all()
    }
}

/// Whether `pattern` matches `channel`, segment by segment (syntax: [`Permissions`]).
pub fn pattern_matches(pattern: &str, channel: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut name = channel.split('/');
    loop {
        match (pat.next(), name.next()) {
            (None, None) => return true,
            (Some("**"), Some(_)) if pat.clone().next().is_none() => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(n)) if p == n => {}
            _ => return false,
        }
    }
}

/// Whether every channel `pattern` matches is matched by `grant` (both in the syntax of [`Permissions`]), segment by
/// segment: a literal covers only itself, `*` covers a literal or `*`, a trailing `**` covers whatever one or more
/// segments remain.
pub fn pattern_covers(grant: &str, pattern: &str) -> bool {
    let mut g = grant.split('/');
    let mut p = pattern.split('/');
    loop {
        match (g.next(), p.next()) {
            (None, None) => return true,
            (Some("**"), Some(_)) if g.clone().next().is_none() => return true,
            (Some(_), Some("**")) => return false,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b && a != "**" => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;
    use alloc::vec;

    #[test]
    fn pattern_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "a", true),
            ("**", "a/b/c", true),
            ("a", "a", true),
            ("a", "b", false),
            ("a", "a/b", false),
            ("a/b", "a", false),
            ("*", "a", true),
            ("*", "a/b", false),
            ("projects/*", "projects/p1", true),
            ("projects/*", "projects/p1/logs", false),
            ("projects/*", "projects", false),
            ("projects/**", "projects/p1", true),
            ("projects/**", "projects/p1/logs", true),
            ("projects/**", "projects", false),
            ("projects/**", "project/p1", false),
            ("*/logs", "p1/logs", true),
            ("*/logs", "p1/errs", false),
            ("**/logs", "p1/logs", false),
            ("a/**/c", "a/b/c", false),
            ("", "a", false),
        ];
        for &(pattern, channel, want) in cases {
            assert_eq!(
                pattern_matches(pattern, channel),
                want,
                "{pattern} vs {channel}"
            );
        }
    }

    #[test]
    fn covering_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "jobs/*", true),
            ("**", "**", true),
            ("jobs/**", "jobs/*", true),
            ("jobs/**", "jobs/**", true),
            ("jobs/**", "jobs/*/logs", true),
            ("jobs/**", "**", false),
            ("jobs/*", "jobs/*", true),
            ("jobs/*", "jobs/1", true),
            ("jobs/*", "jobs/**", false),
            ("jobs/1", "jobs/*", false),
            ("*/logs", "jobs/*", false),
            ("*/*", "jobs/*", true),
            ("jobs/*", "jobs/*/x", false),
            ("a/**/c", "a/*/c", false),
        ];
        for &(grant, pattern, want) in cases {
            assert_eq!(
                pattern_covers(grant, pattern),
                want,
                "{grant} covers {pattern}"
            );
        }
    }

    proptest::proptest! {
        /// Covering is sound: a channel the pattern matches is one the grant matches.
        #[test]
        fn a_covering_grant_matches_every_channel_the_pattern_matches(
            grant in "(a|b|\\*)(/(a|b|\\*)){0,2}(/\\*\\*)?",
            pattern in "(a|b|\\*)(/(a|b|\\*)){0,2}(/\\*\\*)?",
            channel in "(a|b)(/(a|b)){0,4}",
        ) {
            if pattern_covers(&grant, &pattern) && pattern_matches(&pattern, &channel) {
                proptest::prop_assert!(pattern_matches(&grant, &channel));
            }
        }
    }

    #[test]
    fn actions_are_checked_separately() {
        let p = Permissions::from_patterns(
            vec!["projects/**".to_owned()],
            vec!["projects/*/in".to_owned()],
            vec![],
            vec!["rpc/*".to_owned(), "projects/*".to_owned()],
        );
        let ch = |s: &str| ChannelName::new(s).unwrap();
        assert!(p.allows(Action::Subscribe, &ch("projects/p1/in")));
        assert!(p.allows(Action::Publish, &ch("projects/p1/in")));
        assert!(!p.allows(Action::Publish, &ch("projects/p1")));
        assert!(!p.allows(Action::Serve, &ch("projects/p1")));
        assert!(p.allows(Action::Call, &ch("rpc/x")));
        assert!(p.allows(Action::Call, &ch("projects/p1")));
        assert!(!p.allows(Action::Subscribe, &ch("rpc/x")));
        for action in Action::ALL {
            assert!(Permissions::allow_all().allows(action, &ch("any/thing")));
            assert!(!Permissions::deny_all().allows(action, &ch("any/thing")));
        }
        assert_eq!(Permissions::default(), Permissions::allow_all());
        assert_eq!(p.patterns(Action::Serve).count(), 0);
        let all = Permissions::from_patterns(
            vec![String::from("**")],
            vec![String::from("**")],
            vec![String::from("**")],
            vec![String::from("**")],
        );
        assert_eq!(all, Permissions::allow_all(), "one way to say everything");
        assert_eq!(
            Permissions::allow_all()
                .patterns(Action::Call)
                .collect::<Vec<_>>(),
            ["**"]
        );
    }
}
