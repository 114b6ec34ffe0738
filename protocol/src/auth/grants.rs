//! [`ChannelGrants`]: the channel patterns a credential may use, per action. Syntax only; the server matches.
//!
//! # Patterns
//!
//! A pattern is a channel name (PROTOCOL §3: 1 to 255 bytes of `A-Z a-z 0-9 _ - . : / @`, not starting or ending
//! with `/`) in which whole `/`-separated segments may be wildcards:
//!
//! - `*` as a whole segment matches exactly one segment: `projects/*` matches `projects/p1`, not `projects/p1/logs`;
//! - `**` as the whole **last** segment matches the rest of the name: `projects/**` matches `projects/p1/logs`;
//!   a pattern of just `**` matches every channel.
//!
//! A `*` anywhere else (`proj*`, `a/**/b`, `***`) is refused when the grants are built, so a typo fails at startup
//! or makes a token invalid instead of silently granting more or less than meant. The matching itself lives in the
//! server (`Permissions::from_patterns`), which receives [`ChannelGrants::into_parts`].
//!
//! # Spec syntax (`--api-key KEY:SPEC`)
//!
//! [`ChannelGrants::parse_spec`] reads a comma-separated list of `action=pattern` entries:
//!
//! ```text
//! spec   = entry *( "," entry )
//! entry  = action "=" pattern          ; spaces around entries and around "=" are ignored
//! action = "subscribe" / "publish" / "serve" / "call" / "all"
//! ```
//!
//! Repeat an action to give it several patterns; `all=P` gives `P` to all four actions. For example
//! `subscribe=projects/*,publish=projects/**,call=rpc/**`, or `all=**` for full access. Patterns cannot contain
//! `,` or `=`, so the list is unambiguous.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::wire::MAX_CHANNEL_BYTES;

/// Longest pattern, in bytes: the same as the longest channel name.
pub const MAX_PATTERN_BYTES: usize = MAX_CHANNEL_BYTES;

/// One of the four things a connection can do on a channel (PROTOCOL §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantAction {
    /// Receive a channel's events (`subscribe`, and `get_state`).
    Subscribe,
    /// Publish events to a channel.
    Publish,
    /// Answer `call`s on a channel.
    Serve,
    /// Send `call`s to a channel.
    Call,
}

impl GrantAction {
    /// The four actions, in the order of [`ChannelGrants::into_parts`].
    pub const ALL: [GrantAction; 4] = [
        GrantAction::Subscribe,
        GrantAction::Publish,
        GrantAction::Serve,
        GrantAction::Call,
    ];

    /// The action's name in specs and in a JWT's `channels` claim: `"subscribe"`, `"publish"`, `"serve"`, `"call"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantAction::Subscribe => "subscribe",
            GrantAction::Publish => "publish",
            GrantAction::Serve => "serve",
            GrantAction::Call => "call",
        }
    }

    /// The action named `name` (exact, lower case), if any.
    pub fn from_name(name: &str) -> Option<GrantAction> {
        GrantAction::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for GrantAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a valid channel pattern (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// Zero bytes long.
    #[error("must not be empty")]
    Empty,
    /// Over [`MAX_PATTERN_BYTES`].
    #[error("longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A character outside `A-Z a-z 0-9 _ - . : / @ *`.
    #[error("contains a character outside A-Z a-z 0-9 _ - . : / @ *")]
    BadCharacter,
    /// Starts or ends with `/`.
    #[error("must not start or end with '/'")]
    EdgeSlash,
    /// A `*` that is not a whole `*` or `**` segment, e.g. `proj*` or `***`.
    #[error("'*' must be a whole segment ('*' or '**')")]
    PartialWildcard,
    /// `**` before the last segment, e.g. `a/**/b`.
    #[error("'**' may only be the last segment")]
    InnerDoubleStar,
}

/// Checks a pattern's syntax without allocating (see the [module docs](self)).
pub fn validate_pattern(pattern: &str) -> Result<(), PatternError> {
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(PatternError::TooLong {
            max: MAX_PATTERN_BYTES,
        });
    }
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/' | b'@' | b'*')
    };
    if !pattern.bytes().all(allowed) {
        return Err(PatternError::BadCharacter);
    }
    if pattern.starts_with('/') || pattern.ends_with('/') {
        return Err(PatternError::EdgeSlash);
    }
    let mut segments = pattern.split('/').peekable();
    while let Some(segment) = segments.next() {
        let is_last = segments.peek().is_none();
        match segment {
            "*" => {}
            "**" if is_last => {}
            "**" => return Err(PatternError::InnerDoubleStar),
            s if s.contains('*') => return Err(PatternError::PartialWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// Why grants could not be built from patterns or a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantsError {
    /// A pattern is not valid.
    #[error("bad channel pattern {pattern:?}: {error}")]
    BadPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        error: PatternError,
    },
    /// A spec entry names an action other than `subscribe`, `publish`, `serve`, `call` or `all`.
    #[error("unknown action {0:?} (expected subscribe, publish, serve, call or all)")]
    UnknownAction(String),
    /// A spec entry is not of the form `action=pattern`.
    #[error("spec entry {0:?} is not of the form action=pattern")]
    NotAnEntry(String),
    /// The spec has no entries at all.
    #[error("the grants spec is empty")]
    EmptySpec,
}

/// The channel patterns a credential may use, one list per [`GrantAction`].
///
/// Every pattern in it has passed [`validate_pattern`]: the fields are private and every constructor checks.
/// Duplicate patterns within one action are dropped; order is otherwise kept. The default grants nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelGrants {
    subscribe: Vec<String>,
    publish: Vec<String>,
    serve: Vec<String>,
    call: Vec<String>,
}

impl ChannelGrants {
    /// No rights on any channel.
    pub fn none() -> Self {
        ChannelGrants::default()
    }

    /// Every action on every channel (`**`).
    pub fn all() -> Self {
        let every = || alloc::vec![String::from("**")];
        ChannelGrants {
            subscribe: every(),
            publish: every(),
            serve: every(),
            call: every(),
        }
    }

    /// Grants from four pattern lists, each checked.
    pub fn new(
        subscribe: Vec<String>,
        publish: Vec<String>,
        serve: Vec<String>,
        call: Vec<String>,
    ) -> Result<Self, GrantsError> {
        let mut grants = ChannelGrants::none();
        for (action, patterns) in GrantAction::ALL
            .into_iter()
            .zip([subscribe, publish, serve, call])
        {
            for pattern in patterns {
                grants.allow(action, &pattern)?;
            }
        }
        Ok(grants)
    }

    /// Grants from a spec such as `subscribe=projects/*,publish=projects/**` (syntax in the [module docs](self)).
    pub fn parse_spec(spec: &str) -> Result<Self, GrantsError> {
        if spec.trim().is_empty() {
            return Err(GrantsError::EmptySpec);
        }
        let mut grants = ChannelGrants::none();
        for entry in spec.split(',') {
            let entry = entry.trim();
            let (action, pattern) = entry
                .split_once('=')
                .ok_or_else(|| GrantsError::NotAnEntry(entry.to_string()))?;
            let (action, pattern) = (action.trim(), pattern.trim());
            if action.is_empty() || pattern.contains('=') {
                return Err(GrantsError::NotAnEntry(entry.to_string()));
            }
            if action == "all" {
                for a in GrantAction::ALL {
                    grants.allow(a, pattern)?;
                }
            } else {
                let a = GrantAction::from_name(action)
                    .ok_or_else(|| GrantsError::UnknownAction(action.to_string()))?;
                grants.allow(a, pattern)?;
            }
        }
        Ok(grants)
    }

    /// Adds `pattern` to `action`'s list (no-op if already there), after checking it.
    pub fn allow(&mut self, action: GrantAction, pattern: &str) -> Result<(), GrantsError> {
        validate_pattern(pattern).map_err(|error| GrantsError::BadPattern {
            pattern: pattern.to_string(),
            error,
        })?;
        let list = self.list_mut(action);
        if !list.iter().any(|p| p == pattern) {
            list.push(pattern.to_string());
        }
        Ok(())
    }

    /// `self` with `pattern` added to `action`'s list: [`allow`](Self::allow) for chaining.
    pub fn with(mut self, action: GrantAction, pattern: &str) -> Result<Self, GrantsError> {
        self.allow(action, pattern)?;
        Ok(self)
    }

    /// The patterns granted for `action`.
    pub fn patterns(&self, action: GrantAction) -> &[String] {
        match action {
            GrantAction::Subscribe => &self.subscribe,
            GrantAction::Publish => &self.publish,
            GrantAction::Serve => &self.serve,
            GrantAction::Call => &self.call,
        }
    }

    /// Patterns for subscribing (and reading state).
    pub fn subscribe(&self) -> &[String] {
        &self.subscribe
    }

    /// Patterns for publishing.
    pub fn publish(&self) -> &[String] {
        &self.publish
    }

    /// Patterns for serving calls.
    pub fn serve(&self) -> &[String] {
        &self.serve
    }

    /// Patterns for making calls.
    pub fn call(&self) -> &[String] {
        &self.call
    }

    /// True when no action has any pattern.
    pub fn is_empty(&self) -> bool {
        GrantAction::ALL
            .into_iter()
            .all(|a| self.patterns(a).is_empty())
    }

    /// The four lists `(subscribe, publish, serve, call)`, in the argument order of the server's
    /// `Permissions::from_patterns`.
    pub fn into_parts(self) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
        (self.subscribe, self.publish, self.serve, self.call)
    }

    fn list_mut(&mut self, action: GrantAction) -> &mut Vec<String> {
        match action {
            GrantAction::Subscribe => &mut self.subscribe,
            GrantAction::Publish => &mut self.publish,
            GrantAction::Serve => &mut self.serve,
            GrantAction::Call => &mut self.call,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn valid_patterns() {
        for ok in [
            "**",
            "*",
            "projects/p1",
            "projects/*",
            "projects/**",
            "*/logs",
            "*/*/**",
            "user@x:1.2_3-4/*",
            "a//b",
            &"x".repeat(255),
        ] {
            assert_eq!(validate_pattern(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn invalid_patterns() {
        let cases: &[(&str, PatternError)] = &[
            ("", PatternError::Empty),
            ("a b", PatternError::BadCharacter),
            ("a,b", PatternError::BadCharacter),
            ("a=b", PatternError::BadCharacter),
            ("é", PatternError::BadCharacter),
            ("/a", PatternError::EdgeSlash),
            ("a/", PatternError::EdgeSlash),
            ("/", PatternError::EdgeSlash),
            ("proj*", PatternError::PartialWildcard),
            ("*x/a", PatternError::PartialWildcard),
            ("***", PatternError::PartialWildcard),
            ("a/***", PatternError::PartialWildcard),
            ("**/a", PatternError::InnerDoubleStar),
            ("a/**/b", PatternError::InnerDoubleStar),
        ];
        for (pattern, want) in cases {
            assert_eq!(validate_pattern(pattern), Err(*want), "{pattern:?}");
        }
        assert_eq!(
            validate_pattern(&"x".repeat(256)),
            Err(PatternError::TooLong { max: 255 })
        );
    }

    #[test]
    fn every_valid_channel_name_is_a_valid_pattern() {
        for name in ["a", "projects/p1", "a/b/c", "x:y@z"] {
            assert!(crate::wire::validate_channel(name).is_ok());
            assert_eq!(validate_pattern(name), Ok(()));
        }
    }

    #[test]
    fn all_grants_double_star_everywhere_and_none_is_empty() {
        let all = ChannelGrants::all();
        for action in GrantAction::ALL {
            assert_eq!(all.patterns(action), ["**"]);
        }
        assert!(!all.is_empty());
        assert!(ChannelGrants::none().is_empty());
        assert_eq!(ChannelGrants::none(), ChannelGrants::default());
    }

    #[test]
    fn new_checks_every_list_and_dedups() {
        let g = ChannelGrants::new(s(&["a/*", "a/*", "b"]), s(&["c/**"]), vec![], s(&["rpc/*"]))
            .unwrap();
        assert_eq!(g.subscribe(), ["a/*", "b"]);
        assert_eq!(g.publish(), ["c/**"]);
        assert!(g.serve().is_empty());
        assert_eq!(g.call(), ["rpc/*"]);
        let (sub, publ, serve, call) = g.into_parts();
        assert_eq!(
            (sub, publ, serve, call),
            (s(&["a/*", "b"]), s(&["c/**"]), vec![], s(&["rpc/*"]))
        );

        let err = ChannelGrants::new(vec![], vec![], s(&["ok", "a/**/b"]), vec![]).unwrap_err();
        assert_eq!(
            err,
            GrantsError::BadPattern {
                pattern: "a/**/b".into(),
                error: PatternError::InnerDoubleStar
            }
        );
    }

    #[test]
    fn parse_spec_examples() {
        let g = ChannelGrants::parse_spec("subscribe=projects/*,publish=projects/**").unwrap();
        assert_eq!(g.subscribe(), ["projects/*"]);
        assert_eq!(g.publish(), ["projects/**"]);
        assert!(g.serve().is_empty() && g.call().is_empty());

        let g =
            ChannelGrants::parse_spec(" subscribe = a/* , subscribe=b/*,call=rpc/x:y ").unwrap();
        assert_eq!(g.subscribe(), ["a/*", "b/*"]);
        assert_eq!(g.call(), ["rpc/x:y"]);

        assert_eq!(
            ChannelGrants::parse_spec("all=**").unwrap(),
            ChannelGrants::all()
        );
        let g = ChannelGrants::parse_spec("all=pub/*,serve=svc/**").unwrap();
        assert_eq!(g.serve(), ["pub/*", "svc/**"]);
        assert_eq!(g.call(), ["pub/*"]);
    }

    #[test]
    fn parse_spec_refusals() {
        assert_eq!(ChannelGrants::parse_spec(""), Err(GrantsError::EmptySpec));
        assert_eq!(ChannelGrants::parse_spec("  "), Err(GrantsError::EmptySpec));
        assert_eq!(
            ChannelGrants::parse_spec("subscribe"),
            Err(GrantsError::NotAnEntry("subscribe".into()))
        );
        assert_eq!(
            ChannelGrants::parse_spec("subscribe=a,"),
            Err(GrantsError::NotAnEntry("".into()))
        );
        assert_eq!(
            ChannelGrants::parse_spec("=a"),
            Err(GrantsError::NotAnEntry("=a".into()))
        );
        assert_eq!(
            ChannelGrants::parse_spec("subscribe=a=b"),
            Err(GrantsError::NotAnEntry("subscribe=a=b".into()))
        );
        assert_eq!(
            ChannelGrants::parse_spec("Subscribe=a"),
            Err(GrantsError::UnknownAction("Subscribe".into()))
        );
        assert_eq!(
            ChannelGrants::parse_spec("read=a"),
            Err(GrantsError::UnknownAction("read".into()))
        );
        assert_eq!(
            ChannelGrants::parse_spec("publish="),
            Err(GrantsError::BadPattern {
                pattern: "".into(),
                error: PatternError::Empty
            })
        );
        assert_eq!(
            ChannelGrants::parse_spec("publish=a/**/b"),
            Err(GrantsError::BadPattern {
                pattern: "a/**/b".into(),
                error: PatternError::InnerDoubleStar
            })
        );
    }

    #[test]
    fn with_and_allow() {
        let g = ChannelGrants::none()
            .with(GrantAction::Serve, "svc/*")
            .unwrap()
            .with(GrantAction::Serve, "svc/*")
            .unwrap();
        assert_eq!(g.serve(), ["svc/*"]);
        assert!(
            ChannelGrants::none()
                .with(GrantAction::Call, "bad*")
                .is_err()
        );
        for a in GrantAction::ALL {
            assert_eq!(GrantAction::from_name(a.as_str()), Some(a));
            assert_eq!(a.to_string(), a.as_str());
        }
        assert_eq!(GrantAction::from_name("all"), None);
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            "[A-Za-z0-9_.:@-]{1,8}".prop_map(|s| s),
        ]
    }

    proptest! {
        /// Specs built from valid patterns parse back to exactly the grants they describe.
        #[test]
        fn spec_round_trip(
            entries in proptest::collection::vec(
                (0usize..4, proptest::collection::vec(segment(), 1..4), any::<bool>()),
                1..8,
            )
        ) {
            let mut expected = ChannelGrants::none();
            let mut spec = Vec::new();
            for (action, segments, double_star) in entries {
                let mut pattern = segments.join("/");
                if double_star {
                    pattern.push_str("/**");
                }
                let action = GrantAction::ALL[action];
                expected.allow(action, &pattern).unwrap();
                spec.push(alloc::format!("{action}={pattern}"));
            }
            prop_assert_eq!(ChannelGrants::parse_spec(&spec.join(",")).unwrap(), expected);
        }

        /// Arbitrary text never panics the parser, and whatever parses holds only valid patterns (arbitrary text
        /// almost never parses: `whatever_parses_holds_only_valid_patterns` reaches that check on purpose).
        #[test]
        fn parse_spec_never_panics(spec in ".{0,64}") {
            if let Ok(g) = ChannelGrants::parse_spec(&spec) {
                for a in GrantAction::ALL {
                    for p in g.patterns(a) {
                        prop_assert_eq!(validate_pattern(p), Ok(()));
                    }
                }
            }
        }
    }

    /// Spec-shaped text: entries of a known or unknown action, `=` and a pattern (mostly a valid one, else drawn
    /// from pattern characters or from characters that break the syntax), with stray spaces. Most of it parses.
    fn spec_shaped() -> impl Strategy<Value = String> {
        let action = prop_oneof![
            9 => "(subscribe|publish|serve|call|all)",
            1 => "[a-z]{1,6}",
        ];
        let valid_pattern = (proptest::collection::vec(segment(), 1..4), any::<bool>()).prop_map(
            |(segments, double_star)| {
                let mut p = segments.join("/");
                if double_star {
                    p.push_str("/**");
                }
                p
            },
        );
        let pattern = prop_oneof![
            12 => valid_pattern,
            1 => "[A-Za-z0-9_.:@*/-]{1,12}",
            1 => "[A-Za-z0-9 =,*/]{0,6}",
        ];
        proptest::collection::vec((" ?", action, " ?", pattern), 1..5).prop_map(|entries| {
            entries
                .into_iter()
                .map(|(pad, a, pad2, p)| alloc::format!("{pad}{a}{pad2}={p}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// Whatever parses holds only valid patterns, under the action it was granted to. Spec-shaped input reaches
    /// that check in at least a quarter of the cases (counted, so a strategy that drifts to garbage fails here).
    #[test]
    fn whatever_parses_holds_only_valid_patterns() {
        let cases = core::cell::Cell::new(0u32);
        let parsed = core::cell::Cell::new(0u32);
        proptest::test_runner::TestRunner::default()
            .run(&spec_shaped(), |spec| {
                cases.set(cases.get() + 1);
                if let Ok(g) = ChannelGrants::parse_spec(&spec) {
                    parsed.set(parsed.get() + 1);
                    let mut held = 0;
                    for a in GrantAction::ALL {
                        for p in g.patterns(a) {
                            prop_assert_eq!(validate_pattern(p), Ok(()));
                            prop_assert!(spec.contains(p.as_str()), "{} not in {}", p, spec);
                            held += 1;
                        }
                    }
                    prop_assert!(held > 0, "{} parsed to no grant", spec);
                }
                Ok(())
            })
            .unwrap();
        assert!(
            parsed.get() * 4 >= cases.get(),
            "only {} of {} spec-shaped inputs parsed",
            parsed.get(),
            cases.get()
        );
    }
}
