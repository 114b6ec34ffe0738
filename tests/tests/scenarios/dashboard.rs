//! What the dashboard page uses, over HTTP: the page itself (served only when configured, with its strict CSP),
//! the channels route (filtered by the token's grants), and the call route (a routed call: the serving
//! connection gets the same `server_request` as for a WebSocket `call`, and its answer or error comes back as the
//! HTTP reply).

use futures_lite::future::zip;
use serde_json::json;
use switchboard_protocol::server::Permissions;
use switchboard_runtime::server::StaticTokens;
use switchboard_runtime::{Runtime, ServerConfig};
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded, http};

use super::{start, test_config};

/// The page, the channels route and the call route.
pub async fn dashboard_page_channel_list_and_call_route<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (off, off_addr) = start(&rt, test_config()).await;
        assert_eq!(http::get(&rt, off_addr, "/").await.status, 404, "off unless configured");
        off.shutdown().await;

        let caller = Permissions::from_patterns(vec!["jobs/**".into()], vec![], vec![], vec!["jobs/**".into()]);
        let tokens = StaticTokens::new()
            .with("admin", Permissions::allow_all())
            .with("caller", caller);
        let config = ServerConfig {
            dashboard: true,
            ..test_config().with_verifier(tokens)
        };
        let (server, addr) = start(&rt, config).await;
        for path in ["/", "/ui"] {
            let page = http::get(&rt, addr, path).await;
            assert_eq!(page.status, 200);
            assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
            let csp = page.header("content-security-policy").expect("a CSP");
            assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"), "{csp}");
            assert!(page.text().contains("new EventSource("));
        }

        let mut worker = WsClient::connect(&rt, addr, "/api/ws?token=admin").await;
        worker.connected().await;
        assert_eq!(worker.request("serve", json!({"channel": "jobs/j1"})).await["type"], "serve_res");
        worker.request("subscribe", json!({"channel": "secret"})).await;

        let list = http::get(&rt, addr, "/api/v1/channels?token=caller").await;
        assert_eq!(
            list.json(),
            json!({"channels": [{"channel": "jobs/j1", "offset": 0, "subscribers": 0, "serving": true}]}),
            "only what the token may read"
        );
        assert_eq!(http::get(&rt, addr, "/api/v1/channels").await.status, 401);

        let call = async {
            let mut conn = http::HttpConn::connect(&rt, addr).await;
            conn.request(
                "POST",
                "/api/v1/channels/jobs%2Fj1/call",
                &[("Authorization", "Bearer caller")],
                Some(br#"{"method":"approve","params":{"by":"ops"}}"#),
            )
            .await
        };
        let serve = async {
            let request = worker.recv_skip_pings().await;
            assert_eq!(request["data"]["request_type"], "call", "{request}");
            assert_eq!(request["data"]["method"], "approve");
            assert_eq!(request["data"]["params"], json!({"by": "ops"}));
            worker
                .send(&json!({"type": "server_response", "message_id": request["message_id"],
                               "data": {"response_type": "call", "result": {"approved": true}}}))
                .await;
        };
        let (reply, ()) = zip(call, serve).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.json(),
            json!({"channel": "jobs/j1", "method": "approve", "result": {"approved": true}})
        );

        let refused = http::request(&rt, addr, "POST", "/api/v1/channels/secret/call", &[("Authorization", "Bearer caller")], Some(br#"{"method":"x"}"#)).await;
        assert_eq!(refused.status, 403);
        let nobody = http::request(&rt, addr, "POST", "/api/v1/channels/jobs%2Fnone/call", &[("Authorization", "Bearer caller")], Some(br#"{"method":"x"}"#)).await;
        assert_eq!((nobody.status, nobody.error_code().as_str()), (503, "NO_HANDLER"));
        let bad = http::request(&rt, addr, "POST", "/api/v1/channels/jobs%2Fj1/call", &[("Authorization", "Bearer caller")], Some(b"{}")).await;
        assert_eq!(bad.status, 400);
        worker.close().await;
        server.shutdown().await;
    })
    .await
}
