//! Server-Sent Events streams (PROTOCOL §8), read byte for byte as a browser's `EventSource` would: resuming
//! with `Last-Event-ID` and `?since=` after a dropped connection and a restarted listener (no gap, no duplicate),
//! several channels in one stream, the project stream, `resync`, the checks before the stream starts (token from
//! the query or the cookie, grants per channel, origins, connection limits), the counts in `/api/connections` and
//! `/metrics`, and the slow-consumer close and recovery.

use serde_json::json;
use switchboard_protocol::server::{HubConfig, Permissions};
use switchboard_runtime::memory::duplex;
use switchboard_runtime::server::StaticTokens;
use switchboard_runtime::{Runtime, Server, ServerConfig};
use switchboard_tests::http;
use switchboard_tests::sse::{self, SseBlock, SseClient};
use switchboard_tests::{TEST_TIMEOUT, bounded, eventually};

use super::{start, test_config};

async fn publish<R: Runtime>(
    server: &Server<R>,
    channel: &str,
    range: std::ops::RangeInclusive<u64>,
) {
    for i in range {
        server
            .publish(channel, json!({"event_type": "tick", "i": i}), false)
            .await
            .unwrap();
    }
}

/// The offsets of channel events, checking each event is the one published at its offset.
fn offsets(blocks: &[SseBlock]) -> Vec<u64> {
    blocks
        .iter()
        .map(|b| {
            let data = b.json();
            assert_eq!(data["event"]["i"], data["offset"], "{data}");
            data["offset"].as_u64().expect("an offset")
        })
        .collect()
}

async fn events<R: Runtime, S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin>(
    client: &mut SseClient<R, S>,
    n: usize,
) -> Vec<SseBlock> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(client.next_event().await.expect("an event"));
    }
    got
}

/// A stream resumes exactly where the browser was: after a dropped connection (`Last-Event-ID`), from `?since=`,
/// and after the listener restarted; it is counted with the connections while open.
pub async fn event_streams_resume_without_gap_or_duplicate<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        publish(&server, "feed", 1..=2).await;
        let path = "/api/v1/channels/feed/sse";
        let mut s = sse::open(&rt, addr, path, &[]).await.expect("a stream");
        assert_eq!(s.head.header("content-type"), Some("text/event-stream"));
        let opening = s.next().await.expect("the opening block");
        assert_eq!(opening.retry, Some(1000));
        let epoch = opening
            .id
            .as_deref()
            .and_then(|id| id.strip_suffix(":2"))
            .expect("id E:2")
            .to_owned();
        let connections = http::get(&rt, addr, "/api/connections").await.json();
        assert_eq!(connections["by_dialect"]["sse"], 1, "{connections}");
        let metrics = http::get(&rt, addr, "/metrics").await.text();
        assert!(metrics.contains("switchboard_connections{dialect=\"sse\"} 1\n"));

        publish(&server, "feed", 3..=5).await;
        let got = events(&mut s, 3).await;
        assert_eq!(offsets(&got), vec![3, 4, 5]);
        assert_eq!(got[2].id.as_deref(), Some(format!("{epoch}:5").as_str()));
        assert_eq!(got[0].event.as_deref(), Some("tick"));
        drop(s);

        publish(&server, "feed", 6..=8).await;
        let last = format!("{epoch}:5");
        let mut s = sse::open(&rt, addr, path, &[("Last-Event-ID", &last)])
            .await
            .expect("a stream");
        assert_eq!(
            s.next().await.expect("opening").id.as_deref(),
            Some(last.as_str())
        );
        publish(&server, "feed", 9..=9).await;
        assert_eq!(offsets(&events(&mut s, 4).await), vec![6, 7, 8, 9]);

        let since = format!("{path}?since={epoch}:7");
        let mut from_since = sse::open(&rt, addr, &since, &[]).await.expect("a stream");
        assert_eq!(offsets(&events(&mut from_since, 2).await), vec![8, 9]);
        drop(from_since);

        // The listener goes away: the stream ends; the browser comes back with its last id.
        server.stop_listening().await;
        assert!(s.until_end().await.is_empty());
        publish(&server, "feed", 10..=11).await;
        assert_eq!(
            server.listen(addr).await.expect("the same port again"),
            addr
        );
        let last = format!("{epoch}:9");
        let mut s = sse::open(&rt, addr, path, &[("Last-Event-ID", &last)])
            .await
            .expect("a stream");
        assert_eq!(offsets(&events(&mut s, 2).await), vec![10, 11]);
        // Nothing is sent twice: the next event is the next one published.
        publish(&server, "feed", 12..=12).await;
        assert_eq!(offsets(&events(&mut s, 1).await), vec![12]);
        drop(s);
        server.shutdown().await;
    })
    .await
}

/// A stream of several channels carries every channel's position in each id and resumes all of them; the project
/// stream speaks the project-stream dialect's messages.
pub async fn event_streams_of_several_channels_and_of_a_project<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        publish(&server, "b", 1..=1).await;
        let path = "/api/v1/sse?channel=a&channel=b";
        let mut s = sse::open(&rt, addr, path, &[]).await.expect("a stream");
        let opening = s.next().await.expect("the opening block");
        let id = opening.id.expect("an id");
        // Every channel has its own epoch: an entry repeats none unless two channels share one.
        let (first, second) = id.split_once(',').expect("one entry per channel");
        let ea = first.strip_suffix(":0").expect("a at 0").to_owned();
        let eb = second.strip_suffix(":1").expect("b at 1").to_owned();
        let eb = if eb.is_empty() { ea.clone() } else { eb };
        let both = |a: u64, b: u64| {
            if ea == eb {
                format!("{ea}:{a},:{b}")
            } else {
                format!("{ea}:{a},{eb}:{b}")
            }
        };
        publish(&server, "a", 1..=2).await;
        publish(&server, "b", 2..=2).await;
        let got = events(&mut s, 3).await;
        let ids: Vec<_> = got.iter().map(|b| b.id.clone().unwrap()).collect();
        assert_eq!(ids, vec![both(1, 1), both(2, 1), both(2, 2)]);
        assert_eq!(got[2].json()["channel"], "b");
        drop(s);
        publish(&server, "b", 3..=3).await;
        publish(&server, "a", 3..=3).await;
        let last = both(2, 2);
        let mut s = sse::open(&rt, addr, path, &[("Last-Event-ID", &last)])
            .await
            .expect("a stream");
        let got = events(&mut s, 2).await;
        let channels: Vec<_> = got
            .iter()
            .map(|b| (b.json()["channel"].clone(), b.json()["offset"].clone()))
            .collect();
        assert_eq!(
            channels,
            vec![(json!("a"), json!(3)), (json!("b"), json!(3))]
        );
        assert_eq!(got[1].id.as_deref(), Some(both(3, 3).as_str()));
        drop(s);

        let mut p = sse::open(&rt, addr, "/api/v1/projects/p1/sse", &[])
            .await
            .expect("a stream");
        p.next().await.expect("the opening block");
        let connected = p.next_event().await.expect("connected");
        assert_eq!(connected.event.as_deref(), Some("connected"));
        assert_eq!(connected.json()["project_id"], "p1");
        server
            .publish(
                "projects/p1",
                json!({"event_type": "stage_transition", "data": {"stage": "build"}}),
                false,
            )
            .await
            .unwrap();
        let event = p.next_event().await.expect("an event");
        assert_eq!(event.event.as_deref(), Some("stage_transition"));
        assert_eq!(event.json()["data"]["stage"], "build");
        assert_eq!(event.json()["offset"], 1);
        drop(p);
        server.shutdown().await;
    })
    .await
}

/// A position in another epoch, or an unreadable `Last-Event-ID`, resumes nowhere: `resync` with the current
/// position, then live events. An unreadable `since` and a stream of no channel are 400s.
pub async fn event_streams_resync_or_refuse_bad_positions<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        server.publish("feed", json!({"v": 1}), true).await.unwrap();
        let path = "/api/v1/channels/feed/sse";
        // Another epoch, then an id that cannot be read: each gets the current position, then live events.
        for (last, offset) in [("0123456789abcdef:1", 1), ("not an id:", 2)] {
            let mut s = sse::open(&rt, addr, path, &[("Last-Event-ID", last)])
                .await
                .expect("a stream");
            let resync = s.next_event().await.expect("a resync");
            assert_eq!(resync.event.as_deref(), Some("resync"), "{last}");
            assert_eq!(resync.json()["offset"], offset);
            assert_eq!(resync.json()["state"], json!({"v": 1}));
            server.publish("feed", json!({"v": 1}), true).await.unwrap();
            let live = s.next_event().await.expect("a live event");
            assert_eq!(live.json()["offset"], offset + 1);
            drop(s);
        }
        let refused = sse::open(&rt, addr, &format!("{path}?since=zz"), &[])
            .await
            .expect_err("a 400");
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (400, "VALIDATION_ERROR")
        );
        let refused = sse::open(&rt, addr, "/api/v1/sse", &[])
            .await
            .expect_err("a 400");
        assert_eq!(refused.status, 400);
        server.shutdown().await;
    })
    .await
}

/// The token comes in the query or the cookie; a channel it does not grant is 403 before the stream starts; an
/// allowed origin gets the CORS headers, another is 403; the connection limits count streams.
pub async fn event_streams_check_tokens_grants_origins_and_limits<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let reader = Permissions::from_patterns(vec!["public/**".into()], vec![], vec![], vec![]);
        let tokens = StaticTokens::new().with("reader", reader);
        let config = ServerConfig {
            allowed_origins: vec!["https://app.example".into()],
            max_connections_per_ip: 2,
            ..test_config().with_verifier(tokens)
        };
        let (server, addr) = start(&rt, config).await;
        let path = "/api/v1/channels/public%2Fnews/sse";
        let refused = sse::open(&rt, addr, path, &[]).await.expect_err("a 401");
        assert_eq!(refused.status, 401);
        let refused = sse::open(&rt, addr, &format!("{path}?token=wrong"), &[])
            .await
            .expect_err("a 401");
        assert_eq!(refused.status, 401);
        let denied = "/api/v1/sse?channel=public/a&channel=private&token=reader";
        let refused = sse::open(&rt, addr, denied, &[]).await.expect_err("a 403");
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (403, "FORBIDDEN")
        );
        let refused = sse::open(
            &rt,
            addr,
            &format!("{path}?token=reader"),
            &[("Origin", "https://evil.example")],
        )
        .await
        .expect_err("a 403");
        assert_eq!(refused.status, 403);

        let mut by_query = sse::open(
            &rt,
            addr,
            &format!("{path}?token=reader"),
            &[("Origin", "https://app.example")],
        )
        .await
        .expect("a stream");
        assert_eq!(
            by_query.head.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(
            by_query.head.header("access-control-allow-credentials"),
            Some("true")
        );
        let mut by_cookie = sse::open(
            &rt,
            addr,
            path,
            &[("Cookie", "theme=dark; switchboard_token=reader")],
        )
        .await
        .expect("a stream");
        // A third from the same address is over the limit, whatever its token.
        let refused = sse::open(&rt, addr, path, &[("Cookie", "switchboard_token=reader")])
            .await
            .expect_err("a 429");
        assert_eq!(refused.status, 429);
        by_query.next().await.expect("opening");
        by_cookie.next().await.expect("opening");
        publish(&server, "public/news", 1..=1).await;
        assert_eq!(offsets(&events(&mut by_query, 1).await), vec![1]);
        assert_eq!(offsets(&events(&mut by_cookie, 1).await), vec![1]);
        drop(by_query);
        drop(by_cookie);
        eventually(&rt, "the streams to be gone", || {
            server.stats().connections == 0
        })
        .await;
        server.shutdown().await;
    })
    .await
}

/// A stream whose reader stops is closed by the slow-consumer rule, having sent a prefix of the events in
/// order; reconnecting with the last id it got recovers the rest.
pub async fn slow_event_stream_is_closed_and_recovers<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let config = ServerConfig {
            hub: HubConfig {
                max_queued_bytes: 64 * 1024,
                ..test_config().hub
            },
            ..test_config()
        };
        let (server, addr) = start(&rt, config).await;
        let (client_end, server_end) = duplex(4096);
        server.serve_stream(server_end);
        let path = "/api/v1/channels/feed/sse";
        let mut slow = SseClient::open_over(&rt, client_end, path, &[])
            .await
            .expect("a stream");
        const TOTAL: u64 = 90;
        let pad = "x".repeat(1000);
        for i in 1..=TOTAL {
            server
                .publish("feed", json!({"i": i, "pad": pad}), false)
                .await
                .unwrap();
        }
        let seen = slow.until_end().await;
        let got = offsets(&seen);
        let last = *got.last().expect("some events before the close");
        assert_eq!(got, (1..=last).collect::<Vec<_>>(), "in order, no gap");
        assert!(last < TOTAL, "the slow consumer missed the tail");

        let id = seen.last().and_then(|b| b.id.clone()).expect("an id");
        let mut back = sse::open(&rt, addr, path, &[("Last-Event-ID", &id)])
            .await
            .expect("a stream");
        let rest = events(&mut back, (TOTAL - last) as usize).await;
        assert_eq!(offsets(&rest), (last + 1..=TOTAL).collect::<Vec<_>>());
        drop(back);
        server.shutdown().await;
    })
    .await
}
