//! One request, one answer: protocol requests, application types, server errors, timeouts and refusals.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_protocol::wire::{ErrorCode, ServerMessage};
use switchboard_runtime::Runtime;
use switchboard_runtime::client::RequestError;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{client, server_config, start};

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Requests made before the connection is up wait for it; each gets its `_res`, or its error as
/// [`RequestError::Server`]; a request the server sits on times out; bad arguments are refused before sending.
pub async fn requests_get_their_answers_or_errors<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        server.on_message("echo", |request| async move { Ok(request.data) });
        let slow_rt = rt.clone();
        server.on_message("slow", move |request| {
            let rt = slow_rt.clone();
            async move {
                rt.sleep_until(rt.now() + Duration::from_secs(3)).await;
                Ok(request.data)
            }
        });
        let client = client(&rt, addr, 1);

        // Issued at once, before the greeting: queued offline, then answered.
        let pong = client
            .request("ping", object(json!({"timestamp": 5})), None)
            .await
            .expect("ping answered");
        match pong {
            ServerMessage::PingRes {
                timestamp,
                server_time,
            } => {
                assert_eq!(timestamp, Some(json!(5)));
                assert!(server_time > 0);
            }
            other => panic!("expected ping_res, got {other:?}"),
        }

        match client
            .request("echo", object(json!({"x": [1, 2]})), None)
            .await
        {
            Ok(ServerMessage::Custom { type_name, data }) => {
                assert_eq!(type_name, "echo_res");
                assert_eq!(data["x"], json!([1, 2]));
            }
            other => panic!("expected echo_res, got {other:?}"),
        }

        let session = client
            .create_session(Some(json!({"user": "u1"})))
            .await
            .expect("a session");
        assert!(!session.is_empty());
        client.close_session(&session).await.expect("closed");
        let again = client.close_session(&session).await.unwrap_err();
        assert_eq!(again.code(), Some(ErrorCode::SessionNotFound), "{again}");

        let state = client.get_state("fresh/channel").await.expect("state");
        assert_eq!(state.channel, "fresh/channel");
        assert_eq!((state.offset, state.state), (0, Value::Null));

        let unknown = client
            .request("no_such_type", Map::new(), None)
            .await
            .unwrap_err();
        assert_eq!(
            unknown.code(),
            Some(ErrorCode::InvalidMessageType),
            "{unknown}"
        );
        let nobody = client
            .call("jobs/none", "cancel", Value::Null)
            .await
            .unwrap_err();
        assert_eq!(nobody.code(), Some(ErrorCode::NoHandler), "{nobody}");

        let slow = client
            .request("slow", Map::new(), Some(Duration::from_millis(200)))
            .await;
        assert_eq!(slow, Err(RequestError::TimedOut));

        for refused in [
            client.publish("/bad", json!(1), false).await.unwrap_err(),
            client
                .publish("fine", Value::Null, false)
                .await
                .unwrap_err(),
            client
                .request("subscribe", Map::new(), None)
                .await
                .unwrap_err(),
        ] {
            assert!(matches!(refused, RequestError::Refused(_)), "{refused}");
        }
        assert!(matches!(
            client.subscribe("bad channel").await,
            Err(RequestError::Refused(_))
        ));
        assert!(matches!(
            client.serve("").await,
            Err(RequestError::Refused(_))
        ));

        client.close().await;
        server.shutdown().await;
    })
    .await
}
