//! The driver's map of open connections, hashed cheaply: `ConnId`s are handed out by the hub, never chosen by a
//! peer, so they need no hash that resists collision attacks, and the map is looked up once per delivery (SipHash
//! was a visible share of a fan-out's instructions).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use switchboard_protocol::server::ConnId;

/// The id's `u64` through a 64-bit finalizer (MurmurHash3's `fmix64`): every bit of the id reaches every bit of
/// the hash. A bare multiplication (FxHash) is not enough here: the table takes its bucket from the hash's low
/// bits, a product's low bits depend only on the factor's low bits, and a `ConnId` keeps its slot index in the
/// high 32 bits and its generation in the low ones, so every connection of one generation fell into one bucket
/// and each lookup probed a run as long as the table (a fan-out to 10,000 subscribers spent most of its time
/// there).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnIdHasher(u64);

impl Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
}

/// Open connections by id.
pub(crate) type ConnMap<V> = HashMap<ConnId, V, BuildHasherDefault<ConnIdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Ids as the hub hands them out (slot index in the high half, generation in the low one) and plain
    /// consecutive numbers both spread over the buckets (the low bits) and the control bytes (the top 7 bits).
    #[test]
    fn connection_ids_spread_over_the_buckets() {
        let build = BuildHasherDefault::<ConnIdHasher>::default();
        /// A shape of ids: its name, and the `i`th id of it.
        type Shape = (&'static str, fn(u64) -> u64);
        let shapes: [Shape; 3] = [
            ("slots of generation 1", |i| (i << 32) | 1),
            ("one slot's generations", |i| (7 << 32) | i),
            ("consecutive", |i| i),
        ];
        for (shape, id) in shapes {
            let mut low_bits = std::collections::HashSet::new();
            let mut top_bits = std::collections::HashSet::new();
            for i in 0..1024u64 {
                let hash = build.hash_one(id(i));
                low_bits.insert(hash & 1023);
                top_bits.insert(hash >> 57);
            }
            // 1,024 ids into 1,024 buckets at random fill about 63 % of them.
            assert!(
                low_bits.len() > 600,
                "{shape}: {} distinct buckets",
                low_bits.len()
            );
            assert_eq!(top_bits.len(), 128, "{shape}: every control byte in use");
        }
    }
}
