//! Behaviour details beyond the issue's transcripts: closing, connect failures and timeouts, queued timeouts,
//! subscription filtering and refusals, the client ping, limits and misuse, and hostile input.

use super::*;
use alloc::format;
use proptest::prelude::{any, prop, proptest};

#[test]
fn close_by_us_fails_everything_and_never_reconnects() {
    let mut c = open_client();
    let id = c.request(t(10), "ping", Map::new(), None).unwrap();
    drain(&mut c);
    c.close(t(20));
    assert_eq!(
        outs(&mut c),
        [
            Out::Close(1000, "client closing".into()),
            ev(ClientEvent::RequestFailed {
                id,
                reason: FailReason::Closed
            }),
            Out::Timeout(Timestamp::MAX),
        ]
    );
    assert!(c.is_closed());
    // The driver's report of our own close, a second close, and a stray frame change nothing.
    c.handle_disconnected(t(30), CloseCode::Normal, "");
    c.close(t(31));
    c.handle_text(t(32), &event("room", "e", 1));
    assert_eq!(outs(&mut c), [Out::Timeout(Timestamp::MAX)]);
    assert_eq!(
        c.request(t(40), "ping", Map::new(), None),
        Err(ClientError::Usage(UsageError::Closed))
    );
}

#[test]
fn close_while_backing_off_fails_the_offline_queue() {
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    drain(&mut c);
    c.handle_connect_failed(t(5), ConnectFailure::Transient("refused".into()));
    drain(&mut c);
    let a = c.publish(t(6), "room", json!(1), false).unwrap();
    let b = c.get_state(t(7), "room").unwrap();
    assert_eq!(c.queued(), 2);
    c.close(t(8));
    // No connection exists, so nothing to close on the wire.
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::RequestFailed {
                id: a,
                reason: FailReason::Closed
            }),
            ev(ClientEvent::RequestFailed {
                id: b,
                reason: FailReason::Closed
            }),
            Out::Timeout(Timestamp::MAX),
        ]
    );
    assert_eq!(
        (c.queued(), c.queued_bytes(), c.pending_requests()),
        (0, 0, 0)
    );
}

#[test]
fn a_rejected_connect_gives_up() {
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    drain(&mut c);
    let id = c.subscribe(t(1), "room").unwrap();
    c.handle_connect_failed(t(5), ConnectFailure::Rejected("401 Unauthorized".into()));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::GaveUp {
                reason: ReconnectGiveUpReason::Rejected {
                    reason: "401 Unauthorized".into()
                }
            }),
            ev(ClientEvent::RequestFailed {
                id,
                reason: FailReason::Closed
            }),
            Out::Timeout(Timestamp::MAX),
        ]
    );
}

#[test]
fn connect_and_greeting_timeouts_abort_the_attempt_and_back_off() {
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    drain(&mut c);
    c.handle_timeout(t(10_000));
    assert_eq!(
        outs(&mut c),
        [
            Out::Close(4008, "connect timed out".into()),
            ev(ClientEvent::Reconnecting {
                attempt: 1,
                delay: FIRST_DELAY
            }),
            Out::Timeout(t(10_000) + FIRST_DELAY),
        ]
    );
    // A late report about the abandoned attempt is ignored.
    c.handle_connected(t(10_001));
    assert_eq!(outs(&mut c), [Out::Timeout(t(10_000) + FIRST_DELAY)]);

    c.handle_timeout(t(10_000) + FIRST_DELAY);
    drain(&mut c);
    c.handle_connected(t(11_000));
    // Frames other than the greeting are not accepted before it.
    c.handle_text(t(11_500), &event("room", "e", 1));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::ProtocolViolation {
                violation: Violation::Unexpected {
                    type_name: "event".into()
                }
            }),
            Out::Timeout(t(21_000)),
        ]
    );
    c.handle_timeout(t(21_000));
    let got = outs(&mut c);
    assert_eq!(
        got[0],
        Out::Close(4008, "no greeting from the server".into())
    );
    assert!(matches!(
        got[1],
        Out::Ev(ClientEvent::Reconnecting { attempt: 2, .. })
    ));
}

/// `n` connection attempts in a row fail, each reported as the next attempt of the streak; returns when the last
/// retry was started.
fn fail_connects(c: &mut ClientMachine, n: u32) -> Timestamp {
    let mut now = t(0);
    for attempt in 1..=n {
        c.handle_connect_failed(now, ConnectFailure::Transient("refused".into()));
        let got = outs(c);
        let Out::Ev(ClientEvent::Reconnecting { attempt: a, delay }) = got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(a, attempt);
        now += delay;
        c.handle_timeout(now);
        drain(c);
    }
    now
}

#[test]
fn a_long_lived_connection_resets_the_backoff_streak() {
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    drain(&mut c);
    // Three failures in a row: the streak is at attempt 3.
    let now = fail_connects(&mut c, 3);
    c.handle_connected(now);
    c.handle_text(now, &greeting("app-1"));
    drain(&mut c);
    // Up 9 s: a short connection continues the streak.
    c.handle_disconnected(now + Duration::from_secs(9), CloseCode::GoingAway, "");
    let got = outs(&mut c);
    assert!(
        matches!(
            got[1],
            Out::Ev(ClientEvent::Reconnecting { attempt: 4, .. })
        ),
        "{got:?}"
    );
    let Out::Timeout(at) = got[2] else {
        panic!("{got:?}")
    };
    c.handle_timeout(at);
    drain(&mut c);
    c.handle_connected(at);
    c.handle_text(at, &greeting("app-2"));
    drain(&mut c);
    // Up 10 s: the streak starts again from the first delay.
    c.handle_disconnected(at + Duration::from_secs(10), CloseCode::GoingAway, "");
    let got = outs(&mut c);
    let Out::Ev(ClientEvent::Reconnecting { attempt, delay }) = got[1] else {
        panic!("{got:?}")
    };
    assert_eq!(attempt, 1);
    assert!(delay <= ms(500));
}

/// A slow-consumer close (1013) ends a connection that was catching up on a replay too big for the server's queue.
/// One that delivered events made progress, and the next attempt starts a fresh streak; one that delivered nothing
/// continues the streak like any failure (the simulation's seed 29250: a client catching up 8 events per round
/// waited longer each round and was still away 35 s after the network healed).
#[test]
fn a_slow_consumer_close_after_progress_resets_the_backoff_streak() {
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    drain(&mut c);
    let now = fail_connects(&mut c, 3);
    c.handle_connected(now);
    c.handle_text(now, &greeting("app-1"));
    let sub = c.subscribe(now, "jobs/1").unwrap();
    drain(&mut c);
    c.handle_text(now, &subscribe_res(&sub, "jobs/1", "e1", 3, None));
    drain(&mut c);
    // Nothing delivered: the streak goes on.
    c.handle_disconnected(now + ms(100), CloseCode::TryAgainLater, "slow consumer");
    let got = outs(&mut c);
    assert!(
        got.iter()
            .any(|o| matches!(o, Out::Ev(ClientEvent::Reconnecting { attempt: 4, .. }))),
        "{got:?}"
    );
    let at = got
        .iter()
        .find_map(|o| match o {
            Out::Timeout(at) => Some(*at),
            _ => None,
        })
        .expect("a reconnect timer");
    c.handle_timeout(at);
    drain(&mut c);
    c.handle_connected(at);
    c.handle_text(at, &greeting("app-2"));
    drain(&mut c);
    c.handle_text(at, &event("jobs/1", "e1", 4));
    let got = outs(&mut c);
    assert!(
        got.iter()
            .any(|o| matches!(o, Out::Ev(ClientEvent::ChannelEvent { offset: 4, .. }))),
        "{got:?}"
    );
    // Delivered, then closed as a slow consumer: a fresh streak.
    c.handle_disconnected(at + ms(100), CloseCode::TryAgainLater, "slow consumer");
    let got = outs(&mut c);
    let Some((attempt, delay)) = got.iter().find_map(|o| match o {
        Out::Ev(ClientEvent::Reconnecting { attempt, delay }) => Some((*attempt, *delay)),
        _ => None,
    }) else {
        panic!("{got:?}")
    };
    assert_eq!(attempt, 1);
    assert!(delay <= ms(500));
}

#[test]
fn exhausted_backoff_gives_up() {
    let mut config = ClientConfig::with_seed(7);
    config.backoff.max_attempts = Some(1);
    let mut c = ClientMachine::new(config, t(0));
    drain(&mut c);
    c.handle_connect_failed(t(1), ConnectFailure::Transient("refused".into()));
    let got = outs(&mut c);
    let Out::Ev(ClientEvent::Reconnecting { attempt: 1, delay }) = got[0] else {
        panic!("{got:?}")
    };
    c.handle_timeout(t(1) + delay);
    drain(&mut c);
    c.handle_connect_failed(t(2) + delay, ConnectFailure::Transient("refused".into()));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::GaveUp {
                reason: ReconnectGiveUpReason::RetriesExhausted
            }),
            Out::Timeout(Timestamp::MAX),
        ]
    );
}

#[test]
fn a_queued_request_times_out_from_issue_time_and_is_never_sent() {
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    drain(&mut c);
    let short = c
        .request(t(0), "ping", Map::new(), Some(ms(2_000)))
        .unwrap();
    let long = c.publish(t(0), "room", json!(1), false).unwrap();
    assert_eq!(outs(&mut c), [Out::Timeout(t(2_000))]);
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Request));
    c.handle_timeout(t(2_000));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::RequestFailed {
                id: short,
                reason: FailReason::TimedOut
            }),
            Out::Timeout(t(10_000)),
        ]
    );
    assert_eq!(c.queued(), 1);
    c.handle_connected(t(3_000));
    c.handle_text(t(3_000), &greeting("app-1"));
    let got = outs(&mut c);
    assert_eq!(
        got[1],
        tx(
            &long,
            ClientMessage::Publish {
                channel: ch("room"),
                event: json!(1),
                retain: false,
                idempotency_key: None,
            }
        )
    );
    assert_eq!(got.len(), 3);
}

#[test]
fn events_are_delivered_only_while_subscribed() {
    let mut c = open_client();
    c.handle_text(t(1), &event("room", "e", 1));
    assert_eq!(outs(&mut c), [heartbeat_after(t(1))]);
    let sub = c.subscribe(t(2), "room").unwrap();
    drain(&mut c);
    // Events may overtake the subscribe's answer; they are delivered.
    c.handle_text(t(3), &event("room", "e", 2));
    c.handle_text(t(4), &subscribe_res(&sub, "room", "e", 1, None));
    c.handle_text(t(5), &event("room", "e", 3));
    let got = outs(&mut c);
    assert_eq!(got[0], channel_event("room", "e", 2));
    assert!(matches!(got[1], Out::Ev(ClientEvent::Response { .. })));
    assert_eq!(got[2], channel_event("room", "e", 3));

    let unsub = c.unsubscribe(t(6), "room").unwrap();
    drain(&mut c);
    assert_eq!(c.subscriptions().count(), 0);
    // From the moment the unsubscribe is out, the channel's events are dropped.
    c.handle_text(t(7), &event("room", "e", 4));
    let res = ServerMessage::UnsubscribeRes {
        channel: ch("room"),
    };
    c.handle_text(t(8), &server(Some(&unsub), res.clone()));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Response {
                id: unsub,
                message: res
            }),
            heartbeat_after(t(8)),
        ]
    );
}

/// Found by the deterministic simulation (seeds 117 and 988): an event published before the hub saw the
/// `unsubscribe` arrived after the application had subscribed again, was delivered as the new subscription's first
/// event, and the new subscription's answer then moved the position past the events published in between: 31, then
/// 34, no Resync.
#[test]
fn a_late_event_of_an_ended_subscription_is_not_passed_to_the_next_one() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "room").unwrap();
    c.handle_text(t(2), &subscribe_res(&sub, "room", "e", 30, None));
    let unsub = c.unsubscribe(t(3), "room").unwrap();
    let again = c.subscribe(t(4), "room").unwrap();
    drain(&mut c);
    c.handle_text(t(5), &event("room", "e", 31));
    let res = ServerMessage::UnsubscribeRes {
        channel: ch("room"),
    };
    c.handle_text(t(6), &server(Some(&unsub), res));
    // 32 and 33 were published while unsubscribed; the new subscription starts after them.
    c.handle_text(t(7), &subscribe_res(&again, "room", "e", 33, None));
    c.handle_text(t(8), &event("room", "e", 34));
    let delivered: Vec<Out> = outs(&mut c)
        .into_iter()
        .filter(|o| matches!(o, Out::Ev(ClientEvent::ChannelEvent { .. })))
        .collect();
    assert_eq!(delivered, [channel_event("room", "e", 34)]);

    // Seed 988: an unsubscribe that times out on our side is still answered by the server later, in order; until
    // then, what arrives belongs to the ended subscription.
    let unsub = c.unsubscribe(t(100), "room").unwrap();
    let again = c.subscribe(t(101), "room").unwrap();
    c.handle_timeout(t(100) + Duration::from_secs(30));
    let timed_out = outs(&mut c);
    assert!(timed_out.contains(&ev(ClientEvent::RequestFailed {
        id: unsub.clone(),
        reason: FailReason::TimedOut
    })));
    c.handle_text(t(30_200), &event("room", "e", 35));
    let res = ServerMessage::UnsubscribeRes {
        channel: ch("room"),
    };
    c.handle_text(t(30_201), &server(Some(&unsub), res));
    c.handle_text(t(30_202), &subscribe_res(&again, "room", "e", 38, None));
    c.handle_text(t(30_203), &event("room", "e", 39));
    let delivered: Vec<Out> = outs(&mut c)
        .into_iter()
        .filter(|o| matches!(o, Out::Ev(ClientEvent::ChannelEvent { .. })))
        .collect();
    assert_eq!(delivered, [channel_event("room", "e", 39)]);

    // An unsubscribe cut off by a disconnect ends too: the next connection's events flow.
    let unsub = c.unsubscribe(t(9), "room").unwrap();
    drain(&mut c);
    c.handle_disconnected(t(10), CloseCode::GoingAway, "");
    let failed = outs(&mut c);
    assert!(failed.contains(&ev(ClientEvent::RequestFailed {
        id: unsub,
        reason: FailReason::Disconnected
    })));
    c.subscribe(t(11), "room").unwrap();
    c.handle_timeout(t(11) + FIRST_DELAY);
    c.handle_connected(t(300));
    c.handle_text(t(300), &greeting("app-2"));
    let resubscribe = tx_id(
        outs(&mut c)
            .iter()
            .find(
                |o| matches!(o, Out::Tx(f) if matches!(f.message, ClientMessage::Subscribe { .. })),
            )
            .unwrap(),
    );
    c.handle_text(t(301), &subscribe_res(&resubscribe, "room", "e", 40, None));
    c.handle_text(t(302), &event("room", "e", 41));
    assert!(outs(&mut c).contains(&channel_event("room", "e", 41)));
}

#[test]
fn an_event_in_a_new_epoch_asks_for_resync() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "room").unwrap();
    c.handle_text(t(2), &subscribe_res(&sub, "room", "e1", 4, None));
    drain(&mut c);
    // The server's history restarted without a subscribe_res saying so: events of e1 after 4 may be lost.
    c.handle_text(t(3), &event("room", "e2", 1));
    c.handle_text(t(4), &event("room", "e2", 2));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Resync {
                channel: ch("room")
            }),
            channel_event("room", "e2", 1),
            channel_event("room", "e2", 2),
            heartbeat_after(t(4)),
        ]
    );
}

#[test]
fn a_subscribe_answer_that_skips_past_the_position_asks_for_resync() {
    // Found by the client_ops fuzzer: an event overtook the answer, then the answer (no replay) put the channel in
    // another epoch. The position silently moved to e1/7 and the app, which had e2/6, was never told.
    let mut c = open_client();
    let sub = c.subscribe(t(1), "room").unwrap();
    drain(&mut c);
    c.handle_text(t(2), &event("room", "e2", 6));
    let answer = ServerMessage::SubscribeRes {
        channel: ch("room"),
        epoch: "e1".into(),
        offset: 7,
        recovered: None,
    };
    c.handle_text(t(3), &server(Some(&sub), answer.clone()));
    assert_eq!(
        outs(&mut c),
        [
            channel_event("room", "e2", 6),
            ev(ClientEvent::Response {
                id: sub,
                message: answer
            }),
            ev(ClientEvent::Resync {
                channel: ch("room")
            }),
            heartbeat_after(t(3)),
        ]
    );
    // The same within an epoch: a `recovered: null` to a `since` that jumps ahead skips events 8 and 9.
    let again = c.subscribe(t(4), "room").unwrap();
    let sent = outs(&mut c);
    assert_eq!(
        sent[0],
        tx(
            &again,
            ClientMessage::Subscribe {
                channel: ch("room"),
                since: since("e1", 7),
                presence: false,
            }
        )
    );
    c.handle_text(t(5), &subscribe_res(&again, "room", "e1", 9, None));
    let got = outs(&mut c);
    assert_eq!(
        got[1],
        ev(ClientEvent::Resync {
            channel: ch("room")
        })
    );
    // An answer at or behind the position skips nothing.
    let third = c.subscribe(t(6), "room").unwrap();
    drain(&mut c);
    c.handle_text(t(7), &subscribe_res(&third, "room", "e1", 9, None));
    assert!(matches!(
        &outs(&mut c)[..],
        [Out::Ev(ClientEvent::Response { .. }), Out::Timeout(_)]
    ));
}

#[test]
fn answers_that_do_not_fit_a_subscribe_are_violations_and_end_nothing() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "room").unwrap();
    drain(&mut c);
    // Another type, or the subscribe answer of another channel: reported, and the subscribe still waits.
    let publish_res = ServerMessage::PublishRes {
        channel: ch("room"),
        offset: 3,
        duplicate: false,
    };
    c.handle_text(t(2), &server(Some(&sub), publish_res));
    c.handle_text(t(3), &subscribe_res(&sub, "other", "e2", 9, Some(false)));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::ProtocolViolation {
                violation: Violation::MismatchedAnswer {
                    id: sub.clone(),
                    type_name: "publish_res".into()
                }
            }),
            ev(ClientEvent::ProtocolViolation {
                violation: Violation::MismatchedAnswer {
                    id: sub.clone(),
                    type_name: "subscribe_res".into()
                }
            }),
            // The subscribe's own timeout is still the next deadline.
            Out::Timeout(t(30_001)),
        ]
    );
    assert_eq!(c.pending_requests(), 1);
    // The real answer still ends it, and sets the position.
    let answer = ServerMessage::SubscribeRes {
        channel: ch("room"),
        epoch: "e1".into(),
        offset: 4,
        recovered: None,
    };
    c.handle_text(t(4), &server(Some(&sub), answer.clone()));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Response {
                id: sub,
                message: answer
            }),
            heartbeat_after(t(4)),
        ]
    );
    c.handle_text(t(5), &event("room", "e1", 4));
    assert_eq!(outs(&mut c), [heartbeat_after(t(5))]);
}

#[test]
fn a_machine_resubscription_that_times_out_keeps_the_channel() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "room").unwrap();
    c.handle_text(t(2), &subscribe_res(&sub, "room", "e1", 4, None));
    c.handle_disconnected(t(3), CloseCode::GoingAway, "");
    c.handle_timeout(t(3) + FIRST_DELAY);
    c.handle_connected(t(300));
    c.handle_text(t(300), &greeting("app-2"));
    drain(&mut c);
    // Nobody asked for this id, so its timeout is silent; the channel stays wanted for the next connection.
    c.handle_timeout(t(30_300));
    assert_eq!(outs(&mut c), [heartbeat_after(t(300))]);
    assert_eq!(c.subscriptions().count(), 1);
    assert_eq!(c.pending_requests(), 0);
}

#[test]
fn a_drop_before_the_greeting_is_a_failed_attempt_not_a_disconnect() {
    let mut c = ClientMachine::new(ClientConfig::with_seed(7), t(0));
    drain(&mut c);
    c.handle_connected(t(1));
    c.handle_disconnected(t(2), CloseCode::InternalError, "oops");
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Reconnecting {
                attempt: 1,
                delay: FIRST_DELAY
            }),
            Out::Timeout(t(2) + FIRST_DELAY),
        ]
    );
}

#[test]
fn a_refused_subscription_is_dropped_and_a_refused_resubscription_is_reported() {
    let mut c = open_client();
    let forbidden = c.subscribe(t(1), "secret").unwrap();
    drain(&mut c);
    let refusal = ServerMessage::error(ErrorCode::Forbidden, "no", None);
    c.handle_text(t(2), &server(Some(&forbidden), refusal));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::RequestFailed {
                id: forbidden,
                reason: FailReason::Error {
                    code: ErrorCode::Forbidden,
                    message: "no".into(),
                    details: None
                }
            }),
            heartbeat_after(t(2)),
        ]
    );
    assert_eq!(c.subscriptions().count(), 0);

    // Accepted first, refused on reconnect (the token lost the permission meanwhile).
    let sub = c.subscribe(t(3), "room").unwrap();
    let serve = c.serve(t(3), "svc").unwrap();
    c.handle_text(t(4), &subscribe_res(&sub, "room", "e", 0, None));
    let serve_res = ServerMessage::ServeRes { channel: ch("svc") };
    c.handle_text(t(4), &server(Some(&serve), serve_res));
    c.handle_disconnected(t(5), CloseCode::GoingAway, "");
    c.handle_timeout(t(5) + FIRST_DELAY);
    c.handle_connected(t(300));
    drain(&mut c);
    c.handle_text(t(300), &greeting("app-2"));
    let got = outs(&mut c);
    let (resub, reserve) = (tx_id(&got[1]), tx_id(&got[2]));
    let refusal = ServerMessage::error(ErrorCode::Forbidden, "no", None);
    c.handle_text(t(301), &server(Some(&resub), refusal.clone()));
    c.handle_text(t(301), &server(Some(&reserve), refusal));
    let reason = FailReason::Error {
        code: ErrorCode::Forbidden,
        message: "no".into(),
        details: None,
    };
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::SubscriptionLost {
                channel: ch("room"),
                reason: reason.clone()
            }),
            ev(ClientEvent::ServeLost {
                channel: ch("svc"),
                reason
            }),
            heartbeat_after(t(301)),
        ]
    );
    assert_eq!(c.subscriptions().count(), 0);
}

/// Found by the deterministic simulation (seed 10168): a `subscribe` timed out on our side (the connection was
/// stalled), then the server's late answer refused it (`RATE_LIMITED`). The machine kept the channel as subscribed
/// although the server never subscribed it, so its events silently stopped until some later reconnect.
#[test]
fn a_late_refusal_of_a_timed_out_subscribe_or_serve_drops_it_and_says_so() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "room").unwrap();
    let serve = c.serve(t(1), "svc").unwrap();
    c.handle_timeout(t(1) + Duration::from_secs(30));
    drain(&mut c);
    assert_eq!(
        c.subscriptions().count(),
        1,
        "a timed-out subscribe keeps the channel"
    );
    let refusal = |id: &MessageId| {
        server(
            Some(id),
            ServerMessage::error(ErrorCode::RateLimited, "slow down", None),
        )
    };
    c.handle_text(t(30_002), &refusal(&sub));
    c.handle_text(t(30_003), &refusal(&serve));
    let reason = FailReason::Error {
        code: ErrorCode::RateLimited,
        message: "slow down".to_string(),
        details: None,
    };
    let got = outs(&mut c);
    assert!(got.contains(&ev(ClientEvent::SubscriptionLost {
        channel: ch("room"),
        reason: reason.clone()
    })));
    assert!(got.contains(&ev(ClientEvent::ServeLost {
        channel: ch("svc"),
        reason
    })));
    assert_eq!(c.subscriptions().count(), 0);
    // A call for the channel is no longer served here.
    let call = server(
        Some(&mid("call-1")),
        ServerMessage::ServerRequest {
            request_type: "call".to_string(),
            data: obj(json!({"channel": "svc", "method": "m"})),
        },
    );
    c.handle_text(t(30_004), &call);
    assert!(
        outs(&mut c)
            .iter()
            .all(|o| !matches!(o, Out::Ev(ClientEvent::CallRequest { .. })))
    );
}

/// Found by the deterministic simulation (seed 301578 with 4,000 steps): after a reconnect, the machine's
/// resubscription timed out on our side (the connection was stalled), then the server's late answer said
/// `recovered: false`. It was dropped as an answer to nothing, so no Resync came and the next live event was
/// delivered right after the last one seen: 36, then 45.
#[test]
fn a_late_answer_to_a_timed_out_resubscription_still_reports_lost_events() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "room").unwrap();
    c.handle_text(t(2), &subscribe_res(&sub, "room", "e", 30, None));
    c.handle_text(t(3), &event("room", "e", 31));
    c.handle_disconnected(t(4), CloseCode::GoingAway, "");
    drain(&mut c);
    c.handle_timeout(t(4) + FIRST_DELAY);
    c.handle_connected(t(300));
    c.handle_text(t(300), &greeting("app-2"));
    let resubscribe = tx_id(
        outs(&mut c)
            .iter()
            .find(
                |o| matches!(o, Out::Tx(f) if matches!(f.message, ClientMessage::Subscribe { .. })),
            )
            .unwrap(),
    );
    // The application subscribes again too: the server will answer that one `recovered: null`.
    let again = c.subscribe(t(310), "room").unwrap();
    c.handle_timeout(t(300) + Duration::from_secs(30));
    drain(&mut c);
    c.handle_text(
        t(30_400),
        &subscribe_res(&resubscribe, "room", "e", 44, Some(false)),
    );
    c.handle_text(t(30_401), &subscribe_res(&again, "room", "e", 44, None));
    c.handle_text(t(30_402), &event("room", "e", 45));
    let got: Vec<Out> = outs(&mut c)
        .into_iter()
        .filter(|o| !matches!(o, Out::Ev(ClientEvent::Response { .. }) | Out::Timeout(_)))
        .collect();
    assert_eq!(
        got,
        [
            ev(ClientEvent::Resync {
                channel: ch("room")
            }),
            channel_event("room", "e", 45),
        ]
    );
}

#[test]
fn errors_that_answer_nothing_are_reported_as_server_errors() {
    let mut c = open_client();
    let error = ServerMessage::error(
        ErrorCode::RateLimited,
        "slow down",
        Some(json!({ "retry_after_ms": 100 })),
    );
    c.handle_text(t(1), &server(None, error));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::ServerError {
                id: None,
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
                details: Some(json!({ "retry_after_ms": 100 }))
            }),
            heartbeat_after(t(1)),
        ]
    );
}

#[test]
fn notifications_are_surfaced() {
    let mut c = open_client();
    let note = ServerMessage::Notification {
        notification_type: "maintenance".into(),
        message: Some("at noon".into()),
        additional_data: None,
    };
    c.handle_text(t(1), &server(Some(&mid("n1")), note));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Notification {
                notification_type: "maintenance".into(),
                message: Some("at noon".into()),
                additional_data: None
            }),
            heartbeat_after(t(1)),
        ]
    );
}

#[test]
fn the_client_ping_interval_keeps_traffic_flowing_and_swallows_answers() {
    let mut config = ClientConfig::with_seed(7);
    config.ping_interval = Some(Duration::from_secs(20));
    let mut c = open_client_with(config);
    assert_eq!(outs(&mut c), [Out::Timeout(t(20_000))]);
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Ping));
    c.handle_timeout(t(20_000));
    let got = outs(&mut c);
    let ping = tx_id(&got[0]);
    assert_eq!(
        got,
        [
            tx(
                &ping,
                ClientMessage::Ping {
                    timestamp: Some(json!(t(20_000).as_millis()))
                }
            ),
            // The heartbeat (35 s after the greeting) comes before the next ping (40 s).
            Out::Timeout(t(35_000)),
        ]
    );
    let answer = ServerMessage::PingRes {
        timestamp: Some(json!(t(20_000).as_millis())),
        server_time: 5,
    };
    c.handle_text(t(20_050), &server(Some(&ping), answer));
    assert_eq!(outs(&mut c), [Out::Timeout(t(40_000))]);
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Ping));

    // A server without heartbeat (heartbeat_ms 0) is judged by the client's ping interval instead.
    let mut config = ClientConfig::with_seed(7);
    config.ping_interval = Some(Duration::from_secs(20));
    let mut c = ClientMachine::new(config, t(0));
    drain(&mut c);
    c.handle_connected(t(0));
    let quiet = ServerMessage::Connected {
        app_id: "a".into(),
        status: crate::wire::ConnectedStatus::Connected,
        protocol: 1,
        heartbeat_ms: 0,
        max_message_bytes: 1000,
    };
    c.handle_text(t(0), &server(Some(&mid("g")), quiet));
    drain(&mut c);
    c.handle_timeout(t(20_000));
    assert_eq!(outs(&mut c).last(), Some(&Out::Timeout(t(30_000))));
    assert_eq!(c.last_timeout_reason(), Some(TimeoutReason::Heartbeat));
}

#[test]
fn misuse_and_limits_are_refused_without_side_effects() {
    let mut c = open_client();
    assert!(matches!(
        c.subscribe(t(1), "/bad"),
        Err(ClientError::Usage(UsageError::InvalidChannel { .. }))
    ));
    for reserved in [
        "",
        "subscribe",
        "unsubscribe",
        "serve",
        "server_response",
        "server_pong",
    ] {
        assert_eq!(
            c.request(t(1), reserved, Map::new(), None),
            Err(ClientError::Usage(UsageError::ReservedType {
                type_name: reserved.into()
            }))
        );
    }
    assert_eq!(
        c.publish(t(1), "room", Value::Null, false),
        Err(ClientError::Usage(UsageError::NullEvent))
    );
    assert_eq!(
        c.respond(t(1), &mid("nope"), Ok(json!(1))),
        Err(ClientError::Usage(UsageError::UnknownServerRequest {
            id: mid("nope")
        }))
    );
    // The greeting announced 1 MiB.
    let huge = c.publish(t(1), "room", json!("x".repeat(1 << 20)), false);
    assert!(matches!(
        huge,
        Err(ClientError::Limit(SendLimitError::MessageTooLarge {
            max: 1_048_576,
            ..
        }))
    ));
    assert_eq!(outs(&mut c), [heartbeat_after(t(0))]);
    assert_eq!(c.pending_requests(), 0);
}

#[test]
fn server_requests_are_forgotten_with_their_connection_and_after_the_server_timeout() {
    let mut c = open_client();
    let request = |id: &str| {
        server(
            Some(&mid(id)),
            ServerMessage::ServerRequest {
                request_type: "confirm".into(),
                data: Map::new(),
            },
        )
    };
    c.handle_text(t(1), &request("sr-1"));
    // A duplicate of a request still awaiting its answer is a violation.
    c.handle_text(t(2), &request("sr-1"));
    let got = outs(&mut c);
    assert_eq!(
        got[1],
        ev(ClientEvent::ProtocolViolation {
            violation: Violation::DuplicateServerRequest { id: mid("sr-1") }
        })
    );
    // The server gives up after 30 s, and so does the machine.
    assert!(matches!(
        c.respond(t(30_001), &mid("sr-1"), Ok(json!(true))),
        Err(ClientError::Usage(UsageError::UnknownServerRequest { .. }))
    ));
    c.handle_text(t(30_002), &request("sr-2"));
    c.handle_disconnected(t(30_003), CloseCode::GoingAway, "");
    assert!(matches!(
        c.respond(t(30_004), &mid("sr-2"), Ok(json!(true))),
        Err(ClientError::Usage(UsageError::UnknownServerRequest { .. }))
    ));
}

#[test]
fn undecodable_and_unexpected_frames_are_reported_and_ignored() {
    let mut c = open_client();
    c.handle_text(t(1), "not json");
    c.handle_text(t(2), &greeting("again"));
    // Unknown types that answer nothing are forward-compatible noise, not violations.
    c.handle_text(
        t(3),
        r#"{"type":"future_thing","message_id":"x","data":{}}"#,
    );
    let got = outs(&mut c);
    assert!(matches!(
        got[0],
        Out::Ev(ClientEvent::ProtocolViolation {
            violation: Violation::Undecodable(_)
        })
    ));
    assert_eq!(
        got[1..],
        [
            ev(ClientEvent::ProtocolViolation {
                violation: Violation::Unexpected {
                    type_name: "connected".into()
                }
            }),
            heartbeat_after(t(3)),
        ]
    );
    assert!(c.is_connected());
}

/// The server's text, for the fuzz-like property below: valid frames of every type with random fields, and junk.
fn arb_server_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::strategy::Strategy;
    let types = prop::sample::select(alloc::vec![
        "connected",
        "event",
        "subscribe_res",
        "server_request",
        "server_ping",
        "error",
        "ping_res",
        "notification",
        "call_res",
        "whatever",
    ]);
    let data = prop::collection::btree_map(
        prop::sample::select(alloc::vec![
            "channel",
            "epoch",
            "offset",
            "event",
            "request_type",
            "method",
            "timestamp",
            "code",
            "recovered",
            "app_id",
            "heartbeat_ms",
            "max_message_bytes",
            "protocol",
        ]),
        prop::sample::select(alloc::vec![
            json!(null),
            json!(0),
            json!(u64::MAX),
            json!(-1),
            json!("room"),
            json!("call"),
            json!("/bad"),
            json!(true),
            json!({}),
            json!([]),
        ]),
        0..8,
    );
    let id = prop::option::of(prop::sample::select(alloc::vec!["a", "b", ""]));
    let frame = (types, id, data).prop_map(|(ty, id, data)| {
        let mut m = Map::new();
        m.insert("type".into(), json!(ty));
        if let Some(id) = id {
            m.insert("message_id".into(), json!(id));
        }
        m.insert(
            "data".into(),
            Value::Object(data.into_iter().map(|(k, v)| (k.into(), v)).collect()),
        );
        Value::Object(m).to_string()
    });
    proptest::prop_oneof![frame, any::<String>()]
}

proptest! {
    /// Whatever the server sends, in whatever state, nothing panics and the machine still drains to a timeout.
    #[test]
    fn hostile_input_never_panics(texts in prop::collection::vec(arb_server_text(), 0..24), greet_first: bool) {
        let mut c = ClientMachine::new(ClientConfig::with_seed(3), t(0));
        drain(&mut c);
        c.handle_connected(t(0));
        if greet_first {
            c.handle_text(t(0), &greeting("app"));
            c.subscribe(t(0), "room").unwrap();
            c.serve(t(0), "room").unwrap();
        }
        for (i, text) in texts.iter().enumerate() {
            c.handle_text(t(i as u64), text);
            let out = drain(&mut c);
            prop_assert_timeout_last(&out)?;
        }
        c.handle_timeout(t(1_000_000));
        drain(&mut c);
    }
}

fn prop_assert_timeout_last(out: &[Output]) -> Result<(), proptest::test_runner::TestCaseError> {
    proptest::prop_assert!(
        matches!(out.last(), Some(Output::Timeout(_))),
        "{}",
        format!("{out:?}")
    );
    Ok(())
}
