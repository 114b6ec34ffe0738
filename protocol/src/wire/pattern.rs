//! [`ChannelPattern`]: a validated channel pattern for a pattern subscription (PROTOCOL §3.2). The syntax is the one
//! grants use (`server::pattern_matches`, which agrees with [`ChannelPattern::matches`] on every valid pattern): `/`-separated segments, `*` is exactly one
//! segment, a trailing `**` is one or more segments (the rest of the name). A subscription's pattern is held to
//! stricter rules than a grant's, since a typo in it would silently follow nothing: every segment is non-empty, `**`
//! only last, `*` only as a whole segment, the other characters those of a channel name, 1 to 255 bytes.

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::ops::Deref;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::names::{MAX_CHANNEL_BYTES, NameError};

/// A valid channel pattern. Cheap to clone (shared).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelPattern(Arc<str>);

/// One segment of a pattern, as the hub's index files it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternSegment<'a> {
    /// A literal segment: the channel's segment must equal it.
    Literal(&'a str),
    /// `*`: any one segment.
    One,
    /// `**` (last): one or more segments.
    Rest,
}

impl ChannelPattern {
    /// Checks the pattern rules.
    pub fn new(pattern: &str) -> Result<ChannelPattern, NameError> {
        validate_pattern(pattern)?;
        Ok(ChannelPattern(Arc::from(pattern)))
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = PatternSegment<'_>> + '_ {
        self.0.split('/').map(|s| match s {
            "*" => PatternSegment::One,
            "**" => PatternSegment::Rest,
            lit => PatternSegment::Literal(lit),
        })
    }

    /// The literal segments before the first wildcard, with their trailing `/` (`jobs/*/x` → `jobs/`); every
    /// matching channel starts with it.
    pub fn literal_prefix(&self) -> &str {
        let mut end = 0;
        for seg in self.0.split('/') {
            if seg == "*" || seg == "**" {
                return &self.0[..end];
            }
            end += seg.len() + 1;
        }
        &self.0
    }

    /// Whether `channel` matches.
    pub fn matches(&self, channel: &str) -> bool {
        let mut name = channel.split('/');
        for seg in self.segments() {
            match (seg, name.next()) {
                (PatternSegment::Rest, Some(_)) => return true,
                (PatternSegment::One, Some(_)) => {}
                (PatternSegment::Literal(lit), Some(n)) if lit == n => {}
                _ => return false,
            }
        }
        name.next().is_none()
    }
}

/// Checks a pattern without allocating.
pub fn validate_pattern(pattern: &str) -> Result<(), NameError> {
    if pattern.is_empty() {
        return Err(NameError::Empty);
    }
    if pattern.len() > MAX_CHANNEL_BYTES {
        return Err(NameError::TooLong {
            max: MAX_CHANNEL_BYTES,
        });
    }
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/' | b'@' | b'*')
    };
    if !pattern.bytes().all(allowed) {
        return Err(NameError::BadCharacter);
    }
    let mut segments = pattern.split('/').peekable();
    while let Some(seg) = segments.next() {
        if seg.is_empty() {
            return Err(NameError::EmptySegment);
        }
        if seg == "**" && segments.peek().is_some() {
            return Err(NameError::RestNotLast);
        }
        if seg.contains('*') && seg != "*" && seg != "**" {
            return Err(NameError::PartialWildcard);
        }
    }
    Ok(())
}

impl Deref for ChannelPattern {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ChannelPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChannelPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChannelPattern::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_rules() {
        for ok in ["a", "jobs/*", "projects/**", "**", "*", "a/*/c", "*/logs"] {
            assert!(ChannelPattern::new(ok).is_ok(), "{ok}");
        }
        let bad: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            ("a//b", NameError::EmptySegment),
            ("/a", NameError::EmptySegment),
            ("a/", NameError::EmptySegment),
            ("**/a", NameError::RestNotLast),
            ("a/**/b", NameError::RestNotLast),
            ("a*", NameError::PartialWildcard),
            ("***", NameError::PartialWildcard),
            ("a b", NameError::BadCharacter),
        ];
        for (pattern, want) in bad {
            assert_eq!(validate_pattern(pattern), Err(*want), "{pattern}");
        }
        assert_eq!(
            validate_pattern(&"x".repeat(256)),
            Err(NameError::TooLong { max: 255 })
        );
    }

    #[test]
    fn prefix_and_segments() {
        let p = |s: &str| ChannelPattern::new(s).unwrap();
        assert_eq!(p("jobs/*/x").literal_prefix(), "jobs/");
        assert_eq!(p("**").literal_prefix(), "");
        assert_eq!(p("a/b").literal_prefix(), "a/b");
        assert_eq!(
            p("a/*/**").segments().collect::<alloc::vec::Vec<_>>(),
            [
                PatternSegment::Literal("a"),
                PatternSegment::One,
                PatternSegment::Rest
            ]
        );
        assert!(p("jobs/*").matches("jobs/1"));
        assert!(!p("jobs/*").matches("jobs/1/x"));
    }
}
