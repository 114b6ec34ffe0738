//! The native dialect over TCP: greeting, subscribe, publish over WebSocket and over HTTP, delivery, history.

use serde_json::json;
use switchboard_runtime::Runtime;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded, http};

use super::{start, test_config};

/// A raw WebSocket client on `/api/ws` gets `connected`, subscribes, and receives what it and an HTTP client
/// publish, in offset order; the history and state routes then show the same events.
pub async fn native_subscribe_and_publish_over_ws_and_http<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        let app_id = ws.connected().await;
        assert!(server.is_app_connected(&app_id));

        let res = ws
            .request("subscribe", json!({"channel": "projects/p1"}))
            .await;
        assert_eq!(res["type"], "subscribe_res", "{res}");
        assert_eq!(res["data"]["channel"], "projects/p1");
        assert_eq!(res["data"]["offset"], 0);
        assert_eq!(res["data"]["recovered"], json!(null));
        let epoch = res["data"]["epoch"].as_str().unwrap().to_owned();
        let p1 = switchboard_protocol::wire::ChannelName::new("projects/p1").unwrap();
        assert_eq!(epoch, server.epoch(&p1));

        // Publish over the WebSocket: the answer and the event (in either order).
        let id = ws
            .send_request(
                "publish",
                json!({"channel": "projects/p1", "event": {"n": 1}}),
            )
            .await;
        let mut got = vec![ws.recv_skip_pings().await, ws.recv_skip_pings().await];
        got.sort_by_key(|m| m["type"].as_str().unwrap().to_owned());
        assert_eq!(got[0]["type"], "event", "{got:?}");
        assert_eq!(got[0]["data"]["offset"], 1);
        assert_eq!(got[0]["data"]["event"], json!({"n": 1}));
        assert_eq!(got[0]["data"]["epoch"], json!(epoch));
        assert_eq!(got[1]["type"], "publish_res");
        assert_eq!(got[1]["message_id"], json!(id));
        assert_eq!(got[1]["data"]["offset"], 1);

        // Publish over HTTP, retained.
        let r = http::post_json(
            &rt,
            addr,
            "/api/v1/channels/projects%2Fp1/events",
            &json!({"event": {"n": 2}, "retain": true}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json(), json!({"channel": "projects/p1", "offset": 2}));
        let ev = ws.recv_skip_pings().await;
        assert_eq!(ev["type"], "event");
        assert_eq!(ev["data"]["offset"], 2);
        assert_eq!(ev["data"]["event"], json!({"n": 2}));

        // And from the server API.
        assert_eq!(
            server.publish("projects/p1", json!({"n": 3}), false).await,
            Ok(3)
        );
        let ev = ws.recv_skip_pings().await;
        assert_eq!(ev["data"]["offset"], 3);

        let page = http::get(
            &rt,
            addr,
            "/api/v1/channels/projects%2Fp1/events?since=0&limit=2",
        )
        .await;
        assert_eq!(page.status, 200);
        let page = page.json();
        assert_eq!(page["epoch"], json!(epoch));
        assert_eq!(
            page["events"],
            json!([{"offset": 1, "event": {"n": 1}}, {"offset": 2, "event": {"n": 2}}])
        );
        assert_eq!(page["next_since"], 2);
        let rest = http::get(&rt, addr, "/api/v1/channels/projects/p1/events?since=2")
            .await
            .json();
        assert_eq!(rest["events"], json!([{"offset": 3, "event": {"n": 3}}]));
        assert_eq!(rest["next_since"], json!(null));

        let state = http::get(&rt, addr, "/api/v1/channels/projects%2Fp1/state").await;
        assert_eq!(state.status, 200);
        assert_eq!(
            state.json(),
            json!({"channel": "projects/p1", "epoch": epoch, "offset": 3, "state": {"n": 2}})
        );
        let res = ws
            .request("get_state", json!({"channel": "projects/p1"}))
            .await;
        assert_eq!(res["data"]["state"], json!({"n": 2}));

        // A ping answers with the echoed timestamp.
        let res = ws.request("ping", json!({"timestamp": 5})).await;
        assert_eq!(res["type"], "ping_res");
        assert_eq!(res["data"]["timestamp"], 5);

        ws.close().await;
        server.shutdown().await;
        assert!(!server.is_app_connected(&app_id));
    })
    .await
}
