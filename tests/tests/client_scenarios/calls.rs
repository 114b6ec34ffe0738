//! Requests the other way: calls routed to a serving client, and the server's own requests and notifications.

use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use switchboard_protocol::wire::ErrorCode;
use switchboard_runtime::Runtime;
use switchboard_runtime::client::{HandlerError, RequestError};
use switchboard_runtime::server::SendError;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{client, connected, next, server_config, start};

/// A `call` reaches the client serving the channel with its method, params and the caller's `app_id`; the
/// serving client's `Ok` comes back as the result, its `Err` as a server error with its code, and a dropped
/// responder as `INTERNAL_ERROR`. Once the call stream is dropped, calls are refused with `NO_HANDLER`.
pub async fn routed_call_through_serve<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let worker = client(&rt, addr, 4);
        let caller = client(&rt, addr, 5);
        let mut caller_states = caller.state_changes();
        let caller_id = connected(&rt, &mut caller_states).await;

        let mut calls = worker.serve("projects/p1").await.expect("serving");
        assert_eq!(calls.channel(), "projects/p1");

        let (result, ()) = futures_lite::future::zip(
            caller.call("projects/p1", "cancel", json!({"reason": "user"})),
            async {
                let call = next(&rt, &mut calls).await;
                assert_eq!(call.channel, "projects/p1");
                assert_eq!(call.method, "cancel");
                assert_eq!(call.params, json!({"reason": "user"}));
                // No authentication: the caller is named by its app id alone.
                let who = call.caller().expect("named");
                assert_eq!(
                    (who.app_id.as_str(), &who.sub, &who.key),
                    (caller_id.as_str(), &None, &None)
                );
                call.responder.respond(Ok(json!({"cancelled": true})));
            },
        )
        .await;
        assert_eq!(result, Ok(json!({"cancelled": true})));

        let (refused, ()) =
            futures_lite::future::zip(caller.call("projects/p1", "approve", Value::Null), async {
                let call = next(&rt, &mut calls).await;
                assert_eq!(call.params, Value::Null);
                call.responder
                    .respond(Err(HandlerError::new("FORBIDDEN", "not yours")));
            })
            .await;
        let refused = refused.unwrap_err();
        assert_eq!(refused.code(), Some(ErrorCode::Forbidden), "{refused}");

        let (dropped, ()) =
            futures_lite::future::zip(caller.call("projects/p1", "pause", Value::Null), async {
                drop(next(&rt, &mut calls).await);
            })
            .await;
        assert_eq!(dropped.unwrap_err().code(), Some(ErrorCode::InternalError));

        drop(calls);
        let after = caller.call("projects/p1", "cancel", Value::Null).await;
        assert!(
            matches!(
                &after,
                Err(RequestError::Server {
                    code: ErrorCode::NoHandler,
                    ..
                })
            ),
            "{after:?}"
        );

        worker.close().await;
        caller.close().await;
        server.shutdown().await;
    })
    .await
}

/// The server's `server_request` reaches the latest `server_requests()` stream and its answer goes back; with no
/// stream alive it is refused. Notifications reach every `notifications()` stream.
pub async fn server_requests_and_notifications<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let app = client(&rt, addr, 6);
        let mut states = app.state_changes();
        let mut requests = app.server_requests();
        let mut notes = app.notifications();
        let mut notes_too = app.notifications();
        let app_id = connected(&rt, &mut states).await;

        let mut ask = Map::new();
        ask.insert("question".into(), json!("proceed?"));
        let (answer, ()) = futures_lite::future::zip(
            server.send_to_app_and_wait(&app_id, "confirm", ask, None),
            async {
                let request = next(&rt, &mut requests).await;
                assert_eq!(request.request_type, "confirm");
                assert_eq!(request.data["question"], "proceed?");
                request.responder.respond(Ok(json!({"approved": true})));
            },
        )
        .await;
        let answer = answer.expect("answered");
        assert_eq!(answer["approved"], true);
        assert_eq!(answer["response_type"], "confirm");

        server
            .send_to_app(
                &app_id,
                "deploy",
                Some("v2 is out".into()),
                Some(json!({"v": 2})),
            )
            .expect("sent");
        for feed in [&mut notes, &mut notes_too] {
            let note = next(&rt, feed).await;
            assert_eq!(note.notification_type, "deploy");
            assert_eq!(note.message.as_deref(), Some("v2 is out"));
            assert_eq!(note.additional_data, Some(json!({"v": 2})));
        }

        drop(requests);
        let refused = server
            .send_to_app_and_wait(&app_id, "confirm", Map::new(), None)
            .await;
        assert!(matches!(refused, Err(SendError::Failed(_))), "{refused:?}");

        app.close().await;
        assert!(
            notes.next().await.is_none(),
            "the feed ends with the client"
        );
        server.shutdown().await;
    })
    .await
}

/// Serve takeover: a second client serving the same channel replaces the first, so new calls reach the newest;
/// a call already routed to the first still gets the first one's answer.
pub async fn serve_takeover_the_newest_wins_and_routed_calls_keep_their_server<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let older = client(&rt, addr, 21);
        let newer = client(&rt, addr, 22);
        let caller = client(&rt, addr, 23);
        let mut older_calls = older.serve("svc/who").await.expect("serving");

        let (first, ()) =
            futures_lite::future::zip(caller.call("svc/who", "ask", json!(1)), async {
                let routed = next(&rt, &mut older_calls).await;
                assert_eq!(routed.params, json!(1));
                let mut newer_calls = newer.serve("svc/who").await.expect("taking over");
                let (second, ()) =
                    futures_lite::future::zip(caller.call("svc/who", "ask", json!(2)), async {
                        let call = next(&rt, &mut newer_calls).await;
                        assert_eq!(
                            call.params,
                            json!(2),
                            "the second call went to the newest server"
                        );
                        call.responder.respond(Ok(json!("newer")));
                    })
                    .await;
                assert_eq!(second, Ok(json!("newer")));
                routed.responder.respond(Ok(json!("older")));
                drop(newer_calls);
            })
            .await;
        assert_eq!(first, Ok(json!("older")), "the routed call kept its server");
        for app in [older, newer, caller] {
            app.close().await;
        }
        server.shutdown().await;
    })
    .await
}
