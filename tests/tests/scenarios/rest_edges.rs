//! The HTTP front's edges: history pages bounded by bytes, and what an unauthenticated or careless caller gets.

use serde_json::json;
use switchboard_protocol::rest::MAX_PAGE_BYTES;
use switchboard_protocol::server::Permissions;
use switchboard_runtime::Runtime;
use switchboard_runtime::server::StaticTokens;
use switchboard_tests::http::{self, HttpConn};
use switchboard_tests::ws::WsClient;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{start, test_config};

/// Eight events of 300 KB read with `limit=1000`: every page stays within 1 MiB plus one event, and following
/// `next_since` (on one keep-alive connection) gives every event exactly once, in order.
pub async fn history_pages_are_bounded_by_bytes<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        const EVENT: usize = 300 * 1024;
        for n in 0..8u8 {
            let filler = String::from_utf8(vec![b'a' + n; EVENT]).unwrap();
            server
                .publish("big", json!({"n": n, "filler": filler}), false)
                .await
                .unwrap();
        }
        let mut conn = HttpConn::connect(&rt, addr).await;
        let mut path = String::from("/api/v1/channels/big/events?limit=1000");
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let r = conn.get(&path).await;
            assert_eq!(r.status, 200);
            assert!(
                r.body.len() <= MAX_PAGE_BYTES + EVENT + 100,
                "a page of {} bytes",
                r.body.len()
            );
            let page = r.json();
            let events = page["events"].as_array().unwrap();
            assert!(
                !events.is_empty(),
                "an empty page with a cursor: {}",
                page["next_since"]
            );
            sizes.push(events.len());
            for e in events {
                seen.push((
                    e["offset"].as_u64().unwrap(),
                    e["event"]["n"].as_u64().unwrap(),
                ));
            }
            match page["next_since"].as_u64() {
                Some(next) => path = format!("/api/v1/channels/big/events?limit=1000&since={next}"),
                None => break,
            }
        }
        assert_eq!(seen, (1..=8).zip(0..8).collect::<Vec<_>>());
        assert!(sizes.len() >= 2, "one page held all 2.4 MB: {sizes:?}");
        // A small page is still bounded by `limit`.
        let r = http::get(&rt, addr, "/api/v1/channels/big/events?limit=1&since=2").await;
        let page = r.json();
        assert_eq!(page["events"][0]["offset"], 3);
        assert_eq!(page["next_since"], 3);
        server.shutdown().await;
    })
    .await
}

/// With a verifier, the token is checked before the name in the path: a bad name without a token is 401, like a
/// good one, and 400 only with a valid token. A project's connection count needs subscribe on `projects/{id}`.
pub async fn tokens_are_checked_before_names<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let reader = Permissions::from_patterns(vec!["projects/*".into()], vec![], vec![], vec![]);
        let tokens = StaticTokens::new().with("reader", reader).with(
            "nobody",
            Permissions::from_patterns(vec![], vec![], vec![], vec![]),
        );
        let (server, addr) = start(&rt, test_config().with_verifier(tokens)).await;

        for path in [
            "/api/v1/channels/a%20b/events",
            "/api/v1/channels/a%zz/state",
            "/api/v1/projects/a%20b/connections",
            "/api/v1/projects/a%2Fb/connections",
        ] {
            let r = http::get(&rt, addr, path).await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (401, "UNAUTHORIZED"),
                "{path}"
            );
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{path}");
            let r = http::get(&rt, addr, &format!("{path}?token=wrong")).await;
            assert_eq!(r.status, 401, "{path}");
            let r = http::get(&rt, addr, &format!("{path}?token=reader")).await;
            assert_eq!(r.status, 400, "{path} with a valid token");
        }
        let r = http::post_json(
            &rt,
            addr,
            "/api/v1/channels/a%20b/events",
            &json!({"event": 1}),
        )
        .await;
        assert_eq!(r.status, 401);
        // An unknown route or a wrong method is answered the same whoever asks.
        assert_eq!(
            http::get(&rt, addr, "/api/v1/channels/a%20b/nope")
                .await
                .status,
            404
        );

        let r = http::get(&rt, addr, "/api/v1/projects/p1/connections").await;
        assert_eq!((r.status, r.error_code().as_str()), (401, "UNAUTHORIZED"));
        let r = http::get(&rt, addr, "/api/v1/projects/p1/connections?token=nobody").await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "FORBIDDEN"));
        let r = http::get(&rt, addr, "/api/v1/projects/p1/connections?token=reader").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            json!({"project_id": "p1", "active_connections": 0})
        );
        server.shutdown().await;
    })
    .await
}

/// A project-stream upgrade whose project id makes no project channel is let in, greeted, told why in an `error`
/// and closed with 1008 (PROTOCOL appendix, server hub), like a project its token may not read.
pub async fn a_bad_project_id_is_refused_on_the_websocket<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        for (path, id) in [
            ("/api/v1/ws/projects/a%20b/stream", "a b"),
            ("/api/v1/projects/a%2Fb/stream", "a/b"),
            ("/api/v1/ws/projects/a/b/stream", "a/b"),
        ] {
            let mut ws = WsClient::connect(&rt, addr, path).await;
            let (messages, code) = ws.until_close().await;
            assert_eq!(code, Some(1008), "{path}: {messages:?}");
            assert_eq!(messages.len(), 2, "{path}: {messages:?}");
            assert_eq!(messages[0]["event_type"], "connected", "{path}");
            assert_eq!(messages[1]["event_type"], "error", "{path}");
            assert_eq!(messages[1]["project_id"], id, "{path}");
            assert_eq!(
                messages[1]["data"]["details"]["code"], "INVALID_CHANNEL",
                "{path}"
            );
        }
        // A good id on the same server is served.
        let mut ws = WsClient::connect(&rt, addr, "/api/v1/ws/projects/p1/stream").await;
        assert_eq!(ws.recv().await["event_type"], "connected");
        ws.close().await;
        server.shutdown().await;
    })
    .await
}

/// An unencoded `/` in a channel path is part of the name: `/api/v1/channels/a/b/events` is channel `a/b`, the same
/// as `a%2Fb`.
pub async fn an_unencoded_slash_names_a_nested_channel<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        let r = http::post_json(
            &rt,
            addr,
            "/api/v1/channels/a/b/events",
            &json!({"event": 1, "retain": true}),
        )
        .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.json(), json!({"channel": "a/b", "offset": 1}));
        let page = http::get(&rt, addr, "/api/v1/channels/a%2Fb/events")
            .await
            .json();
        assert_eq!(page["channel"], "a/b");
        assert_eq!(page["events"], json!([{"offset": 1, "event": 1}]));
        let state = http::get(&rt, addr, "/api/v1/channels/a/b/state")
            .await
            .json();
        assert_eq!(
            (state["channel"].clone(), state["state"].clone()),
            (json!("a/b"), json!(1))
        );
        // Channel `a` is another channel.
        assert_eq!(
            http::get(&rt, addr, "/api/v1/channels/a/state")
                .await
                .json()["offset"],
            0
        );
        server.shutdown().await;
    })
    .await
}
