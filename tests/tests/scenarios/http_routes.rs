//! The HTTP front: every route of PROTOCOL §7 and its errors, the request limits, keep-alive, and the WebSocket
//! handshake's refusals (bad key, bad version, missing token).

use serde_json::json;
use switchboard_protocol::server::Permissions;
use switchboard_runtime::server::StaticTokens;
use switchboard_runtime::{Runtime, ServerConfig};
use switchboard_tests::http::{self, HttpConn};
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{start, test_config};

/// Health, readiness, info, connections, project connections and metrics answer with the documented shapes;
/// unknown paths are 404, wrong methods 405 with `Allow`, bad JSON, fields, names and parameters 400.
pub async fn http_routes_and_their_errors<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;

        let r = http::get(&rt, addr, "/health").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["status"], "healthy");
        assert!(r.json()["version"].is_string());
        assert_eq!(http::get(&rt, addr, "/health/live").await.json(), json!({"status": "alive"}));
        let r = http::get(&rt, addr, "/health/ready").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["status"], "ready");

        let info = http::get(&rt, addr, "/api/info").await.json();
        assert_eq!(info["name"], "switchboard");
        assert_eq!(info["protocol"], 1);
        assert_eq!(info["dialects"].as_array().unwrap().len(), 5);
        assert_eq!(info["limits"]["max_message_bytes"], 1024 * 1024);
        assert_eq!(info["limits"]["max_http_body_bytes"], 4 * 1024);
        assert!(info["features"].as_array().unwrap().contains(&json!("recovery")));

        // Connections: one native, one project stream, one channel payload.
        let mut native = WsClient::connect(&rt, addr, "/api/ws").await;
        let app_id = native.connected().await;
        let mut stream = WsClient::connect(&rt, addr, "/api/v1/ws/projects/p9/stream").await;
        assert_eq!(stream.recv().await["event_type"], "connected");
        let mut payload = WsClient::connect(&rt, addr, "/ws").await;
        payload
            .send(&json!({"channel": "subscription", "payload": {"action": "subscribe", "channel": "projects/p9"}}))
            .await;
        assert_eq!(payload.recv().await["payload"]["action"], "subscribed");
        let c = http::get(&rt, addr, "/api/connections").await.json();
        assert_eq!(c["active_connections"], 3, "{c}");
        assert_eq!(
            c["by_dialect"],
            json!({"native": 1, "project_stream": 1, "channel_payload": 1, "sse": 0, "project_stream_sse": 0})
        );
        assert!(c["apps"].as_array().unwrap().contains(&json!(app_id)));
        let p = http::get(&rt, addr, "/api/v1/projects/p9/connections").await;
        assert_eq!(p.status, 200);
        assert_eq!(p.json(), json!({"project_id": "p9", "active_connections": 2}));

        server.publish("projects/p9", json!({"x": 1}), false).await.unwrap();
        let m = http::get(&rt, addr, "/metrics").await;
        assert_eq!(m.status, 200);
        assert!(m.header("content-type").unwrap().starts_with("text/plain"));
        let text = m.text();
        for line in [
            "switchboard_connections{dialect=\"native\"} 1",
            "switchboard_connections{dialect=\"project_stream\"} 1",
            "switchboard_connections{dialect=\"channel_payload\"} 1",
            "switchboard_publishes_total 1",
            "switchboard_deliveries_total 2",
            "switchboard_http_requests_total{status=\"200\"} ",
            "switchboard_http_requests_total{status=\"101\"} 3",
            "process_resident_memory_bytes ",
            "switchboard_accept_errors_total 0",
        ] {
            assert!(text.contains(line), "metrics lack {line:?}:\n{text}");
        }

        // Errors.
        let r = http::get(&rt, addr, "/nope").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.error_code(), "NOT_FOUND");
        assert!(r.json()["error"]["message"].is_string());
        let r = http::request(&rt, addr, "DELETE", "/health", &[], None).await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        assert_eq!(r.error_code(), "METHOD_NOT_ALLOWED");
        let r = http::request(&rt, addr, "PUT", "/api/v1/channels/a/events", &[], None).await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
        let r = http::request(&rt, addr, "POST", "/api/v1/channels/a/events", &[], Some(b"{nope")).await;
        assert_eq!((r.status, r.error_code().as_str()), (400, "INVALID_JSON"));
        let r = http::post_json(&rt, addr, "/api/v1/channels/a/events", &json!({"retain": true})).await;
        assert_eq!((r.status, r.error_code().as_str()), (400, "VALIDATION_ERROR"));
        let r = http::post_json(&rt, addr, "/api/v1/channels/a%20b/events", &json!({"event": 1})).await;
        assert_eq!((r.status, r.error_code().as_str()), (400, "INVALID_CHANNEL"));
        let r = http::get(&rt, addr, "/api/v1/channels/a/events?limit=zero").await;
        assert_eq!((r.status, r.error_code().as_str()), (400, "VALIDATION_ERROR"));
        let r = http::get(&rt, addr, "/api/v1/channels/a/events?since=-1").await;
        assert_eq!(r.status, 400);
        let r = http::get(&rt, addr, "/api/v1/channels/a%zz/state").await;
        assert_eq!(r.status, 400);
        // A WebSocket endpoint without an upgrade.
        let r = http::get(&rt, addr, "/api/ws").await;
        assert_eq!(r.status, 400);

        native.close().await;
        stream.close().await;
        payload.close().await;
        server.shutdown().await;
    })
    .await
}

/// 413 for a body over the limit, 431 for a head over 16 KiB, 411 for a chunked body, 429 with `Retry-After`
/// past the publish rate; several requests share one keep-alive connection, `Connection: close` ends it, and
/// `HEAD` gets the head alone.
pub async fn http_limits_and_keep_alive<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let config = ServerConfig {
            // The test's client is on loopback without authentication, so trusted: the trusted limit is set too.
            http_rate_per_sec: 1,
            http_rate_burst: 5,
            trusted_http_rate_per_sec: 1,
            trusted_http_rate_burst: 5,
            ..test_config()
        };
        let (server, addr) = start(&rt, config).await;

        let big = json!({"event": "x".repeat(5000)});
        let r = http::post_json(&rt, addr, "/api/v1/channels/a/events", &big).await;
        assert_eq!((r.status, r.error_code().as_str()), (413, "PAYLOAD_TOO_LARGE"));

        let huge = "y".repeat(17 * 1024);
        let r = http::request(&rt, addr, "GET", "/health", &[("X-Big", &huge)], None).await;
        assert_eq!((r.status, r.error_code().as_str()), (431, "HEADERS_TOO_LARGE"));

        let mut conn = HttpConn::connect(&rt, addr).await;
        conn.send_raw(b"POST /api/v1/channels/a/events HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            .await;
        let r = conn.read_response(false).await;
        assert_eq!(r.status, 411);
        assert!(conn.is_closed_by_server().await);

        let mut conn = HttpConn::connect(&rt, addr).await;
        for i in 1..=3u64 {
            let r = conn
                .post_json("/api/v1/channels/k/events", &json!({"event": {"i": i}}))
                .await;
            assert_eq!(r.status, 201);
            assert_eq!(r.header("connection"), Some("keep-alive"));
            assert_eq!(r.json()["offset"], i);
        }
        // Past the burst, publishing is refused with 429 until tokens come back (one a second).
        let mut limited = None;
        for _ in 0..50 {
            let r = conn
                .post_json("/api/v1/channels/k/events", &json!({"event": "more"}))
                .await;
            if r.status == 429 {
                limited = Some(r);
                break;
            }
            assert_eq!(r.status, 201);
        }
        let r = limited.expect("the rate limit is reached");
        assert_eq!(r.error_code(), "RATE_LIMITED");
        assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
        let h = conn.request("HEAD", "/health", &[], None).await;
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        assert!(h.header("content-length").unwrap().parse::<usize>().unwrap() > 0);
        let r = conn.request("GET", "/health/live", &[("Connection", "close")], None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(conn.is_closed_by_server().await);

        // Two pipelined requests in one write are answered in order.
        let mut conn = HttpConn::connect(&rt, addr).await;
        conn.send_raw(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        assert_eq!(conn.read_response(false).await.status, 200);
        assert_eq!(conn.read_response(false).await.status, 404);

        // Garbage is a 400 and the connection closes.
        let mut conn = HttpConn::connect(&rt, addr).await;
        conn.send_raw(b"NOT HTTP AT ALL\x01\r\n\r\n").await;
        assert_eq!(conn.read_response(false).await.status, 400);
        assert!(conn.is_closed_by_server().await);

        server.shutdown().await;
    })
    .await
}

const UPGRADE: &str =
    "GET /api/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";

/// A bad `Sec-WebSocket-Key` or version is a 400 before any upgrade (the version refusal names version 13), and
/// so is a GET without the upgrade headers; a good handshake gets 101 with the RFC's accept key.
pub async fn bad_handshakes_are_refused<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let attempt = |extra: &'static str| {
            let rt = rt.clone();
            async move {
                let mut conn = HttpConn::connect(&rt, addr).await;
                conn.send_raw(format!("{UPGRADE}{extra}\r\n").as_bytes())
                    .await;
                conn.read_response(false).await
            }
        };
        let r = attempt("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-base64\r\n").await;
        assert_eq!((r.status, r.error_code().as_str()), (400, "BAD_REQUEST"));
        let r = attempt("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n")
            .await;
        assert_eq!(r.status, 400);
        let r =
            attempt("Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
                .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.header("sec-websocket-version"), Some("13"));
        let r = attempt("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.header("sec-websocket-version"), Some("13"));

        let r =
            attempt("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
                .await;
        assert_eq!(r.status, 101);
        assert_eq!(
            r.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );

        let r = http::request(&rt, addr, "POST", "/api/ws", &[], None).await;
        assert_eq!(r.status, 405);
        server.shutdown().await;
    })
    .await
}

/// With a verifier, a missing or unknown token is a 401 JSON answer (with `WWW-Authenticate: Bearer`, on the
/// upgrade and on REST alike) before the upgrade; a token in the query or
/// the `Authorization` header is let in with its permissions, which the hub and the channel routes enforce.
pub async fn tokens_are_checked_before_the_upgrade<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let reader = Permissions::from_patterns(vec!["public/**".into()], vec![], vec![], vec![]);
        let tokens = StaticTokens::new()
            .with("admin", Permissions::allow_all())
            .with("reader", reader);
        let config = ServerConfig {
            ..test_config().with_verifier(tokens)
        };
        let (server, addr) = start(&rt, config).await;

        let key = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let mut conn = HttpConn::connect(&rt, addr).await;
        conn.send_raw(format!("{UPGRADE}{key}\r\n").as_bytes()).await;
        let r = conn.read_response(false).await;
        assert_eq!((r.status, r.error_code().as_str()), (401, "UNAUTHORIZED"));
        // RFC 9110 §11.6.1: a 401 names the scheme the client must use.
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{r:?}");
        let mut conn = HttpConn::connect(&rt, addr).await;
        conn.send_raw(
            format!("GET /api/ws?token=wrong HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{key}\r\n")
                .as_bytes(),
        )
        .await;
        let r = conn.read_response(false).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{r:?}");

        let mut admin = WsClient::connect(&rt, addr, "/api/ws?token=admin").await;
        admin.connected().await;
        let mut conn = HttpConn::connect(&rt, addr).await;
        conn.send_raw(
            format!("{UPGRADE}Authorization: Bearer reader\r\n{key}\r\n").as_bytes(),
        )
        .await;
        assert_eq!(conn.read_response(false).await.status, 101);
        drop(conn);

        let mut reader = WsClient::connect(&rt, addr, "/api/ws?token=reader").await;
        reader.connected().await;
        let ok = reader.request("subscribe", json!({"channel": "public/news"})).await;
        assert_eq!(ok["type"], "subscribe_res", "{ok}");
        let no = reader.request("subscribe", json!({"channel": "secret"})).await;
        assert_eq!(no["type"], "error");
        assert_eq!(no["data"]["code"], "FORBIDDEN");

        // REST: no token 401, reader may read public channels but not publish, admin may publish.
        let r = http::get(&rt, addr, "/api/v1/channels/public%2Fnews/state").await;
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{r:?}");
        let r = http::get(&rt, addr, "/api/v1/channels/public%2Fnews/state?token=reader").await;
        assert_eq!(r.status, 200);
        let r = http::request(
            &rt,
            addr,
            "POST",
            "/api/v1/channels/public%2Fnews/events",
            &[("Authorization", "Bearer reader")],
            Some(br#"{"event":1}"#),
        )
        .await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "FORBIDDEN"));
        let r = http::request(
            &rt,
            addr,
            "POST",
            "/api/v1/channels/public%2Fnews/events",
            &[("Authorization", "Bearer admin")],
            Some(br#"{"event":1}"#),
        )
        .await;
        assert_eq!(r.status, 201);
        // Health stays open.
        assert_eq!(http::get(&rt, addr, "/health").await.status, 200);

        admin.close().await;
        reader.close().await;
        server.shutdown().await;
    })
    .await
}

/// A connection that sends nothing, or half a head, is dropped after `handshake_timeout`; a keep-alive
/// connection is dropped after `idle_timeout` without a request.
pub async fn idle_connections_time_out<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let config = ServerConfig {
            handshake_timeout: std::time::Duration::from_millis(200),
            idle_timeout: std::time::Duration::from_millis(200),
            ..test_config()
        };
        let (server, addr) = start(&rt, config).await;
        let silent = HttpConn::connect(&rt, addr).await;
        assert!(silent.is_closed_by_server().await);
        let mut half = HttpConn::connect(&rt, addr).await;
        half.send_raw(b"GET /health HTTP/1.1\r\nHost: t\r\n").await;
        assert!(half.is_closed_by_server().await);
        let mut idle = HttpConn::connect(&rt, addr).await;
        assert_eq!(idle.get("/health").await.status, 200);
        assert!(idle.is_closed_by_server().await);
        server.shutdown().await;
    })
    .await
}
