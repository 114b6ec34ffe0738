//! Presence end to end: a native subscriber that asked for it hears the worker serve and go away, and the native
//! `presence` request and the REST presence route (subscribe permission, like history) say whether the channel is
//! served — the "is the worker online" question answered without probing with a call.

use serde_json::json;
use switchboard_protocol::server::{Permissions, Principal};
use switchboard_runtime::Runtime;
use switchboard_runtime::server::StaticTokens;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded, http};

use super::{start, test_config};

const PRESENCE: &str = "/api/v1/channels/jobs%2Fj1/presence";

pub async fn presence_over_native_websocket_and_rest<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let tokens = StaticTokens::new()
            .with(
                "ops",
                Permissions::allow_all().with_principal(Principal::token("ops@example.com")),
            )
            .with(
                "worker",
                Permissions::allow_all().with_principal(Principal::token("worker-1")),
            )
            .with(
                "outsider",
                Permissions::from_patterns(vec!["public/**".into()], vec![], vec![], vec![]),
            );
        let (server, addr) = start(&rt, test_config().with_verifier(tokens)).await;
        let rest = |token: &'static str| {
            let rt = rt.clone();
            async move { http::get(&rt, addr, &format!("{PRESENCE}?token={token}")).await }
        };

        let nobody = rest("ops").await;
        assert_eq!(nobody.status, 200, "{}", nobody.text());
        assert_eq!(
            nobody.json(),
            json!({"channel": "jobs/j1", "count": 0, "serving": false, "members": []})
        );
        assert_eq!(rest("outsider").await.status, 403);
        assert_eq!(http::get(&rt, addr, PRESENCE).await.status, 401);

        let mut watcher = WsClient::connect(&rt, addr, "/api/ws?token=ops").await;
        watcher.connected().await;
        let res = watcher
            .request("subscribe", json!({"channel": "jobs/j1", "presence": true}))
            .await;
        assert_eq!(res["type"], "subscribe_res", "{res}");

        let mut worker = WsClient::connect(&rt, addr, "/api/ws?token=worker").await;
        let worker_id = worker.connected().await;
        let res = worker.request("serve", json!({"channel": "jobs/j1"})).await;
        assert_eq!(res["type"], "serve_res", "{res}");
        let member =
            json!({"app_id": worker_id, "sub": "worker-1", "dialect": "native", "serving": true});
        let join = watcher.recv_skip_pings().await;
        assert_eq!(join["type"], "notification", "{join}");
        assert_eq!(join["data"]["notification_type"], "join", "{join}");
        let mut told = member.clone();
        told["channel"] = json!("jobs/j1");
        assert_eq!(join["data"]["additional_data"], told, "{join}");

        let online = rest("ops").await.json();
        assert_eq!(
            (online["count"].clone(), online["serving"].clone()),
            (json!(2), json!(true)),
            "{online}"
        );
        assert!(
            online["members"].as_array().unwrap().contains(&member),
            "{online}"
        );
        let native = watcher
            .request("presence", json!({"channel": "jobs/j1"}))
            .await;
        assert_eq!(native["type"], "presence_res", "{native}");
        assert_eq!(native["data"], online, "the native answer is the REST body");
        let refused = {
            let mut outsider = WsClient::connect(&rt, addr, "/api/ws?token=outsider").await;
            outsider.connected().await;
            let r = outsider
                .request("presence", json!({"channel": "jobs/j1"}))
                .await;
            outsider.close().await;
            r
        };
        assert_eq!(refused["data"]["code"], "FORBIDDEN", "{refused}");

        // The worker goes away: the watcher hears it, and the channel is no longer served.
        worker.close().await;
        let leave = watcher.recv_skip_pings().await;
        assert_eq!(leave["data"]["notification_type"], "leave", "{leave}");
        assert_eq!(leave["data"]["additional_data"], told, "{leave}");
        let offline = rest("ops").await.json();
        assert_eq!(
            (offline["count"].clone(), offline["serving"].clone()),
            (json!(1), json!(false)),
            "{offline}"
        );

        watcher.close().await;
        server.shutdown().await;
    })
    .await
}
