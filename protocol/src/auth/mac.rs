//! HMAC-SHA256 and SHA-256, keyed without a fallible call: the one place the auth code touches the digest crates.

use hmac::Hmac;
use hmac::digest::{Digest, Key, KeyInit};
use sha2::Sha256;

/// HMAC-SHA256, as RustCrypto's `hmac` builds it.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// An HMAC-SHA256 instance keyed with `secret`, of any length.
///
/// RFC 2104 §2: a key longer than the hash's block is first hashed, then the key is zero-padded to one block. Doing
/// that here and using the fixed-size constructor gives exactly the MAC `new_from_slice` would, without a `Result`
/// that can never be `Err` (the known-answer tests cover short, block-sized and long secrets).
pub(crate) fn keyed(secret: &[u8]) -> HmacSha256 {
    let mut block = Key::<HmacSha256>::default();
    if secret.len() > block.len() {
        let digest = Sha256::digest(secret);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    <HmacSha256 as KeyInit>::new(&block)
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;

    /// RFC 4231 test cases 1 (20-byte key), 2 (short key) and 6 (131-byte key, hashed first).
    #[test]
    fn rfc4231_vectors() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, want) in cases {
            let tag = keyed(key).chain_update(data).finalize().into_bytes();
            let hex: alloc::string::String =
                tag.iter().map(|b| alloc::format!("{b:02x}")).collect();
            assert_eq!(hex, want);
        }
    }

    #[test]
    fn block_sized_key_is_used_as_is() {
        let key = [0x5a; 64];
        let ours = keyed(&key).chain_update(b"x").finalize().into_bytes();
        let theirs = <HmacSha256 as KeyInit>::new_from_slice(&key)
            .map(|m| m.chain_update(b"x").finalize().into_bytes());
        assert_eq!(Ok(ours), theirs);
    }

    #[test]
    fn sha256_known_answer() {
        let hex: alloc::string::String = sha256(b"abc")
            .iter()
            .map(|b| alloc::format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
