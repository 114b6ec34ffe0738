//! The app messaging API backends use: server requests and their answers, timeouts, notifications to an app, a
//! session and everyone, connect and disconnect callbacks, custom message handlers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, json};
use switchboard_protocol::server::{HubConfig, RequestFailure};
use switchboard_protocol::wire::ErrorCode;
use switchboard_runtime::server::{AppRequestError, SendError};
use switchboard_runtime::{Runtime, ServerConfig};
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded, eventually};

use super::{start, test_config};

/// `send_to_app_and_wait` gets the app's `server_response` data (and its error as `RequestFailure::Error`);
/// notifications reach one app, a session's owner and everyone but the excluded; `on_connect`/`on_disconnect`
/// see apps come and go; an `on_message` handler answers a custom type with `<type>_res` or an `error`.
pub async fn app_api_requests_notifications_and_handlers<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let s = seen.clone();
        server.on_connect(move |app| s.lock().unwrap().push(format!("+{}", app.app_id)));
        let s = seen.clone();
        server.on_disconnect(move |app| s.lock().unwrap().push(format!("-{}", app.app_id)));
        server.on_message("translate", |req| async move {
            match req.data.get("text").and_then(|t| t.as_str()) {
                Some(t) => {
                    let mut out = Map::new();
                    out.insert("text".into(), json!(t.to_uppercase()));
                    out.insert("from".into(), json!(req.app_id));
                    Ok(out)
                }
                None => Err(AppRequestError::new(ErrorCode::ValidationError, "text is required")),
            }
        });

        let mut a = WsClient::connect(&rt, addr, "/api/ws").await;
        let app_a = a.connected().await;
        let mut b = WsClient::connect(&rt, addr, "/api/ws").await;
        let app_b = b.connected().await;
        let mut apps = server.connected_apps();
        apps.sort();
        let mut want = vec![app_a.clone(), app_b.clone()];
        want.sort();
        assert_eq!(apps, want);
        eventually(&rt, "both connect callbacks", || seen.lock().unwrap().len() == 2).await;

        // A server request answered by the app.
        let answer = {
            let server = server.clone();
            let app_a = app_a.clone();
            let mut data = Map::new();
            data.insert("question".into(), json!("proceed?"));
            async move {
                server
                    .send_to_app_and_wait(&app_a, "confirm", data, Some(Duration::from_secs(5)))
                    .await
            }
        };
        let client = async {
            let req = a.recv_skip_pings().await;
            assert_eq!(req["type"], "server_request", "{req}");
            assert_eq!(req["server_initiated"], true);
            assert_eq!(req["data"]["request_type"], "confirm");
            assert_eq!(req["data"]["question"], "proceed?");
            a.send(&json!({"type": "server_response", "message_id": req["message_id"], "data": {"response_type": "confirm", "ok": true}}))
                .await;
        };
        let (result, ()) = futures_lite::future::zip(answer, client).await;
        let data = result.expect("the app answered");
        assert_eq!(data.get("ok"), Some(&json!(true)));

        // One answered with an error.
        let answer = {
            let server = server.clone();
            let app_a = app_a.clone();
            async move { server.send_to_app_and_wait(&app_a, "confirm", Map::new(), None).await }
        };
        let client = async {
            let req = a.recv_skip_pings().await;
            a.send(&json!({"type": "server_response", "message_id": req["message_id"], "data": {"response_type": "confirm", "error": {"code": "NOPE", "message": "declined"}}}))
                .await;
        };
        let (result, ()) = futures_lite::future::zip(answer, client).await;
        match result {
            Err(SendError::Failed(RequestFailure::Error { code, message })) => {
                assert_eq!((code.as_str(), message.as_str()), ("NOPE", "declined"));
            }
            other => panic!("expected the app's error, got {other:?}"),
        }
        assert!(matches!(
            server.send_to_app_and_wait("nobody", "x", Map::new(), None).await,
            Err(SendError::NotConnected(_))
        ));

        // Notifications.
        server
            .send_to_app(&app_a, "alert", Some("hello".into()), Some(json!({"k": 1})))
            .unwrap();
        let n = a.recv_skip_pings().await;
        assert_eq!(n["type"], "notification", "{n}");
        assert_eq!(n["data"]["notification_type"], "alert");
        assert_eq!(n["data"]["message"], "hello");
        assert_eq!(n["data"]["additional_data"], json!({"k": 1}));
        assert!(server.send_to_app("nobody", "alert", None, None).is_err());
        assert_eq!(server.broadcast("all", None, None, &[&app_a]), 1);
        assert_eq!(b.recv_skip_pings().await["data"]["notification_type"], "all");
        let session = b.request("create_session", json!({})).await;
        let sid = session["data"]["session_id"].as_str().unwrap().to_owned();
        assert_eq!(server.app_sessions(&app_b), vec![sid.clone()]);
        assert_eq!(server.send_to_session(&sid, "for-session", None, None), 1);
        assert_eq!(b.recv_skip_pings().await["data"]["notification_type"], "for-session");
        assert_eq!(server.send_to_session("no-such-session", "x", None, None), 0);

        // A custom message type.
        let res = a.request("translate", json!({"text": "hi"})).await;
        assert_eq!(res["type"], "translate_res", "{res}");
        assert_eq!(res["data"], json!({"text": "HI", "from": app_a}));
        let res = a.request("translate", json!({})).await;
        assert_eq!(res["type"], "error", "{res}");
        assert_eq!(res["data"]["code"], "VALIDATION_ERROR");

        b.close().await;
        eventually(&rt, "the disconnect callback", || {
            seen.lock().unwrap().contains(&format!("-{app_b}"))
        })
        .await;
        assert!(!server.is_app_connected(&app_b));
        a.close().await;
        server.shutdown().await;
    })
    .await
}

/// A server request the app never answers fails with `RequestFailure::Timeout` (REQUEST_TIMEOUT) after the
/// given timeout, and the connection stays usable.
pub async fn server_request_times_out<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let config = ServerConfig {
            hub: HubConfig {
                request_timeout: Duration::from_millis(300),
                ..test_config().hub
            },
            ..test_config()
        };
        let (server, addr) = start(&rt, config).await;
        let mut a = WsClient::connect(&rt, addr, "/api/ws").await;
        let app = a.connected().await;
        let result = server
            .send_to_app_and_wait(&app, "confirm", Map::new(), Some(Duration::from_millis(200)))
            .await;
        assert_eq!(result, Err(SendError::Failed(RequestFailure::Timeout)));
        // The default timeout comes from the hub's config.
        let result = server.send_to_app_and_wait(&app, "confirm", Map::new(), None).await;
        assert_eq!(result, Err(SendError::Failed(RequestFailure::Timeout)));
        let first = a.recv_skip_pings().await;
        assert_eq!(first["type"], "server_request");
        // A late answer is ignored, and the connection still works.
        a.send(&json!({"type": "server_response", "message_id": first["message_id"], "data": {"response_type": "confirm"}}))
            .await;
        let second = a.recv_skip_pings().await;
        assert_eq!(second["type"], "server_request");
        let res = a.request("ping", json!({})).await;
        assert_eq!(res["type"], "ping_res");
        a.close().await;
        server.shutdown().await;
    })
    .await
}
