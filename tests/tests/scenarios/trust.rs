//! Limits by trust: a backend (a credential with publish rights, or a loopback caller without authentication)
//! publishes in bursts over REST keep-alive and over one WebSocket without a refusal, while anonymous and
//! subscribe-only callers keep the protective limits. Every assertion counts answers; none measures time.
//!
//! Where a scenario shows the protective limit it lowers the untrusted refill rate to 1/s (the burst stays the
//! default 200), so how fast the machine runs cannot refill the bucket past the burst; the trusted limits stay at
//! their defaults throughout.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use switchboard_protocol::auth::{ApiKeys, Authenticator, ChannelGrants, Claims, Hs256Key};
use switchboard_protocol::server::HubConfig;
use switchboard_runtime::server::AuthenticatorVerifier;
use switchboard_runtime::{Runtime, ServerConfig};
use switchboard_tests::http::HttpConn;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{start, test_config};

const SECRET: &[u8] = b"a-limits-by-trust-test-secret-32-bytes!";
const WRITER_KEY: &str = "backend-key";
const READER_KEY: &str = "dashboard-key";
const EVENTS: &str = "/api/v1/channels/jobs%2F1/events";
const BURST: usize = 2_000;

/// The defaults, authentication on (JWTs and two API keys: one may publish on `jobs/**`, one may only
/// subscribe), and the untrusted refill rates lowered to 1/s.
fn auth_config() -> ServerConfig {
    let mut keys = ApiKeys::new();
    keys.insert_spec(&format!("{WRITER_KEY}:publish=jobs/**"))
        .unwrap();
    keys.insert_spec(&format!("{READER_KEY}:subscribe=jobs/**"))
        .unwrap();
    let authenticator = Authenticator::new()
        .with_jwt(Hs256Key::new(SECRET).unwrap())
        .with_api_keys(keys);
    let mut config = slow_untrusted(test_config());
    config.verifier = Some(Arc::new(AuthenticatorVerifier::new(authenticator)));
    config
}

/// `config` with the untrusted refill rates at 1/s, everything else (the trusted limits too) unchanged.
fn slow_untrusted(config: ServerConfig) -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            rate_per_sec: 1,
            ..config.hub
        },
        http_rate_per_sec: 1,
        ..config
    }
}

fn token(spec: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let grants = ChannelGrants::parse_spec(spec).unwrap();
    Hs256Key::new(SECRET)
        .unwrap()
        .sign(&Claims::new("tester", now + 600).with_channels(grants))
}

/// Posts `n` events back to back on one keep-alive connection, with `credential` as a bearer token if any; the
/// count of answers by status.
async fn post_burst<R: Runtime>(
    conn: &mut HttpConn<R, R::Tcp>,
    credential: Option<&str>,
    n: usize,
) -> std::collections::BTreeMap<u16, usize> {
    let bearer = credential.map(|c| format!("Bearer {c}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..n {
        let body = json!({"event": {"i": i}}).to_string();
        let r = conn
            .request("POST", EVENTS, &headers, Some(body.as_bytes()))
            .await;
        if r.status == 429 {
            assert_eq!(r.error_code(), "RATE_LIMITED");
            assert!(r.header("retry-after").is_some());
        }
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    statuses
}

/// Sends `n` requests of `kind` on one WebSocket without waiting, then reads every answer; the count of answers
/// that are `{kind}_res` and of `RATE_LIMITED` errors (any other answer fails the test).
async fn ws_burst<R: Runtime>(
    ws: &mut WsClient<R, R::Tcp>,
    kind: &str,
    n: usize,
) -> (usize, usize) {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let data = match kind {
            "publish" => json!({"channel": "jobs/1", "event": {"token": i}}),
            _ => json!({"timestamp": i}),
        };
        ids.push(ws.send_request(kind, data).await);
    }
    let (mut answered, mut limited) = (0, 0);
    let done = format!("{kind}_res");
    for id in &ids {
        let answer = ws.recv_skip_pings().await;
        assert_eq!(answer["message_id"], json!(id), "{answer}");
        if answer["type"] == done.as_str() {
            answered += 1;
        } else if answer["data"]["code"] == "RATE_LIMITED" {
            limited += 1;
        } else {
            panic!("unexpected answer {answer}");
        }
    }
    (answered, limited)
}

/// With authentication on: a caller with an API key that may publish posts 2,000 events over keep-alive with no
/// 429, even right after anonymous and subscribe-only callers from the same address were refused with 429 past
/// their burst; a JWT with publish rights too.
pub async fn rest_publishers_with_credentials_are_not_rate_limited<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, auth_config()).await;
        let mut anonymous = HttpConn::connect(&rt, addr).await;
        let seen = post_burst(&mut anonymous, None, 300).await;
        assert!(seen.get(&401).copied().unwrap_or(0) >= 200, "{seen:?}");
        assert!(seen.get(&429).copied().unwrap_or(0) >= 1, "{seen:?}");
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), [401, 429]);

        let mut reader = HttpConn::connect(&rt, addr).await;
        let seen = post_burst(&mut reader, Some(READER_KEY), 50).await;
        assert!(seen.get(&429).copied().unwrap_or(0) >= 1, "{seen:?}");
        assert!(seen.keys().all(|s| [403, 429].contains(s)), "{seen:?}");

        let mut writer = HttpConn::connect(&rt, addr).await;
        let seen = post_burst(&mut writer, Some(WRITER_KEY), BURST).await;
        assert_eq!(
            seen,
            [(201, BURST)].into(),
            "an API key with publish rights"
        );
        let jwt = token("publish=jobs/*");
        let seen = post_burst(&mut writer, Some(&jwt), 300).await;
        assert_eq!(seen, [(201, 300)].into(), "a token with publish rights");
        server.shutdown().await;
    })
    .await
}

/// With authentication on: one WebSocket connection whose token may publish sends 2,000 publishes without
/// waiting and every one is stored; a subscribe-only token's connection gets its burst (200) and then
/// `RATE_LIMITED`; an API key with publish rights is trusted like a token.
pub async fn websocket_publishers_with_credentials_are_not_rate_limited<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, auth_config()).await;
        let writer = token("publish=jobs/**");
        let mut ws = WsClient::connect(&rt, addr, &format!("/api/ws?token={writer}")).await;
        ws.connected().await;
        assert_eq!(ws_burst(&mut ws, "publish", BURST).await, (BURST, 0));
        ws.close().await;

        let mut ws = WsClient::connect(&rt, addr, &format!("/api/ws?token={WRITER_KEY}")).await;
        ws.connected().await;
        assert_eq!(ws_burst(&mut ws, "publish", BURST).await, (BURST, 0));
        ws.close().await;

        let reader = token("subscribe=jobs/**");
        let mut ws = WsClient::connect(&rt, addr, &format!("/api/ws?token={reader}")).await;
        ws.connected().await;
        let (answered, limited) = ws_burst(&mut ws, "ping", 300).await;
        assert!(
            answered >= 200,
            "the default burst is 200: {answered} answered"
        );
        assert!(limited >= 1, "no RATE_LIMITED past the burst");
        ws.close().await;
        server.shutdown().await;
    })
    .await
}

/// With authentication off, a loopback caller is trusted: 2,000 REST publishes over keep-alive and 2,000
/// publishes over one WebSocket, with no refusal, although the untrusted refill rates are 1/s.
pub async fn loopback_callers_are_trusted_without_auth<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, slow_untrusted(test_config())).await;
        let mut conn = HttpConn::connect(&rt, addr).await;
        let seen = post_burst(&mut conn, None, BURST).await;
        assert_eq!(seen, [(201, BURST)].into());
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        assert_eq!(ws_burst(&mut ws, "publish", BURST).await, (BURST, 0));
        ws.close().await;
        let info = conn.get("/api/info").await.json();
        assert_eq!(info["limits"]["trusted_rate_per_sec"], 0);
        assert_eq!(info["limits"]["trusted_http_rate_per_sec"], 0);
        assert_eq!(info["limits"]["http_rate_per_sec"], 1);
        server.shutdown().await;
    })
    .await
}
