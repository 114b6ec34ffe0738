//! The idempotency keys `pub` sends, so a publish sent again after a lost answer lands once.

use switchboard_protocol::rng::Rng;
use switchboard_protocol::wire::{IdempotencyKey, MessageId};

/// A random idempotency key, from the process's randomness.
pub fn random_key() -> IdempotencyKey {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = std::collections::hash_map::RandomState::new().hash_one(nanos);
    let id = MessageId::random(&mut Rng::from_seed(seed));
    IdempotencyKey::new(id.into_string()).expect("a UUID is a valid key")
}
