//! The heartbeat and the per-connection rate limit, through the real server: `server_ping`s, `server_pong`s that
//! keep a connection open, a silent connection closed with 4008, and a burst answered with `RATE_LIMITED`.

use std::time::Duration;

use serde_json::json;
use switchboard_protocol::server::HubConfig;
use switchboard_runtime::{Runtime, ServerConfig};
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{start, test_config};

/// With a 100 ms heartbeat and 200 ms of grace, the server pings every connection. One that answers each
/// `server_ping` with a `server_pong` stays open over many times the grace and still gets answers; one that says
/// nothing, connected the whole time, is closed with 4008 after having been pinged.
pub async fn heartbeat_pings_and_closes_a_silent_connection_with_4008<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let config = ServerConfig {
            hub: HubConfig {
                heartbeat: Duration::from_millis(100),
                heartbeat_timeout: Duration::from_millis(200),
                ..test_config().hub
            },
            ..test_config()
        };
        let (server, addr) = start(&rt, config).await;
        let mut silent = WsClient::connect(&rt, addr, "/api/ws").await;
        silent.connected().await;
        let mut lively = WsClient::connect(&rt, addr, "/api/ws").await;
        lively.connected().await;

        // Ten pings at 100 ms: a second, over three times heartbeat + grace.
        for _ in 0..10 {
            let ping = lively.recv().await;
            assert_eq!(ping["type"], "server_ping", "{ping}");
            assert_eq!(ping["server_initiated"], true, "{ping}");
            let timestamp = ping["data"]["timestamp"].clone();
            assert!(timestamp.is_u64(), "{ping}");
            lively
                .send(&json!({
                    "type": "server_pong",
                    "message_id": ping["message_id"],
                    "data": {"timestamp": timestamp},
                }))
                .await;
        }
        let answer = lively.request("ping", json!({"timestamp": 1})).await;
        assert_eq!(answer["type"], "ping_res", "{answer}");

        let (seen, code) = silent.until_close().await;
        assert_eq!(code, Some(4008), "{seen:?}");
        assert!(
            seen.iter().any(|m| m["type"] == "server_ping"),
            "closed without having been pinged: {seen:?}"
        );
        lively.close().await;
        server.shutdown().await;
    })
    .await
}

/// With a bucket of 3 requests refilled at 1 per second, a burst of 8 pings gets its first answers and then
/// `RATE_LIMITED` errors naming the refused requests; the connection stays open and usable.
pub async fn websocket_rate_limit_answers_rate_limited<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let config = ServerConfig {
            // The test's client is on loopback without authentication, so trusted: the trusted limit is set too.
            hub: HubConfig {
                rate_per_sec: 1,
                rate_burst: 3,
                trusted_rate_per_sec: 1,
                trusted_rate_burst: 3,
                ..test_config().hub
            },
            ..test_config()
        };
        let (server, addr) = start(&rt, config).await;
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        let mut ids = Vec::new();
        for i in 0..8 {
            ids.push(ws.send_request("ping", json!({"timestamp": i})).await);
        }
        let mut answered = 0;
        let mut limited = 0;
        for id in &ids {
            let answer = ws.recv_skip_pings().await;
            assert_eq!(answer["message_id"], json!(id), "{answer}");
            match answer["type"].as_str() {
                Some("ping_res") => answered += 1,
                Some("error") => {
                    assert_eq!(answer["data"]["code"], "RATE_LIMITED", "{answer}");
                    limited += 1;
                }
                _ => panic!("unexpected answer {answer}"),
            }
        }
        assert!(answered >= 3, "the burst allows 3: {answered} answered");
        assert!(
            limited >= 1,
            "no RATE_LIMITED in a burst of 8 over a bucket of 3"
        );
        assert_eq!(answered + limited, 8);
        // The connection stays open: once the bucket refills, a request is answered again.
        rt.sleep_until(rt.now() + Duration::from_millis(1100)).await;
        let answer = ws.request("ping", json!({"timestamp": 9})).await;
        assert_eq!(answer["type"], "ping_res", "{answer}");
        ws.close().await;
        server.shutdown().await;
    })
    .await
}
