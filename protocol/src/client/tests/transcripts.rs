//! Transcripts: for each scenario of the client machine, the exact sequence of outputs.

use super::*;
use alloc::vec;

#[test]
fn first_connect() {
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    assert_eq!(outs(&mut c), [Out::Connect, Out::Timeout(t(10_000))]);
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Connect));

    // The transport is up: the greeting must come within the connect timeout.
    c.handle_connected(t(40));
    assert_eq!(outs(&mut c), [Out::Timeout(t(10_040))]);
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Connect));
    assert!(!c.is_connected());

    c.handle_text(t(50), &greeting("app-1"));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Connected {
                app_id: "app-1".into()
            }),
            // heartbeat_ms 25 s + heartbeat_timeout 10 s of silence.
            Out::Timeout(t(35_050)),
        ]
    );
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Heartbeat));
    assert!(c.is_connected());
    assert_eq!(c.app_id(), Some("app-1"));
}

#[test]
fn request_and_response() {
    let mut c = open_client();
    let data = obj(json!({ "x": 1 }));
    let id = c.request(t(100), "echo", data.clone(), None).unwrap();
    assert_eq!(
        outs(&mut c),
        [
            tx(
                &id,
                ClientMessage::Custom {
                    type_name: "echo".into(),
                    data: data.clone()
                }
            ),
            Out::Timeout(t(30_100)),
        ]
    );
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Request));

    let answer = ServerMessage::Custom {
        type_name: "echo_res".into(),
        data,
    };
    c.handle_text(t(200), &server(Some(&id), answer.clone()));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Response {
                id,
                message: answer
            }),
            heartbeat_after(t(200)),
        ]
    );
    assert_eq!(c.pending_requests(), 0);
}

#[test]
fn request_timeout() {
    let mut c = open_client();
    let id = c
        .request(t(100), "ping", Map::new(), Some(ms(5_000)))
        .unwrap();
    assert_eq!(
        outs(&mut c),
        [
            tx(&id, ClientMessage::Ping { timestamp: None }),
            Out::Timeout(t(5_100))
        ]
    );
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Request));

    c.handle_timeout(t(5_100));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::RequestFailed {
                id: id.clone(),
                reason: FailReason::TimedOut
            }),
            heartbeat_after(t(0)),
        ]
    );

    // The late answer is dropped (it only proves the connection alive).
    let late = ServerMessage::PingRes {
        timestamp: None,
        server_time: 1,
    };
    c.handle_text(t(6_000), &server(Some(&id), late));
    assert_eq!(outs(&mut c), [heartbeat_after(t(6_000))]);
}

#[test]
fn disconnect_fails_requests_in_flight_and_never_resends_them() {
    let mut c = open_client();
    let ping = c.request(t(10), "ping", Map::new(), None).unwrap();
    let publish = c.publish(t(20), "room", json!("hi"), false).unwrap();
    assert_eq!(drain(&mut c).len(), 3);

    c.handle_disconnected(t(1_000), CloseCode::GoingAway, "restarting");
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Disconnected {
                code: CloseCode::GoingAway,
                reason: "restarting".into()
            }),
            ev(ClientEvent::RequestFailed {
                id: ping.clone(),
                reason: FailReason::Disconnected
            }),
            ev(ClientEvent::RequestFailed {
                id: publish,
                reason: FailReason::Disconnected
            }),
            ev(ClientEvent::Reconnecting {
                attempt: 1,
                delay: FIRST_DELAY
            }),
            Out::Timeout(t(1_000) + FIRST_DELAY),
        ]
    );
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Reconnect));

    c.handle_timeout(t(1_000) + FIRST_DELAY);
    assert_eq!(
        outs(&mut c),
        [Out::Connect, Out::Timeout(t(11_000) + FIRST_DELAY)]
    );
    c.handle_connected(t(1_200));
    c.handle_text(t(1_200), &greeting("app-2"));
    // Nothing is re-sent; a late answer to the failed request is dropped.
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Connected {
                app_id: "app-2".into()
            }),
            heartbeat_after(t(1_200)),
        ]
    );
    let late = ServerMessage::PingRes {
        timestamp: None,
        server_time: 1,
    };
    c.handle_text(t(1_300), &server(Some(&ping), late));
    assert_eq!(outs(&mut c), [heartbeat_after(t(1_300))]);
}

/// Seed 7, default backoff: full jitter under 500 ms × 2ⁿ⁻¹ capped at 30 s. A change here changes every recorded
/// replay, so make it on purpose.
#[test]
fn reconnect_delay_schedule_for_a_fixed_seed() {
    let recorded_micros: [u64; 10] = [
        65_035, 518_180, 1_702_058, 1_666_549, 7_429_599, 99_885, 20_897_286, 18_690_677,
        29_830_344, 43_118,
    ];
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    assert_eq!(outs(&mut c), [Out::Connect, Out::Timeout(t(10_000))]);
    let mut now = t(0);
    let mut delays = vec![];
    for attempt in 1..=10u32 {
        now += ms(5);
        c.handle_connect_failed(now, ConnectFailure::Transient("connection refused".into()));
        let got = outs(&mut c);
        let Out::Ev(ClientEvent::Reconnecting { delay, .. }) = got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(
            got,
            [
                ev(ClientEvent::Reconnecting { attempt, delay }),
                Out::Timeout(now + delay)
            ]
        );
        assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Reconnect));
        let cap = ms(500 << (attempt - 1)).min(Duration::from_secs(30));
        assert!(delay <= cap, "attempt {attempt}: {delay:?} > {cap:?}");
        delays.push(delay.as_micros() as u64);

        now += delay;
        c.handle_timeout(now);
        assert_eq!(
            outs(&mut c),
            [Out::Connect, Out::Timeout(now + Duration::from_secs(10))]
        );
    }
    assert_eq!(delays, recorded_micros);
    assert_eq!(ms(65) + Duration::from_micros(35), FIRST_DELAY);
}

#[test]
fn resubscribe_with_since_and_replay_deduplication() {
    let mut c = open_client();
    let sub = c.subscribe(t(10), "room").unwrap();
    assert_eq!(
        outs(&mut c),
        [
            tx(
                &sub,
                ClientMessage::Subscribe {
                    channel: ch("room"),
                    since: None,
                    presence: false,
                }
            ),
            Out::Timeout(t(30_010)),
        ]
    );
    c.handle_text(t(20), &subscribe_res(&sub, "room", "e1", 5, None));
    c.handle_text(t(30), &event("room", "e1", 6));
    c.handle_text(t(40), &event("room", "e1", 7));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Response {
                id: sub,
                message: ServerMessage::SubscribeRes {
                    channel: ch("room"),
                    epoch: "e1".into(),
                    offset: 5,
                    recovered: None
                }
            }),
            channel_event("room", "e1", 6),
            channel_event("room", "e1", 7),
            heartbeat_after(t(40)),
        ]
    );

    c.handle_disconnected(t(50), CloseCode::Abnormal, "");
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Disconnected {
                code: CloseCode::Abnormal,
                reason: "".into()
            }),
            ev(ClientEvent::Reconnecting {
                attempt: 1,
                delay: FIRST_DELAY
            }),
            Out::Timeout(t(50) + FIRST_DELAY),
        ]
    );
    c.handle_timeout(t(50) + FIRST_DELAY);
    assert_eq!(
        outs(&mut c),
        [Out::Connect, Out::Timeout(t(10_050) + FIRST_DELAY)]
    );
    c.handle_connected(t(300));
    c.handle_text(t(300), &greeting("app-2"));
    let got = outs(&mut c);
    let resub = tx_id(&got[1]);
    assert_eq!(
        got,
        [
            ev(ClientEvent::Connected {
                app_id: "app-2".into()
            }),
            tx(
                &resub,
                ClientMessage::Subscribe {
                    channel: ch("room"),
                    since: since("e1", 7),
                    presence: false,
                }
            ),
            Out::Timeout(t(30_300)),
        ]
    );

    // Recovered: the replay overlaps what was delivered (6, 7) and repeats itself; only 8, 9 and live 10 are new.
    // The machine's own subscribe is not surfaced as a response.
    c.handle_text(t(310), &subscribe_res(&resub, "room", "e1", 9, Some(true)));
    for offset in [6, 7, 8, 9, 7, 8, 10, 10] {
        c.handle_text(t(320), &event("room", "e1", offset));
    }
    assert_eq!(
        outs(&mut c),
        [
            channel_event("room", "e1", 8),
            channel_event("room", "e1", 9),
            channel_event("room", "e1", 10),
            heartbeat_after(t(320)),
        ]
    );
    assert_eq!(c.pending_requests(), 0);
}

#[test]
fn not_recovered_asks_for_resync() {
    let mut c = open_client();
    let sub = c.subscribe(t(10), "room").unwrap();
    c.handle_text(t(20), &subscribe_res(&sub, "room", "e1", 5, None));
    c.handle_disconnected(t(30), CloseCode::TryAgainLater, "slow consumer");
    drain(&mut c);
    c.handle_timeout(t(30) + FIRST_DELAY);
    assert_eq!(drain(&mut c)[0], Output::Connect);
    c.handle_connected(t(210));
    c.handle_text(t(210), &greeting("app-2"));
    let got = outs(&mut c);
    let resub = tx_id(&got[1]);
    assert_eq!(
        got,
        [
            ev(ClientEvent::Connected {
                app_id: "app-2".into()
            }),
            tx(
                &resub,
                ClientMessage::Subscribe {
                    channel: ch("room"),
                    since: since("e1", 5),
                    presence: false,
                }
            ),
            Out::Timeout(t(30_210)),
        ]
    );

    // History no longer covers offsets 6..=50: resync, and live events continue after 50.
    c.handle_text(
        t(220),
        &subscribe_res(&resub, "room", "e1", 50, Some(false)),
    );
    c.handle_text(t(230), &event("room", "e1", 50));
    c.handle_text(t(240), &event("room", "e1", 51));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Resync {
                channel: ch("room")
            }),
            channel_event("room", "e1", 51),
            heartbeat_after(t(240)),
        ]
    );
}

#[test]
fn heartbeat_death_closes_and_reconnects() {
    let mut c = open_client();
    let id = c
        .request(t(1_000), "ping", Map::new(), Some(Duration::from_secs(60)))
        .unwrap();
    drain(&mut c);

    // Anything received pushes the deadline back: a server_ping at 20 s moves it to 55 s.
    let ping = ServerMessage::ServerPing { timestamp: 1 };
    c.handle_text(t(20_000), &server(Some(&mid("p1")), ping));
    assert_eq!(outs(&mut c).last(), Some(&Out::Timeout(t(55_000))));
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Heartbeat));

    c.handle_timeout(t(54_999));
    assert_eq!(outs(&mut c), [Out::Timeout(t(55_000))]);
    c.handle_timeout(t(55_000));
    assert_eq!(
        outs(&mut c),
        [
            Out::Close(4008, "heartbeat timeout".into()),
            ev(ClientEvent::Disconnected {
                code: CloseCode::HeartbeatTimeout,
                reason: "heartbeat timeout".into()
            }),
            ev(ClientEvent::RequestFailed {
                id,
                reason: FailReason::Disconnected
            }),
            ev(ClientEvent::Reconnecting {
                attempt: 1,
                delay: FIRST_DELAY
            }),
            Out::Timeout(t(55_000) + FIRST_DELAY),
        ]
    );
    // The driver's report of the connection it was told to close changes nothing.
    c.handle_disconnected(t(55_001), CloseCode::HeartbeatTimeout, "");
    assert_eq!(outs(&mut c), [Out::Timeout(t(55_000) + FIRST_DELAY)]);
    c.handle_timeout(t(55_000) + FIRST_DELAY);
    assert_eq!(
        outs(&mut c),
        [Out::Connect, Out::Timeout(t(65_000) + FIRST_DELAY)]
    );
}

#[test]
fn server_ping_is_answered_with_server_pong() {
    let mut c = open_client();
    let ping = ServerMessage::ServerPing {
        timestamp: 1_699_999_999_000,
    };
    c.handle_text(t(1_234), &server(Some(&mid("ping-1")), ping));
    assert_eq!(
        outs(&mut c),
        [
            tx(
                &mid("ping-1"),
                ClientMessage::ServerPong {
                    timestamp: Some(t(1_234).as_millis()),
                    server_timestamp: Some(1_699_999_999_000)
                }
            ),
            heartbeat_after(t(1_234)),
        ]
    );
}

#[test]
fn server_request_and_call_are_answered_with_respond() {
    let mut c = open_client();
    let serve = c.serve(t(1), "svc").unwrap();
    drain(&mut c);
    c.handle_text(
        t(2),
        &server(Some(&serve), ServerMessage::ServeRes { channel: ch("svc") }),
    );
    drain(&mut c);

    // A generic server request.
    let request = ServerMessage::ServerRequest {
        request_type: "confirm".into(),
        data: obj(json!({ "question": "ok?" })),
    };
    c.handle_text(t(10), &server(Some(&mid("sr-1")), request));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::ServerRequest {
                id: mid("sr-1"),
                request_type: "confirm".into(),
                data: obj(json!({ "question": "ok?" }))
            }),
            heartbeat_after(t(10)),
        ]
    );
    c.respond(t(11), &mid("sr-1"), Ok(json!({ "answer": true })))
        .unwrap();
    assert_eq!(
        outs(&mut c),
        [
            tx(
                &mid("sr-1"),
                ClientMessage::ServerResponse {
                    data: obj(json!({ "answer": true, "response_type": "confirm" }))
                }
            ),
            heartbeat_after(t(10)),
        ]
    );

    // A routed call on the served channel.
    let call = ServerMessage::ServerRequest {
        request_type: "call".into(),
        data: obj(
            json!({ "channel": "svc", "method": "add", "params": [1, 2], "caller": {"app_id": "app-9", "sub": "alice"} }),
        ),
    };
    c.handle_text(t(20), &server(Some(&mid("call-1")), call));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::CallRequest {
                id: mid("call-1"),
                channel: ch("svc"),
                method: "add".into(),
                params: json!([1, 2]),
                caller: Some(crate::wire::Caller::new(
                    "app-9",
                    Some("alice".into()),
                    None
                ))
            }),
            heartbeat_after(t(20)),
        ]
    );
    c.respond(t(21), &mid("call-1"), Ok(json!(3))).unwrap();
    assert_eq!(
        outs(&mut c),
        [
            tx(
                &mid("call-1"),
                ClientMessage::ServerResponse {
                    data: obj(json!({ "result": 3 }))
                }
            ),
            heartbeat_after(t(20)),
        ]
    );
    // Answered once only.
    assert_eq!(
        c.respond(t(22), &mid("call-1"), Ok(json!(3))),
        Err(ClientError::Usage(UsageError::UnknownServerRequest {
            id: mid("call-1")
        }))
    );

    // A failed call.
    let call = ServerMessage::ServerRequest {
        request_type: "call".into(),
        data: obj(json!({ "channel": "svc", "method": "div", "params": [1, 0] })),
    };
    c.handle_text(t(30), &server(Some(&mid("call-2")), call));
    drain(&mut c);
    c.respond(
        t(31),
        &mid("call-2"),
        Err(HandlerError::new("DIVISION_BY_ZERO", "cannot divide by 0")),
    )
    .unwrap();
    assert_eq!(
        outs(&mut c),
        [
            tx(
                &mid("call-2"),
                ClientMessage::ServerResponse {
                    data: obj(
                        json!({ "error": { "code": "DIVISION_BY_ZERO", "message": "cannot divide by 0" } })
                    )
                }
            ),
            heartbeat_after(t(30)),
        ]
    );

    // A call on a channel this client does not serve is refused at once.
    let call = ServerMessage::ServerRequest {
        request_type: "call".into(),
        data: obj(json!({ "channel": "other", "method": "x" })),
    };
    c.handle_text(t(40), &server(Some(&mid("call-3")), call));
    assert_eq!(
        outs(&mut c),
        [
            tx(
                &mid("call-3"),
                ClientMessage::ServerResponse {
                    data: obj(
                        json!({ "error": { "code": "NO_HANDLER", "message": "this client does not serve other" } })
                    )
                }
            ),
            heartbeat_after(t(40)),
        ]
    );
}

#[test]
fn offline_queue_flushes_after_resubscription_in_issue_order() {
    let mut c = open_client();
    let sub_a = c.subscribe(t(1), "a").unwrap();
    let serve = c.serve(t(1), "svc").unwrap();
    c.handle_text(t(2), &subscribe_res(&sub_a, "a", "e1", 0, None));
    let serve_res = ServerMessage::ServeRes { channel: ch("svc") };
    c.handle_text(t(2), &server(Some(&serve), serve_res));
    drain(&mut c);
    c.handle_disconnected(t(1_000), CloseCode::GoingAway, "");
    drain(&mut c);

    // Offline: commands queue and nothing goes out.
    let publish = c.publish(t(1_010), "a", json!({ "x": 1 }), true).unwrap();
    let ping = c.request(t(1_020), "ping", Map::new(), None).unwrap();
    let sub_b = c.subscribe(t(1_030), "b").unwrap();
    assert_eq!(outs(&mut c), [Out::Timeout(t(1_000) + FIRST_DELAY)]);
    assert_eq!(c.queued(), 3);

    c.handle_timeout(t(1_000) + FIRST_DELAY);
    drain(&mut c);
    c.handle_connected(t(1_200));
    c.handle_text(t(1_200), &greeting("app-2"));
    let got = outs(&mut c);
    let (resub, reserve) = (tx_id(&got[1]), tx_id(&got[2]));
    assert_eq!(
        got,
        [
            ev(ClientEvent::Connected {
                app_id: "app-2".into()
            }),
            tx(
                &resub,
                ClientMessage::Subscribe {
                    channel: ch("a"),
                    since: since("e1", 0),
                    presence: false,
                }
            ),
            tx(&reserve, ClientMessage::Serve { channel: ch("svc") }),
            tx(
                &publish,
                ClientMessage::Publish {
                    channel: ch("a"),
                    event: json!({ "x": 1 }),
                    retain: true,
                    idempotency_key: None,
                }
            ),
            tx(&ping, ClientMessage::Ping { timestamp: None }),
            tx(
                &sub_b,
                ClientMessage::Subscribe {
                    channel: ch("b"),
                    since: None,
                    presence: false,
                }
            ),
            // The queued requests' timeouts ran from issue time: the publish's is first, at 1.010 s + 30 s.
            Out::Timeout(t(31_010)),
        ]
    );
    assert_eq!(c.queued(), 0);
    assert_eq!(
        c.subscriptions().map(|c| c.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn offline_queue_overflow_fails_the_request_with_queue_full() {
    let mut config = ClientConfig::with_seed(7);
    config.max_queued_messages = 2;
    config.max_queued_bytes = 200;
    let mut c = ClientMachine::new(config, t(0));
    drain(&mut c);

    // By count.
    let first = c.request(t(1), "ping", Map::new(), None).unwrap();
    let second = c.request(t(2), "ping", Map::new(), None).unwrap();
    let third = c.request(t(3), "ping", Map::new(), None).unwrap();
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::RequestFailed {
                id: third,
                reason: FailReason::QueueFull
            }),
            Out::Timeout(t(10_000)),
        ]
    );
    assert_eq!((c.queued(), c.pending_requests()), (2, 2));
    c.handle_connected(t(5));
    c.handle_text(t(5), &greeting("app-1"));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Connected {
                app_id: "app-1".into()
            }),
            tx(&first, ClientMessage::Ping { timestamp: None }),
            tx(&second, ClientMessage::Ping { timestamp: None }),
            Out::Timeout(t(30_001)),
        ]
    );

    // By bytes: a ping frame is about 65 bytes; a 150-byte payload does not fit beside it in 200.
    let mut config = ClientConfig::with_seed(7);
    config.max_queued_bytes = 200;
    let mut c = ClientMachine::new(config, t(0));
    drain(&mut c);
    let small = c.request(t(1), "ping", Map::new(), None).unwrap();
    let big = c
        .request(t(2), "echo", obj(json!({ "pad": "x".repeat(150) })), None)
        .unwrap();
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::RequestFailed {
                id: big,
                reason: FailReason::QueueFull
            }),
            Out::Timeout(t(10_000)),
        ]
    );
    assert_eq!(c.queued(), 1);
    assert!(c.queued_bytes() <= 200);
    c.handle_connected(t(5));
    c.handle_text(t(5), &greeting("app-1"));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Connected {
                app_id: "app-1".into()
            }),
            tx(&small, ClientMessage::Ping { timestamp: None }),
            Out::Timeout(t(30_001)),
        ]
    );
}

#[test]
fn gives_up_on_policy_violation() {
    let mut c = open_client();
    let id = c.request(t(10), "ping", Map::new(), None).unwrap();
    drain(&mut c);
    c.handle_disconnected(t(500), CloseCode::PolicyViolation, "token expired");
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Disconnected {
                code: CloseCode::PolicyViolation,
                reason: "token expired".into()
            }),
            ev(ClientEvent::RequestFailed {
                id,
                reason: FailReason::Disconnected
            }),
            ev(ClientEvent::GaveUp {
                reason: ReconnectGiveUpReason::PolicyViolation {
                    reason: "token expired".into()
                }
            }),
            Out::Timeout(Timestamp::MAX),
        ]
    );
    assert_eq!(c.last_timeout_reason(), None);
    assert!(c.is_closed());
    assert_eq!(
        c.subscribe(t(600), "room"),
        Err(ClientError::Usage(UsageError::Closed))
    );
    c.handle_timeout(t(1_000_000));
    c.handle_connected(t(1_000_000));
    assert_eq!(outs(&mut c), [Out::Timeout(Timestamp::MAX)]);
}

#[test]
fn a_presence_subscription_asks_again_on_every_resubscribe() {
    let mut c = open_client();
    let sub = c.subscribe_with(t(10), "jobs", true).unwrap();
    let plain = c.subscribe(t(10), "room").unwrap();
    let asks = |got: &[Out]| -> Vec<(String, bool)> {
        got.iter()
            .filter_map(|o| match o {
                Out::Tx(f) => match &f.message {
                    ClientMessage::Subscribe {
                        channel, presence, ..
                    } => Some((channel.as_str().into(), *presence)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        asks(&outs(&mut c)),
        [("jobs".into(), true), ("room".into(), false)]
    );
    c.handle_text(t(20), &subscribe_res(&sub, "jobs", "e1", 0, None));
    c.handle_text(t(20), &subscribe_res(&plain, "room", "e1", 0, None));
    outs(&mut c);
    c.handle_disconnected(t(50), CloseCode::Abnormal, "");
    c.handle_timeout(t(50) + FIRST_DELAY);
    c.handle_connected(t(300));
    c.handle_text(t(300), &greeting("app-2"));
    assert_eq!(
        asks(&outs(&mut c)),
        [("jobs".into(), true), ("room".into(), false)]
    );
    let presence = c.presence(t(310), "jobs").unwrap();
    let got = outs(&mut c);
    assert!(
        got.iter()
            .any(|o| matches!(o, Out::Tx(f) if f.message_id == presence
            && f.message == ClientMessage::Presence { channel: ch("jobs") })),
        "{got:?}"
    );
}
