//! The HTTP SDK against a fault-injecting local server, on every backend: the ureq-proto transport on smol and on
//! async-std, and surf (whose `HttpClient` is the ureq-proto transport) on async-std. Each scenario is written once
//! and instantiated per backend by `suite!`. Assertions are on counts and order, never on how long things took.

mod sdk_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_protocol::http_client::{
    ApiError, BudgetConfig, Method, OverlongRetryAfter, PaginationError, RequestParts, RetryAfter,
};
use switchboard_runtime::Runtime;
use switchboard_runtime::sdk::{
    ApiClient, BlockingClient, CacheConfig, H1Config, H1Transport, HistoryError, HistoryQuery,
    INVALID_RESPONSE, RateLimit, ResponseLimits, TlsConfig, WatchError,
};

use futures_rustls::rustls::pki_types::CertificateDer;
use sdk_support::server::{http_date, query_map, self_signed};
use sdk_support::{
    Backend, FakeServer, Reply, Seen, SurfAsyncStd, UreqAsyncStd, UreqSmol, client as make_client,
    client_over as make_client_over,
};

macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod ureq_smol {
            $( #[test] fn $scenario() { super::$scenario::<super::UreqSmol>() } )*
        }
        mod ureq_async_std {
            $( #[test] fn $scenario() { super::$scenario::<super::UreqAsyncStd>() } )*
        }
        mod surf_async_std {
            $( #[test] fn $scenario() { super::$scenario::<super::SurfAsyncStd>() } )*
        }
    };
}

suite!(
    retries_a_503_burst_then_succeeds,
    gives_up_after_max_attempts,
    retry_after_in_seconds,
    retry_after_as_an_http_date,
    post_is_retried_only_when_the_server_did_not_act,
    publish_retries_with_one_idempotency_key,
    publish_batch_sends_events_and_reads_the_range,
    the_retry_budget_runs_dry,
    the_limiter_makes_the_excess_wait_in_order,
    cache_statistics_and_invalidation_by_writes,
    history_of_2500_events_in_pages_with_every_third_request_failing,
    history_stops_when_the_epoch_changes,
    every_error_class,
    slow_answers_time_out_and_are_retried,
    connection_reset_mid_response,
    keep_alive_reuses_connections_and_survives_idle_closes,
    chunked_and_oversized_bodies,
    bearer_token_and_default_headers,
    https_with_a_trusted_certificate,
    https_with_an_untrusted_certificate_is_refused_at_once,
    resource_crud_listing_and_bulk,
    bulk_publish_respects_max_concurrent,
    watch_until_terminal_with_callbacks,
    wait_for_completion_times_out,
    health_monitor_calls_back_on_transitions,
    blocking_client_has_the_same_api,
);

fn ok_json(value: Value) -> Reply {
    Reply::json(200, value)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Answers from a fixed script, by arrival order; past its end, the last entry again.
fn scripted(replies: Vec<Reply>) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |seen| replies[seen.index.min(replies.len() - 1)].clone()
}

fn retries_a_503_burst_then_succeeds<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(
            &rt,
            scripted(vec![
                Reply::error(503, "UNAVAILABLE", "busy"),
                Reply::error(503, "UNAVAILABLE", "busy"),
                ok_json(json!({"name": "switchboard"})),
            ]),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let info: Value = client.get("/api/info").await.unwrap();
        assert_eq!(info["name"], "switchboard");
        assert_eq!(server.requests(), 3);
        let m = client.metrics();
        assert_eq!((m.total, m.successes, m.retries), (1, 1, 2));
        // The last retry's tokens came back with the success; the first retry's stayed spent.
        assert_eq!(client.budget_tokens(), 495);
    });
}

fn gives_up_after_max_attempts<B: Backend>() {
    B::run(|rt| async move {
        let server =
            FakeServer::start(&rt, |_: &Seen| Reply::error(503, "UNAVAILABLE", "down")).await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.retry.max_attempts = 4
        });
        let err = client.get::<Value>("/api/info").await.unwrap_err();
        assert!(matches!(err, ApiError::Server(_)), "{err:?}");
        assert_eq!((err.status(), err.code()), (Some(503), Some("UNAVAILABLE")));
        assert_eq!(server.requests(), 4);
        let m = client.metrics();
        assert_eq!((m.total, m.server_errors, m.retries), (1, 1, 3));
    });
}

fn retry_after_in_seconds<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(
            &rt,
            scripted(vec![
                Reply::error(429, "RATE_LIMITED", "slow down").with_header("retry-after", "1"),
                ok_json(json!({"ok": true})),
                Reply::error(429, "RATE_LIMITED", "much slower").with_header("retry-after", "120"),
            ]),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.retry.max_retry_after = Duration::from_secs(5);
            c.retry.overlong_retry_after = OverlongRetryAfter::GiveUp;
        });
        // Retry-After: 1 is obeyed (within max_retry_after): a second attempt succeeds.
        let _: Value = client.get("/a").await.unwrap();
        assert_eq!(server.requests(), 2);
        // Retry-After: 120 is beyond it: no retry, and the error carries the parsed header.
        let err = client.get::<Value>("/b").await.unwrap_err();
        assert_eq!(
            err.retry_after(),
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert!(matches!(err, ApiError::RateLimited { .. }));
        assert_eq!(server.requests(), 3);
    });
}

fn retry_after_as_an_http_date<B: Backend>() {
    B::run(|rt| async move {
        let past = http_date(unix_now() - 30);
        let far = http_date(unix_now() + 3600);
        let server = FakeServer::start(
            &rt,
            scripted(vec![
                Reply::error(503, "UNAVAILABLE", "back soon").with_header("retry-after", &past),
                ok_json(json!(1)),
                Reply::error(429, "RATE_LIMITED", "tomorrow").with_header("retry-after", &far),
            ]),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.retry.max_retry_after = Duration::from_secs(60);
            c.retry.overlong_retry_after = OverlongRetryAfter::GiveUp;
        });
        // A date in the past means "now": retried at once.
        assert_eq!(client.get::<u32>("/a").await.unwrap(), 1);
        assert_eq!(server.requests(), 2);
        // A date an hour ahead is beyond max_retry_after: given up, the date kept.
        let err = client.get::<Value>("/b").await.unwrap_err();
        match err.retry_after() {
            Some(RetryAfter::Date(date)) => assert_eq!(date.to_string(), far),
            other => panic!("expected a date, got {other:?}"),
        }
        assert_eq!(server.requests(), 3);
    });
}

fn post_is_retried_only_when_the_server_did_not_act<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(
            &rt,
            scripted(vec![
                // 500: the server may have acted; a POST without an idempotency key is not resent.
                Reply::error(500, "INTERNAL", "boom"),
                // 503: it did not; resent.
                Reply::error(503, "UNAVAILABLE", "busy"),
                Reply::json(201, json!({"ok": true})),
            ]),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let err = client
            .post::<_, Value>("/api/v1/things", &json!({"n": 1}))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert_eq!(server.requests(), 1);
        let created: Value = client
            .post("/api/v1/things", &json!({"n": 1}))
            .await
            .unwrap();
        assert_eq!(created, json!({"ok": true}));
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|s| s.method == "POST"));
        assert!(seen.iter().all(|s| s.header("idempotency-key").is_none()));
    });
}

/// A publish carries an idempotency key, the same on every attempt: it is resent after a 500 and after a timeout
/// too (the server answers a resend of a kept publish with the original's offset), and the next publish has
/// another key.
fn publish_retries_with_one_idempotency_key<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(
            &rt,
            scripted(vec![
                Reply::error(500, "INTERNAL", "boom"),
                // Kept, but the answer comes too late: the client times out and resends.
                Reply::json(201, json!({"channel": "c", "offset": 1}))
                    .after(Duration::from_secs(3)),
                Reply::json(200, json!({"channel": "c", "offset": 1, "duplicate": true})),
                Reply::json(201, json!({"channel": "c", "offset": 2})),
            ]),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.timeout = Duration::from_millis(300);
        });
        let channels = client.channels();
        let published = channels
            .publish("c", &json!({"n": 1}), false)
            .await
            .unwrap();
        assert_eq!((published.offset, published.duplicate), (1, true));
        let next = channels
            .publish("c", &json!({"n": 2}), false)
            .await
            .unwrap();
        assert_eq!((next.offset, next.duplicate), (2, false));
        let seen = server.seen();
        assert_eq!(seen.len(), 4);
        let keys: Vec<&str> = seen
            .iter()
            .map(|s| s.header("idempotency-key").expect("a key on every publish"))
            .collect();
        assert!(keys[0] == keys[1] && keys[1] == keys[2], "{keys:?}");
        assert_ne!(keys[2], keys[3]);
        assert!(keys.iter().all(|k| (1..=128).contains(&k.len())));
        let mine = channels
            .publish_with_key("c", &json!({"n": 3}), false, "job-7")
            .await
            .unwrap();
        assert_eq!(mine.offset, 2);
        assert_eq!(server.seen()[4].header("idempotency-key"), Some("job-7"));
    });
}

fn publish_batch_sends_events_and_reads_the_range<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(
            &rt,
            scripted(vec![Reply::json(
                201,
                json!({"channel": "c", "first_offset": 4, "last_offset": 6}),
            )]),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let published = client
            .channels()
            .publish_batch("c", &[json!(1), json!(2), json!(3)], true)
            .await
            .unwrap();
        assert_eq!((published.first_offset, published.last_offset), (4, 6));
        let seen = server.seen();
        assert_eq!(seen[0].path(), "/api/v1/channels/c/events");
        assert!(seen[0].header("idempotency-key").is_some());
        assert_eq!(
            seen[0].json(),
            json!({"events": [1, 2, 3], "retain_last": true})
        );
    });
}

fn the_retry_budget_runs_dry<B: Backend>() {
    B::run(|rt| async move {
        let healthy = Arc::new(AtomicUsize::new(0));
        let flag = healthy.clone();
        let server = FakeServer::start(&rt, move |_: &Seen| {
            if flag.load(Ordering::SeqCst) == 1 {
                ok_json(json!({}))
            } else {
                Reply::error(503, "UNAVAILABLE", "down")
            }
        })
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.retry.max_attempts = 10;
            c.budget = Some(BudgetConfig {
                capacity: 10,
                retry_cost: 5,
                timeout_retry_cost: 10,
                success_increment: 1,
            });
        });
        // Two retries empty the bucket; the third is refused.
        assert!(client.get::<Value>("/x").await.is_err());
        assert_eq!(server.requests(), 3);
        assert_eq!(client.budget_tokens(), 0);
        // The next call gets no retry at all.
        assert!(client.get::<Value>("/x").await.is_err());
        assert_eq!(server.requests(), 4);
        // A first-attempt success earns one token back.
        healthy.store(1, Ordering::SeqCst);
        let _: Value = client.get("/x").await.unwrap();
        assert_eq!(client.budget_tokens(), 1);
        assert_eq!(client.metrics().retries, 2);
    });
}

fn the_limiter_makes_the_excess_wait_in_order<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |_: &Seen| ok_json(json!({}))).await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.rate_limit = Some(RateLimit {
                requests: 3,
                window: Duration::from_secs(2),
            });
        });
        // Six calls at once: join_all polls them in order, so calls 0-2 take the window's slots.
        let routes: Vec<String> = (0..6).map(|i| format!("/r?i={i}")).collect();
        let calls = routes.iter().map(|route| client.get::<Value>(route));
        for result in join_all(calls).await {
            result.unwrap();
        }
        assert_eq!(client.limiter_waits(), 3);
        let order: Vec<String> = server
            .seen()
            .iter()
            .map(|s| s.query("i").unwrap().to_owned())
            .collect();
        let first: BTreeSet<_> = order[..3].iter().cloned().collect();
        let last: BTreeSet<_> = order[3..].iter().cloned().collect();
        assert_eq!(first, BTreeSet::from(["0".into(), "1".into(), "2".into()]));
        assert_eq!(last, BTreeSet::from(["3".into(), "4".into(), "5".into()]));
    });
}

fn cache_statistics_and_invalidation_by_writes<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |s: &Seen| match s.method.as_str() {
            "GET" => ok_json(json!({"seen": s.index})),
            _ => Reply::json(201, json!({})),
        })
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.cache = Some(CacheConfig {
                ttl: Duration::from_secs(600),
                capacity: 10,
            });
        });
        let a: Value = client.get("/api/v1/items").await.unwrap();
        let b: Value = client.get("/api/v1/items").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(server.requests(), 1);
        let other: Value = client.get("/api/v1/items/5").await.unwrap();
        assert_eq!(other["seen"], 1);
        let s = client.cache_stats().unwrap();
        assert_eq!((s.hits, s.misses, s.size), (1, 2, 2));
        // A write to a member drops the member and its collection.
        let _: Value = client.post("/api/v1/items/5", &json!({})).await.unwrap();
        let c: Value = client.get("/api/v1/items").await.unwrap();
        assert_eq!(c["seen"], 3);
        let s = client.cache_stats().unwrap();
        assert_eq!((s.hits, s.misses, s.invalidations), (1, 3, 2));
        let m = client.metrics();
        assert_eq!((m.cache_hits, m.cache_misses), (1, 3));
        // A health check always asks the server.
        let before = server.requests();
        let _ = client.health_check().await;
        let _ = client.health_check().await;
        assert_eq!(server.requests(), before + 2);
    });
}

/// A history server: events 1..=total in `epoch`, pages of at most 1000, every third request a 503.
fn history_server(
    total: u64,
    epoch_for: impl Fn(usize) -> &'static str + Send + Sync + 'static,
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |s: &Seen| {
        if s.index % 3 == 2 {
            return Reply::error(503, "UNAVAILABLE", "try again");
        }
        assert_eq!(s.path(), "/api/v1/channels/jobs%2F7/events");
        let q = query_map(&s.target);
        let limit: u64 = q["limit"].parse().unwrap();
        if limit > 1000 {
            return Reply::error(400, "VALIDATION_ERROR", "limit over 1000");
        }
        let since: u64 = q.get("since").map_or(0, |v| v.parse().unwrap());
        let end = (since + limit).min(total);
        let events: Vec<Value> = (since + 1..=end)
            .map(|o| json!({"offset": o, "event": {"n": o}}))
            .collect();
        let next = (end < total).then_some(end);
        ok_json(
            json!({"channel": "jobs/7", "epoch": epoch_for(s.index), "events": events, "next_since": next}),
        )
    }
}

fn history_of_2500_events_in_pages_with_every_third_request_failing<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, history_server(2500, |_| "e1")).await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let events: Vec<_> = client
            .channels()
            .history("jobs/7", HistoryQuery::default())
            .collect()
            .await;
        let offsets: Vec<u64> = events.into_iter().map(|e| e.unwrap().offset).collect();
        assert_eq!(offsets, (1..=2500).collect::<Vec<_>>());
        // Pages 1000 + 1000 + 500; the third request (page 3's first try) got a 503 and was retried.
        let sinces: Vec<Option<String>> = server
            .seen()
            .iter()
            .map(|s| s.query("since").map(str::to_owned))
            .collect();
        assert_eq!(
            sinces,
            [
                None,
                Some("1000".into()),
                Some("2000".into()),
                Some("2000".into())
            ]
        );
        assert!(
            server
                .seen()
                .iter()
                .all(|s| s.query("limit") == Some("1000"))
        );
        assert_eq!(client.metrics().retries, 1);

        // A walk capped at 1500 events asks only for what it still wants.
        let capped: Vec<_> = client
            .channels()
            .history(
                "jobs/7",
                HistoryQuery {
                    since: Some(100),
                    page_size: 1000,
                    max_items: Some(1500),
                },
            )
            .collect()
            .await;
        assert_eq!(capped.len(), 1500);
        assert_eq!(capped.last().unwrap().as_ref().unwrap().offset, 1600);
        let limits: Vec<String> = server.seen()[4..]
            .iter()
            .filter(|s| s.index % 3 != 2)
            .map(|s| s.query("limit").unwrap().to_owned())
            .collect();
        assert_eq!(limits, ["1000", "500"]);
    });
}

fn history_stops_when_the_epoch_changes<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(
            &rt,
            history_server(2500, |i| if i == 0 { "e1" } else { "e2" }),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let items: Vec<_> = client
            .channels()
            .history("jobs/7", HistoryQuery::default())
            .collect()
            .await;
        assert_eq!(items.len(), 1001);
        assert!(items[..1000].iter().all(Result::is_ok));
        assert_eq!(
            items[1000],
            Err(HistoryError::Pagination(PaginationError::EpochChanged {
                expected: "e1".into(),
                got: "e2".into()
            }))
        );
        assert_eq!(server.requests(), 2);
    });
}

fn every_error_class<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |s: &Seen| {
            let status: u16 = s
                .path()
                .trim_start_matches("/status/")
                .parse()
                .unwrap_or(200);
            match status {
                200 => ok_json(json!({"unexpected": "shape"})),
                _ => Reply::error(status, &format!("CODE_{status}"), "why"),
            }
        })
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.retry.max_attempts = 1
        });
        let cases: &[(u16, &str)] = &[
            (400, "Validation"),
            (401, "Authentication"),
            (403, "Forbidden"),
            (404, "NotFound"),
            (405, "Other"),
            (413, "Other"),
            (422, "Validation"),
            (429, "RateLimited"),
            (500, "Server"),
            (503, "Server"),
        ];
        for &(status, class) in cases {
            let err = client
                .get::<Value>(&format!("/status/{status}"))
                .await
                .unwrap_err();
            assert!(format!("{err:?}").starts_with(class), "{status}: {err:?}");
            assert_eq!(err.status(), Some(status));
            assert_eq!(err.code(), Some(format!("CODE_{status}").as_str()));
            assert_eq!(err.message(), Some("why"));
        }
        // A 2xx that is not the JSON asked for.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Wanted {
            offset: u64,
        }
        let err = client.get::<Wanted>("/status/200").await.unwrap_err();
        assert!(matches!(err, ApiError::Other(_)));
        assert_eq!(
            (err.status(), err.code()),
            (Some(200), Some(INVALID_RESPONSE))
        );
        assert!(err.message().unwrap().contains("offset"), "{err}");
        let m = client.metrics();
        assert_eq!((m.client_errors, m.server_errors), (8, 2));

        // No server at all: a transport error, retried (idempotent) then given up.
        let port = {
            let listener = rt.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            switchboard_runtime::TcpListen::local_addr(&listener)
                .unwrap()
                .port()
        };
        let mut config = client.config().clone();
        config.base_url = format!("http://127.0.0.1:{port}");
        config.retry.max_attempts = 2;
        let h1 = H1Transport::new(rt.clone());
        let refused =
            ApiClient::with_shared_transport(rt.clone(), config, B::transport(h1)).unwrap();
        let err = refused.get::<Value>("/x").await.unwrap_err();
        assert!(matches!(err, ApiError::Transport(_)), "{err:?}");
        let m = refused.metrics();
        assert_eq!((m.transport_errors, m.retries), (1, 1));
    });
}

fn slow_answers_time_out_and_are_retried<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |_: &Seen| {
            ok_json(json!({})).after(Duration::from_secs(3))
        })
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.timeout = Duration::from_millis(200);
            c.retry.max_attempts = 2;
        });
        let err = client.get::<Value>("/slow").await.unwrap_err();
        assert_eq!(err, ApiError::Timeout);
        assert_eq!(server.requests(), 2);
        let m = client.metrics();
        assert_eq!((m.timeouts, m.retries), (1, 1));
        // A retry after a timeout costs 10 tokens.
        assert_eq!(client.budget_tokens(), 490);
        // A POST that times out may have been applied: not resent.
        let err = client
            .post::<_, Value>("/slow", &json!({}))
            .await
            .unwrap_err();
        assert_eq!(err, ApiError::Timeout);
        assert_eq!(server.requests(), 3);
    });
}

fn connection_reset_mid_response<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(
            &rt,
            scripted(vec![
                Reply::ResetMidBody,
                ok_json(json!({"after": "reset"})),
                Reply::ResetMidBody,
                Reply::HangUp,
            ]),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let v: Value = client.get("/x").await.unwrap();
        assert_eq!(v["after"], "reset");
        assert_eq!(server.requests(), 2);
        // A POST cut off mid-response is not resent.
        let err = client.post::<_, Value>("/x", &json!({})).await.unwrap_err();
        assert!(matches!(err, ApiError::Transport(_)), "{err:?}");
        assert_eq!(server.requests(), 3);
        // Nor is one whose connection was hung up on.
        let err = client.put::<_, Value>("/x", &json!({})).await;
        assert!(matches!(err, Err(ApiError::Transport(_))), "{err:?}");
    });
}

fn keep_alive_reuses_connections_and_survives_idle_closes<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |s: &Seen| {
            if s.index == 4 {
                Reply::ThenClose(Box::new(ok_json(json!(s.index))))
            } else {
                ok_json(json!(s.index))
            }
        })
        .await;
        let (client, h1) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        for i in 0..5 {
            assert_eq!(client.get::<usize>(&format!("/k?i={i}")).await.unwrap(), i);
        }
        assert_eq!(server.accepted(), 1);
        assert_eq!(h1.connections_opened(), 1);
        assert_eq!(h1.pool_stats().reused, 4);
        // The server closed the connection after request 4, unannounced; wait until the client can see that.
        let deadline = rt.now().saturating_add(Duration::from_secs(5));
        while server.requests() < 5 && rt.now() < deadline {
            rt.sleep_until(rt.now().saturating_add(Duration::from_millis(5)))
                .await;
        }
        rt.sleep_until(rt.now().saturating_add(Duration::from_millis(100)))
            .await;
        assert_eq!(client.get::<usize>("/k?i=5").await.unwrap(), 5);
        assert_eq!(server.accepted(), 2);
        assert_eq!(h1.connections_opened(), 2);
        let connections: Vec<usize> = server.seen().iter().map(|s| s.connection).collect();
        assert_eq!(connections, [0, 0, 0, 0, 0, 1]);
        assert!(h1.pool_stats().discarded >= 1);
        assert_eq!(client.metrics().retries, 0);
    });
}

fn chunked_and_oversized_bodies<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |s: &Seen| match s.path() {
            "/chunked" => Reply::Chunked {
                status: 200,
                chunks: vec![b"{\"parts\":".to_vec(), b"[1,2,".to_vec(), b"3]}".to_vec()],
            },
            _ => ok_json(json!({"big": "x".repeat(4096)})),
        })
        .await;
        let limits = H1Config {
            limits: ResponseLimits {
                max_body_bytes: 1024,
                ..ResponseLimits::default()
            },
            ..H1Config::default()
        };
        let (client, _) = make_client::<B>(&rt, &server, limits, |_| {});
        let v: Value = client.get("/chunked").await.unwrap();
        assert_eq!(v, json!({"parts": [1, 2, 3]}));
        // Too big: refused, and not retried (it would be as big again).
        let err = client.get::<Value>("/big").await.unwrap_err();
        assert!(
            matches!(&err, ApiError::Transport(m) if m.contains("1024")),
            "{err:?}"
        );
        assert_eq!(server.requests(), 2);
    });
}

fn bearer_token_and_default_headers<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |s: &Seen| match s.header("authorization") {
            Some("Bearer s3cret") => ok_json(json!({"status": "healthy", "version": "1.2.3"})),
            _ => Reply::error(401, "UNAUTHORIZED", "no token"),
        })
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.token = Some("s3cret".into());
            c.base_url = format!("{}/prefix/", c.base_url);
        });
        let report = client.health_check().await.unwrap();
        assert!(report.is_healthy());
        assert_eq!(report.version.as_deref(), Some("1.2.3"));
        let seen = &server.seen()[0];
        assert_eq!(seen.path(), "/prefix/health");
        assert_eq!(seen.header("accept"), Some("application/json"));
        assert!(
            seen.header("user-agent")
                .unwrap()
                .starts_with("switchboard-sdk/")
        );
        // A caller's own header wins over the default.
        let request =
            RequestParts::new(Method::Get, "/x").with_header("Authorization", "Bearer other");
        let err = client.send(request).await.unwrap_err();
        assert!(matches!(err, ApiError::Authentication(_)), "{err:?}");
    });
}

fn https_with_a_trusted_certificate<B: Backend>() {
    B::run(|rt| async move {
        let (server_tls, cert) = self_signed();
        let server =
            FakeServer::start_tls(&rt, server_tls, |s: &Seen| ok_json(json!(s.index))).await;
        let trust = TlsConfig::with_roots([CertificateDer::from(cert)]).unwrap();
        let h1 = H1Transport::with_tls(rt.clone(), H1Config::default(), trust);
        let client = make_client_over::<B>(&rt, &server.url(), h1.clone(), |_| {});
        assert!(server.url().starts_with("https://127.0.0.1:"));
        for i in 0..3 {
            assert_eq!(client.get::<usize>("/tls").await.unwrap(), i);
        }
        // One TLS connection, kept alive.
        assert_eq!((server.accepted(), h1.connections_opened()), (1, 1));
    });
}

fn https_with_an_untrusted_certificate_is_refused_at_once<B: Backend>() {
    B::run(|rt| async move {
        let (server_tls, _) = self_signed();
        let server = FakeServer::start_tls(&rt, server_tls, |_: &Seen| ok_json(json!({}))).await;
        // Mozilla's roots do not include a fresh self-signed certificate.
        let h1 = H1Transport::new(rt.clone());
        let client = make_client_over::<B>(&rt, &server.url(), h1, |c| c.retry.max_attempts = 5);
        let err = client.get::<Value>("/x").await.unwrap_err();
        assert!(
            matches!(&err, ApiError::Transport(m) if m.contains("TLS")),
            "{err:?}"
        );
        // A certificate refusal would be refused again: not retried.
        assert_eq!(client.metrics().retries, 0);
        assert_eq!(server.requests(), 0);
    });
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    name: String,
}

/// A tiny REST collection at /api/v1/items, answering writes after `delay`.
fn items_server(delay: Duration) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let store: Mutex<(u64, std::collections::BTreeMap<u64, Value>)> =
        Mutex::new((0, Default::default()));
    move |s: &Seen| {
        let mut store = store.lock().unwrap();
        let id: Option<u64> = s
            .path()
            .strip_prefix("/api/v1/items/")
            .map(|i| i.parse().unwrap());
        match (s.method.as_str(), id) {
            ("GET", None) => {
                let q = query_map(&s.target);
                let page: usize = q["page"].parse().unwrap();
                let per: usize = q["per_page"].parse().unwrap();
                let items: Vec<&Value> =
                    store.1.values().skip((page - 1) * per).take(per).collect();
                ok_json(json!({"items": items, "total": store.1.len()}))
            }
            ("POST", None) => {
                store.0 += 1;
                let id = store.0;
                let mut item = s.json();
                item["id"] = json!(id);
                store.1.insert(id, item.clone());
                Reply::json(201, item).after(delay)
            }
            ("GET", Some(id)) => match store.1.get(&id) {
                Some(item) => ok_json(item.clone()),
                None => Reply::error(404, "NOT_FOUND", "no such item"),
            },
            ("PUT", Some(id)) if store.1.contains_key(&id) => {
                let mut item = s.json();
                item["id"] = json!(id);
                store.1.insert(id, item.clone());
                ok_json(item)
            }
            ("DELETE", Some(id)) if store.1.remove(&id).is_some() => Reply::Full {
                status: 204,
                headers: vec![],
                body: vec![],
            },
            _ => Reply::error(404, "NOT_FOUND", "no such item"),
        }
    }
}

fn resource_crud_listing_and_bulk<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, items_server(Duration::from_millis(30))).await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let items = client.resource::<Item>("/api/v1/items").per_page(10);
        let new: Vec<Item> = (0..25)
            .map(|i| Item {
                id: None,
                name: format!("n{i}"),
            })
            .collect();
        let report = items.create_many(new, 4).await;
        assert!(report.all_succeeded());
        assert!(
            server.max_in_flight() <= 4 && server.max_in_flight() >= 2,
            "{}",
            server.max_in_flight()
        );
        let names: Vec<String> = report
            .results
            .iter()
            .map(|r| r.as_ref().unwrap().name.clone())
            .collect();
        assert_eq!(names, (0..25).map(|i| format!("n{i}")).collect::<Vec<_>>());

        let before = server.requests();
        let all = items.list_all().await.unwrap();
        assert_eq!(all.len(), 25);
        assert_eq!(
            all.iter().map(|i| i.id.unwrap()).collect::<Vec<_>>(),
            (1..=25).collect::<Vec<_>>()
        );
        assert_eq!(server.requests() - before, 3); // 10 + 10 + 5 (short page ends it)
        let capped: Vec<_> = items.clone().max_items(15).list().collect().await;
        assert_eq!(capped.len(), 15);

        let mut one = items.get("7").await.unwrap();
        one.name = "seven".into();
        assert_eq!(items.update("7", &one).await.unwrap().name, "seven");
        items.delete("7").await.unwrap();
        assert!(matches!(items.get("7").await, Err(ApiError::NotFound(_))));
        let report = items
            .delete_many(vec!["1".into(), "7".into(), "2".into()], 2)
            .await;
        assert_eq!(report.succeeded(), 2);
        assert_eq!(report.failures().map(|(i, _)| i).collect::<Vec<_>>(), [1]);
    });
}

fn bulk_publish_respects_max_concurrent<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |s: &Seen| {
            Reply::json(
                201,
                json!({"channel": "c", "offset": s.json()["event"]["n"]}),
            )
            .after(Duration::from_millis(100))
        })
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let events = (0..12).map(|n| ("c".to_owned(), json!({"n": n}))).collect();
        let report = client.channels().publish_many(events, 3).await;
        let offsets: Vec<u64> = report
            .into_result()
            .unwrap()
            .iter()
            .map(|p| p.offset)
            .collect();
        assert_eq!(offsets, (0..12).collect::<Vec<_>>());
        assert_eq!(server.max_in_flight(), 3);
    });
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Job {
    status: String,
}

fn watch_until_terminal_with_callbacks<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(
            &rt,
            scripted(vec![
                ok_json(json!({"status": "queued"})),
                ok_json(json!({"status": "running"})),
                Reply::error(503, "UNAVAILABLE", "blip"),
                ok_json(json!({"status": "running"})),
                ok_json(json!({"status": "succeeded"})),
            ]),
        )
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |c| {
            c.retry.max_attempts = 1;
            c.cache = Some(CacheConfig {
                ttl: Duration::from_secs(600),
                capacity: 10,
            });
        });
        let changes = Arc::new(Mutex::new(Vec::new()));
        let log = changes.clone();
        let job: Job = client
            .watch("/api/v1/jobs/7")
            .interval(Duration::from_millis(10))
            .until(|job: &Job| job.status == "succeeded")
            .on_change(move |job: &Job| log.lock().unwrap().push(job.status.clone()))
            .run()
            .await
            .unwrap();
        assert_eq!(job.status, "succeeded");
        assert_eq!(*changes.lock().unwrap(), ["queued", "running", "succeeded"]);
        // Every poll reached the server, cache or not; the 503 was tolerated.
        assert_eq!(server.requests(), 5);
    });
}

fn wait_for_completion_times_out<B: Backend>() {
    B::run(|rt| async move {
        let server = FakeServer::start(&rt, |_: &Seen| ok_json(json!({"status": "running"}))).await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let err = client
            .watch::<Job>("/api/v1/jobs/8")
            .interval(Duration::from_millis(20))
            .until(|job| job.status == "succeeded")
            .wait_for_completion(Duration::from_millis(300))
            .await
            .unwrap_err();
        match err {
            WatchError::TimedOut {
                polls,
                last,
                timeout,
            } => {
                assert!(polls >= 1);
                assert_eq!(polls as usize, server.requests());
                assert_eq!(last, Some(json!({"status": "running"})));
                assert_eq!(timeout, Duration::from_millis(300));
            }
            other => panic!("{other:?}"),
        }
        // An error that is not retryable ends the watch at once.
        let server =
            FakeServer::start(&rt, |_: &Seen| Reply::error(404, "NOT_FOUND", "gone")).await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let err = client
            .watch::<Job>("/j")
            .interval(Duration::from_millis(1))
            .run()
            .await
            .unwrap_err();
        assert!(
            matches!(err, WatchError::Api(ApiError::NotFound(_))),
            "{err:?}"
        );
        assert_eq!(server.requests(), 1);
    });
}

fn health_monitor_calls_back_on_transitions<B: Backend>() {
    B::run(|rt| async move {
        // Checks 0-1 healthy, 2-3 failing (a 503, then "degraded"), from 4 on healthy again.
        let server = FakeServer::start(&rt, |s: &Seen| match s.index {
            0 | 1 => ok_json(json!({"status": "healthy"})),
            2 => Reply::error(503, "NOT_READY", "draining"),
            3 => ok_json(json!({"status": "degraded"})),
            _ => ok_json(json!({"status": "healthy", "version": "2"})),
        })
        .await;
        let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
        let (tx, mut rx) = futures_channel::mpsc::unbounded::<String>();
        let (tx2, tx3) = (tx.clone(), tx);
        let monitor = switchboard_runtime::sdk::HealthMonitor::new(client)
            .interval(Duration::from_millis(10))
            .failure_threshold(2)
            .on_healthy(move |r| {
                let _ = tx2.unbounded_send(format!("healthy {:?}", r.version));
            })
            .on_unhealthy(move |e| {
                let _ = tx3.unbounded_send(format!("unhealthy {e}"));
            })
            .start();
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(rx.next().await.unwrap());
        }
        monitor.stop();
        assert_eq!(
            events,
            [
                "healthy None".to_owned(),
                "unhealthy server reports status \"degraded\"".to_owned(),
                "healthy Some(\"2\")".to_owned(),
            ]
        );
        // Stopped: no more callbacks (the channel closes once the task has dropped its callbacks).
        assert_eq!(rx.next().await, None);
    });
}

fn blocking_client_has_the_same_api<B: Backend>() {
    // On a plain thread, not inside any executor; bounded like the async tests.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let body = std::thread::spawn(move || {
        blocking_scenario::<B>();
        let _ = done_tx.send(());
    });
    let finished = done_rx.recv_timeout(sdk_support::backends::TEST_LIMIT);
    if finished.is_err() && !body.is_finished() {
        panic!(
            "the test took longer than {:?}",
            sdk_support::backends::TEST_LIMIT
        );
    }
    if let Err(panic) = body.join() {
        std::panic::resume_unwind(panic);
    }
}

fn blocking_scenario<B: Backend>() {
    let rt = B::runtime();
    let server = B::block_on(FakeServer::start(&rt, items_server(Duration::ZERO)));
    let (client, _) = make_client::<B>(&rt, &server, H1Config::default(), |_| {});
    let blocking = BlockingClient::from_async(client);
    let items = blocking.resource::<Item>("/api/v1/items").per_page(2);
    for i in 0..5 {
        let created = items
            .create(&Item {
                id: None,
                name: format!("b{i}"),
            })
            .unwrap();
        assert_eq!(created.id, Some(i + 1));
    }
    let listed: Vec<Item> = items.list().map(Result::unwrap).collect();
    assert_eq!(listed.len(), 5);
    assert_eq!(items.get("3").unwrap().name, "b2");
    items.delete("3").unwrap();
    assert!(matches!(items.get("3"), Err(ApiError::NotFound(_))));
    let v: Value = blocking.get("/api/v1/items/1").unwrap();
    assert_eq!(v["name"], "b0");
    assert_eq!(blocking.metrics().successes, 11); // 5 creates, 3 pages, 3 gets and deletes
    assert!(blocking.channels().state("nope").is_err());
}
