//! HS256 JSON Web Tokens (RFC 7519 with RFC 7515's compact form): [`Hs256Key`] verifies and mints them.
//!
//! # What [`Hs256Key::verify`] accepts
//!
//! In this order, stopping at the first failure (the [`AuthFailure`] in brackets):
//!
//! 1. at most [`MAX_TOKEN_BYTES`], checked before any decoding \[`TooLong`\];
//! 2. exactly three parts separated by `.`, each canonical unpadded base64url \[`Malformed`\];
//! 3. a header that is a JSON object with no repeated `alg`, `typ` or `crit` key, whose `typ`, if present, is a
//!    string, and which has no `crit` (this verifier understands no extensions, so RFC 7515 §4.1.11 says refuse)
//!    \[`Malformed`\];
//! 4. `alg` exactly `"HS256"`: `none`, `HS384`, `RS256`, `hs256`, a missing or non-string `alg` are all refused
//!    before the signature is looked at \[`BadAlgorithm`\];
//! 5. an HMAC-SHA256 signature over `header.payload`, compared in constant time \[`BadSignature`\]. Nothing in the
//!    claims is read before this passes;
//! 6. claims that are a JSON object without repeated registered claims \[`Malformed`\], with
//!    - `sub`: string, **required** (it names the connection's owner in logs) \[`MissingClaim`/`InvalidClaim`\];
//!    - `exp`: NumericDate, **required**: a token that never expires cannot be revoked, so it is refused;
//!    - `nbf`, `iat`: NumericDate, optional (`iat` is informational and not checked against the clock);
//!    - `iss`: string, optional; must equal the issuer the key requires, if it requires one \[`WrongIssuer`\];
//!    - `aud`: string or array of strings, optional; if the key requires an audience, `aud` must name it; if it
//!      requires none, a token that names any audience is refused (RFC 7519 §4.1.3) \[`WrongAudience`\];
//!    - `channels`: `{"subscribe":[…],"publish":[…],"serve":[…],"call":[…]}` of channel patterns, each list
//!      optional; absent means no channel rights; other keys are ignored (rights added by a later version grant
//!      nothing here); a bad pattern refuses the token \[`InvalidClaim`\];
//!
//!    A NumericDate is a non-negative JSON number of seconds; a fractional `exp` is rounded down and a fractional
//!    `nbf` up (the stricter way), `iat` down;
//! 7. the clock, with a leeway of [`DEFAULT_LEEWAY_SECS`] unless [configured](Hs256Key::with_leeway):
//!    valid while `now < exp + leeway` (so at exactly `exp + leeway` the token has expired) \[`Expired`\] and once
//!    `now + leeway >= nbf` (so at exactly `nbf - leeway` it is valid) \[`NotYetValid`\].
//!
//! Nothing here panics, whatever the input.
//!
//! [`AuthFailure`]: super::AuthFailure
//! [`TooLong`]: super::AuthFailure::TooLong
//! [`Malformed`]: super::AuthFailure::Malformed
//! [`BadAlgorithm`]: super::AuthFailure::BadAlgorithm
//! [`BadSignature`]: super::AuthFailure::BadSignature
//! [`MissingClaim`]: super::AuthFailure::MissingClaim
//! [`InvalidClaim`]: super::AuthFailure::InvalidClaim
//! [`WrongIssuer`]: super::AuthFailure::WrongIssuer
//! [`WrongAudience`]: super::AuthFailure::WrongAudience
//! [`Expired`]: super::AuthFailure::Expired
//! [`NotYetValid`]: super::AuthFailure::NotYetValid

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{AuthError, AuthFailure, SecretError};
use super::grants::{ChannelGrants, GrantAction};
use super::mac::{HmacSha256, keyed};

/// Longest token [`Hs256Key::verify`] will look at, in bytes (8 KiB). Longer tokens are refused before decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Default clock-skew allowance on `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Shortest secret RFC 7518 §3.2 allows for HS256 (256 bits). Shorter ones work but are guessable offline from
/// any one token; see [`Hs256Key::is_short`].
pub const RECOMMENDED_MIN_SECRET_BYTES: usize = 32;

/// The only header [`Hs256Key::sign`] writes.
const SIGNED_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The claims of a verified token, or of one to mint.
///
/// Build one with [`Claims::new`] and set the optional fields directly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// `sub`: who the token is for.
    pub sub: String,
    /// `exp`: unix seconds at which the token expires.
    pub exp: u64,
    /// `nbf`: unix seconds before which the token is not valid.
    pub nbf: Option<u64>,
    /// `iat`: unix seconds at which the token was issued.
    pub iat: Option<u64>,
    /// `iss`: who issued the token.
    pub iss: Option<String>,
    /// `aud`: who the token is meant for; empty when the token names no audience.
    pub aud: Vec<String>,
    /// `channels`: what the bearer may do on which channels.
    pub channels: ChannelGrants,
}

impl Claims {
    /// Claims for `sub` expiring at `exp` (unix seconds), with no channel rights and nothing else set.
    pub fn new(sub: impl Into<String>, exp: u64) -> Self {
        Claims {
            sub: sub.into(),
            exp,
            nbf: None,
            iat: None,
            iss: None,
            aud: Vec::new(),
            channels: ChannelGrants::none(),
        }
    }

    /// `self` with these channel rights.
    pub fn with_channels(mut self, channels: ChannelGrants) -> Self {
        self.channels = channels;
        self
    }

    /// The claims as a JSON object, keys in sorted order (so the bytes do not depend on serde_json's features).
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        match self.aud.as_slice() {
            [] => {}
            [one] => {
                map.insert("aud".into(), Value::String(one.clone()));
            }
            many => {
                map.insert(
                    "aud".into(),
                    Value::Array(many.iter().cloned().map(Value::String).collect()),
                );
            }
        }
        if !self.channels.is_empty() {
            let mut channels = Map::new();
            // Sorted by name: call, publish, serve, subscribe.
            for action in [
                GrantAction::Call,
                GrantAction::Publish,
                GrantAction::Serve,
                GrantAction::Subscribe,
            ] {
                let patterns = self.channels.patterns(action);
                if !patterns.is_empty() {
                    channels.insert(
                        action.as_str().into(),
                        Value::Array(patterns.iter().cloned().map(Value::String).collect()),
                    );
                }
            }
            map.insert("channels".into(), Value::Object(channels));
        }
        map.insert("exp".into(), self.exp.into());
        if let Some(iat) = self.iat {
            map.insert("iat".into(), iat.into());
        }
        if let Some(iss) = &self.iss {
            map.insert("iss".into(), Value::String(iss.clone()));
        }
        if let Some(nbf) = self.nbf {
            map.insert("nbf".into(), nbf.into());
        }
        map.insert("sub".into(), Value::String(self.sub.clone()));
        Value::Object(map)
    }
}

/// An HS256 secret with the rules tokens signed by it must meet: verifies tokens and mints them.
///
/// The secret is kept only as HMAC state; [`Debug`](fmt::Debug) prints none of it.
#[derive(Clone)]
pub struct Hs256Key {
    mac: HmacSha256,
    secret_len: usize,
    leeway_secs: u64,
    issuer: Option<String>,
    audience: Option<String>,
}

impl fmt::Debug for Hs256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hs256Key")
            .field("secret", &"<redacted>")
            .field("leeway_secs", &self.leeway_secs)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Hs256Key {
    /// A key from the shared secret's bytes, with the default leeway and no issuer or audience required.
    ///
    /// Refuses an empty secret. Secrets shorter than [`RECOMMENDED_MIN_SECRET_BYTES`] are accepted (interop with
    /// existing deployments) but [`is_short`](Self::is_short) says so, for a startup warning.
    pub fn new(secret: &[u8]) -> Result<Self, SecretError> {
        if secret.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Hs256Key {
            mac: keyed(secret),
            secret_len: secret.len(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            issuer: None,
            audience: None,
        })
    }

    /// `self` allowing `secs` of clock skew on `exp` and `nbf` (default [`DEFAULT_LEEWAY_SECS`]).
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// `self` requiring tokens whose `iss` is exactly `issuer`.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// `self` requiring tokens whose `aud` names `audience`.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The clock-skew allowance, in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    /// True when the secret is shorter than [`RECOMMENDED_MIN_SECRET_BYTES`].
    pub fn is_short(&self) -> bool {
        self.secret_len < RECOMMENDED_MIN_SECRET_BYTES
    }

    /// Checks `token` at `now_unix_secs` and returns its claims (the rules are in the [module docs](self)).
    pub fn verify(&self, token: &str, now_unix_secs: u64) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthFailure::TooLong.into());
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthFailure::Malformed.into());
        };

        check_header(&decode_part(header)?)?;

        let signature = decode_part(signature)?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        self.mac
            .clone()
            .chain_update(signing_input.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| AuthFailure::BadSignature)?;

        let claims = parse_claims(&decode_part(payload)?)?;
        self.check_claims(&claims, now_unix_secs)?;
        Ok(claims)
    }

    /// Mints a token carrying `claims`, with header `{"alg":"HS256","typ":"JWT"}`.
    ///
    /// The claims are written as given: the key's issuer, audience and leeway do not change them. Empty `aud` and
    /// empty `channels` are left out. A token over [`MAX_TOKEN_BYTES`] (thousands of patterns) will not verify.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut token = URL_SAFE_NO_PAD.encode(SIGNED_HEADER);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_json().to_string()));
        let tag = self
            .mac
            .clone()
            .chain_update(token.as_bytes())
            .finalize()
            .into_bytes();
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(tag));
        token
    }

    fn check_claims(&self, claims: &Claims, now: u64) -> Result<(), AuthFailure> {
        if now >= claims.exp.saturating_add(self.leeway_secs) {
            return Err(AuthFailure::Expired);
        }
        if let Some(nbf) = claims.nbf
            && now.saturating_add(self.leeway_secs) < nbf
        {
            return Err(AuthFailure::NotYetValid);
        }
        if let Some(issuer) = &self.issuer
            && claims.iss.as_ref() != Some(issuer)
        {
            return Err(AuthFailure::WrongIssuer);
        }
        let audience_ok = match &self.audience {
            Some(audience) => claims.aud.contains(audience),
            None => claims.aud.is_empty(),
        };
        if !audience_ok {
            return Err(AuthFailure::WrongAudience);
        }
        Ok(())
    }
}

/// Decodes one part: canonical unpadded base64url only (padding, `+`, `/` and non-zero trailing bits are refused,
/// so each token has exactly one spelling).
fn decode_part(part: &str) -> Result<Vec<u8>, AuthFailure> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthFailure::Malformed)
}

/// True when the JSON text's first non-blank byte opens an object. Derived `Deserialize` for a struct also accepts
/// a JSON array (by position), which a header or claims set must never be.
fn is_json_object(json: &[u8]) -> bool {
    json.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|&b| b == b'{')
}

/// The header fields the verifier reads. A repeated one fails the parse, so `{"alg":"HS256","alg":"none"}` cannot
/// mean different things to different parsers.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    typ: Option<Value>,
    crit: Option<Value>,
}

fn check_header(json: &[u8]) -> Result<(), AuthFailure> {
    if !is_json_object(json) {
        return Err(AuthFailure::Malformed);
    }
    let header: RawHeader = serde_json::from_slice(json).map_err(|_| AuthFailure::Malformed)?;
    if header.crit.is_some() || header.typ.as_ref().is_some_and(|t| !t.is_string()) {
        return Err(AuthFailure::Malformed);
    }
    match header.alg {
        Some(Value::String(alg)) if alg == "HS256" => Ok(()),
        _ => Err(AuthFailure::BadAlgorithm),
    }
}

/// The registered claims the verifier reads, each left as JSON so its type can be checked and named.
#[derive(Deserialize)]
struct RawClaims {
    sub: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
    iss: Option<Value>,
    aud: Option<Value>,
    channels: Option<Value>,
}

fn parse_claims(json: &[u8]) -> Result<Claims, AuthFailure> {
    if !is_json_object(json) {
        return Err(AuthFailure::Malformed);
    }
    let raw: RawClaims = serde_json::from_slice(json).map_err(|_| AuthFailure::Malformed)?;
    let sub = match raw.sub {
        None => return Err(AuthFailure::MissingClaim { claim: "sub" }),
        Some(Value::String(sub)) => sub,
        Some(_) => return Err(AuthFailure::InvalidClaim { claim: "sub" }),
    };
    let exp = match raw.exp {
        None => return Err(AuthFailure::MissingClaim { claim: "exp" }),
        Some(v) => {
            numeric_date(&v, Rounding::Down).ok_or(AuthFailure::InvalidClaim { claim: "exp" })?
        }
    };
    let nbf = raw
        .nbf
        .map(|v| numeric_date(&v, Rounding::Up).ok_or(AuthFailure::InvalidClaim { claim: "nbf" }))
        .transpose()?;
    let iat = raw
        .iat
        .map(|v| numeric_date(&v, Rounding::Down).ok_or(AuthFailure::InvalidClaim { claim: "iat" }))
        .transpose()?;
    let iss = match raw.iss {
        None => None,
        Some(Value::String(iss)) => Some(iss),
        Some(_) => return Err(AuthFailure::InvalidClaim { claim: "iss" }),
    };
    let aud = match raw.aud {
        None => Vec::new(),
        Some(v) => audiences(v).ok_or(AuthFailure::InvalidClaim { claim: "aud" })?,
    };
    let channels = match raw.channels {
        None => ChannelGrants::none(),
        Some(v) => grants_from_json(v).ok_or(AuthFailure::InvalidClaim { claim: "channels" })?,
    };
    Ok(Claims {
        sub,
        exp,
        nbf,
        iat,
        iss,
        aud,
        channels,
    })
}

/// Which way to round a fractional NumericDate.
#[derive(Clone, Copy)]
enum Rounding {
    Down,
    Up,
}

/// A NumericDate: a non-negative JSON number of seconds; fractions rounded as asked; beyond `u64` saturates.
fn numeric_date(value: &Value, rounding: Rounding) -> Option<u64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(secs) = n.as_u64() {
        return Some(secs);
    }
    let secs = n.as_f64().filter(|f| *f >= 0.0)?;
    let rounded = match rounding {
        Rounding::Down => floor_non_negative(secs),
        Rounding::Up => ceil_non_negative(secs),
    };
    // `as` saturates at u64::MAX for values beyond it.
    Some(rounded as u64)
}

/// `f.floor()` for a non-negative finite `f`. `f64::floor` needs `std` at this crate's minimum Rust; every `f64`
/// at or above 2^52 is already whole, and below it the `u64` cast truncates exactly.
fn floor_non_negative(f: f64) -> f64 {
    if f >= 4_503_599_627_370_496.0 {
        f
    } else {
        (f as u64) as f64
    }
}

/// `f.ceil()` for a non-negative finite `f`, without `std`.
fn ceil_non_negative(f: f64) -> f64 {
    let floor = floor_non_negative(f);
    if floor < f { floor + 1.0 } else { floor }
}

/// `aud`: one string, or an array of strings.
fn audiences(value: Value) -> Option<Vec<String>> {
    match value {
        Value::String(one) => Some(alloc::vec![one]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `channels`: an object whose `subscribe`/`publish`/`serve`/`call` keys, when present, hold arrays of valid
/// patterns. Other keys are ignored.
fn grants_from_json(value: Value) -> Option<ChannelGrants> {
    let Value::Object(mut map) = value else {
        return None;
    };
    let mut grants = ChannelGrants::none();
    for action in GrantAction::ALL {
        let Some(list) = map.remove(action.as_str()) else {
            continue;
        };
        let Value::Array(patterns) = list else {
            return None;
        };
        for pattern in patterns {
            let Value::String(pattern) = pattern else {
                return None;
            };
            grants.allow(action, &pattern).ok()?;
        }
    }
    Some(grants)
}

#[cfg(test)]
mod tests;
