//! [`IdempotencyKey`]: what makes a retried publish the same publish (PROTOCOL §2.2 `publish`, REST
//! `Idempotency-Key`): 1 to 128 bytes, compared byte for byte, scoped to one channel.

use alloc::string::String;
use core::fmt;
use core::ops::Deref;
use serde::{Serialize, Serializer};

use super::names::NameError;

/// Longest `idempotency_key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// A publish's idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_BYTES`] bytes, no control characters (so the same key
/// fits an HTTP header and a JSON field alike).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks the length and character rules.
    pub fn new(key: impl Into<String>) -> Result<IdempotencyKey, NameError> {
        let key = key.into();
        match key.len() {
            0 => Err(NameError::Empty),
            n if n > MAX_IDEMPOTENCY_KEY_BYTES => Err(NameError::TooLong {
                max: MAX_IDEMPOTENCY_KEY_BYTES,
            }),
            _ if key.chars().any(char::is_control) => Err(NameError::ControlCharacter),
            _ => Ok(IdempotencyKey(key)),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for IdempotencyKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for IdempotencyKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_characters() {
        assert_eq!(IdempotencyKey::new(""), Err(NameError::Empty));
        assert!(IdempotencyKey::new("k".repeat(128)).is_ok());
        assert_eq!(
            IdempotencyKey::new("k".repeat(129)),
            Err(NameError::TooLong { max: 128 })
        );
        assert_eq!(
            IdempotencyKey::new("a\nb"),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(IdempotencyKey::new("job-7/é").unwrap().as_str(), "job-7/é");
    }
}
