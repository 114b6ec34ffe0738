//! The connection's life: surviving a listener restart, a new epoch after a server restart, and closing.

use serde_json::json;
use switchboard_runtime::Runtime;
use switchboard_runtime::client::{ConnectionState, RequestError, SubscriptionItem};
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{client, connected, next, next_event, server_config, start};

/// The server's listener stops (connections closed with 1001) and starts again on the same port while the hub
/// lives on. The client reconnects on its own, resubscribes with `since`, and receives every event published
/// while it was away, then live ones: offsets 1 to 7, no gap, no duplicate, one epoch.
pub async fn survives_a_listener_restart_without_gap_or_duplicate<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let app = client(&rt, addr, 7);
        let mut states = app.state_changes();
        let mut events = app.subscribe("news").await.expect("subscribed");
        for i in 1..=3 {
            server
                .publish("news", json!({"i": i}), false)
                .await
                .expect("published");
        }
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(next_event(&rt, &mut events).await);
        }
        connected(&rt, &mut states).await;

        server.stop_listening().await;
        loop {
            match next(&rt, &mut states).await {
                ConnectionState::Disconnected { code, .. } => {
                    assert_eq!(code, 1001);
                    break;
                }
                ConnectionState::Connected { .. } => panic!("connected while not listening"),
                _ => {}
            }
        }
        for i in 4..=6 {
            server
                .publish("news", json!({"i": i}), false)
                .await
                .expect("published");
        }
        // A request made while offline waits in the queue and goes out after the reconnect.
        let offline = app.get_state("news");

        assert_eq!(
            server.listen(addr).await.expect("the same port again"),
            addr
        );
        let state = offline.await.expect("answered after the reconnect");
        assert_eq!(state.offset, 6);
        for _ in 0..3 {
            seen.push(next_event(&rt, &mut events).await);
        }
        server
            .publish("news", json!({"i": 7}), false)
            .await
            .expect("published");
        seen.push(next_event(&rt, &mut events).await);

        let offsets: Vec<u64> = seen.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5, 6, 7]);
        for (offset, event) in &seen {
            assert_eq!(event, &json!({"i": offset}));
        }
        app.close().await;
        server.shutdown().await;
    })
    .await
}

/// `close()` ends with 1000: the subscription stream and the state feed end, the feed's last word is `Closed`,
/// later requests fail with [`RequestError::Closed`], and the server sees the connection go.
pub async fn close_fails_pending_and_ends_streams<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let app = client(&rt, addr, 8);
        let mut states = app.state_changes();
        let mut events = app.subscribe("news").await.expect("subscribed");
        let app_id = connected(&rt, &mut states).await;
        assert!(server.is_app_connected(&app_id));
        let other = app.clone();

        other.close().await;
        assert!(app.is_closed());
        let mut last = None;
        while let Some(state) = futures_util::StreamExt::next(&mut states).await {
            last = Some(state);
        }
        assert_eq!(last, Some(ConnectionState::Closed));
        assert!(futures_util::StreamExt::next(&mut events).await.is_none());
        assert_eq!(
            app.publish("news", json!(1), false).await,
            Err(RequestError::Closed)
        );
        switchboard_tests::eventually(&rt, "the server to forget the app", || {
            !server.is_app_connected(&app_id)
        })
        .await;
        app.close().await;
        server.shutdown().await;
    })
    .await
}

/// Dropping every handle and stream of a client ends its task: the server sees the connection go, without any
/// `close()`.
pub async fn dropping_every_handle_closes_the_connection<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let app = client(&rt, addr, 12);
        let mut states = app.state_changes();
        let events = app.subscribe("news").await.expect("subscribed");
        let app_id = connected(&rt, &mut states).await;
        assert!(server.is_app_connected(&app_id));

        drop(app);
        drop(states);
        // The subscription alone keeps the client going.
        server
            .publish("news", json!(1), false)
            .await
            .expect("published");
        let mut events = events;
        assert_eq!(next_event(&rt, &mut events).await.0, 1);
        assert!(server.is_app_connected(&app_id));

        drop(events);
        switchboard_tests::eventually(&rt, "the server to see the client go", || {
            !server.is_app_connected(&app_id)
        })
        .await;
        server.shutdown().await;
    })
    .await
}

/// The server is shut down and a new one (another hub, hence another epoch) takes its port. The client reconnects
/// on its own, resubscribes with `since` in the old epoch, and its subscription reports `Resync` before the new
/// hub's events, which start again at offset 1.
pub async fn a_new_epoch_is_seen_as_resync<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let app = client(&rt, addr, 41);
        let mut states = app.state_changes();
        let mut events = app.subscribe("news").await.expect("subscribed");
        server
            .publish("news", json!({"i": 1}), false)
            .await
            .expect("published");
        assert_eq!(next_event(&rt, &mut events).await.0, 1);
        connected(&rt, &mut states).await;

        server.shutdown().await;
        let mut config = server_config();
        config.hub.seed += 1;
        let (again, same) = start_on(&rt, addr, config).await;
        assert_eq!(same, addr);
        match next(&rt, &mut events).await {
            SubscriptionItem::Resync => {}
            SubscriptionItem::Event(e) => panic!("an event before the Resync: {e:?}"),
            other => panic!("expected a Resync, got {other:?}"),
        }
        again
            .publish("news", json!({"i": 2}), false)
            .await
            .expect("published");
        let (offset, event) = next_event(&rt, &mut events).await;
        assert_eq!((offset, event), (1, json!({"i": 2})));
        app.close().await;
        again.shutdown().await;
    })
    .await
}

/// Binds a server on `addr` (a port a previous server just released).
async fn start_on<R: Runtime>(
    rt: &R,
    addr: std::net::SocketAddr,
    config: switchboard_runtime::ServerConfig,
) -> (switchboard_runtime::Server<R>, std::net::SocketAddr) {
    let server = switchboard_runtime::Server::bind(rt.clone(), addr, config)
        .await
        .expect("bind the released port");
    let bound = server.local_addr().expect("a bound address");
    (server, bound)
}
