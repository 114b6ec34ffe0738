//! Seedable randomness: [`Rng`] is xoshiro256** seeded through SplitMix64.
//!
//! The core never draws OS randomness. Every machine takes a seed from its config, so a run is reproducible from
//! its seed (the simulation replays failures this way). Drivers that want unpredictable ids seed from the OS.

use core::time::Duration;
use uuid::Uuid;

/// A small, fast, seedable PRNG (xoshiro256**). Not cryptographic: use it for jitter, ids and load spreading, never
/// for secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for word in &mut s {
            *word = splitmix64(&mut sm);
        }
        // xoshiro's state must not be all zero; SplitMix64 never yields four zeros in a row, but be explicit.
        if s == [0; 4] {
            s[0] = 0x9E37_79B9_7F4A_7C15;
        }
        Rng { s }
    }

    /// A child generator with an independent stream, e.g. one per connection.
    pub fn fork(&mut self) -> Rng {
        Rng::from_seed(self.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Fills `dest` with random bytes.
    pub fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// A uniform value in `0..=max` (Lemire's nearly-divisionless method, unbiased).
    pub fn below_inclusive(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        let range = max + 1;
        let mut m = u128::from(self.next_u64()) * u128::from(range);
        let mut low = m as u64;
        if low < range {
            let threshold = range.wrapping_neg() % range;
            while low < threshold {
                m = u128::from(self.next_u64()) * u128::from(range);
                low = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// A uniform value in `[lo, hi]` (inclusive; `lo` when `hi < lo`).
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below_inclusive(hi - lo)
    }

    /// A uniform duration in `[lo, hi]` at microsecond resolution.
    pub fn duration_between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_us = duration_micros(lo);
        let hi_us = duration_micros(hi);
        Duration::from_micros(self.range_inclusive(lo_us, hi_us))
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A random (version 4) UUID built from this generator's bytes.
    pub fn uuid_v4(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// A duration in whole microseconds, saturating at `u64::MAX`.
pub(crate) fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::{prop_assert, proptest};

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::from_seed(42);
        let mut b = Rng::from_seed(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::from_seed(1).next_u64(), Rng::from_seed(2).next_u64());
    }

    /// xoshiro256** reference output for state [1, 2, 3, 4] (from the authors' C code).
    #[test]
    fn xoshiro_reference_vector() {
        let mut r = Rng { s: [1, 2, 3, 4] };
        let got: [u64; 4] = [r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()];
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn uuid_is_version_4_and_formats() {
        let mut r = Rng::from_seed(7);
        let id = r.uuid_v4();
        assert_eq!(id.get_version_num(), 4);
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert_ne!(r.uuid_v4(), id);
    }

    #[test]
    fn below_inclusive_covers_small_range() {
        let mut r = Rng::from_seed(3);
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[r.below_inclusive(3) as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    proptest! {
        #[test]
        fn range_inclusive_stays_in_bounds(seed: u64, lo: u64, span in 0u64..1_000_000) {
            let hi = lo.saturating_add(span);
            let mut r = Rng::from_seed(seed);
            for _ in 0..16 {
                let v = r.range_inclusive(lo, hi);
                prop_assert!(v >= lo && v <= hi);
            }
        }

        #[test]
        fn next_f64_in_unit_interval(seed: u64) {
            let mut r = Rng::from_seed(seed);
            for _ in 0..16 {
                let v = r.next_f64();
                prop_assert!((0.0..1.0).contains(&v));
            }
        }
    }
}
