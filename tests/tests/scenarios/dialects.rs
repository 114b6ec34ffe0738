//! The two edge dialects (project stream, channel payload) and the frame rules every dialect shares (binary
//! frames, the size limit, WebSocket pings).

use async_tungstenite::tungstenite::Message;
use serde_json::json;
use switchboard_protocol::server::HubConfig;
use switchboard_runtime::{Runtime, ServerConfig};
use switchboard_tests::ws::{Frame, WsClient};
use switchboard_tests::{TEST_TIMEOUT, bounded, http};

use super::{start, test_config};

/// A project-stream client gets its greeting, channel events as `event_type` messages (typed events keep their
/// type and data, others become `message`), `pong`, `state`; `cancel` is acknowledged and routed as a `call`
/// with method `cancel` to the native connection that serves `projects/X`. `?since=` replays, and the alias path
/// works.
pub async fn project_stream_dialect<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut backend = WsClient::connect(&rt, addr, "/api/ws").await;
        backend.connected().await;
        let res = backend.request("serve", json!({"channel": "projects/X"})).await;
        assert_eq!(res["type"], "serve_res", "{res}");

        let mut dash = WsClient::connect(&rt, addr, "/api/v1/ws/projects/X/stream").await;
        let hello = dash.recv().await;
        assert_eq!(hello["event_type"], "connected", "{hello}");
        assert_eq!(hello["project_id"], "X");
        assert_eq!(hello["message"], "WebSocket connection established");
        assert!(hello["timestamp"].as_str().unwrap().ends_with('Z'));

        let typed = json!({"event_type": "progress_update", "data": {"pct": 50}});
        server.publish("projects/X", typed, false).await.unwrap();
        let ev = dash.recv().await;
        assert_eq!(ev["event_type"], "progress_update", "{ev}");
        assert_eq!(ev["project_id"], "X");
        assert_eq!(ev["offset"], 1);
        assert_eq!(ev["data"], json!({"pct": 50}));
        let r = http::post_json(&rt, addr, "/api/v1/channels/projects%2FX/events", &json!({"event": {"free": "form"}, "retain": true})).await;
        assert_eq!(r.status, 201);
        let ev = dash.recv().await;
        assert_eq!(ev["event_type"], "message", "{ev}");
        assert_eq!(ev["offset"], 2);
        assert_eq!(ev["data"], json!({"free": "form"}));

        dash.send(&json!({"type": "ping"})).await;
        let pong = dash.recv().await;
        assert_eq!(pong["event_type"], "pong", "{pong}");

        dash.send(&json!({"type": "get_state"})).await;
        let state = dash.recv().await;
        assert_eq!(state["event_type"], "state", "{state}");
        assert_eq!(state["offset"], 2);
        assert_eq!(state["data"], json!({"free": "form"}));

        dash.send(&json!({"type": "cancel"})).await;
        let ack = dash.recv().await;
        assert_eq!(ack["event_type"], "cancel_acknowledged", "{ack}");
        assert_eq!(ack["data"]["message"], "Cancellation request received");
        let call = backend.recv_skip_pings().await;
        assert_eq!(call["type"], "server_request", "{call}");
        assert_eq!(call["data"]["request_type"], "call");
        assert_eq!(call["data"]["channel"], "projects/X");
        assert_eq!(call["data"]["method"], "cancel");
        backend
            .send(&json!({"type": "server_response", "message_id": call["message_id"], "data": {"response_type": "call", "result": {"cancelled": true}}}))
            .await;

        dash.send(&json!({"type": "dance"})).await;
        let err = dash.recv().await;
        assert_eq!(err["event_type"], "error", "{err}");
        assert_eq!(err["data"]["recoverable"], true);

        // Resume after offset 1 on the alias path: offset 2 is replayed.
        let mut late = WsClient::connect(&rt, addr, "/api/v1/projects/X/stream?since=1").await;
        assert_eq!(late.recv().await["event_type"], "connected");
        let replay = late.recv().await;
        assert_eq!(replay["offset"], 2, "{replay}");
        // A bad since is refused before the upgrade.
        let r = http::get(&rt, addr, "/api/v1/projects/X/stream?since=abc").await;
        assert_eq!(r.status, 400);

        dash.close().await;
        late.close().await;
        backend.close().await;
        server.shutdown().await;
    })
    .await
}

/// A channel-payload client subscribes (`subscribed`), publishes `{channel, payload}` that another subscriber and
/// a native subscriber receive, gets errors in the `{channel:"error", payload:{…}}` shape, unsubscribes, and has
/// its WebSocket pings answered with pongs.
pub async fn channel_payload_dialect<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let sub = |c: &str| json!({"channel": "subscription", "payload": {"action": "subscribe", "channel": c}});
        let mut a = WsClient::connect(&rt, addr, "/ws").await;
        let mut b = WsClient::connect(&rt, addr, "/ws").await;
        for c in [&mut a, &mut b] {
            c.send(&sub("chat/1")).await;
            assert_eq!(
                c.recv().await,
                json!({"channel": "subscription", "payload": {"action": "subscribed", "channel": "chat/1"}})
            );
        }
        let mut native = WsClient::connect(&rt, addr, "/api/ws").await;
        native.connected().await;
        native.request("subscribe", json!({"channel": "chat/1"})).await;

        a.send(&json!({"channel": "chat/1", "payload": {"type": "assistant_update", "status": "started"}})).await;
        let expected = json!({"channel": "chat/1", "payload": {"type": "assistant_update", "status": "started"}});
        assert_eq!(b.recv().await, expected);
        assert_eq!(a.recv().await, expected);
        let ev = native.recv_skip_pings().await;
        assert_eq!(ev["data"]["event"], expected["payload"]);

        a.send(&json!({"nonsense": true})).await;
        let err = a.recv().await;
        assert_eq!(err["channel"], "error", "{err}");
        assert_eq!(err["payload"]["type"], "error");
        assert_eq!(err["payload"]["status"], "error");
        assert!(err["payload"]["message"].is_string());
        assert!(err["payload"]["timestamp"].is_f64());

        a.send_message(Message::Ping(b"hi".to_vec().into())).await;
        assert_eq!(a.next_frame().await, Frame::Pong(b"hi".to_vec()));

        a.send(&json!({"channel": "subscription", "payload": {"action": "unsubscribe", "channel": "chat/1"}})).await;
        assert_eq!(a.recv().await["payload"]["action"], "unsubscribed");
        server.publish("chat/1", json!({"after": 1}), false).await.unwrap();
        assert_eq!(b.recv().await["payload"], json!({"after": 1}));

        a.close().await;
        b.close().await;
        native.close().await;
        server.shutdown().await;
    })
    .await
}

/// A binary frame gets `UNSUPPORTED_FRAME` and the connection stays open; a text message over
/// `max_message_bytes` closes the connection with 1009.
pub async fn binary_and_oversize_frames<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let config = ServerConfig {
            hub: HubConfig {
                max_message_bytes: 64 * 1024,
                ..test_config().hub
            },
            ..test_config()
        };
        let (server, addr) = start(&rt, config).await;
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        ws.send_message(Message::Binary(vec![1, 2, 3].into())).await;
        let err = ws.recv_skip_pings().await;
        assert_eq!(err["type"], "error", "{err}");
        assert_eq!(err["data"]["code"], "UNSUPPORTED_FRAME");
        let res = ws.request("ping", json!({})).await;
        assert_eq!(res["type"], "ping_res");

        let big = json!({"type": "publish", "message_id": "big", "data": {"channel": "a", "event": "x".repeat(200 * 1024)}});
        ws.send(&big).await;
        let (_, code) = ws.until_close().await;
        assert_eq!(code, Some(1009));
        drop(ws);
        server.shutdown().await;
    })
    .await
}
