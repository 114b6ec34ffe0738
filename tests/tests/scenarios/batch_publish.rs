//! Batch publishing over REST and the native WebSocket: consecutive offsets answered as first and last, every
//! event delivered in order, the last retained on request, and a bad element refusing the whole batch with its
//! index while nothing is stored.

use serde_json::{Value, json};
use switchboard_protocol::wire::MAX_BATCH_EVENTS;
use switchboard_runtime::Runtime;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded, http};

use super::{start, test_config};

/// The offsets and events of the next `n` `event` frames.
async fn events<R: Runtime>(ws: &mut WsClient<R, R::Tcp>, n: usize) -> Vec<(u64, Value)> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = ws.recv_skip_pings().await;
        if m["type"] == "event" {
            got.push((
                m["data"]["offset"].as_u64().unwrap(),
                m["data"]["event"].clone(),
            ));
        }
    }
    got
}

/// A REST batch is stored at consecutive offsets and reaches a WebSocket subscriber in order; a batch with a
/// bad element, an empty one and one over the limit are refused whole (400, the bad element's index in
/// `error.index` and the message) and the channel's offset does not move.
pub async fn batch_publish_over_rest_is_all_or_none<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        let res = ws.request("subscribe", json!({"channel": "jobs/1"})).await;
        assert_eq!(res["type"], "subscribe_res", "{res}");
        let path = "/api/v1/channels/jobs%2F1/events";

        let batch: Vec<Value> = (1..=5).map(|n| json!({"n": n})).collect();
        let r = http::post_json(
            &rt,
            addr,
            path,
            &json!({"events": batch, "retain_last": true}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"channel": "jobs/1", "first_offset": 1, "last_offset": 5})
        );
        let got = events(&mut ws, 5).await;
        let want: Vec<(u64, Value)> = (1..=5).map(|n| (n, json!({"n": n}))).collect();
        assert_eq!(got, want);

        let r = http::post_json(&rt, addr, path, &json!({"events": [{"n": 6}, 7, null, 9]})).await;
        assert_eq!(r.status, 400, "{}", r.text());
        let body = r.json();
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(body["error"]["index"], 2);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("events[2]: "),
            "{body}"
        );
        for bad in [
            json!({"events": []}),
            json!({"events": vec![1; MAX_BATCH_EVENTS + 1]}),
        ] {
            let r = http::post_json(&rt, addr, path, &bad).await;
            assert_eq!(r.status, 400, "{}", r.text());
            assert!(r.text().contains("from 1 to 1000"), "{}", r.text());
        }
        // Nothing of the refused batches was stored; the retained state is the first batch's last event.
        let state = http::get(&rt, addr, "/api/v1/channels/jobs%2F1/state")
            .await
            .json();
        assert_eq!(
            (&state["offset"], &state["state"]),
            (&json!(5), &json!({"n": 5}))
        );

        // The next batch follows on, and the subscriber sees nothing of the refused ones.
        let r = http::post_json(&rt, addr, path, &json!({"events": [10, 11]})).await;
        assert_eq!(r.json()["first_offset"], 6);
        assert_eq!(events(&mut ws, 2).await, [(6, json!(10)), (7, json!(11))]);
        server.shutdown().await;
    })
    .await;
}

/// A native `publish` with `events` is answered `publish_res` `{channel, first_offset, last_offset}` before the
/// events reach the (same, subscribed) connection in order; a `null` element is `VALIDATION_ERROR` with
/// `details.index`, and nothing is stored.
pub async fn batch_publish_over_native_websocket<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        ws.request("subscribe", json!({"channel": "feed"})).await;

        let id = ws
            .send_request("publish", json!({"channel": "feed", "events": [1, 2, 3]}))
            .await;
        let res = ws.recv_skip_pings().await;
        assert_eq!(res["type"], "publish_res", "{res}");
        assert_eq!(res["message_id"], json!(id));
        assert_eq!(
            res["data"],
            json!({"channel": "feed", "first_offset": 1, "last_offset": 3})
        );
        assert_eq!(
            events(&mut ws, 3).await,
            [(1, json!(1)), (2, json!(2)), (3, json!(3))]
        );

        let res = ws
            .request("publish", json!({"channel": "feed", "events": [4, null]}))
            .await;
        assert_eq!(res["type"], "error", "{res}");
        assert_eq!(res["data"]["code"], "VALIDATION_ERROR");
        assert_eq!(res["data"]["details"]["index"], 1);
        let state = http::get(&rt, addr, "/api/v1/channels/feed/state")
            .await
            .json();
        assert_eq!(state["offset"], 3);
        server.shutdown().await;
    })
    .await;
}
