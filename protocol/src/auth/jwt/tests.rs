//! Tests for [`Hs256Key`]. Tokens marked "python" were computed outside this crate with Python's `hmac`, `hashlib`
//! and `base64` modules, so they check the HMAC, the base64url and the JSON layout independently.

use super::*;
use crate::auth::mac::keyed;
use alloc::format;
use alloc::vec;
use proptest::prelude::*;

const SECRET: &[u8] = b"switchboard-test-secret-0123456789abcdef";

fn key() -> Hs256Key {
    Hs256Key::new(SECRET).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with exactly this header and payload text, signed with HMAC-SHA256 under `secret`.
fn mint_with(secret: &[u8], header: &str, payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload));
    let tag = keyed(secret)
        .chain_update(input.as_bytes())
        .finalize()
        .into_bytes();
    format!("{input}.{}", b64(&tag))
}

fn mint(header: &str, payload: &str) -> String {
    mint_with(SECRET, header, payload.as_bytes())
}

fn hs256(payload: &str) -> String {
    mint(r#"{"alg":"HS256","typ":"JWT"}"#, payload)
}

fn reason(result: Result<Claims, AuthError>) -> AuthFailure {
    match result {
        Ok(claims) => panic!("expected a refusal, got {claims:?}"),
        Err(err) => err.reason(),
    }
}

const NOW: u64 = 1_750_000_000;

// ---- known answers -------------------------------------------------------------------------------------------

/// python: the example token on jwt.io (secret "your-256-bit-secret"). Its signature is right, and since claims are
/// only read after the signature passes, getting `MissingClaim(exp)` proves the HMAC matched.
const JWT_IO: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

#[test]
fn jwt_io_example_passes_the_signature_and_is_refused_for_lacking_exp() {
    let jwt_io = Hs256Key::new(b"your-256-bit-secret").unwrap();
    assert!(jwt_io.is_short());
    assert_eq!(
        reason(jwt_io.verify(JWT_IO, NOW)),
        AuthFailure::MissingClaim { claim: "exp" }
    );
    assert_eq!(
        reason(
            Hs256Key::new(b"your-256-bit-secreT")
                .unwrap()
                .verify(JWT_IO, NOW)
        ),
        AuthFailure::BadSignature
    );
}

/// python: header {"alg":"HS256","typ":"JWT"}; claims
/// {"sub":"alice","exp":2000000000,"nbf":1700000000,"iat":1700000000,
///  "channels":{"subscribe":["projects/*"],"publish":["projects/p1/**"]}}.
const PY_VALID: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNzAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsImNoYW5uZWxzIjp7InN1YnNjcmliZSI6WyJwcm9qZWN0cy8qIl0sInB1Ymxpc2giOlsicHJvamVjdHMvcDEvKioiXX19.ilx_wkHgDAq8bN6k_znDbG6XZDn3zJ_gG2gEX_xBTrM";

#[test]
fn python_minted_token_verifies_with_its_claims() {
    let claims = key().verify(PY_VALID, NOW).unwrap();
    assert!(!key().is_short());
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.exp, 2_000_000_000);
    assert_eq!(claims.nbf, Some(1_700_000_000));
    assert_eq!(claims.iat, Some(1_700_000_000));
    assert_eq!(claims.iss, None);
    assert!(claims.aud.is_empty());
    assert_eq!(claims.channels.subscribe(), ["projects/*"]);
    assert_eq!(claims.channels.publish(), ["projects/p1/**"]);
    assert!(claims.channels.serve().is_empty() && claims.channels.call().is_empty());
}

#[test]
fn python_minted_token_without_typ_verifies() {
    // python: header {"alg":"HS256"}, claims {"sub":"bob","exp":2000000000}.
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IiLCJleHAiOjIwMDAwMDAwMDB9.DAm38GYEko0Ou_ANCmpZqxPue6rVOQmPMqianN9S-kM";
    let claims = key().verify(token, NOW).unwrap();
    assert_eq!(claims, Claims::new("bob", 2_000_000_000));
}

#[test]
fn python_minted_token_with_a_secret_longer_than_a_block_verifies() {
    // python: secret bytes 0..100 (hashed first, RFC 2104), claims {"sub":"long","exp":2000000000}.
    let secret: Vec<u8> = (0u8..100).collect();
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJsb25nIiwiZXhwIjoyMDAwMDAwMDAwfQ.pUQ2CMuOgy_DmnefIzEouliWgtWgAUyii5SknkgmZHE";
    let claims = Hs256Key::new(&secret).unwrap().verify(token, NOW).unwrap();
    assert_eq!(claims.sub, "long");
}

#[test]
fn python_minted_fractional_dates_round_the_strict_way() {
    // python: {"sub":"f","exp":2000000000.9,"nbf":1700000000.1,"iat":1700000000.5}.
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmIiwiZXhwIjoyMDAwMDAwMDAwLjksIm5iZiI6MTcwMDAwMDAwMC4xLCJpYXQiOjE3MDAwMDAwMDAuNX0.s025Gf8J3xWo56yQePFxTu2fvY_gM2Pn2--0vbSwiRk";
    let claims = key().verify(token, NOW).unwrap();
    assert_eq!(claims.exp, 2_000_000_000);
    assert_eq!(claims.nbf, Some(1_700_000_001));
    assert_eq!(claims.iat, Some(1_700_000_000));
}

#[test]
fn sign_matches_python_byte_for_byte() {
    // python: json.dumps(claims, sort_keys=True, separators=(",", ":")) under the usual header.
    let mut claims = Claims::new("carol", 1_800_000_000).with_channels(
        ChannelGrants::parse_spec(
            "subscribe=projects/*,subscribe=chat/**,publish=chat/**,serve=rpc/*,call=rpc/**",
        )
        .unwrap(),
    );
    claims.nbf = Some(1_700_000_000);
    claims.iat = Some(1_699_999_990);
    claims.iss = Some("switchboard".into());
    claims.aud = vec!["hub".into()];
    assert_eq!(
        key().sign(&claims),
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodWIiLCJjaGFubmVscyI6eyJjYWxsIjpbInJwYy8qKiJdLCJwdWJsaXNoIjpbImNoYXQvKioiXSwic2VydmUiOlsicnBjLyoiXSwic3Vic2NyaWJlIjpbInByb2plY3RzLyoiLCJjaGF0LyoqIl19LCJleHAiOjE4MDAwMDAwMDAsImlhdCI6MTY5OTk5OTk5MCwiaXNzIjoic3dpdGNoYm9hcmQiLCJuYmYiOjE3MDAwMDAwMDAsInN1YiI6ImNhcm9sIn0.pIx-VKwwEFc019hLAFrv61UsBRD2PsNSTO62L_Uzxqs"
    );

    let mut claims = Claims::new("dave", 1_800_000_000);
    claims.aud = vec!["a".into(), "b".into()];
    assert_eq!(
        key().sign(&claims),
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOlsiYSIsImIiXSwiZXhwIjoxODAwMDAwMDAwLCJzdWIiOiJkYXZlIn0.LsJ1cHXTEDgnuJieifNc4YBBE0qmfQdbeXD1cqOGv8o"
    );
}

// ---- algorithm and header -------------------------------------------------------------------------------------

#[test]
fn python_minted_hs384_token_is_refused_for_its_algorithm() {
    // python: a genuine HS384 token under the same secret: valid for HS384, refused here.
    let token = "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2IiLCJleHAiOjIwMDAwMDAwMDB9._OJQlECW-8qM8MGZ7xReAk_DFFUcpjOYjj1TdjyMk5FOaFuqbbuiCDI01q2fAudx";
    assert_eq!(reason(key().verify(token, NOW)), AuthFailure::BadAlgorithm);
}

#[test]
fn alg_none_is_refused_with_or_without_a_signature() {
    let claims = r#"{"sub":"eve","exp":2000000000}"#;
    for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"none"}"#] {
        let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(claims.as_bytes()));
        assert_eq!(
            reason(key().verify(&unsigned, NOW)),
            AuthFailure::BadAlgorithm
        );
        assert_eq!(
            reason(key().verify(&mint(header, claims), NOW)),
            AuthFailure::BadAlgorithm
        );
    }
}

#[test]
fn every_alg_but_exactly_hs256_is_refused_even_when_the_hmac_is_right() {
    let claims = r#"{"sub":"eve","exp":2000000000}"#;
    for header in [
        r#"{"alg":"RS256","typ":"JWT"}"#,
        r#"{"alg":"HS384"}"#,
        r#"{"alg":"HS512"}"#,
        r#"{"alg":"hs256"}"#,
        r#"{"alg":"HS256 "}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":""}"#,
        r#"{"typ":"JWT"}"#,
        r#"{}"#,
        r#"{"alg":null}"#,
        r#"{"alg":256}"#,
        r#"{"alg":true}"#,
        r#"{"alg":["HS256"]}"#,
        r#"{"alg":{"name":"HS256"}}"#,
    ] {
        assert_eq!(
            reason(key().verify(&mint(header, claims), NOW)),
            AuthFailure::BadAlgorithm,
            "{header}"
        );
    }
}

#[test]
fn header_shapes_that_are_malformed() {
    let claims = r#"{"sub":"eve","exp":2000000000}"#;
    for header in [
        // Repeated alg: parsers that keep the first or the last would disagree.
        r#"{"alg":"HS256","alg":"none"}"#,
        r#"{"alg":"none","alg":"HS256"}"#,
        // crit names extensions we do not understand (RFC 7515 §4.1.11).
        r#"{"alg":"HS256","crit":["exp"]}"#,
        r#"{"alg":"HS256","typ":7}"#,
        r#"["HS256"]"#,
        // An array that a derived struct parser would read by position as alg, typ, crit.
        r#"["HS256",null,null]"#,
        r#"  ["HS256","JWT",null]"#,
        r#""HS256""#,
        r#"{"alg":"HS256""#,
        r#"{"alg":"HS256"} x"#,
        "",
        "not json",
    ] {
        assert_eq!(
            reason(key().verify(&mint(header, claims), NOW)),
            AuthFailure::Malformed,
            "{header}"
        );
    }
    // Unknown header fields (kid, cty, …) and any string typ are fine.
    let ok = mint(r#"{"typ":"at+jwt","kid":"k1","alg":"HS256"}"#, claims);
    assert_eq!(key().verify(&ok, NOW).unwrap().sub, "eve");
}

// ---- structure and signature ----------------------------------------------------------------------------------

#[test]
fn malformed_structure() {
    let good = hs256(r#"{"sub":"a","exp":2000000000}"#);
    let (header, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let cases = [
        String::new(),
        "abc".into(),
        ".".into(),
        "..".into(),
        format!("{header}.{payload}"),
        format!("{good}.{signature}"),
        format!("{good}."),
        format!(" {good}"),
        format!("{good}\n"),
        // Padded base64url is not the compact form.
        format!("{header}=.{payload}.{signature}"),
        format!("{header}.{payload}.{signature}="),
        // Standard-alphabet characters.
        format!("{header}.{payload}.{}", signature.replace(['-', '_'], "+")),
        // A signature whose last symbol carries non-zero unused bits: same bytes, second spelling, refused.
        format!(
            "{header}.{payload}.{}{}",
            &signature[..42],
            non_canonical_last(signature)
        ),
        // A part of impossible length (4n+1 symbols: 43 + 2).
        format!("{header}.{payload}.{signature}AA"),
    ];
    for token in cases {
        assert_eq!(
            reason(key().verify(&token, NOW)),
            AuthFailure::Malformed,
            "{token:?}"
        );
    }
}

/// The last symbol of a 43-symbol (32-byte) part encodes 4 data bits and 2 zero bits; set one of the zero bits.
fn non_canonical_last(signature: &str) -> char {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_eq!(signature.len(), 43);
    let last = signature.as_bytes()[42];
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    assert_eq!(index & 0b11, 0);
    char::from(ALPHABET[index | 1])
}

#[test]
fn bad_signatures() {
    let good = hs256(r#"{"sub":"a","exp":2000000000}"#);
    let (signing_input, signature) = good.rsplit_once('.').unwrap();
    let sig_bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();

    // Claims changed after signing.
    let (header, _) = signing_input.split_once('.').unwrap();
    let forged = format!(
        "{header}.{}.{signature}",
        b64(br#"{"sub":"admin","exp":2000000000}"#)
    );
    assert_eq!(
        reason(key().verify(&forged, NOW)),
        AuthFailure::BadSignature
    );

    // Every single-bit flip in the signature.
    for byte in 0..sig_bytes.len() {
        for bit in 0..8 {
            let mut flipped = sig_bytes.clone();
            flipped[byte] ^= 1 << bit;
            let token = format!("{signing_input}.{}", b64(&flipped));
            assert_eq!(reason(key().verify(&token, NOW)), AuthFailure::BadSignature);
        }
    }

    // Truncated, extended and empty signatures.
    for sig in [
        &sig_bytes[..31],
        &[sig_bytes.as_slice(), &[0]].concat(),
        &[][..],
    ] {
        let token = format!("{signing_input}.{}", b64(sig));
        assert_eq!(reason(key().verify(&token, NOW)), AuthFailure::BadSignature);
    }

    // Another secret.
    let other = Hs256Key::new(b"another-secret-of-at-least-32-bytes!").unwrap();
    assert_eq!(reason(other.verify(&good, NOW)), AuthFailure::BadSignature);
}

#[test]
fn length_cap_applies_before_decoding() {
    let at_cap = "a".repeat(MAX_TOKEN_BYTES);
    assert_eq!(reason(key().verify(&at_cap, NOW)), AuthFailure::Malformed);
    let over = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(reason(key().verify(&over, NOW)), AuthFailure::TooLong);

    // A genuinely signed token one byte over the cap is still refused.
    let mut claims = Claims::new("big", 2_000_000_000);
    let mut filler = String::new();
    while key().sign(&claims).len() <= MAX_TOKEN_BYTES {
        filler.push('x');
        claims.sub = filler.clone();
    }
    assert_eq!(key().sign(&claims).len(), MAX_TOKEN_BYTES + 1);
    assert_eq!(
        reason(key().verify(&key().sign(&claims), NOW)),
        AuthFailure::TooLong
    );
    claims.sub.pop();
    assert!(key().verify(&key().sign(&claims), NOW).is_ok());
}

// ---- claims ---------------------------------------------------------------------------------------------------

#[test]
fn claims_that_are_not_a_json_object_are_malformed() {
    for payload in [
        "",
        "not json",
        "[\"sub\",2000000000]",
        // By position: sub, exp, nbf, iat, iss, aud, channels.
        "[\"admin\",2000000000,null,null,null,null,{\"publish\":[\"**\"]}]",
        "null",
        "{\"sub\":\"a\",\"exp\":2000000000",
        "{\"sub\":\"a\",\"exp\":2000000000}{}",
        // A repeated registered claim.
        "{\"sub\":\"a\",\"exp\":1,\"exp\":2000000000}",
        "{\"sub\":\"a\",\"sub\":\"admin\",\"exp\":2000000000}",
    ] {
        assert_eq!(
            reason(key().verify(&hs256(payload), NOW)),
            AuthFailure::Malformed,
            "{payload}"
        );
    }
    // Not UTF-8.
    let token = mint_with(
        SECRET,
        r#"{"alg":"HS256"}"#,
        b"{\"sub\":\"\xff\",\"exp\":2000000000}",
    );
    assert_eq!(reason(key().verify(&token, NOW)), AuthFailure::Malformed);
}

#[test]
fn missing_and_mistyped_claims() {
    use AuthFailure::{InvalidClaim, MissingClaim};
    let cases: &[(&str, AuthFailure)] = &[
        (r#"{"exp":2000000000}"#, MissingClaim { claim: "sub" }),
        (
            r#"{"sub":null,"exp":2000000000}"#,
            MissingClaim { claim: "sub" },
        ),
        (r#"{"sub":"a"}"#, MissingClaim { claim: "exp" }),
        (r#"{"sub":"a","exp":null}"#, MissingClaim { claim: "exp" }),
        (
            r#"{"sub":1,"exp":2000000000}"#,
            InvalidClaim { claim: "sub" },
        ),
        (
            r#"{"sub":["a"],"exp":2000000000}"#,
            InvalidClaim { claim: "sub" },
        ),
        (
            r#"{"sub":"a","exp":"2000000000"}"#,
            InvalidClaim { claim: "exp" },
        ),
        (r#"{"sub":"a","exp":-1}"#, InvalidClaim { claim: "exp" }),
        (r#"{"sub":"a","exp":-0.5}"#, InvalidClaim { claim: "exp" }),
        (r#"{"sub":"a","exp":true}"#, InvalidClaim { claim: "exp" }),
        (
            r#"{"sub":"a","exp":2000000000,"nbf":"1"}"#,
            InvalidClaim { claim: "nbf" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"nbf":-5}"#,
            InvalidClaim { claim: "nbf" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"iat":false}"#,
            InvalidClaim { claim: "iat" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"iss":5}"#,
            InvalidClaim { claim: "iss" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"aud":5}"#,
            InvalidClaim { claim: "aud" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"aud":["x",5]}"#,
            InvalidClaim { claim: "aud" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"channels":[]}"#,
            InvalidClaim { claim: "channels" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"channels":"**"}"#,
            InvalidClaim { claim: "channels" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"channels":{"subscribe":"**"}}"#,
            InvalidClaim { claim: "channels" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"channels":{"publish":[1]}}"#,
            InvalidClaim { claim: "channels" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"channels":{"serve":null}}"#,
            InvalidClaim { claim: "channels" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"channels":{"call":["rpc/**/x"]}}"#,
            InvalidClaim { claim: "channels" },
        ),
        (
            r#"{"sub":"a","exp":2000000000,"channels":{"subscribe":["ok/*","bad*"]}}"#,
            InvalidClaim { claim: "channels" },
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(
            reason(key().verify(&hs256(payload), NOW)),
            *want,
            "{payload}"
        );
    }
}

#[test]
fn optional_claims_may_be_absent_or_null_and_unknown_ones_are_ignored() {
    let claims = key()
        .verify(
            &hs256(r#"{"sub":"","exp":2000000000,"nbf":null,"iat":null,"iss":null,"aud":null,"channels":null,"role":"x"}"#),
            NOW,
        )
        .unwrap();
    assert_eq!(claims, Claims::new("", 2_000_000_000));

    let claims = key()
        .verify(
            &hs256(r#"{"sub":"a","exp":2000000000,"channels":{"subscribe":["a/*"],"presence":["**"]}}"#),
            NOW,
        )
        .unwrap();
    assert_eq!(
        claims.channels,
        ChannelGrants::parse_spec("subscribe=a/*").unwrap()
    );
}

#[test]
fn huge_dates_saturate() {
    let claims = key()
        .verify(
            &hs256(r#"{"sub":"a","exp":1e300,"iat":18446744073709551615}"#),
            NOW,
        )
        .unwrap();
    assert_eq!(claims.exp, u64::MAX);
    assert_eq!(claims.iat, Some(u64::MAX));
    // A number too big for u64 but written as an integer is parsed as a float by serde_json.
    let claims = key()
        .verify(
            &hs256(r#"{"sub":"a","exp":99999999999999999999999}"#),
            u64::MAX - 1,
        )
        .unwrap();
    assert_eq!(claims.exp, u64::MAX);
}

// ---- the clock ------------------------------------------------------------------------------------------------

#[test]
fn exp_edge_with_the_default_leeway() {
    let token = hs256(r#"{"sub":"a","exp":1000}"#);
    assert_eq!(key().leeway_secs(), 30);
    assert!(key().verify(&token, 0).is_ok());
    assert!(key().verify(&token, 1000).is_ok());
    // Last accepted second: exp + leeway - 1.
    assert!(key().verify(&token, 1029).is_ok());
    // At exactly exp + leeway the token has expired.
    assert_eq!(reason(key().verify(&token, 1030)), AuthFailure::Expired);
    assert_eq!(reason(key().verify(&token, u64::MAX)), AuthFailure::Expired);
}

#[test]
fn exp_edge_with_no_leeway() {
    let strict = key().with_leeway(0);
    let token = hs256(r#"{"sub":"a","exp":1000}"#);
    assert!(strict.verify(&token, 999).is_ok());
    assert_eq!(reason(strict.verify(&token, 1000)), AuthFailure::Expired);
    // exp 0 has always expired without leeway.
    assert_eq!(
        reason(strict.verify(&hs256(r#"{"sub":"a","exp":0}"#), 0)),
        AuthFailure::Expired
    );
}

#[test]
fn nbf_edge_with_the_default_leeway() {
    let token = hs256(r#"{"sub":"a","exp":5000,"nbf":2000}"#);
    // First accepted second: nbf - leeway.
    assert!(key().verify(&token, 1970).is_ok());
    assert_eq!(reason(key().verify(&token, 1969)), AuthFailure::NotYetValid);
    assert_eq!(reason(key().verify(&token, 0)), AuthFailure::NotYetValid);
    assert_eq!(
        reason(key().with_leeway(0).verify(&token, 1999)),
        AuthFailure::NotYetValid
    );
    assert!(key().with_leeway(0).verify(&token, 2000).is_ok());
}

#[test]
fn leeway_never_overflows() {
    let token = hs256(r#"{"sub":"a","exp":18446744073709551615,"nbf":18446744073709551615}"#);
    let huge = key().with_leeway(u64::MAX);
    assert!(huge.verify(&token, 0).is_ok());
    assert!(huge.verify(&token, u64::MAX - 1).is_ok());
    assert_eq!(reason(key().verify(&token, 0)), AuthFailure::NotYetValid);
}

#[test]
fn expired_is_reported_before_not_yet_valid() {
    // An inverted window: exp before nbf.
    let token = hs256(r#"{"sub":"a","exp":100,"nbf":500}"#);
    assert_eq!(
        reason(key().with_leeway(0).verify(&token, 300)),
        AuthFailure::Expired
    );
}

// ---- issuer and audience --------------------------------------------------------------------------------------

#[test]
fn issuer_rule() {
    let k = key().with_issuer("switchboard");
    assert!(
        k.verify(
            &hs256(r#"{"sub":"a","exp":2000000000,"iss":"switchboard"}"#),
            NOW
        )
        .is_ok()
    );
    for payload in [
        r#"{"sub":"a","exp":2000000000,"iss":"Switchboard"}"#,
        r#"{"sub":"a","exp":2000000000}"#,
    ] {
        assert_eq!(
            reason(k.verify(&hs256(payload), NOW)),
            AuthFailure::WrongIssuer,
            "{payload}"
        );
    }
    // Without a required issuer, any iss is accepted and kept.
    let claims = key()
        .verify(&hs256(r#"{"sub":"a","exp":2000000000,"iss":"x"}"#), NOW)
        .unwrap();
    assert_eq!(claims.iss.as_deref(), Some("x"));
}

#[test]
fn audience_rule() {
    let k = key().with_audience("hub");
    for payload in [
        r#"{"sub":"a","exp":2000000000,"aud":"hub"}"#,
        r#"{"sub":"a","exp":2000000000,"aud":["other","hub"]}"#,
    ] {
        assert!(k.verify(&hs256(payload), NOW).is_ok(), "{payload}");
    }
    for payload in [
        r#"{"sub":"a","exp":2000000000,"aud":"other"}"#,
        r#"{"sub":"a","exp":2000000000,"aud":[]}"#,
        r#"{"sub":"a","exp":2000000000}"#,
    ] {
        assert_eq!(
            reason(k.verify(&hs256(payload), NOW)),
            AuthFailure::WrongAudience,
            "{payload}"
        );
    }
    // A key that requires no audience refuses tokens meant for someone (RFC 7519 §4.1.3)…
    assert_eq!(
        reason(key().verify(&hs256(r#"{"sub":"a","exp":2000000000,"aud":"other"}"#), NOW)),
        AuthFailure::WrongAudience
    );
    // …but an empty audience list names nobody.
    assert!(
        key()
            .verify(&hs256(r#"{"sub":"a","exp":2000000000,"aud":[]}"#), NOW)
            .is_ok()
    );
}

// ---- the key --------------------------------------------------------------------------------------------------

#[test]
fn key_rules_and_redacted_debug() {
    assert_eq!(Hs256Key::new(b"").unwrap_err(), SecretError::Empty);
    assert!(Hs256Key::new(&[7; 31]).unwrap().is_short());
    assert!(!Hs256Key::new(&[7; 32]).unwrap().is_short());
    let debug = format!(
        "{:?}",
        Hs256Key::new(b"super-secret-value")
            .unwrap()
            .with_issuer("me")
    );
    assert!(!debug.contains("super-secret-value"), "{debug}");
    assert!(
        debug.contains("<redacted>") && debug.contains("me"),
        "{debug}"
    );
}

// ---- properties -----------------------------------------------------------------------------------------------

fn pattern() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(
            prop_oneof![Just("*".to_string()), "[A-Za-z0-9_.:@-]{1,6}"],
            1..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(segments, double_star)| {
            let mut p = segments.join("/");
            if double_star {
                p.push_str("/**");
            }
            p
        })
}

fn grants() -> impl Strategy<Value = ChannelGrants> {
    proptest::collection::vec((0usize..4, pattern()), 0..6).prop_map(|entries| {
        let mut g = ChannelGrants::none();
        for (action, p) in entries {
            g.allow(GrantAction::ALL[action], &p).unwrap();
        }
        g
    })
}

prop_compose! {
    fn claims()(
        sub in ".{0,24}",
        exp in any::<u64>(),
        nbf in proptest::option::of(any::<u64>()),
        iat in proptest::option::of(any::<u64>()),
        iss in proptest::option::of(".{0,12}"),
        channels in grants(),
    ) -> Claims {
        let mut c = Claims::new(sub, exp).with_channels(channels);
        c.nbf = nbf;
        c.iat = iat;
        c.iss = iss;
        c
    }
}

proptest! {
    /// sign → verify gives back the same claims, at any instant inside the validity window.
    #[test]
    fn sign_then_verify_round_trips(c in claims(), aud in proptest::collection::vec("[a-z]{1,5}", 0..3), at in any::<u64>()) {
        let mut c = c;
        let mut k = key();
        if let Some(first) = aud.first() {
            k = k.with_audience(first.clone());
        }
        c.aud = aud;
        if let Some(iss) = &c.iss {
            k = k.with_issuer(iss.clone());
        }
        let lo = c.nbf.unwrap_or(0).saturating_sub(k.leeway_secs());
        let hi = c.exp.saturating_add(k.leeway_secs());
        prop_assume!(lo < hi);
        let now = lo + at % (hi - lo);
        let token = k.sign(&c);
        prop_assert_eq!(k.verify(&token, now), Ok(c.clone()));
        prop_assert_eq!(reason(k.verify(&token, hi)), AuthFailure::Expired);
    }

    /// Arbitrary text never panics and is never accepted.
    #[test]
    fn verify_never_panics_on_arbitrary_strings(token in ".{0,200}", now in any::<u64>()) {
        prop_assert!(key().verify(&token, now).is_err());
    }

    /// Three arbitrary base64url parts exercise the header parser: never a panic, never accepted.
    #[test]
    fn verify_never_panics_on_arbitrary_parts(
        header in proptest::collection::vec(any::<u8>(), 0..64),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        sig in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&sig));
        prop_assert!(key().verify(&token, NOW).is_err());
    }

    /// Correctly signed arbitrary payloads reach the claims parser: it never panics, and whatever it accepts has a
    /// subject and an expiry inside the window.
    #[test]
    fn verify_never_panics_on_signed_arbitrary_payloads(
        payload in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..128),
            r#"\{("(sub|exp|nbf|iat|iss|aud|channels|subscribe)":(-?[0-9.e]{1,8}|"[a-z*/]{0,6}"|null|true|\[\]|\{\}|\["[a-z*/]{0,6}"\]),?){0,6}\}"#
                .prop_map(String::into_bytes),
        ],
        now in any::<u64>(),
    ) {
        let token = mint_with(SECRET, r#"{"alg":"HS256"}"#, &payload);
        if let Ok(claims) = key().verify(&token, now) {
            prop_assert!(now < claims.exp.saturating_add(DEFAULT_LEEWAY_SECS));
        }
    }
}

/// A signed claims object: `sub` and `exp` (in the two days after [`NOW`]) mostly present and well typed, the
/// optional claims present or not (`nbf`, `iat` in the two days before), each field's value sometimes missing or of
/// the wrong type; a `now` within a day of [`NOW`], so mostly but not always inside the window.
fn claims_shaped_payload() -> impl Strategy<Value = (String, u64)> {
    let field = |name: &'static str, good: BoxedStrategy<String>| {
        prop_oneof![
            8 => good.prop_map(move |v| Some(format!(r#""{name}":{v}"#))),
            1 => Just(None),
            1 => r#"(null|true|-1|1\.5|"x"|\[\]|\{\})"#.prop_map(move |v| Some(format!(r#""{name}":{v}"#))),
        ]
    };
    let time = |from: u64| (from..from + 200_000).prop_map(|t| t.to_string()).boxed();
    (
        field(
            "sub",
            "[a-z0-9]{1,8}".prop_map(|s| format!("\"{s}\"")).boxed(),
        ),
        field("exp", time(NOW)),
        proptest::option::of(field("nbf", time(NOW - 200_000))),
        proptest::option::of(field("iat", time(NOW - 200_000))),
        proptest::option::of(field(
            "channels",
            Just(r#"{"subscribe":["news/*"]}"#.to_string()).boxed(),
        )),
        -86_400i64..86_400,
    )
        .prop_map(|(sub, exp, nbf, iat, channels, skew)| {
            let fields: Vec<String> = [sub, exp, nbf.flatten(), iat.flatten(), channels.flatten()]
                .into_iter()
                .flatten()
                .collect();
            (
                format!("{{{}}}", fields.join(",")),
                NOW.saturating_add_signed(skew),
            )
        })
}

/// Correctly signed claims-shaped payloads reach the accepting branch of the claims parser in at least a quarter of
/// the cases (counted, so a strategy that drifts to garbage fails here), and whatever it accepts has a subject, an
/// expiry inside the window and a `nbf` not after `now`.
#[test]
fn signed_claims_shaped_payloads_are_checked_when_accepted() {
    let cases = core::cell::Cell::new(0u32);
    let accepted = core::cell::Cell::new(0u32);
    proptest::test_runner::TestRunner::default()
        .run(&claims_shaped_payload(), |(payload, now)| {
            cases.set(cases.get() + 1);
            let token = mint_with(SECRET, r#"{"alg":"HS256"}"#, payload.as_bytes());
            if let Ok(claims) = key().verify(&token, now) {
                accepted.set(accepted.get() + 1);
                prop_assert!(!claims.sub.is_empty(), "{}", payload);
                prop_assert!(
                    now < claims.exp.saturating_add(DEFAULT_LEEWAY_SECS),
                    "{}",
                    payload
                );
                if let Some(nbf) = claims.nbf {
                    prop_assert!(
                        nbf <= now.saturating_add(DEFAULT_LEEWAY_SECS),
                        "{}",
                        payload
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        accepted.get() * 4 >= cases.get(),
        "only {} of {} signed claims-shaped payloads were accepted",
        accepted.get(),
        cases.get()
    );
}
