//! Presence through the Rust clients: `Client::subscribe_with_presence` delivers the channel's `join`/`leave` on
//! the notification feed, `Client::presence` and the HTTP SDK's `presence` say whether the channel is served.

use switchboard_runtime::Runtime;
use switchboard_runtime::client::{Notification, PresenceChange};
use switchboard_runtime::sdk::{ApiClient, ApiConfig};
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{client, connected, next, server_config, start};

pub async fn presence_tells_whether_the_worker_is_online<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let app = client(&rt, addr, 21);
        let mut notes = app.notifications();
        let _jobs = app
            .subscribe_with_presence("jobs/j1")
            .await
            .expect("subscribed");
        let http = ApiClient::new(
            rt.clone(),
            ApiConfig::testing().with_base_url(format!("http://{addr}")),
        )
        .expect("a valid config");
        let before = app.presence("jobs/j1").await.expect("presence");
        assert_eq!((before.count, before.serving), (1, false), "{before:?}");
        assert!(
            !http
                .channels()
                .presence("jobs/j1")
                .await
                .expect("REST")
                .serving
        );

        let worker = client(&rt, addr, 22);
        let mut worker_states = worker.state_changes();
        let worker_id = connected(&rt, &mut worker_states).await;
        let calls = worker.serve("jobs/j1").await.expect("serving");
        let change = |n: Notification| PresenceChange::from_notification(&n).expect("presence");
        match change(next(&rt, &mut notes).await) {
            PresenceChange::Join { channel, member } => {
                assert_eq!(channel, "jobs/j1");
                assert_eq!(member.caller.app_id, worker_id);
                assert!(member.serving);
            }
            other => panic!("expected a join, got {other:?}"),
        }
        let online = app.presence("jobs/j1").await.expect("presence");
        assert_eq!((online.count, online.serving), (2, true), "{online:?}");
        let body = http.channels().presence("jobs/j1").await.expect("REST");
        assert_eq!((body.count, body.serving), (2, true), "{body:?}");
        assert_eq!(body.members, online.members);

        drop(calls);
        worker.close().await;
        match change(next(&rt, &mut notes).await) {
            PresenceChange::Leave { member, .. } => {
                assert_eq!(
                    (member.caller.app_id.as_str(), member.serving),
                    (worker_id.as_str(), true)
                );
            }
            other => panic!("expected a leave, got {other:?}"),
        }
        assert!(!app.presence("jobs/j1").await.expect("presence").serving);

        app.close().await;
        server.shutdown().await;
    })
    .await
}
