//! The server's lifecycle: slow consumers, graceful shutdown, a listener stopped and restarted under a living hub,
//! and the in-memory transport.

use serde_json::{Value, json};
use switchboard_protocol::server::HubConfig;
use switchboard_runtime::memory::duplex;
use switchboard_runtime::{Runtime, ServerConfig};
use switchboard_tests::http::{self, HttpConn};
use switchboard_tests::ws::WsClient;
use switchboard_tests::yielding::Yielding;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{start, test_config};

fn offsets(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter(|m| m["type"] == "event")
        .map(|m| m["data"]["offset"].as_u64().unwrap())
        .collect()
}

/// A subscriber that stops reading (an in-memory pipe of 4 KiB) while 90 events of ~1 KiB are published is closed
/// with 1013 once 64 KiB are queued for it. It still receives every event queued before the close, in order, then
/// the close frame; reconnecting with `since` recovers the rest from history, with no gap and no duplicate.
pub async fn slow_consumer_is_closed_and_recovers<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let config = ServerConfig {
            hub: HubConfig {
                max_queued_bytes: 64 * 1024,
                ..test_config().hub
            },
            ..test_config()
        };
        let (server, addr) = start(&rt, config).await;
        let (client_end, server_end) = duplex(4096);
        server.serve_stream(server_end);
        let mut slow = WsClient::over(&rt, client_end, "/api/ws").await;
        slow.connected().await;
        let res = slow.request("subscribe", json!({"channel": "feed"})).await;
        let epoch = res["data"]["epoch"].clone();

        const TOTAL: u64 = 90;
        let pad = "x".repeat(1000);
        for i in 1..=TOTAL {
            server
                .publish("feed", json!({"i": i, "pad": pad}), false)
                .await
                .unwrap();
        }
        let (seen, code) = slow.until_close().await;
        assert_eq!(code, Some(1013));
        let got = offsets(&seen);
        let last = *got.last().expect("some events before the close");
        assert_eq!(got, (1..=last).collect::<Vec<_>>(), "in order, no gap");
        assert!(last < TOTAL, "the slow consumer missed the tail");

        let mut back = WsClient::connect(&rt, addr, "/api/ws").await;
        back.connected().await;
        let res = back
            .request(
                "subscribe",
                json!({"channel": "feed", "since": {"epoch": epoch, "offset": last}}),
            )
            .await;
        assert_eq!(res["data"]["recovered"], true, "{res}");
        let mut recovered = Vec::new();
        while recovered.len() < (TOTAL - last) as usize {
            let m = back.recv_skip_pings().await;
            assert_eq!(m["data"]["event"]["i"], m["data"]["offset"]);
            recovered.push(m);
        }
        assert_eq!(offsets(&recovered), (last + 1..=TOTAL).collect::<Vec<_>>());
        back.close().await;
        server.shutdown().await;
    })
    .await
}

/// `drain` makes `/health/ready` answer 503 and refuses new WebSockets with 503 while open ones keep working;
/// `shutdown` then closes every WebSocket (every dialect) with 1001, waits for them, and releases the port.
pub async fn graceful_shutdown_closes_with_1001<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut native = WsClient::connect(&rt, addr, "/api/ws").await;
        native.connected().await;
        let mut stream = WsClient::connect(&rt, addr, "/api/v1/ws/projects/p/stream").await;
        stream.recv().await;
        let mut idle_http = HttpConn::connect(&rt, addr).await;
        assert_eq!(idle_http.get("/health/ready").await.status, 200);

        server.drain();
        let r = http::get(&rt, addr, "/health/ready").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.json()["status"], "not_ready");
        let mut conn = HttpConn::connect(&rt, addr).await;
        conn.send_raw(b"GET /api/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            .await;
        assert_eq!(conn.read_response(false).await.status, 503);
        assert_eq!(native.request("ping", json!({})).await["type"], "ping_res");

        let ((), closes) = futures_lite::future::zip(server.shutdown(), async {
            let (_, a) = native.until_close().await;
            let (_, b) = stream.until_close().await;
            (a, b)
        })
        .await;
        assert_eq!(closes, (Some(1001), Some(1001)));
        assert!(idle_http.is_closed_by_server().await);
        assert!(rt.connect(addr).await.is_err(), "the port is released");
        assert_eq!(server.stats().connections, 0);
    })
    .await
}

/// The listener stops (its WebSockets get 1001) and starts again on the same port while the hub lives on: a
/// reconnecting client that resubscribes with `since` recovers every event published while it was away.
pub async fn listener_restart_keeps_the_hub_and_history<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        let res = ws.request("subscribe", json!({"channel": "news"})).await;
        let epoch = res["data"]["epoch"].clone();
        for i in 1..=3 {
            server
                .publish("news", json!({"i": i}), false)
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(ws.recv_skip_pings().await);
        }
        assert_eq!(offsets(&seen), vec![1, 2, 3]);

        let ((), (_, code)) =
            futures_lite::future::zip(server.stop_listening(), ws.until_close()).await;
        assert_eq!(code, Some(1001));
        assert!(server.local_addr().is_none());
        assert!(rt.connect(addr).await.is_err(), "nobody listens");
        drop(ws);
        for i in 4..=6 {
            server
                .publish("news", json!({"i": i}), false)
                .await
                .unwrap();
        }

        assert_eq!(
            server.listen(addr).await.expect("the same port again"),
            addr
        );
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        let res = ws
            .request(
                "subscribe",
                json!({"channel": "news", "since": {"epoch": epoch, "offset": 3}}),
            )
            .await;
        assert_eq!(res["data"]["recovered"], true, "{res}");
        assert_eq!(res["data"]["offset"], 6);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(ws.recv_skip_pings().await);
        }
        assert_eq!(offsets(&seen), vec![4, 5, 6]);
        server
            .publish("news", json!({"i": 7}), false)
            .await
            .unwrap();
        assert_eq!(offsets(&[ws.recv_skip_pings().await]), vec![7]);
        ws.close().await;
        server.shutdown().await;
    })
    .await
}

/// `serve_stream` over the in-memory duplex transport answers HTTP and speaks WebSocket exactly as over TCP.
pub async fn in_memory_transport_serves_the_same_protocol<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let server = switchboard_runtime::Server::new(rt.clone(), test_config());
        assert!(server.local_addr().is_none());
        let (client_end, server_end) = duplex(64 * 1024);
        server.serve_stream(server_end);
        let mut conn = HttpConn::new(&rt, client_end);
        assert_eq!(conn.get("/health").await.json()["status"], "healthy");
        assert_eq!(conn.get("/nope").await.status, 404);

        let (client_end, server_end) = duplex(64 * 1024);
        server.serve_stream(server_end);
        let mut ws = WsClient::over(&rt, client_end, "/api/ws").await;
        ws.connected().await;
        ws.request("subscribe", json!({"channel": "mem"})).await;
        server.publish("mem", json!("hello"), false).await.unwrap();
        let ev = ws.recv_skip_pings().await;
        assert_eq!(ev["data"]["event"], "hello");
        ws.close().await;
        server.shutdown().await;
    })
    .await
}

/// A client that closes first gets exactly one close frame back (its own code, echoed), after the events queued
/// before it, and then the end of the stream: the server's answer to the peer's close goes through the same queue
/// as its frames, and nothing follows it.
pub async fn a_peers_close_is_answered_once_after_what_was_queued<R: Runtime>(rt: R) {
    use async_tungstenite::tungstenite::Message;
    use async_tungstenite::tungstenite::protocol::CloseFrame;
    use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use futures_util::StreamExt;

    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut client = WsClient::connect(&rt, addr, "/api/ws").await;
        client.connected().await;
        let res = client
            .request("subscribe", json!({"channel": "feed"}))
            .await;
        assert_eq!(res["type"], "subscribe_res", "{res}");
        for i in 1..=3 {
            server
                .publish("feed", json!({"i": i}), false)
                .await
                .unwrap();
        }
        let ws = client.inner();
        ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
        let mut events = Vec::new();
        let mut closes = Vec::new();
        while let Some(next) = ws.next().await {
            match next.expect("a clean close, no error") {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == "event" {
                        events.push(value);
                    }
                }
                Message::Close(frame) => closes.push(frame),
                _ => {}
            }
        }
        assert_eq!(offsets(&events), vec![1, 2, 3], "queued before the close");
        assert_eq!(closes.len(), 1, "one close frame: {closes:?}");
        assert_eq!(closes[0].as_ref().map(|f| f.code), Some(CloseCode::Normal));
        server.shutdown().await;
    })
    .await
}

/// A wake-up of the socket's that comes while the session's task is still in the poll that armed it is not lost:
/// the server's end yields before every read, waking the reader at once, as a reactor on another thread does when
/// bytes arrive just after the wait was armed. A channel-payload connection is the sharp case: the server sends
/// nothing on connecting, so nothing else would wake the task to read the subscription.
pub async fn a_wake_up_during_the_sessions_own_poll_is_not_lost<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let server = switchboard_runtime::Server::new(rt.clone(), test_config());
        for path in ["/ws", "/api/ws"] {
            let (client_end, server_end) = duplex(64 * 1024);
            server.serve_stream(Yielding::new(server_end));
            let mut ws = WsClient::over(&rt, client_end, path).await;
            if path == "/ws" {
                let sub = json!({"channel": "subscription", "payload": {"action": "subscribe", "channel": "c/1"}});
                ws.send(&sub).await;
                assert_eq!(ws.recv().await["payload"]["action"], "subscribed", "{path}");
                ws.send(&sub).await;
                assert_eq!(ws.recv().await["payload"]["action"], "subscribed", "{path}");
            } else {
                ws.connected().await;
                let res = ws.request("subscribe", json!({"channel": "c/1"})).await;
                assert_eq!(res["type"], "subscribe_res", "{res}");
            }
            ws.close().await;
        }
        server.shutdown().await;
    })
    .await
}
