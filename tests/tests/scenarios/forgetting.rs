//! Idle channels are forgotten: a channel published to once, with nobody subscribed and its history expired, is
//! dropped (`switchboard_channels` in `/metrics` goes back to 0); its name's next event starts a new epoch at offset 1,
//! and a position in the old epoch recovers as `recovered: false`. A channel subscribed to before its first publish
//! keeps the epoch its subscriber was told. `max_channels` refuses a publish to one channel too many with 507
//! `CHANNEL_LIMIT` until idle channels are forgotten.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_protocol::server::HubConfig;
use switchboard_runtime::Runtime;
use switchboard_tests::http::HttpConn;
use switchboard_tests::ws::WsClient;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded};

use super::{start, test_config};

/// How long history is kept: short, so channels become idle within the test.
const TTL: Duration = Duration::from_millis(300);
const CHANNELS: usize = 200;

/// The value of an unlabelled sample in a `/metrics` page.
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
        .parse()
        .expect("a number")
}

/// Polls `/metrics` until `switchboard_channels` is `want`, failing after [`STEP_TIMEOUT`].
async fn channels_become<R: Runtime>(rt: &R, conn: &mut HttpConn<R, R::Tcp>, want: u64) {
    let deadline = rt.now() + STEP_TIMEOUT;
    loop {
        let metrics = conn.get("/metrics").await.text();
        let channels = sample(&metrics, "switchboard_channels");
        if channels == want {
            return;
        }
        assert!(
            rt.now() < deadline,
            "switchboard_channels stays at {channels}, not {want}"
        );
        rt.sleep_until(rt.now() + Duration::from_millis(50)).await;
    }
}

fn config(max_channels: usize) -> switchboard_runtime::ServerConfig {
    let mut config = test_config();
    config.hub = HubConfig {
        history_ttl: TTL,
        max_channels,
        ..config.hub
    };
    config
}

pub async fn idle_channels_are_forgotten_and_a_reused_name_starts_a_new_epoch<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, config(100_000)).await;
        let mut conn = HttpConn::connect(&rt, addr).await;
        // Subscribed before its first publish: the channel is held, and keeps the epoch its subscriber was told.
        let mut native = WsClient::connect(&rt, addr, "/api/ws").await;
        native.connected().await;
        let held = native
            .request("subscribe", json!({"channel": "held"}))
            .await;
        assert_eq!(held["type"], "subscribe_res", "{held}");
        let held_epoch = held["data"]["epoch"].clone();

        for n in 0..CHANNELS {
            let r = conn
                .post_json(
                    &format!("/api/v1/channels/c{n}/events"),
                    &json!({"event": {"n": n}}),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
        }
        let old = conn.get("/api/v1/channels/c0/events").await.json();
        assert_eq!(old["events"][0]["offset"], 1, "{old}");
        let old_epoch = old["epoch"].clone();
        let metrics = conn.get("/metrics").await.text();
        assert!(sample(&metrics, "switchboard_channels") >= CHANNELS as u64);

        // Nobody subscribes to them and their history expires: all forgotten; the held channel stays.
        channels_become(&rt, &mut conn, 1).await;

        // A publish on a forgotten name starts a new log: offset 1 in a new epoch.
        let r = conn
            .post_json(
                "/api/v1/channels/c0/events",
                &json!({"event": {"again": true}}),
            )
            .await;
        assert_eq!(
            (r.status, r.json()["offset"].clone()),
            (201, json!(1)),
            "{}",
            r.text()
        );
        let new = conn.get("/api/v1/channels/c0/events").await.json();
        assert_ne!(new["epoch"], old_epoch, "a reused name starts a new epoch");
        // A subscriber holding a position in the old epoch is told it cannot be recovered.
        let since = json!({"channel": "c0", "since": {"epoch": old_epoch, "offset": 1}});
        let res = native.request("subscribe", since).await;
        assert_eq!(res["data"]["recovered"], false, "{res}");
        assert_eq!(res["data"]["epoch"], new["epoch"], "{res}");

        // The held channel's first event comes in the epoch its subscribe answer named.
        let r = conn
            .post_json("/api/v1/channels/held/events", &json!({"event": "first"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let event: Value = loop {
            let frame = native.recv_skip_pings().await;
            if frame["type"] == "event" && frame["data"]["channel"] == "held" {
                break frame;
            }
        };
        assert_eq!(event["data"]["epoch"], held_epoch, "{event}");
        assert_eq!(event["data"]["offset"], 1, "{event}");

        native.close().await;
        server.shutdown().await;
    })
    .await
}

pub async fn a_new_channel_past_max_channels_is_refused_until_idle_ones_are_forgotten<
    R: Runtime,
>(
    rt: R,
) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, config(2)).await;
        let mut conn = HttpConn::connect(&rt, addr).await;
        let info = conn.get("/api/info").await.json();
        assert_eq!(info["limits"]["max_channels"], 2, "{info}");
        for channel in ["a", "b", "a"] {
            let r = conn
                .post_json(
                    &format!("/api/v1/channels/{channel}/events"),
                    &json!({"event": 1}),
                )
                .await;
            assert_eq!(r.status, 201, "{channel}: {}", r.text());
        }
        let refused = conn
            .post_json("/api/v1/channels/c/events", &json!({"event": 1}))
            .await;
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (507, "CHANNEL_LIMIT"),
            "{}",
            refused.text()
        );
        // Like every 5xx answer, it ends the keep-alive connection.
        let mut conn = HttpConn::connect(&rt, addr).await;
        // Over the native protocol too.
        let mut native = WsClient::connect(&rt, addr, "/api/ws").await;
        native.connected().await;
        let res = native
            .request("publish", json!({"channel": "c", "event": 1}))
            .await;
        assert_eq!(res["data"]["code"], "CHANNEL_LIMIT", "{res}");
        // Once `a` and `b` have expired and are forgotten, `c` has room.
        channels_become(&rt, &mut conn, 0).await;
        let r = conn
            .post_json("/api/v1/channels/c/events", &json!({"event": 1}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        native.close().await;
        server.shutdown().await;
    })
    .await
}
