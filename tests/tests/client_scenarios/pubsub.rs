//! Subscriptions: events in order, shared subscriptions, retained state, unsubscribing.

use serde_json::json;
use switchboard_runtime::Runtime;
use switchboard_tests::{TEST_TIMEOUT, bounded, eventually};

use super::{client, next_event, server_config, start};

/// A subscriber receives what another client and the server publish, in offset order; a second subscription of
/// the same channel gets the same events; `retain` sets the state `get_state` returns; after unsubscribing, the
/// channel's events stop.
pub async fn subscribe_publish_and_receive<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let reader = client(&rt, addr, 2);
        let writer = client(&rt, addr, 3);

        let mut events = reader.subscribe("projects/p1").await.expect("subscribed");
        assert_eq!(events.channel(), "projects/p1");
        let first = writer
            .publish("projects/p1", json!({"step": 1}), false)
            .await
            .expect("published");
        assert_eq!(first, 1);
        let second = writer
            .publish("projects/p1", json!({"step": 2}), true)
            .await
            .expect("published");
        assert_eq!(second, 2);
        let third = server
            .publish("projects/p1", json!({"step": 3}), false)
            .await
            .expect("published by the server");
        assert_eq!(third, 3);
        for want in 1..=3 {
            assert_eq!(
                next_event(&rt, &mut events).await,
                (want, json!({"step": want}))
            );
        }

        let mut again = reader.subscribe("projects/p1").await.expect("shared");
        writer
            .publish("projects/p1", json!({"step": 4}), false)
            .await
            .expect("published");
        assert_eq!(next_event(&rt, &mut events).await.0, 4);
        assert_eq!(next_event(&rt, &mut again).await.0, 4);

        let state = writer.get_state("projects/p1").await.expect("state");
        assert_eq!((state.offset, state.state), (4, json!({"step": 2})));

        // The first subscription goes; the second keeps the channel.
        drop(events);
        writer
            .publish("projects/p1", json!({"step": 5}), false)
            .await
            .expect("published");
        assert_eq!(next_event(&rt, &mut again).await.0, 5);
        again.unsubscribe().await.expect("unsubscribed");
        eventually(&rt, "the server to drop the subscription", || {
            server.stats().subscriptions == 0
        })
        .await;

        reader.close().await;
        writer.close().await;
        server.shutdown().await;
    })
    .await
}

/// `Client::publish_batch` and the server's `publish_batch` store their events at consecutive offsets, answered
/// as a range, delivered to a subscriber in order; a batch with a `null` is refused before anything is sent.
pub async fn publish_batch_takes_consecutive_offsets<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let reader = client(&rt, addr, 4);
        let writer = client(&rt, addr, 5);
        let mut events = reader.subscribe("bursts").await.expect("subscribed");
        let range = writer
            .publish_batch("bursts", (1..=4).map(|n| json!({"n": n})).collect(), true)
            .await
            .expect("published");
        assert_eq!(range, 1..=4);
        let range = server
            .publish_batch("bursts", vec![json!({"n": 5}), json!({"n": 6})], false)
            .await
            .expect("published by the server");
        assert_eq!(range, 5..=6);
        for want in 1..=6 {
            assert_eq!(
                next_event(&rt, &mut events).await,
                (want, json!({"n": want}))
            );
        }
        let state = writer.get_state("bursts").await.expect("state");
        assert_eq!((state.offset, state.state), (6, json!({"n": 4})));
        let refused = writer
            .publish_batch("bursts", vec![json!(1), serde_json::Value::Null], false)
            .await;
        assert!(refused.is_err(), "{refused:?}");
        assert!(
            server
                .publish_batch("bursts", Vec::new(), false)
                .await
                .is_err()
        );
        assert_eq!(writer.get_state("bursts").await.expect("state").offset, 6);
        writer.close().await;
        reader.close().await;
        server.shutdown().await;
    })
    .await;
}
