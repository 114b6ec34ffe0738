//! The token's lifetime as the machine sees it: the server's warning becomes [`ClientEvent::TokenExpiring`], a
//! `refresh` goes out and is answered, and a subscription or `serve` registration the server ended is forgotten.

use super::*;

fn notification(notification_type: &str, data: Value) -> String {
    server(
        Some(&mid("n1")),
        ServerMessage::Notification {
            notification_type: notification_type.into(),
            message: Some("m".into()),
            additional_data: Some(data),
        },
    )
}

#[test]
fn warning_asks_for_a_refresh_which_is_sent_and_answered() {
    let mut c = open_client();
    c.handle_text(
        t(1_000),
        &notification("token_expiring", json!({"expires_in_ms": 2_500})),
    );
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::TokenExpiring {
                expires_in: ms(2_500)
            }),
            heartbeat_after(t(1_000)),
        ]
    );
    // The driver fetched a fresh token.
    let id = c.refresh(t(1_010), "fresh-token").unwrap();
    let out = outs(&mut c);
    assert_eq!(
        out[0],
        tx(
            &id,
            ClientMessage::Refresh {
                token: "fresh-token".into()
            }
        )
    );
    let answer = ServerMessage::RefreshRes {
        expires_in_ms: Some(60_000),
    };
    c.handle_text(t(1_020), &server(Some(&id), answer.clone()));
    assert_eq!(
        outs(&mut c),
        [
            ev(ClientEvent::Response {
                id,
                message: answer
            }),
            heartbeat_after(t(1_020)),
        ]
    );
}

#[test]
fn a_refused_refresh_fails_the_request_and_keeps_the_connection() {
    let mut c = open_client();
    let id = c.refresh(t(10), "stale").unwrap();
    drain(&mut c);
    let refusal = ServerMessage::error(ErrorCode::Forbidden, "invalid or expired token", None);
    c.handle_text(t(20), &server(Some(&id), refusal));
    let out = outs(&mut c);
    assert!(
        matches!(
            &out[0],
            Out::Ev(ClientEvent::RequestFailed {
                reason: FailReason::Error {
                    code: ErrorCode::Forbidden,
                    ..
                },
                ..
            })
        ),
        "{out:?}"
    );
    assert!(c.is_connected());
}

#[test]
fn an_ended_subscription_is_lost_and_not_resubscribed() {
    let mut c = open_client();
    let s = c.subscribe(t(10), "jobs/1").unwrap();
    drain(&mut c);
    c.handle_text(t(20), &subscribe_res(&s, "jobs/1", "E", 0, None));
    let v = c.serve(t(30), "rpc/x").unwrap();
    drain(&mut c);
    c.handle_text(
        t(40),
        &server(
            Some(&v),
            ServerMessage::ServeRes {
                channel: ch("rpc/x"),
            },
        ),
    );
    drain(&mut c);
    c.handle_text(
        t(50),
        &notification(
            "subscription_ended",
            json!({"channel": "jobs/1", "kind": "subscribe", "code": "FORBIDDEN"}),
        ),
    );
    c.handle_text(
        t(50),
        &notification(
            "subscription_ended",
            json!({"channel": "rpc/x", "kind": "serve", "code": "FORBIDDEN"}),
        ),
    );
    let out = outs(&mut c);
    assert!(
        matches!(&out[0], Out::Ev(ClientEvent::SubscriptionLost { channel, reason: FailReason::Error { code: ErrorCode::Forbidden, .. } }) if channel.as_str() == "jobs/1"),
        "{out:?}"
    );
    assert!(
        matches!(&out[1], Out::Ev(ClientEvent::ServeLost { channel, .. }) if channel.as_str() == "rpc/x"),
        "{out:?}"
    );
    // An event of the ended subscription is dropped.
    c.handle_text(t(60), &event("jobs/1", "E", 1));
    assert!(
        !outs(&mut c)
            .iter()
            .any(|o| matches!(o, Out::Ev(ClientEvent::ChannelEvent { .. }))),
    );
    // After a reconnect, neither is re-established.
    c.handle_disconnected(t(100), CloseCode::GoingAway, "bye");
    drain(&mut c);
    c.handle_timeout(t(100) + FIRST_DELAY);
    drain(&mut c);
    let at = t(100) + FIRST_DELAY;
    c.handle_connected(at);
    c.handle_text(at, &greeting("app-2"));
    let out = outs(&mut c);
    assert!(
        out.contains(&ev(ClientEvent::Connected {
            app_id: "app-2".into()
        })),
        "{out:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(o, Out::Tx(_))),
        "nothing re-established: {out:?}"
    );
}

#[test]
fn an_unknown_end_or_a_warning_without_data_is_a_plain_notification() {
    let mut c = open_client();
    c.handle_text(t(10), &notification("token_expiring", json!({})));
    c.handle_text(
        t(10),
        &notification(
            "subscription_ended",
            json!({"channel": "never-subscribed", "kind": "subscribe"}),
        ),
    );
    let out = outs(&mut c);
    let plain = out
        .iter()
        .filter(|o| matches!(o, Out::Ev(ClientEvent::Notification { .. })))
        .count();
    assert_eq!(plain, 2, "{out:?}");
}
