//! A token's lifetime on an open connection, against a server verifying HS256 JWTs: a client with a token provider
//! refreshes when warned and outlives its first token; a connection that does not refresh is closed with 4401.
//!
//! The first tokens are already past their `exp` but inside the server's 30 s leeway, so they are accepted at the
//! handshake and lapse about 2 s later: the tests need not wait out the leeway.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use switchboard_protocol::auth::{Authenticator, ChannelGrants, Claims, Hs256Key};
use switchboard_runtime::Runtime;
use switchboard_runtime::client::{Client, TokenProvider};
use switchboard_runtime::server::AuthenticatorVerifier;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded};

use super::{connected, options, server_config, start};

const SECRET: &[u8] = b"a-token-refresh-test-secret-32-bytes";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A token for everything that expires at `exp` (unix seconds).
fn token(exp: u64) -> String {
    token_for("all=**", exp)
}

/// A token granting `spec` that expires at `exp` (unix seconds).
fn token_for(spec: &str, exp: u64) -> String {
    let grants = ChannelGrants::parse_spec(spec).expect("a valid spec");
    Hs256Key::new(SECRET)
        .expect("a valid secret")
        .sign(&Claims::new("tester", exp).with_channels(grants))
}

/// A token the server accepts now and lets lapse about 2 s from now (exp 28 s ago, leeway 30 s).
fn short_token() -> String {
    token(unix_now() - 28)
}

fn config() -> switchboard_runtime::ServerConfig {
    let key = Hs256Key::new(SECRET).expect("a valid secret");
    server_config().with_verifier(AuthenticatorVerifier::new(
        Authenticator::new().with_jwt(key),
    ))
}

/// The client's first token lapses after about 2 s; warned before, it asks its provider for a fresh token and
/// sends a `refresh`, so its connection is still the first one well past the lapse.
pub async fn a_refreshing_client_outlives_its_first_token<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, config()).await;
        let asked = Arc::new(AtomicUsize::new(0));
        let mut opts = options(41);
        opts.token = Some(short_token());
        let counter = asked.clone();
        opts.token_provider = Some(TokenProvider::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Some(token(unix_now() + 600))
        }));
        let client =
            Client::connect(rt.clone(), &format!("ws://{addr}/api/ws"), opts).expect("a valid URL");
        let mut states = client.state_changes();
        connected(&rt, &mut states).await;
        // Past the first token's lapse (at most 3 s after the handshake).
        rt.sleep_until(rt.now() + Duration::from_millis(3_500))
            .await;
        assert!(client.get_state("x").await.is_ok(), "the connection works");
        // Once for the warning; a 4401 close would have made the client redial and ask again.
        assert_eq!(asked.load(Ordering::SeqCst), 1, "asked once, no reconnect");
        client.close().await;
        server.shutdown().await;
    })
    .await
}

/// A raw connection that never refreshes gets `token_expiring`, then the 4401 close; one that refreshes with a
/// forged token is refused (`FORBIDDEN`) and keeps its connection until the same close.
pub async fn a_connection_that_does_not_refresh_is_closed_with_4401<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, config()).await;
        let path = format!("/api/ws?token={}", short_token());
        let mut ws = WsClient::connect(&rt, addr, &path).await;
        ws.connected().await;
        let forged = format!("{}x", token(unix_now() + 600));
        let refused = ws.request("refresh", json!({ "token": forged })).await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["data"]["code"], "FORBIDDEN", "{refused}");
        let (seen, code) = bounded(&rt, STEP_TIMEOUT, ws.until_close()).await;
        assert!(
            seen.iter()
                .any(|m| m["data"]["notification_type"] == "token_expiring"),
            "warned first: {seen:?}"
        );
        assert_eq!(code, Some(4401), "{seen:?}");
        server.shutdown().await;
    })
    .await
}

/// A raw connection that refreshes by itself (no client library) stays open past its first token's lapse.
pub async fn a_raw_refresh_keeps_the_connection<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, config()).await;
        let path = format!("/api/ws?token={}", short_token());
        let mut ws = WsClient::connect(&rt, addr, &path).await;
        ws.connected().await;
        let ok = ws
            .request("refresh", json!({ "token": token(unix_now() + 600) }))
            .await;
        assert_eq!(ok["type"], "refresh_res", "{ok}");
        let left = ok["data"]["expires_in_ms"].as_u64().expect("an expiry");
        assert!(left > 600_000, "{ok}");
        rt.sleep_until(rt.now() + Duration::from_millis(3_000))
            .await;
        let pong = ws.request("ping", json!({})).await;
        assert_eq!(pong["type"], "ping_res", "{pong}");
        ws.close().await;
        server.shutdown().await;
    })
    .await
}

/// A refresh with narrower grants ends the subscription they no longer cover, with `subscription_ended`
/// (`FORBIDDEN`) right after the `refresh_res`; the other subscription keeps receiving events.
pub async fn a_narrowing_refresh_ends_a_subscription<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, config()).await;
        let wide = token_for(
            "subscribe=news,subscribe=jobs/*,publish=**",
            unix_now() + 600,
        );
        let mut ws = WsClient::connect(&rt, addr, &format!("/api/ws?token={wide}")).await;
        ws.connected().await;
        for channel in ["news", "jobs/1"] {
            let ok = ws.request("subscribe", json!({ "channel": channel })).await;
            assert_eq!(ok["type"], "subscribe_res", "{ok}");
        }
        let narrow = token_for("subscribe=news,publish=**", unix_now() + 600);
        let ok = ws.request("refresh", json!({ "token": narrow })).await;
        assert_eq!(ok["type"], "refresh_res", "{ok}");
        let ended = ws.recv_skip_pings().await;
        assert_eq!(
            ended["data"]["notification_type"], "subscription_ended",
            "{ended}"
        );
        assert_eq!(
            ended["data"]["additional_data"]["channel"], "jobs/1",
            "{ended}"
        );
        assert_eq!(
            ended["data"]["additional_data"]["code"], "FORBIDDEN",
            "{ended}"
        );
        for channel in ["jobs/1", "news"] {
            let ok = ws
                .request("publish", json!({ "channel": channel, "event": channel }))
                .await;
            assert_eq!(ok["type"], "publish_res", "{ok}");
        }
        // Only the kept subscription's event arrives.
        let event = ws.recv_skip_pings().await;
        assert_eq!(event["type"], "event", "{event}");
        assert_eq!(event["data"]["channel"], "news", "{event}");
        ws.close().await;
        server.shutdown().await;
    })
    .await
}
