//! The REST API's edges: history pages bounded by bytes, and what an unauthenticated or careless caller gets.

use serde_json::json;
use switchboard_protocol::rest::MAX_PAGE_BYTES;
use switchboard_runtime::Runtime;
use switchboard_tests::http::{self, HttpConn};
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
