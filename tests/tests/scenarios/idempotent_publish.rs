//! Idempotent publishing end to end: an `idempotency_key` (REST body or `Idempotency-Key` header, native field)
//! seen on the channel within the dedupe window publishes nothing and answers the original offsets with
//! `duplicate: true` (REST: 200, not 201); keys are one per channel across every publish form; bad keys are
//! `VALIDATION_ERROR`; the HTTP SDK sends a key of its own on every publish; `/api/info` and `/metrics` show it.

use serde_json::{Value, json};
use switchboard_runtime::Runtime;
use switchboard_runtime::sdk::{ApiClient, ApiConfig};
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded, http};

use super::{start, test_config};

/// The offsets of the next `n` `event` frames.
async fn offsets<R: Runtime>(ws: &mut WsClient<R, R::Tcp>, n: usize) -> Vec<u64> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = ws.recv_skip_pings().await;
        if m["type"] == "event" {
            got.push(m["data"]["offset"].as_u64().unwrap());
        }
    }
    got
}

async fn post_keyed<R: Runtime>(
    rt: &R,
    addr: std::net::SocketAddr,
    path: &str,
    key: &str,
    body: &Value,
) -> http::HttpResponse {
    let body = body.to_string();
    http::request(
        rt,
        addr,
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Idempotency-Key", key),
        ],
        Some(body.as_bytes()),
    )
    .await
}

/// REST (body and header, single and batch) and native publishes with keys: a repeated key is answered with the
/// original offsets and publishes nothing, whichever form repeats it; a subscriber sees each event once.
pub async fn idempotent_publish_over_rest_and_native<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let mut sub = WsClient::connect(&rt, addr, "/api/ws").await;
        sub.connected().await;
        sub.request("subscribe", json!({"channel": "jobs"})).await;
        let path = "/api/v1/channels/jobs/events";

        let r = http::post_json(
            &rt,
            addr,
            path,
            &json!({"event": 1, "idempotency_key": "k-1"}),
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (201, json!({"channel": "jobs", "offset": 1}))
        );
        // The retry, the key in the header this time (and the same in the body: allowed).
        let retry = json!({"event": 1, "idempotency_key": "k-1"});
        let r = post_keyed(&rt, addr, path, "k-1", &retry).await;
        assert_eq!(
            (r.status, r.json()),
            (
                200,
                json!({"channel": "jobs", "offset": 1, "duplicate": true})
            )
        );

        let batch = json!({"events": [2, 3]});
        let r = post_keyed(&rt, addr, path, "b-1", &batch).await;
        assert_eq!(
            (r.status, r.json()),
            (
                201,
                json!({"channel": "jobs", "first_offset": 2, "last_offset": 3})
            )
        );
        let r = post_keyed(&rt, addr, path, "b-1", &batch).await;
        assert_eq!(
            (r.status, r.json()),
            (
                200,
                json!({"channel": "jobs", "first_offset": 2, "last_offset": 3, "duplicate": true})
            )
        );

        let mut ws = WsClient::connect(&rt, addr, "/api/ws").await;
        ws.connected().await;
        let res = ws
            .request(
                "publish",
                json!({"channel": "jobs", "event": 4, "idempotency_key": "n-1"}),
            )
            .await;
        assert_eq!(
            res["data"],
            json!({"channel": "jobs", "offset": 4}),
            "{res}"
        );
        let res = ws
            .request(
                "publish",
                json!({"channel": "jobs", "event": 4, "idempotency_key": "n-1"}),
            )
            .await;
        assert_eq!(
            res["data"],
            json!({"channel": "jobs", "offset": 4, "duplicate": true})
        );
        // A key is the channel's, whatever form first used it.
        let res = ws
            .request(
                "publish",
                json!({"channel": "jobs", "events": [9], "idempotency_key": "k-1"}),
            )
            .await;
        assert_eq!(
            res["data"],
            json!({"channel": "jobs", "first_offset": 1, "last_offset": 1, "duplicate": true})
        );
        let res = ws
            .request(
                "publish",
                json!({"channel": "jobs", "event": 5, "idempotency_key": ""}),
            )
            .await;
        assert_eq!(res["data"]["code"], "VALIDATION_ERROR", "{res}");
        assert_eq!(res["data"]["details"]["field"], "data.idempotency_key");

        // Bad keys over REST: the field and the header named in the message, nothing published.
        let long = "k".repeat(129);
        for (header, body) in [
            (None, json!({"event": 5, "idempotency_key": ""})),
            (None, json!({"event": 5, "idempotency_key": 7})),
            (Some(long.as_str()), json!({"event": 5})),
            (Some("other"), json!({"event": 5, "idempotency_key": "k-1"})),
        ] {
            let r = match header {
                Some(key) => post_keyed(&rt, addr, path, key, &body).await,
                None => http::post_json(&rt, addr, path, &body).await,
            };
            assert_eq!(
                (r.status, r.error_code()),
                (400, "VALIDATION_ERROR".to_owned()),
                "{}",
                r.text()
            );
            assert!(r.text().contains("dempotency"), "{}", r.text());
        }

        let state = http::get(&rt, addr, "/api/v1/channels/jobs/state")
            .await
            .json();
        assert_eq!(state["offset"], 4);
        assert_eq!(offsets(&mut sub, 4).await, [1, 2, 3, 4]);

        let info = http::get(&rt, addr, "/api/info").await.json();
        assert_eq!(info["limits"]["dedupe_window_ms"], 300_000, "{info}");
        assert_eq!(info["limits"]["dedupe_keys"], 100_000);
        assert_eq!(info["limits"]["dedupe_keys_per_channel"], 10_000);
        let metrics = http::get(&rt, addr, "/metrics").await.text();
        assert!(
            metrics.contains("switchboard_duplicate_publishes_total 4\n"),
            "{metrics}"
        );
        assert!(metrics.contains("switchboard_dedupe_keys 3\n"), "{metrics}");
        server.shutdown().await;
    })
    .await;
}

/// The HTTP SDK against the server: every `publish` carries a fresh key (two publishes of the same event land
/// twice), and `publish_with_key` repeated is answered as a duplicate with the original offset.
pub async fn sdk_publishes_carry_idempotency_keys<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let config = ApiConfig::testing().with_base_url(format!("http://{addr}"));
        let client = ApiClient::new(rt.clone(), config).expect("a valid config");
        let channels = client.channels();
        let a = channels
            .publish("sdk", &json!({"n": 1}), false)
            .await
            .unwrap();
        let b = channels
            .publish("sdk", &json!({"n": 1}), false)
            .await
            .unwrap();
        assert_eq!(
            (a.offset, a.duplicate, b.offset, b.duplicate),
            (1, false, 2, false)
        );
        let first = channels
            .publish_with_key("sdk", &json!({"n": 3}), false, "job-7")
            .await
            .unwrap();
        let again = channels
            .publish_with_key("sdk", &json!({"n": 3}), false, "job-7")
            .await
            .unwrap();
        assert_eq!((first.offset, first.duplicate), (3, false));
        assert_eq!((again.offset, again.duplicate), (3, true));
        let batch = channels.publish_batch("sdk", &[4, 5], false).await.unwrap();
        assert_eq!(
            (batch.first_offset, batch.last_offset, batch.duplicate),
            (4, 5, false)
        );
        server.shutdown().await;
    })
    .await;
}
