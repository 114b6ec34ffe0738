//! Validated names on the wire: [`MessageId`] (1 to 128 bytes) and [`ChannelName`] (PROTOCOL §3, minus the
//! reserved names of [`super::reserved`]).

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::ops::Deref;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::reserved::is_reserved_channel;

/// Longest `message_id`, in bytes.
pub const MAX_MESSAGE_ID_BYTES: usize = 128;
/// Longest channel name, in bytes.
pub const MAX_CHANNEL_BYTES: usize = 255;

/// A message id: 1 to 128 bytes. Responses carry their request's id; the server makes UUIDv4 ids for what it starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(String);

/// Why a string is not a valid [`MessageId`] or [`ChannelName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Zero bytes long.
    #[error("must not be empty")]
    Empty,
    /// Over the byte limit.
    #[error("longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A character outside `A-Z a-z 0-9 _ - . : / @`.
    #[error("contains a character outside A-Z a-z 0-9 _ - . : / @")]
    BadCharacter,
    /// Starts or ends with `/`.
    #[error("must not start or end with '/'")]
    EdgeSlash,
    /// One of the channel-payload dialect's control channels (`subscription`, `error`), which carry no events.
    #[error("is reserved: `subscription` and `error` carry the /ws dialect's control messages")]
    Reserved,
    /// Holds a control character (an [`IdempotencyKey`](super::IdempotencyKey) must fit an HTTP header).
    #[error("must not contain control characters")]
    ControlCharacter,
    /// A pattern with an empty segment (`a//b`, a leading or trailing `/`).
    #[error("has an empty segment")]
    EmptySegment,
    /// A pattern with `**` anywhere but as its last segment.
    #[error("has `**` before its last segment")]
    RestNotLast,
    /// A pattern with `*` inside a segment (`a*`): a wildcard is a whole segment.
    #[error("has `*` inside a segment (a wildcard is a whole segment)")]
    PartialWildcard,
}

impl MessageId {
    /// Checks the length rule.
    pub fn new(id: impl Into<String>) -> Result<MessageId, NameError> {
        let id = id.into();
        match id.len() {
            0 => Err(NameError::Empty),
            n if n > MAX_MESSAGE_ID_BYTES => Err(NameError::TooLong {
                max: MAX_MESSAGE_ID_BYTES,
            }),
            _ => Ok(MessageId(id)),
        }
    }

    /// A UUIDv4 id from the given generator (ids the server and client start).
    pub fn random(rng: &mut crate::rng::Rng) -> MessageId {
        let mut buf = uuid::Uuid::encode_buffer();
        MessageId(String::from(
            rng.uuid_v4().hyphenated().encode_lower(&mut buf),
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned text.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for MessageId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        MessageId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A channel name (PROTOCOL §3): 1 to 255 bytes of `A-Z a-z 0-9 _ - . : / @`, not starting or ending with `/`, and
/// not a reserved name (`subscription`, `error`).
///
/// Cheap to clone (shared), since the hub hands the same name to history, subscribers and frames.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    /// Checks the naming rule.
    pub fn new(name: &str) -> Result<ChannelName, NameError> {
        validate_channel(name)?;
        Ok(ChannelName(Arc::from(name)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a channel name without allocating.
pub fn validate_channel(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_CHANNEL_BYTES {
        return Err(NameError::TooLong {
            max: MAX_CHANNEL_BYTES,
        });
    }
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/' | b'@');
    if !name.bytes().all(allowed) {
        return Err(NameError::BadCharacter);
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(NameError::EdgeSlash);
    }
    if is_reserved_channel(name) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

impl Deref for ChannelName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

// Names compare, order and hash as their text, so maps keyed by names can be searched by text (a prefix range).
impl core::borrow::Borrow<str> for ChannelName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ChannelName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChannelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <alloc::borrow::Cow<'de, str>>::deserialize(d)?;
        ChannelName::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn channel_rules() {
        for ok in [
            "a",
            "projects/p1",
            "user@x:1.2_3-4",
            "a/b/c",
            &"x".repeat(255),
        ] {
            assert!(ChannelName::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate_channel(""), Err(NameError::Empty));
        assert_eq!(
            validate_channel(&"x".repeat(256)),
            Err(NameError::TooLong { max: 255 })
        );
        assert_eq!(validate_channel("a b"), Err(NameError::BadCharacter));
        assert_eq!(validate_channel("é"), Err(NameError::BadCharacter));
        assert_eq!(validate_channel("/a"), Err(NameError::EdgeSlash));
        assert_eq!(validate_channel("a/"), Err(NameError::EdgeSlash));
        assert_eq!(validate_channel("error"), Err(NameError::Reserved));
        assert_eq!(validate_channel("subscription"), Err(NameError::Reserved));
        assert!(ChannelName::new("chat/error").is_ok());
        assert!(serde_json::from_str::<ChannelName>(r#""error""#).is_err());
    }

    #[test]
    fn message_id_rules() {
        assert!(MessageId::new("x").is_ok());
        assert!(MessageId::new("x".repeat(128)).is_ok());
        assert_eq!(MessageId::new(""), Err(NameError::Empty));
        assert_eq!(
            MessageId::new("x".repeat(129)),
            Err(NameError::TooLong { max: 128 })
        );
        let mut rng = crate::rng::Rng::from_seed(1);
        let id = MessageId::random(&mut rng);
        assert_eq!(id.len(), 36);
        assert_eq!(id.to_string(), id.as_str());
    }
}
