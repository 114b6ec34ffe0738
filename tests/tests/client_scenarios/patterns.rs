//! Pattern subscriptions (PROTOCOL §3.2) through the async `Client`: channels made after the subscription, a
//! listener restart resumed with the client's own since-map (every channel continues, channels made while away
//! come from their start), and a channel subscribed directly and by pattern delivered once.

use std::collections::BTreeMap;

use serde_json::json;
use switchboard_runtime::Runtime;
use switchboard_runtime::client::{ConnectionState, PatternItem, PatternSubscription};
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{client, connected, next, next_event, server_config, start};

/// Reads `count` events of a pattern subscription, by channel, in arrival order.
async fn take_events<R: Runtime>(
    rt: &R,
    events: &mut PatternSubscription,
    count: usize,
    seen: &mut BTreeMap<String, Vec<u64>>,
) {
    for _ in 0..count {
        match next(rt, events).await {
            PatternItem::Event(e) => {
                assert_eq!(e.event, json!({"c": e.channel, "n": e.offset}));
                seen.entry(e.channel).or_default().push(e.offset);
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

async fn publish<R: Runtime>(server: &switchboard_runtime::Server<R>, channel: &str, n: u64) {
    let offset = server
        .publish(channel, json!({"c": channel, "n": n}), false)
        .await
        .expect("published");
    assert_eq!(offset, n, "{channel}");
}

/// `jobs/*` follows `jobs/1` (it existed: live from its offset), `jobs/2` (made later), then a listener restart
/// during which `jobs/1` and `jobs/2` move on and `jobs/3` is made; after the reconnect every channel continues with
/// no gap and no duplicate, `jobs/3` from its first event, and `jobs/4` made afterwards arrives too. `jobs/1/x` and
/// `other` never do.
pub async fn a_pattern_follows_new_channels_and_resumes_each_after_a_restart<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        publish(&server, "jobs/1", 1).await;
        let app = client(&rt, addr, 21);
        let mut states = app.state_changes();
        let mut events = app.subscribe_pattern("jobs/*").await.expect("subscribed");
        connected(&rt, &mut states).await;
        publish(&server, "jobs/1", 2).await;
        publish(&server, "jobs/2", 1).await;
        publish(&server, "jobs/1/x", 1).await;
        publish(&server, "other", 1).await;
        let mut seen = BTreeMap::new();
        take_events(&rt, &mut events, 2, &mut seen).await;

        server.stop_listening().await;
        loop {
            match next(&rt, &mut states).await {
                ConnectionState::Disconnected { .. } => break,
                ConnectionState::Connected { .. } => panic!("connected while not listening"),
                _ => {}
            }
        }
        publish(&server, "jobs/1", 3).await;
        publish(&server, "jobs/2", 2).await;
        publish(&server, "jobs/3", 1).await;
        publish(&server, "jobs/3", 2).await;
        server.listen(addr).await.expect("the same port again");
        connected(&rt, &mut states).await;
        take_events(&rt, &mut events, 4, &mut seen).await;
        publish(&server, "jobs/4", 1).await;
        publish(&server, "jobs/1", 4).await;
        take_events(&rt, &mut events, 2, &mut seen).await;

        let want: BTreeMap<String, Vec<u64>> = [
            ("jobs/1", vec![2, 3, 4]),
            ("jobs/2", vec![1, 2]),
            ("jobs/3", vec![1, 2]),
            ("jobs/4", vec![1]),
        ]
        .into_iter()
        .map(|(c, o)| (c.to_owned(), o))
        .collect();
        assert_eq!(seen, want);
        app.close().await;
        server.shutdown().await;
    })
    .await
}

/// A channel followed directly and by a pattern on one connection: each event comes once on the wire (both
/// streams of the client get it, each once), and an invalid pattern is refused.
pub async fn a_channel_and_a_matching_pattern_deliver_each_event_once<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, server_config()).await;
        let app = client(&rt, addr, 22);
        let mut direct = app.subscribe("jobs/1").await.expect("subscribed");
        let mut by_pattern = app.subscribe_pattern("jobs/**").await.expect("subscribed");
        assert!(app.subscribe_pattern("jobs//x").await.is_err());
        for n in 1..=3 {
            publish(&server, "jobs/1", n).await;
        }
        let mut seen = BTreeMap::new();
        take_events(&rt, &mut by_pattern, 3, &mut seen).await;
        let mut offsets = Vec::new();
        for _ in 0..3 {
            offsets.push(next_event(&rt, &mut direct).await.0);
        }
        assert_eq!(offsets, [1, 2, 3]);
        assert_eq!(seen["jobs/1"], [1, 2, 3]);
        by_pattern.unsubscribe().await.expect("unsubscribed");
        publish(&server, "jobs/1", 4).await;
        assert_eq!(next_event(&rt, &mut direct).await.0, 4);
        app.close().await;
        server.shutdown().await;
    })
    .await
}
