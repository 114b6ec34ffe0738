//! Transcripts of a token's lifetime on an open connection: `refresh`, the narrowing of grants, the
//! `token_expiring` warning and the 4401 close.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use core::time::Duration;

use super::Harness;
use super::transcripts::assert_transcript;
use crate::server::{Dialect, HubConfig, HubTimer, Permissions};
use crate::time::Timestamp;

/// Heartbeats out of the way; the warning 10 s ahead of expiry.
fn config() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        token_expiry_warning: Duration::from_secs(10),
        ..HubConfig::default()
    }
}

fn subscribe_only(patterns: &[&str]) -> Permissions {
    Permissions::from_patterns(
        patterns.iter().map(|p| String::from(*p)).collect(),
        vec![],
        vec![String::from("rpc/**")],
        vec![],
    )
}

/// A check standing in for the driver's verifier: `wide` grants `news` and `jobs/*` for 100 s more, `narrow` only
/// `news` and no `serve` for 100 s more, `forever` everything without expiry; anything else is refused.
fn harness() -> Harness {
    let mut h = Harness::new(config());
    h.hub
        .set_refresh_check(Box::new(|now: Timestamp, token: &str| {
            let later = now + Duration::from_secs(100);
            match token {
                "wide" => Some(subscribe_only(&["news", "jobs/*"]).with_expiry(later)),
                "narrow" => Some(
                    Permissions::from_patterns(vec![String::from("news")], vec![], vec![], vec![])
                        .with_expiry(later),
                ),
                "forever" => Some(Permissions::allow_all()),
                _ => None,
            }
        }));
    h
}

/// Opens `a` with `news` and `jobs/*`, lapsing in 30 s, subscribed to both and serving `rpc/x`.
fn open_subscribed(h: &mut Harness) {
    let expires = h.now + Duration::from_secs(30);
    h.open_with(
        "a",
        Dialect::Native,
        subscribe_only(&["news", "jobs/*"]).with_expiry(expires),
    );
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s1","data":{"channel":"news"}}"#,
    );
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"s2","data":{"channel":"jobs/1"}}"#,
    );
    h.text(
        "a",
        r#"{"type":"serve","message_id":"v1","data":{"channel":"rpc/x"}}"#,
    );
    h.take();
}

#[test]
fn refresh_ok_replaces_the_expiry() {
    let mut h = harness();
    open_subscribed(&mut h);
    assert_eq!(
        h.hub.last_timeout_reason(),
        Some(HubTimer::TokenExpiryWarning)
    );
    h.advance_ms(5_000);
    h.text(
        "a",
        r#"{"type":"refresh","message_id":"r1","data":{"token":"wide"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"refresh_res\",\"message_id\":\"r1\",\"data\":{\"expires_in_ms\":100000}}",
        ],
    );
    let a = h.conn("a");
    assert_eq!(
        h.hub.connection(a).and_then(|c| c.expires_at()),
        Some(h.now + Duration::from_secs(100))
    );
    // Past the old expiry (30 s) and its warning: nothing, the new token holds.
    h.advance_ms(40_000);
    assert_transcript(h.take(), &[]);
    assert!(h.closes.is_empty());
    h.assert_clean();
}

#[test]
fn refresh_narrowing_ends_what_is_no_longer_allowed() {
    let mut h = harness();
    open_subscribed(&mut h);
    h.text(
        "a",
        r#"{"type":"refresh","message_id":"r1","data":{"token":"narrow"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"refresh_res\",\"message_id\":\"r1\",\"data\":{\"expires_in_ms\":100000}}",
            "a <- {\"type\":\"notification\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"notification_type\":\"subscription_ended\",\"message\":\"no longer allowed to subscribe jobs/1\",\"additional_data\":{\"channel\":\"jobs/1\",\"code\":\"FORBIDDEN\",\"kind\":\"subscribe\"}}}",
            "a <- {\"type\":\"notification\",\"message_id\":\"#4\",\"server_initiated\":true,\"data\":{\"notification_type\":\"subscription_ended\",\"message\":\"no longer allowed to serve rpc/x\",\"additional_data\":{\"channel\":\"rpc/x\",\"code\":\"FORBIDDEN\",\"kind\":\"serve\"}}}",
        ],
    );
    let a = h.conn("a");
    let conn = h.hub.connection(a).expect("still open");
    assert_eq!(
        conn.subscriptions()
            .map(|c| c.as_str())
            .collect::<vec::Vec<_>>(),
        ["news"]
    );
    assert_eq!(conn.serving().count(), 0);
    assert_eq!(h.hub.subscriber_count(&super::ch("jobs/1")), 0);
    // The ended subscription gets nothing more; the kept one does.
    h.hub
        .publish(h.now, &super::ch("jobs/1"), serde_json::json!(1), false)
        .expect("publish");
    h.hub
        .publish(h.now, &super::ch("news"), serde_json::json!(2), false)
        .expect("publish");
    h.drain();
    let got = h.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("\"channel\":\"news\""), "{got:?}");
    // A call on the channel no longer served finds no handler.
    h.open("b", Dialect::Native);
    h.take();
    h.text(
        "b",
        r#"{"type":"call","message_id":"c1","data":{"channel":"rpc/x","method":"m"}}"#,
    );
    let answer = core::iter::from_fn(|| h.next_frame("b"))
        .find(|f| f["message_id"] == "c1")
        .expect("an answer");
    assert_eq!(answer["data"]["code"], "NO_HANDLER", "{answer}");
    h.assert_clean();
}

#[test]
fn bad_refresh_keeps_the_old_grants_and_the_connection() {
    let mut h = harness();
    open_subscribed(&mut h);
    let a = h.conn("a");
    let before = h.hub.connection(a).and_then(|c| c.expires_at());
    h.text(
        "a",
        r#"{"type":"refresh","message_id":"r1","data":{"token":"forged"}}"#,
    );
    h.text("a", r#"{"type":"refresh","message_id":"r2","data":{}}"#);
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"error\",\"message_id\":\"r1\",\"data\":{\"code\":\"FORBIDDEN\",\"message\":\"invalid or expired token\"}}",
            "a <- {\"type\":\"error\",\"message_id\":\"r2\",\"data\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"field `data.token` is required\",\"details\":{\"field\":\"data.token\",\"problem\":\"is required\"}}}",
        ],
    );
    let conn = h.hub.connection(a).expect("still open");
    assert_eq!(conn.subscriptions().count(), 2);
    assert_eq!(conn.serving().count(), 1);
    assert_eq!(conn.expires_at(), before);
    assert!(h.closes.is_empty());
    h.assert_clean();
}

#[test]
fn warning_then_close_at_expiry() {
    let mut h = harness();
    open_subscribed(&mut h);
    // 30 s left at open, warning 10 s ahead: at 20 s.
    h.advance_ms(19_999);
    assert_transcript(h.take(), &[]);
    h.advance_ms(1);
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"notification\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"notification_type\":\"token_expiring\",\"message\":\"the token expires soon: send a refresh\",\"additional_data\":{\"expires_in_ms\":10000}}}",
        ],
    );
    assert_eq!(h.hub.last_timeout_reason(), Some(HubTimer::TokenExpiry));
    h.advance_ms(9_999);
    assert_transcript(h.take(), &[]);
    h.advance_ms(1);
    assert_transcript(
        h.take(),
        &[
            "a closed 4401 token expired",
            "event {\"app_id\":\"#1\",\"conn\":\"a\",\"event\":\"disconnected\"}",
        ],
    );
    assert_eq!(h.hub.stats().token_expiries, 1);
    assert_eq!(h.hub.stats().token_refreshes, 0);
    h.assert_clean();
}

#[test]
fn short_lifetime_warns_halfway() {
    let mut h = harness();
    let expires = h.now + Duration::from_secs(4);
    h.open_with(
        "a",
        Dialect::Native,
        Permissions::allow_all().with_expiry(expires),
    );
    h.take();
    h.advance_ms(1_999);
    assert_transcript(h.take(), &[]);
    h.advance_ms(1);
    let got = h.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("token_expiring") && got[0].contains("\"expires_in_ms\":2000"),
        "{got:?}"
    );
}

#[test]
fn refresh_before_expiry_cancels_the_close() {
    let mut h = harness();
    open_subscribed(&mut h);
    h.advance_ms(20_000);
    let warning = h.take();
    assert!(warning[0].contains("token_expiring"), "{warning:?}");
    h.text(
        "a",
        r#"{"type":"refresh","message_id":"r1","data":{"token":"forever"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"refresh_res\",\"message_id\":\"r1\",\"data\":{\"expires_in_ms\":null}}",
        ],
    );
    // Far past the old expiry, short of the (quiet) heartbeat's silence limit.
    h.advance(Duration::from_secs(1_000));
    assert!(h.closes.is_empty(), "{:?}", h.closes);
    assert_eq!(h.hub.stats().token_refreshes, 1);
    assert_eq!(h.hub.stats().token_expiries, 0);
    let a = h.conn("a");
    assert_eq!(h.hub.connection(a).and_then(|c| c.expires_at()), None);
    h.assert_clean();
}

#[test]
fn refresh_without_a_check_changes_nothing() {
    let mut h = Harness::new(config());
    h.open("a", Dialect::Native);
    h.take();
    h.text(
        "a",
        r#"{"type":"refresh","message_id":"r1","data":{"token":"anything"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"refresh_res\",\"message_id\":\"r1\",\"data\":{\"expires_in_ms\":null}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn an_expired_grant_closes_at_once() {
    let mut h = harness();
    let past = h.now.saturating_sub(Duration::from_secs(1));
    h.open_with(
        "a",
        Dialect::Native,
        Permissions::allow_all().with_expiry(past),
    );
    h.advance_ms(0);
    let got = h.take();
    assert!(
        got.iter().any(|l| l == "a closed 4401 token expired"),
        "{got:?}"
    );
    h.assert_clean();
}

/// A refresh whose grants no longer cover a pattern ends it with `subscription_ended` naming the pattern; events of
/// its channels stop.
#[test]
fn a_narrowing_refresh_ends_a_pattern_subscription() {
    let mut h = harness();
    let expires = h.now + Duration::from_secs(30);
    h.open_with(
        "a",
        Dialect::Native,
        subscribe_only(&["news", "jobs/*"]).with_expiry(expires),
    );
    h.text(
        "a",
        r#"{"type":"subscribe","message_id":"p1","data":{"pattern":"jobs/*"}}"#,
    );
    h.take();
    h.text(
        "a",
        r#"{"type":"refresh","message_id":"r1","data":{"token":"narrow"}}"#,
    );
    let publish = h
        .hub
        .publish(h.now, &super::ch("jobs/1"), serde_json::json!(1), false);
    assert!(publish.is_ok());
    h.drain();
    assert_transcript(
        h.take(),
        &[
            "a <- {\"type\":\"refresh_res\",\"message_id\":\"r1\",\"data\":{\"expires_in_ms\":100000}}",
            "a <- {\"type\":\"notification\",\"message_id\":\"#3\",\"server_initiated\":true,\"data\":{\"notification_type\":\"subscription_ended\",\"message\":\"no longer allowed to subscribe jobs/*\",\"additional_data\":{\"code\":\"FORBIDDEN\",\"kind\":\"subscribe\",\"pattern\":\"jobs/*\"}}}",
        ],
    );
    assert_eq!(
        h.hub
            .connection(h.conn("a"))
            .unwrap()
            .pattern_subscriptions()
            .count(),
        0
    );
    h.assert_clean();
}
