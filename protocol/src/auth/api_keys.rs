//! [`ApiKeys`]: static keys from configuration, each with its [`ChannelGrants`], checked in constant time.
//!
//! Only the SHA-256 digest of each key is kept. A presented key is hashed once and its digest compared with
//! **every** stored digest, in full, with [`subtle`]'s constant-time equality and no early exit, so the time taken
//! depends neither on how many leading bytes of a guess are right, nor on which key (if any) matched, nor on the
//! stored keys' lengths (all digests are 32 bytes). It does depend on the presented key's length, which the
//! presenter knows anyway, and on the number of configured keys, which is fixed.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::grants::{ChannelGrants, GrantsError};
use super::mac::sha256;

/// Why a key could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The key is empty.
    #[error("an API key must not be empty")]
    Empty,
    /// The same key was already added (it would be ambiguous which grants it carries).
    #[error("API key #{existing} is the same key")]
    Duplicate {
        /// The index of the earlier, identical key.
        existing: usize,
    },
    /// A `KEY:SPEC` entry has no `:`.
    #[error("an --api-key entry must be KEY:SPEC, e.g. mykey:subscribe=projects/*")]
    MissingSpec,
    /// The grants spec after `:` is invalid.
    #[error("bad grants for API key: {0}")]
    Grants(#[from] GrantsError),
}

/// One configured key: the digest of its bytes and what it grants.
#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    grants: ChannelGrants,
}

/// Static API keys, each with its grants. Keys are identified by their index (insertion order) in logs and
/// [`Identity`](super::Identity) subjects, never by their text.
#[derive(Clone, Default)]
pub struct ApiKeys {
    entries: Vec<Entry>,
}

impl fmt::Debug for ApiKeys {
    /// Only the number of keys: neither keys nor their digests are printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// No keys.
    pub fn new() -> Self {
        ApiKeys::default()
    }

    /// Adds `key` with `grants`; returns its index. Refuses an empty key or one already added.
    pub fn insert(&mut self, key: &str, grants: ChannelGrants) -> Result<usize, ApiKeyError> {
        if key.is_empty() {
            return Err(ApiKeyError::Empty);
        }
        let digest = sha256(key.as_bytes());
        // Configuration time, not a secret-dependent path an attacker can time: an ordinary search is fine.
        if let Some(existing) = self.entries.iter().position(|e| e.digest == digest) {
            return Err(ApiKeyError::Duplicate { existing });
        }
        self.entries.push(Entry { digest, grants });
        Ok(self.entries.len() - 1)
    }

    /// Adds a key from a CLI entry `KEY:SPEC` (e.g. `s3cr3t:subscribe=projects/*,publish=projects/**`); returns its
    /// index. The key is everything before the **first** `:`, so a key cannot contain `:`; the spec syntax is
    /// [`ChannelGrants::parse_spec`]'s.
    pub fn insert_spec(&mut self, entry: &str) -> Result<usize, ApiKeyError> {
        let (key, spec) = entry.split_once(':').ok_or(ApiKeyError::MissingSpec)?;
        let grants = ChannelGrants::parse_spec(spec)?;
        self.insert(key, grants)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The grants of the key equal to `presented`, if any, compared in constant time (see the
    /// [module docs](self)).
    pub fn verify(&self, presented: &str) -> Option<&ChannelGrants> {
        self.verify_indexed(presented).map(|(_, grants)| grants)
    }

    /// Like [`verify`](Self::verify), with the matching key's index.
    pub fn verify_indexed(&self, presented: &str) -> Option<(usize, &ChannelGrants)> {
        let digest = sha256(presented.as_bytes());
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, entry) in self.entries.iter().enumerate() {
            let equal = entry.digest.ct_eq(&digest);
            // Indices fit in u64 on every target Rust supports.
            index = u64::conditional_select(&index, &(i as u64), equal);
            found |= equal;
        }
        if bool::from(found) {
            let i = usize::try_from(index).ok()?;
            self.entries.get(i).map(|e| (i, &e.grants))
        } else {
            None
        }
    }

    /// A stable, non-secret name for the key at `index`, used as an [`Identity`](super::Identity) subject.
    pub fn subject(index: usize) -> String {
        let mut s = String::from("api-key:");
        s.push_str(&index.to_string());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::GrantAction;
    use alloc::format;
    use proptest::prelude::*;

    fn grants(spec: &str) -> ChannelGrants {
        ChannelGrants::parse_spec(spec).unwrap()
    }

    #[test]
    fn finds_each_key_and_only_exact_matches() {
        let mut keys = ApiKeys::new();
        assert!(keys.is_empty());
        assert_eq!(keys.insert("alpha-key", grants("subscribe=a/*")), Ok(0));
        assert_eq!(keys.insert("beta-key", grants("publish=b/**")), Ok(1));
        assert_eq!(keys.insert_spec("gamma:all=**"), Ok(2));
        assert_eq!(keys.len(), 3);

        assert_eq!(keys.verify("alpha-key"), Some(&grants("subscribe=a/*")));
        assert_eq!(keys.verify_indexed("beta-key").map(|(i, _)| i), Some(1));
        assert_eq!(keys.verify("gamma"), Some(&ChannelGrants::all()));

        for wrong in [
            "",
            "alpha",
            "alpha-key ",
            " alpha-key",
            "alpha-keyx",
            "Alpha-key",
            "gamma:all=**",
            "beta-kez",
        ] {
            assert_eq!(keys.verify(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn the_last_key_is_found_like_the_first() {
        // No early exit: a match at any position is found, and every entry is visited (the loop has no break).
        let mut keys = ApiKeys::new();
        for i in 0..50 {
            keys.insert(&format!("key-{i}"), grants(&format!("subscribe=k{i}")))
                .unwrap();
        }
        for i in [0, 1, 25, 48, 49] {
            let (index, g) = keys.verify_indexed(&format!("key-{i}")).unwrap();
            assert_eq!(index, i);
            assert_eq!(g.patterns(GrantAction::Subscribe), [format!("k{i}")]);
        }
    }

    #[test]
    fn insert_refusals() {
        let mut keys = ApiKeys::new();
        assert_eq!(
            keys.insert("", ChannelGrants::all()),
            Err(ApiKeyError::Empty)
        );
        keys.insert("k", ChannelGrants::all()).unwrap();
        assert_eq!(
            keys.insert("k", ChannelGrants::none()),
            Err(ApiKeyError::Duplicate { existing: 0 })
        );
        assert_eq!(keys.insert_spec("no-colon"), Err(ApiKeyError::MissingSpec));
        assert_eq!(keys.insert_spec(":all=**"), Err(ApiKeyError::Empty));
        assert_eq!(
            keys.insert_spec("k2:"),
            Err(ApiKeyError::Grants(GrantsError::EmptySpec))
        );
        assert!(matches!(
            keys.insert_spec("k2:publish=a/**/b"),
            Err(ApiKeyError::Grants(GrantsError::BadPattern { .. }))
        ));
        // The key ends at the first ':'; patterns may contain ':'.
        assert_eq!(keys.insert_spec("k3:subscribe=user:1/*"), Ok(1));
        assert_eq!(keys.verify("k3"), Some(&grants("subscribe=user:1/*")));
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn debug_reveals_no_key() {
        let mut keys = ApiKeys::new();
        keys.insert("hunter2-secret", ChannelGrants::all()).unwrap();
        let debug = format!("{keys:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("len: 1"), "{debug}");
        assert_eq!(ApiKeys::subject(3), "api-key:3");
    }

    proptest! {
        /// Any key added is found with its own grants, and any other string is not.
        #[test]
        fn verify_agrees_with_plain_equality(
            stored in proptest::collection::btree_set(".{1,16}", 0..6),
            presented in ".{0,16}",
        ) {
            let mut keys = ApiKeys::new();
            for (i, k) in stored.iter().enumerate() {
                keys.insert(k, grants(&format!("subscribe=k{i}"))).unwrap();
            }
            let expected = stored.iter().position(|k| *k == presented);
            prop_assert_eq!(keys.verify_indexed(&presented).map(|(i, _)| i), expected);
            for (i, k) in stored.iter().enumerate() {
                prop_assert_eq!(keys.verify_indexed(k).map(|(j, _)| j), Some(i));
            }
        }
    }
}
