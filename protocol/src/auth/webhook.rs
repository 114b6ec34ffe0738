//! Webhook signatures: the `X-Switchboard-Signature` header, made by [`sign_webhook`] and checked by
//! [`WebhookVerifier`].
//!
//! # Format
//!
//! ```text
//! X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">[,v1=<hex>…]
//! ```
//!
//! `t` is when the request was signed, in decimal; each `v1` is 64 hex digits: the HMAC-SHA256, under one webhook
//! secret, of the `t` text exactly as written, a `.`, and the raw request body. While a secret is being rotated the
//! sender signs with both secrets and sends one `v1` per secret ([`sign_webhook_rotating`]); a receiver accepts the
//! request if **any** `v1` matches **any** secret it holds. Entries with other names (a future `v2`) are ignored.
//!
//! # What [`WebhookVerifier::verify`] checks
//!
//! 1. the header is at most [`MAX_SIGNATURE_HEADER_BYTES`] and is comma-separated `name=value` entries with
//!    exactly one `t` (decimal digits) and `v1` values of 64 hex digits \[[`Malformed`](WebhookError::Malformed)\],
//!    with at least one `v1` \[[`NoSignature`](WebhookError::NoSignature)\];
//! 2. some `v1` matches: every candidate is compared with every secret's MAC in constant time, without stopping
//!    at the first match \[[`BadSignature`](WebhookError::BadSignature)\];
//! 3. only then the clock: `t` at most the tolerance (default [`DEFAULT_TOLERANCE_SECS`]) before or after now.
//!    Exactly the tolerance is accepted; one second more is refused
//!    \[[`TooOld`](WebhookError::TooOld), [`FromTheFuture`](WebhookError::FromTheFuture)\]. A stale error thus
//!    always means an authentic request replayed or delayed, never a forgery.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use hmac::Mac;
use subtle::ConstantTimeEq;

use super::error::SecretError;
use super::mac::{HmacSha256, keyed};

/// The header's name.
pub const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";

/// Default allowed distance between `t` and now, either way, in seconds (5 minutes).
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Longest signature header [`WebhookVerifier::verify`] parses, in bytes (room for dozens of `v1` entries).
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 4096;

/// Why a webhook signature was refused. All are the sender's (or an attacker's) fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The header is longer than [`MAX_SIGNATURE_HEADER_BYTES`].
    #[error("signature header longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The header does not follow the format.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// The header has no `v1` entry.
    #[error("signature header has no v1 signature")]
    NoSignature,
    /// No `v1` entry matches the body under any secret.
    #[error("no signature matches the body")]
    BadSignature,
    /// Authentic, but signed longer ago than the tolerance.
    #[error("signature timestamp is {age_secs} s old, beyond the tolerance")]
    TooOld {
        /// How long ago `t` was.
        age_secs: u64,
    },
    /// Authentic, but signed further in the future than the tolerance.
    #[error("signature timestamp is {ahead_secs} s in the future, beyond the tolerance")]
    FromTheFuture {
        /// How far ahead `t` is.
        ahead_secs: u64,
    },
}

/// The `X-Switchboard-Signature` value for `body` sent at `t` (unix seconds), signed with `secret`.
pub fn sign_webhook(secret: &[u8], t: u64, body: &[u8]) -> String {
    sign_webhook_rotating(&[secret], t, body)
}

/// The header value with one `v1` per secret, in order: what a sender uses while rotating secrets.
pub fn sign_webhook_rotating(secrets: &[&[u8]], t: u64, body: &[u8]) -> String {
    let t_text = alloc::format!("{t}");
    let mut header = alloc::format!("t={t_text}");
    for secret in secrets {
        header.push_str(",v1=");
        push_hex(&mut header, &tag(&keyed(secret), &t_text, body));
    }
    header
}

/// HMAC of `"<t>.<body>"`.
fn tag(mac: &HmacSha256, t_text: &str, body: &[u8]) -> [u8; 32] {
    mac.clone()
        .chain_update(t_text.as_bytes())
        .chain_update(b".")
        .chain_update(body)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks `X-Switchboard-Signature` headers against one or more secrets (see the [module docs](self)).
#[derive(Clone)]
pub struct WebhookVerifier {
    macs: Vec<HmacSha256>,
    tolerance_secs: u64,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secrets", &self.macs.len())
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl WebhookVerifier {
    /// A verifier for `secret` with the default tolerance. Refuses an empty secret.
    pub fn new(secret: &[u8]) -> Result<Self, SecretError> {
        WebhookVerifier {
            macs: Vec::new(),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
        .with_secret(secret)
    }

    /// `self` also accepting signatures made with `secret` (the receiver's side of a rotation).
    pub fn with_secret(mut self, secret: &[u8]) -> Result<Self, SecretError> {
        if secret.is_empty() {
            return Err(SecretError::Empty);
        }
        self.macs.push(keyed(secret));
        Ok(self)
    }

    /// `self` allowing `secs` between `t` and now, either way.
    pub fn with_tolerance(mut self, secs: u64) -> Self {
        self.tolerance_secs = secs;
        self
    }

    /// The allowed distance between `t` and now, in seconds.
    pub fn tolerance_secs(&self) -> u64 {
        self.tolerance_secs
    }

    /// Checks `header` (the `X-Switchboard-Signature` value) for `body` at `now_unix_secs`.
    pub fn verify(
        &self,
        header: &str,
        body: &[u8],
        now_unix_secs: u64,
    ) -> Result<(), WebhookError> {
        let parsed = ParsedHeader::parse(header)?;
        let mut matched = subtle::Choice::from(0);
        for mac in &self.macs {
            let expected = tag(mac, parsed.t_text, body);
            for candidate in &parsed.v1 {
                matched |= expected.ct_eq(candidate);
            }
        }
        if !bool::from(matched) {
            return Err(WebhookError::BadSignature);
        }
        if parsed.t > now_unix_secs {
            let ahead_secs = parsed.t - now_unix_secs;
            if ahead_secs > self.tolerance_secs {
                return Err(WebhookError::FromTheFuture { ahead_secs });
            }
        } else {
            let age_secs = now_unix_secs - parsed.t;
            if age_secs > self.tolerance_secs {
                return Err(WebhookError::TooOld { age_secs });
            }
        }
        Ok(())
    }
}

/// A header split into its timestamp and candidate signatures.
struct ParsedHeader<'a> {
    t: u64,
    t_text: &'a str,
    v1: Vec<[u8; 32]>,
}

impl<'a> ParsedHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, WebhookError> {
        if header.len() > MAX_SIGNATURE_HEADER_BYTES {
            return Err(WebhookError::TooLong {
                max: MAX_SIGNATURE_HEADER_BYTES,
            });
        }
        let mut t = None;
        let mut v1 = Vec::new();
        for entry in header.split(',') {
            let (name, value) = entry
                .trim_matches([' ', '\t'])
                .split_once('=')
                .ok_or(WebhookError::Malformed("an entry is not name=value"))?;
            match name {
                "t" => {
                    if t.is_some() {
                        return Err(WebhookError::Malformed("t appears more than once"));
                    }
                    t = Some((parse_unix_secs(value)?, value));
                }
                "v1" => v1.push(
                    decode_hex_32(value)
                        .ok_or(WebhookError::Malformed("v1 is not 64 hex digits"))?,
                ),
                "" => return Err(WebhookError::Malformed("an entry has no name")),
                _ => {}
            }
        }
        let (t, t_text) = t.ok_or(WebhookError::Malformed("no t timestamp"))?;
        if v1.is_empty() {
            return Err(WebhookError::NoSignature);
        }
        Ok(ParsedHeader { t, t_text, v1 })
    }
}

/// Decimal digits only (no sign, no spaces), fitting in `u64`.
fn parse_unix_secs(text: &str) -> Result<u64, WebhookError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebhookError::Malformed("t is not decimal unix seconds"));
    }
    text.parse()
        .map_err(|_| WebhookError::Malformed("t is not decimal unix seconds"))
}

/// Appends lower-case hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// 64 hex digits (either case) as 32 bytes.
fn decode_hex_32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const OLD_SECRET: &[u8] = b"whsec_old_secret";
    const BODY: &[u8] = br#"{"channel":"projects/p1","offset":7,"event":{"x":1}}"#;
    const T: u64 = 1_700_000_000;
    /// python: hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    const PY_V1: &str = "892e3aa2316dd55b8c7624721601eb4536e2cff85d67da03abe1691a9aa9e883";
    /// python: the same under OLD_SECRET.
    const PY_V1_OLD: &str = "4dc3d0f8dab56a27d41b65cffacf416b09988d95d3771b592fbadb799df57157";
    /// python: hmac.new(SECRET, b"1700000000.", hashlib.sha256).hexdigest() (empty body)
    const PY_V1_EMPTY: &str = "316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727";

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::new(SECRET).unwrap()
    }

    #[test]
    fn sign_matches_python() {
        assert_eq!(sign_webhook(SECRET, T, BODY), format!("t={T},v1={PY_V1}"));
        assert_eq!(
            sign_webhook(SECRET, T, b""),
            format!("t={T},v1={PY_V1_EMPTY}")
        );
        assert_eq!(
            sign_webhook_rotating(&[SECRET, OLD_SECRET], T, BODY),
            format!("t={T},v1={PY_V1},v1={PY_V1_OLD}")
        );
    }

    #[test]
    fn python_signature_verifies() {
        let header = format!("t={T},v1={PY_V1}");
        assert_eq!(verifier().verify(&header, BODY, T), Ok(()));
        assert_eq!(
            verifier().verify(
                &header
                    .to_uppercase()
                    .replace("T=", "t=")
                    .replace("V1=", "v1="),
                BODY,
                T
            ),
            Ok(())
        );
        let empty = format!("t={T},v1={PY_V1_EMPTY}");
        assert_eq!(verifier().verify(&empty, b"", T), Ok(()));
    }

    #[test]
    fn any_signature_entry_may_match_for_rotation() {
        let wrong = "00".repeat(32);
        // The sender rotates: old and new signatures side by side, in either order, among unknown schemes.
        for header in [
            format!("t={T},v1={PY_V1_OLD},v1={PY_V1}"),
            format!("t={T},v1={PY_V1},v1={PY_V1_OLD}"),
            format!("v1={wrong}, t={T}, v0=legacy, v1={PY_V1}"),
        ] {
            assert_eq!(verifier().verify(&header, BODY, T), Ok(()), "{header}");
        }
        // The receiver rotates: it holds both secrets, the sender signs with only the old one.
        let both = verifier().with_secret(OLD_SECRET).unwrap();
        assert_eq!(
            both.verify(&format!("t={T},v1={PY_V1_OLD}"), BODY, T),
            Ok(())
        );
        assert_eq!(
            verifier().verify(&format!("t={T},v1={PY_V1_OLD}"), BODY, T),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn bad_signatures() {
        let header = format!("t={T},v1={PY_V1}");
        assert_eq!(
            verifier().verify(&header, b"{}", T),
            Err(WebhookError::BadSignature)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = format!("t={},v1={PY_V1}", T + 1);
        assert_eq!(
            verifier().verify(&moved, BODY, T),
            Err(WebhookError::BadSignature)
        );
        // So is its exact text: a leading zero is a different message.
        let padded = format!("t=0{T},v1={PY_V1}");
        assert_eq!(
            verifier().verify(&padded, BODY, T),
            Err(WebhookError::BadSignature)
        );
        let other = WebhookVerifier::new(b"another").unwrap();
        assert_eq!(
            other.verify(&header, BODY, T),
            Err(WebhookError::BadSignature)
        );
        // Every single flipped hex digit.
        for i in 0..64 {
            let mut sig = PY_V1.as_bytes().to_vec();
            sig[i] = if sig[i] == b'0' { b'1' } else { b'0' };
            let header = format!("t={T},v1={}", core::str::from_utf8(&sig).unwrap());
            assert_eq!(
                verifier().verify(&header, BODY, T),
                Err(WebhookError::BadSignature)
            );
        }
    }

    #[test]
    fn tolerance_edges() {
        let header = sign_webhook(SECRET, T, BODY);
        let v = verifier();
        assert_eq!(v.tolerance_secs(), 300);
        assert_eq!(v.verify(&header, BODY, T + 300), Ok(()));
        assert_eq!(
            v.verify(&header, BODY, T + 301),
            Err(WebhookError::TooOld { age_secs: 301 })
        );
        assert_eq!(v.verify(&header, BODY, T - 300), Ok(()));
        assert_eq!(
            v.verify(&header, BODY, T - 301),
            Err(WebhookError::FromTheFuture { ahead_secs: 301 })
        );
        assert_eq!(
            v.verify(&header, BODY, 0),
            Err(WebhookError::FromTheFuture { ahead_secs: T })
        );
        assert_eq!(
            v.verify(&header, BODY, u64::MAX),
            Err(WebhookError::TooOld {
                age_secs: u64::MAX - T
            })
        );
        let strict = verifier().with_tolerance(0);
        assert_eq!(strict.verify(&header, BODY, T), Ok(()));
        assert_eq!(
            strict.verify(&header, BODY, T + 1),
            Err(WebhookError::TooOld { age_secs: 1 })
        );
        // A forged, stale header is a bad signature, not a stale one.
        let forged = format!("t={},v1={}", T - 10_000, "ab".repeat(32));
        assert_eq!(v.verify(&forged, BODY, T), Err(WebhookError::BadSignature));
    }

    #[test]
    fn malformed_headers() {
        let v1 = format!("v1={PY_V1}");
        let cases = [
            String::new(),
            "garbage".to_string(),
            v1.clone(),
            format!("t=,{v1}"),
            format!("t=-5,{v1}"),
            format!("t=+5,{v1}"),
            format!("t= 5,{v1}"),
            format!("t=1.5,{v1}"),
            format!("t=18446744073709551616,{v1}"),
            format!("t={T},t={T},{v1}"),
            format!("t={T},{v1},"),
            format!("t={T},,{v1}"),
            format!("t={T},={v1}"),
            format!("t={T},v1={}", &PY_V1[..63]),
            format!("t={T},v1={PY_V1}0"),
            format!("t={T},v1={}g", &PY_V1[..63]),
            format!("t={T},v1="),
            format!("t={T};{v1}"),
        ];
        for header in cases {
            assert!(
                matches!(
                    verifier().verify(&header, BODY, T),
                    Err(WebhookError::Malformed(_))
                ),
                "{header:?}: {:?}",
                verifier().verify(&header, BODY, T)
            );
        }
        assert_eq!(
            verifier().verify(&format!("t={T}"), BODY, T),
            Err(WebhookError::NoSignature)
        );
        assert_eq!(
            verifier().verify(&format!("t={T},v0=abc"), BODY, T),
            Err(WebhookError::NoSignature)
        );
        let long = format!("t={T},{v1},v2={}", "x".repeat(MAX_SIGNATURE_HEADER_BYTES));
        assert_eq!(
            verifier().verify(&long, BODY, T),
            Err(WebhookError::TooLong {
                max: MAX_SIGNATURE_HEADER_BYTES
            })
        );
    }

    #[test]
    fn secrets_and_debug() {
        assert_eq!(WebhookVerifier::new(b"").unwrap_err(), SecretError::Empty);
        assert_eq!(verifier().with_secret(b"").unwrap_err(), SecretError::Empty);
        let debug = format!("{:?}", verifier());
        assert!(!debug.contains("whsec"), "{debug}");
        assert!(debug.contains("secrets: 1"), "{debug}");
        assert_eq!(SIGNATURE_HEADER, "X-Switchboard-Signature");
    }

    proptest! {
        /// Whatever is signed verifies at the same instant, and not with a changed body.
        #[test]
        fn sign_then_verify(
            secret in proptest::collection::vec(any::<u8>(), 1..80),
            t in any::<u64>(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let v = WebhookVerifier::new(&secret).unwrap();
            let header = sign_webhook(&secret, t, &body);
            prop_assert_eq!(v.verify(&header, &body, t), Ok(()));
            let mut changed = body.clone();
            changed.push(0);
            prop_assert_eq!(v.verify(&header, &changed, t), Err(WebhookError::BadSignature));
        }

        /// Arbitrary headers never panic and are never accepted.
        #[test]
        fn verify_never_panics(header in ".{0,200}", now in any::<u64>()) {
            prop_assert!(verifier().verify(&header, BODY, now).is_err());
        }

        /// Header-shaped noise reaches every parsing branch; still no panic, still refused.
        #[test]
        fn verify_never_panics_on_header_shaped_noise(
            header in "(t=[0-9]{0,21}|v1=[0-9a-fA-Fg]{0,66}|v0=[a-z]{0,4}|=?|[ ,]){0,8}",
            now in any::<u64>(),
        ) {
            prop_assert!(verifier().verify(&header, BODY, now).is_err());
        }
    }
}
