//! Pattern subscriptions in the client machine: positions from the first answer, events of channels made later,
//! duplicates dropped, and a reconnect that resubscribes with the machine's own `since` map.

use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;
use crate::wire::{ChannelPattern, PatternChannel};

fn pattern_res(
    id: &MessageId,
    pattern: &str,
    channels: &[(&str, &str, u64, Option<bool>)],
) -> String {
    server(
        Some(id),
        ServerMessage::SubscribePatternRes {
            pattern: ChannelPattern::new(pattern).unwrap(),
            channels: channels
                .iter()
                .map(|&(channel, epoch, offset, recovered)| PatternChannel {
                    channel: ch(channel),
                    epoch: epoch.to_string(),
                    offset,
                    recovered,
                })
                .collect(),
        },
    )
}

/// The channel events among outputs, as (channel, offset).
fn delivered(outs: &[Out]) -> Vec<(String, u64)> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Ev(ClientEvent::ChannelEvent {
                channel, offset, ..
            }) => Some((channel.to_string(), *offset)),
            _ => None,
        })
        .collect()
}

/// Drops the connection at `t(4)`, lets `while_away` act while the machine waits to reconnect, then reconnects
/// and greets at `t(5_000)`: the outputs of the new connection (its resubscribes first).
fn reconnect(c: &mut ClientMachine, while_away: impl FnOnce(&mut ClientMachine)) -> Vec<Out> {
    c.handle_disconnected(t(4), CloseCode::Abnormal, "");
    drain(c);
    while_away(c);
    c.handle_timeout(t(4) + FIRST_DELAY);
    drain(c);
    c.handle_connected(t(5_000));
    c.handle_text(t(5_000), &greeting("app-2"));
    outs(c)
}

/// The ids of the requests among outputs, in order.
fn request_ids(outs: &[Out]) -> Vec<MessageId> {
    outs.iter()
        .filter(|o| matches!(o, Out::Tx(_)))
        .map(tx_id)
        .collect()
}

#[test]
fn a_pattern_resubscribes_with_its_positions_and_each_channel_continues() {
    let mut c = open_client();
    let id = c.subscribe_pattern(t(1), "jobs/*").unwrap();
    let sent = outs(&mut c);
    assert!(
        matches!(&sent[0], Out::Tx(f) if f.message == ClientMessage::SubscribePattern {
            pattern: ChannelPattern::new("jobs/*").unwrap(),
            since: None,
        }),
        "{sent:?}"
    );
    c.handle_text(
        t(2),
        &pattern_res(&id, "jobs/*", &[("jobs/1", "e1", 3, None)]),
    );
    c.handle_text(t(3), &event("jobs/1", "e1", 3)); // at the position: already seen
    c.handle_text(t(3), &event("jobs/1", "e1", 4));
    c.handle_text(t(3), &event("jobs/2", "e2", 1)); // made after the subscribe
    c.handle_text(t(3), &event("jobs/2", "e2", 1)); // a repeat
    c.handle_text(t(3), &event("other", "e3", 1)); // not matched
    let got = outs(&mut c);
    assert_eq!(
        delivered(&got),
        [("jobs/1".to_string(), 4), ("jobs/2".to_string(), 1)]
    );

    let resub = reconnect(&mut c, |_| {});
    let mut want = BTreeMap::new();
    want.insert(ch("jobs/1"), since("e1", 4).unwrap());
    want.insert(ch("jobs/2"), since("e2", 1).unwrap());
    let frame = resub
        .iter()
        .find_map(|o| match o {
            Out::Tx(f) => Some(f.clone()),
            _ => None,
        })
        .expect("a resubscribe");
    assert_eq!(
        frame.message,
        ClientMessage::SubscribePattern {
            pattern: ChannelPattern::new("jobs/*").unwrap(),
            since: Some(want),
        }
    );
    // jobs/1 recovered (5 follows), jobs/2 lost (resync), jobs/3 made meanwhile (its history follows).
    c.handle_text(
        t(5_001),
        &pattern_res(
            &frame.message_id,
            "jobs/*",
            &[
                ("jobs/1", "e1", 5, Some(true)),
                ("jobs/2", "e2", 9, Some(false)),
                ("jobs/3", "e4", 1, Some(true)),
            ],
        ),
    );
    c.handle_text(t(5_001), &event("jobs/1", "e1", 5));
    c.handle_text(t(5_001), &event("jobs/3", "e4", 1));
    c.handle_text(t(5_001), &event("jobs/2", "e2", 9)); // before the position the resync set
    c.handle_text(t(5_001), &event("jobs/2", "e2", 10));
    let got = outs(&mut c);
    assert!(
        got.contains(&ev(ClientEvent::Resync {
            channel: ch("jobs/2")
        })),
        "{got:?}"
    );
    assert_eq!(
        delivered(&got),
        [
            ("jobs/1".to_string(), 5),
            ("jobs/3".to_string(), 1),
            ("jobs/2".to_string(), 10)
        ]
    );
    assert_eq!(
        c.pattern_subscriptions()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        ["jobs/*"]
    );

    // Unsubscribed: events stop.
    c.unsubscribe_pattern(t(6_000), "jobs/*").unwrap();
    drain(&mut c);
    c.handle_text(t(6_001), &event("jobs/1", "e1", 6));
    assert!(delivered(&outs(&mut c)).is_empty());
}

/// A channel subscription and a pattern over it resubscribe together; the channel's replay is refused (a resync
/// at offset 9) while the pattern's is granted and replays 5..=8. The application, told to start over at 9, must
/// not get 5..=8 afterwards (the simulation's seed 599: it got them, then 10, which looked like a gap).
#[test]
fn a_channel_resync_moves_the_pattern_following_it() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "jobs/1").unwrap();
    let pat = c.subscribe_pattern(t(1), "jobs/*").unwrap();
    drain(&mut c);
    c.handle_text(t(2), &subscribe_res(&sub, "jobs/1", "e1", 3, None));
    c.handle_text(
        t(2),
        &pattern_res(&pat, "jobs/*", &[("jobs/1", "e1", 3, None)]),
    );
    c.handle_text(t(3), &event("jobs/1", "e1", 4));
    assert_eq!(delivered(&outs(&mut c)), [("jobs/1".to_string(), 4)]);

    let ids = request_ids(&reconnect(&mut c, |_| {}));
    let [resub, repat] = ids.as_slice() else {
        panic!("a subscribe and a pattern subscribe: {ids:?}");
    };
    // The application lets go of the channel and takes it again before the answers come.
    c.unsubscribe(t(5_001), "jobs/1").unwrap();
    c.subscribe(t(5_001), "jobs/1").unwrap();
    drain(&mut c);
    c.handle_text(
        t(5_002),
        &subscribe_res(resub, "jobs/1", "e1", 9, Some(false)),
    );
    c.handle_text(
        t(5_002),
        &pattern_res(repat, "jobs/*", &[("jobs/1", "e1", 9, Some(true))]),
    );
    for offset in 5..=8 {
        c.handle_text(t(5_003), &event("jobs/1", "e1", offset));
    }
    c.handle_text(t(5_004), &event("jobs/1", "e1", 10));
    let got = outs(&mut c);
    assert!(
        got.contains(&ev(ClientEvent::Resync {
            channel: ch("jobs/1")
        })),
        "{got:?}"
    );
    assert_eq!(delivered(&got), [("jobs/1".to_string(), 10)]);
}

/// Reconnecting with a channel subscription and a first pattern subscribe (no `since`: it was never answered),
/// the application lets go of the channel before the answers: the pattern takes over the channel's position, but
/// the server, asked for no replay, starts it live at its head. The events in between are gone, so the
/// application resynchronises (the simulation's seed 3853: it got the next live event after a gap).
#[test]
fn a_first_pattern_answer_past_a_position_held_is_a_resync() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "jobs/1").unwrap();
    drain(&mut c);
    c.handle_text(t(2), &subscribe_res(&sub, "jobs/1", "e1", 3, None));
    c.handle_text(t(3), &event("jobs/1", "e1", 4));
    drain(&mut c);

    let sent = reconnect(&mut c, |c| {
        c.subscribe_pattern(t(5), "jobs/*").unwrap();
    });
    let ids = request_ids(&sent);
    let [resub, pat] = ids.as_slice() else {
        panic!("a subscribe and a pattern subscribe: {sent:?}");
    };
    c.unsubscribe(t(5_001), "jobs/1").unwrap();
    drain(&mut c);
    c.handle_text(
        t(5_002),
        &subscribe_res(resub, "jobs/1", "e1", 9, Some(true)),
    );
    c.handle_text(
        t(5_002),
        &pattern_res(pat, "jobs/*", &[("jobs/1", "e1", 9, None)]),
    );
    c.handle_text(t(5_003), &event("jobs/1", "e1", 10));
    let got = outs(&mut c);
    let resync = got
        .iter()
        .position(|o| {
            o == &ev(ClientEvent::Resync {
                channel: ch("jobs/1"),
            })
        })
        .expect("a resync");
    let tenth = got
        .iter()
        .position(|o| matches!(o, Out::Ev(ClientEvent::ChannelEvent { offset: 10, .. })))
        .expect("offset 10 delivered");
    assert!(resync < tenth, "{got:?}");
    assert_eq!(delivered(&got), [("jobs/1".to_string(), 10)]);
}

/// An event of a channel that only a pattern awaiting its answer follows (the channel's own subscription was
/// let go while the server still sent on it) waits for the pattern's replay instead of running ahead of it: the
/// replay then delivers the channel in order (the simulation's seed 2032: the event came first, the replay's
/// earlier events were then dropped as old).
#[test]
fn a_pattern_awaiting_its_answer_leaves_the_channel_to_its_replay() {
    let mut c = open_client();
    let sub = c.subscribe(t(1), "jobs/1").unwrap();
    let pat = c.subscribe_pattern(t(1), "jobs/*").unwrap();
    drain(&mut c);
    c.handle_text(t(2), &subscribe_res(&sub, "jobs/1", "e1", 3, None));
    c.handle_text(
        t(2),
        &pattern_res(&pat, "jobs/*", &[("jobs/1", "e1", 3, None)]),
    );
    drain(&mut c);

    let ids = request_ids(&reconnect(&mut c, |_| {}));
    let [resub, repat] = ids.as_slice() else {
        panic!("a subscribe and a pattern subscribe: {ids:?}");
    };
    c.unsubscribe(t(5_001), "jobs/1").unwrap();
    drain(&mut c);
    // The channel's own answer (no longer wanted) and a live event on it, before the pattern's answer.
    c.handle_text(
        t(5_002),
        &subscribe_res(resub, "jobs/1", "e1", 7, Some(false)),
    );
    c.handle_text(t(5_002), &event("jobs/1", "e1", 8));
    c.handle_text(
        t(5_003),
        &pattern_res(repat, "jobs/*", &[("jobs/1", "e1", 8, Some(true))]),
    );
    for offset in 4..=8 {
        c.handle_text(t(5_003), &event("jobs/1", "e1", offset));
    }
    let got = outs(&mut c);
    assert_eq!(
        delivered(&got),
        (4..=8)
            .map(|o| ("jobs/1".to_string(), o))
            .collect::<Vec<_>>()
    );
}

/// A pattern subscribe answered after it timed out on our side still starts the pattern: its events come once the
/// late answer is applied (the simulation's seed 9109: a stalled link, then every event of the pattern dropped).
#[test]
fn a_late_pattern_answer_still_starts_the_pattern() {
    let mut c = open_client_with(ClientConfig {
        request_timeout: Duration::from_secs(1),
        ..ClientConfig::with_seed(7)
    });
    let pat = c.subscribe_pattern(t(1), "jobs/*").unwrap();
    drain(&mut c);
    c.handle_timeout(t(1_001));
    assert!(
        outs(&mut c).iter().any(|o| matches!(
            o,
            Out::Ev(ClientEvent::RequestFailed {
                reason: FailReason::TimedOut,
                ..
            })
        )),
        "the subscribe timed out"
    );
    c.handle_text(t(1_100), &event("jobs/1", "e1", 3)); // before the answer: the server had not started it
    c.handle_text(
        t(1_100),
        &pattern_res(&pat, "jobs/*", &[("jobs/1", "e1", 3, None)]),
    );
    c.handle_text(t(1_101), &event("jobs/1", "e1", 4));
    assert_eq!(delivered(&outs(&mut c)), [("jobs/1".to_string(), 4)]);
}

#[test]
fn an_invalid_pattern_is_refused_locally() {
    let mut c = open_client();
    assert!(matches!(
        c.subscribe_pattern(t(1), "jobs//x"),
        Err(ClientError::Usage(UsageError::InvalidChannel { .. }))
    ));
}
