//! The channel-payload dialect's control channels (`subscription`, `error`) carry no events: publishing or
//! subscribing to them is refused in every dialect, on REST and through the app API, so a `/ws` client never
//! receives a published event that looks like a server error.

use async_tungstenite::tungstenite::Message;
use serde_json::json;
use switchboard_protocol::wire::NameError;
use switchboard_runtime::Runtime;
use switchboard_runtime::server::PublishError;
use switchboard_tests::ws::{Frame, WsClient};
use switchboard_tests::{TEST_TIMEOUT, bounded, http};

use super::{start, test_config};

pub async fn reserved_channels_are_refused_in_every_dialect<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut chat = WsClient::connect(&rt, addr, "/ws").await;
        let mut native = WsClient::connect(&rt, addr, "/api/ws").await;
        native.connected().await;

        for name in ["error", "subscription"] {
            chat.send(&json!({"channel": "subscription", "payload": {"action": "subscribe", "channel": name}}))
                .await;
            let refused = chat.recv().await;
            assert_eq!(refused["channel"], "error", "{refused}");
            assert_eq!(refused["payload"]["error_details"]["code"], "INVALID_CHANNEL", "{refused}");

            for kind in ["subscribe", "publish"] {
                let res = native.request(kind, json!({"channel": name, "event": {"type": "error"}})).await;
                assert_eq!(res["type"], "error", "{kind} {name}: {res}");
                assert_eq!(res["data"]["code"], "INVALID_CHANNEL", "{kind} {name}: {res}");
                assert!(
                    res["data"]["message"].as_str().unwrap().contains("reserved"),
                    "{kind} {name}: {res}"
                );
            }

            let rest = http::post_json(&rt, addr, &format!("/api/v1/channels/{name}/events"), &json!({"event": {"x": 1}}))
                .await;
            assert_eq!((rest.status, rest.error_code().as_str()), (400, "INVALID_CHANNEL"), "{}", rest.text());

            assert_eq!(
                server.publish(name, json!({"x": 1}), false).await,
                Err(PublishError::InvalidChannel(NameError::Reserved))
            );
        }

        // Publishing on `error` from `/ws` keeps its own answer; nothing else reached the `/ws` client.
        chat.send(&json!({"channel": "error", "payload": {"x": 1}})).await;
        assert_eq!(chat.recv().await["payload"]["error_details"]["code"], "INVALID_MESSAGE_TYPE");
        chat.send_message(Message::Ping(b"end".to_vec().into())).await;
        assert_eq!(chat.next_frame().await, Frame::Pong(b"end".to_vec()));

        chat.close().await;
        native.close().await;
        server.shutdown().await;
    })
    .await
}
