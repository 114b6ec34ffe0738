//! The driver's map of open connections, hashed cheaply: `ConnId`s are handed out by the hub, never chosen by a
//! peer, so they need no hash that resists collision attacks, and the map is looked up once per delivery (SipHash
//! was a visible share of a fan-out's instructions).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use switchboard_protocol::server::ConnId;

/// A multiplicative hash (as rustc's FxHash) of the id's `u64`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnIdHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }
}

/// Open connections by id.
pub(crate) type ConnMap<V> = HashMap<ConnId, V, BuildHasherDefault<ConnIdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_spread_over_the_buckets() {
        let build = BuildHasherDefault::<ConnIdHasher>::default();
        let mut low_bits = std::collections::HashSet::new();
        let mut top_bits = std::collections::HashSet::new();
        for n in 0..1024u64 {
            let hash = build.hash_one(n);
            low_bits.insert(hash & 1023);
            top_bits.insert(hash >> 57);
        }
        assert!(low_bits.len() > 600, "{} distinct buckets", low_bits.len());
        assert_eq!(top_bits.len(), 128, "every control byte in use");
    }
}
