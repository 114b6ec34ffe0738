//! Transcripts of the live feed, and a property test against a model Redis.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::redis::engine::read::StoredEvent;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_micros(1_000_000_000 + ms * 1000)
}

fn ch() -> ChannelName {
    ChannelName::new("jobs/1").unwrap()
}

fn drain(feed: &mut LiveFeed) -> Vec<FeedOutput> {
    let mut outputs = Vec::new();
    loop {
        let output = feed.poll_output();
        let last = matches!(output, FeedOutput::Timeout(_));
        outputs.push(output);
        if last {
            return outputs;
        }
    }
}

fn deliver(epoch: &str, offset: u64) -> FeedOutput {
    FeedOutput::Deliver {
        channel: ch(),
        epoch: epoch.into(),
        offset,
        retained: false,
        event: alloc::format!("{{\"n\":{offset}}}").into_bytes(),
    }
}

fn read_after(after: Option<u64>) -> FeedOutput {
    let config = FeedConfig::default();
    FeedOutput::Read {
        channel: ch(),
        after,
        limit: if after.is_some() {
            config.read_batch
        } else {
            config.load_events
        },
    }
}

fn read_after_in(batch: usize, after: Option<u64>) -> FeedOutput {
    match read_after(after) {
        FeedOutput::Read { channel, after, .. } => FeedOutput::Read {
            channel,
            after,
            limit: batch,
        },
        other => other,
    }
}

fn event(offset: u64) -> Vec<u8> {
    alloc::format!("{{\"n\":{offset}}}").into_bytes()
}

/// What the read script returns for a stream holding `kept` under `epoch` with newest offset `top`.
fn stream(epoch: &str, top: u64, kept: core::ops::RangeInclusive<u64>) -> ChannelRead {
    ChannelRead {
        epoch: Some(epoch.into()),
        offset: top,
        state: None,
        events: kept
            .map(|offset| StoredEvent {
                offset,
                published_ms: 0,
                retained: false,
                event: event(offset),
            })
            .collect(),
    }
}

impl ChannelRead {
    fn without_events(mut self) -> ChannelRead {
        self.events.clear();
        self
    }
}

const NEVER: FeedOutput = FeedOutput::Timeout(Timestamp::MAX);

#[test]
fn a_gap_is_filled_from_the_stream_before_anything_newer() {
    let mut feed = LiveFeed::new(FeedConfig::default());
    feed.follow(t(0), ch());
    feed.handle_subscribed(t(1), &ch());
    assert_eq!(drain(&mut feed), vec![read_after(None), NEVER]);
    // Published while the first read was out: held back.
    feed.handle_publication(t(2), &ch(), "e1", 6, &event(6), false);
    feed.handle_read(t(3), &ch(), &stream("e1", 5, 1..=1).without_events());
    let placed = FeedOutput::Positioned {
        channel: ch(),
        epoch: Some("e1".into()),
        offset: 5,
        state: None,
        events: Vec::new(),
    };
    assert_eq!(drain(&mut feed), vec![placed, deliver("e1", 6), NEVER]);
    feed.handle_publication(t(4), &ch(), "e1", 6, &event(6), false);
    feed.handle_publication(t(4), &ch(), "e1", 7, &event(7), false);
    assert_eq!(
        drain(&mut feed),
        vec![deliver("e1", 7), NEVER],
        "a duplicate dropped"
    );
    // 8 and 9 were lost; 10 arrives.
    feed.handle_publication(t(5), &ch(), "e1", 10, &event(10), false);
    assert_eq!(drain(&mut feed), vec![read_after(Some(7)), NEVER]);
    feed.handle_publication(t(6), &ch(), "e1", 11, &event(11), false);
    assert_eq!(drain(&mut feed), vec![NEVER], "held while the read is out");
    feed.handle_read(t(7), &ch(), &stream("e1", 10, 8..=10));
    assert_eq!(
        drain(&mut feed),
        vec![
            deliver("e1", 8),
            deliver("e1", 9),
            deliver("e1", 10),
            deliver("e1", 11),
            NEVER
        ]
    );
    assert_eq!(feed.position(&ch()), Some((Some("e1"), 11)));
}

#[test]
fn a_gap_history_no_longer_holds_is_one_resync() {
    let mut feed = LiveFeed::new(FeedConfig::default());
    feed.follow(t(0), ch());
    feed.handle_subscribed(t(0), &ch());
    drain(&mut feed);
    feed.handle_read(t(0), &ch(), &stream("e1", 3, 1..=3));
    drain(&mut feed);
    // The pub/sub connection was down; it comes back and the subscription is confirmed again.
    feed.handle_subscribed(t(10), &ch());
    assert_eq!(drain(&mut feed), vec![read_after(Some(3)), NEVER]);
    feed.handle_read(t(11), &ch(), &stream("e1", 20, 11..=20));
    assert_eq!(
        drain(&mut feed),
        vec![
            FeedOutput::Resync {
                channel: ch(),
                epoch: Some("e1".into()),
                offset: 20,
                state: None
            },
            NEVER
        ]
    );
    feed.handle_publication(t(12), &ch(), "e1", 21, &event(21), false);
    assert_eq!(drain(&mut feed), vec![deliver("e1", 21), NEVER]);
    // The channel is lost from Redis and published to again: a new epoch.
    feed.handle_publication(t(13), &ch(), "e2", 1, &event(1), false);
    assert_eq!(drain(&mut feed), vec![read_after(Some(21)), NEVER]);
    feed.handle_read(t(14), &ch(), &stream("e2", 1, 1..=1));
    assert_eq!(
        drain(&mut feed),
        vec![
            FeedOutput::Resync {
                channel: ch(),
                epoch: Some("e2".into()),
                offset: 1,
                state: None
            },
            NEVER
        ]
    );
    feed.handle_publication(t(15), &ch(), "e2", 2, &event(2), false);
    assert_eq!(drain(&mut feed), vec![deliver("e2", 2), NEVER]);
}

#[test]
fn long_gaps_are_read_in_batches_and_failed_reads_retried() {
    let config = FeedConfig {
        read_batch: 2,
        ..FeedConfig::default()
    };
    let mut feed = LiveFeed::new(config);
    feed.follow(t(0), ch());
    feed.handle_subscribed(t(0), &ch());
    drain(&mut feed);
    feed.handle_read(t(0), &ch(), &stream("e1", 1, 1..=1));
    drain(&mut feed);
    feed.handle_publication(t(1), &ch(), "e1", 5, &event(5), false);
    assert_eq!(drain(&mut feed), vec![read_after_in(2, Some(1)), NEVER]);
    feed.handle_read_failed(t(2), &ch());
    assert_eq!(drain(&mut feed), vec![FeedOutput::Timeout(t(102))]);
    feed.handle_timeout(t(50));
    assert_eq!(
        drain(&mut feed),
        vec![FeedOutput::Timeout(t(102))],
        "not yet"
    );
    feed.handle_timeout(t(102));
    assert_eq!(drain(&mut feed), vec![read_after_in(2, Some(1)), NEVER]);
    // The read stops at its batch: read on.
    feed.handle_read(t(103), &ch(), &stream("e1", 5, 2..=3));
    assert_eq!(
        drain(&mut feed),
        vec![
            deliver("e1", 2),
            deliver("e1", 3),
            read_after_in(2, Some(3)),
            NEVER
        ]
    );
    feed.handle_read(t(104), &ch(), &stream("e1", 5, 4..=5));
    assert_eq!(
        drain(&mut feed),
        vec![deliver("e1", 4), deliver("e1", 5), NEVER]
    );
}

#[test]
fn expired_history_counts_as_gone_and_unfollowed_channels_are_ignored() {
    let config = FeedConfig {
        history_ttl: Duration::from_secs(60),
        ..FeedConfig::default()
    };
    let mut feed = LiveFeed::new(config);
    feed.follow(t(0), ch());
    feed.handle_subscribed(t(0), &ch());
    drain(&mut feed);
    feed.handle_read(t(0), &ch(), &stream("e1", 1, 1..=1));
    feed.handle_subscribed(t(0), &ch());
    drain(&mut feed);
    // Offset 2 is still in the stream, but was published (at unix ms 0) more than 60 s before now.
    feed.handle_read(t(0), &ch(), &stream("e1", 2, 2..=2));
    assert!(matches!(
        drain(&mut feed)[0],
        FeedOutput::Resync { offset: 2, .. }
    ));
    feed.unfollow(t(1), &ch());
    feed.handle_publication(t(2), &ch(), "e1", 3, &event(3), false);
    feed.handle_subscribed(t(2), &ch());
    assert_eq!(drain(&mut feed), vec![NEVER]);
}

mod model {
    //! Against a model Redis: whatever publications are lost, whenever the connection drops, however reads fail or
    //! stop at their batch, and even when the channel is lost and starts a new epoch, the feed delivers each event
    //! at most once, in offset order, each one the event published at that position, skips only with a `Resync`,
    //! and, once everything is answered, has delivered up to the newest offset.

    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::string::String;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Publish,
        PublishUnheard,
        Down,
        Up,
        AnswerRead,
        FailRead,
        Wait,
        Lose,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => Just(Step::Publish),
            2 => Just(Step::PublishUnheard),
            1 => Just(Step::Down),
            2 => Just(Step::Up),
            4 => Just(Step::AnswerRead),
            1 => Just(Step::FailRead),
            1 => Just(Step::Wait),
            1 => Just(Step::Lose),
        ]
    }

    struct Truth {
        epoch: String,
        top: u64,
        kept: usize,
        generation: u32,
        events: BTreeMap<(String, u64), Vec<u8>>,
    }

    impl Truth {
        fn publish(&mut self) -> (String, u64, Vec<u8>) {
            self.top += 1;
            let event =
                alloc::format!("{{\"g\":{},\"n\":{}}}", self.generation, self.top).into_bytes();
            self.events
                .insert((self.epoch.clone(), self.top), event.clone());
            (self.epoch.clone(), self.top, event)
        }

        fn read(&self, after: Option<u64>, batch: usize) -> ChannelRead {
            let oldest = self.top.saturating_sub(self.kept as u64) + 1;
            let from = after.map_or(oldest, |after| (after + 1).max(oldest));
            let limit = if after.is_none() { 0 } else { batch };
            ChannelRead {
                epoch: (self.top > 0).then(|| self.epoch.clone()),
                offset: self.top,
                state: None,
                events: (from..=self.top)
                    .take(limit)
                    .map(|offset| StoredEvent {
                        offset,
                        published_ms: 0,
                        retained: false,
                        event: self.events[&(self.epoch.clone(), offset)].clone(),
                    })
                    .collect(),
            }
        }
    }

    struct Seen {
        position: Option<(Option<String>, u64)>,
        outstanding: Option<Option<u64>>,
    }

    fn check(feed: &mut LiveFeed, truth: &Truth, seen: &mut Seen) -> Result<(), TestCaseError> {
        loop {
            match feed.poll_output() {
                FeedOutput::Deliver {
                    epoch,
                    offset,
                    event,
                    ..
                } => {
                    let expected_next = match &seen.position {
                        Some((Some(e), last)) if *e == epoch => last + 1,
                        // The first event of an epoch the feed had not seen (the channel was empty).
                        Some((None, 0)) => 1,
                        other => {
                            return Err(TestCaseError::fail(alloc::format!(
                                "delivered {epoch}:{offset} from position {other:?}"
                            )));
                        }
                    };
                    prop_assert_eq!(offset, expected_next, "in order, no gap, no duplicate");
                    prop_assert_eq!(
                        Some(&event),
                        truth.events.get(&(epoch.clone(), offset)),
                        "the event published there"
                    );
                    seen.position = Some((Some(epoch), offset));
                }
                FeedOutput::Read { after, .. } => {
                    prop_assert!(seen.outstanding.is_none(), "one read at a time");
                    seen.outstanding = Some(after);
                }
                FeedOutput::Positioned { epoch, offset, .. } => {
                    prop_assert_eq!(
                        seen.position.clone(),
                        Some((epoch, offset)),
                        "placed where first read"
                    );
                }
                FeedOutput::Resync { epoch, offset, .. } => {
                    if let (Some((Some(old), last)), Some(new)) = (&seen.position, &epoch)
                        && old == new
                    {
                        prop_assert!(offset > *last, "a resync never goes back");
                    }
                    seen.position = Some((epoch, offset));
                }
                FeedOutput::Timeout(_) => return Ok(()),
            }
        }
    }

    proptest! {
        #[test]
        fn delivers_every_event_once_in_order_or_says_resync(
            steps in proptest::collection::vec(step(), 1..120),
            kept in 2usize..12,
        ) {
            let config = FeedConfig { read_batch: 3, ..FeedConfig::default() };
            let mut feed = LiveFeed::new(config);
            let mut truth = Truth {
                epoch: "g0".to_string(),
                top: 0,
                kept,
                generation: 0,
                events: BTreeMap::new(),
            };
            let mut seen = Seen { position: None, outstanding: None };
            let mut now = t(0);
            let mut up = true;
            feed.follow(now, ch());
            feed.handle_subscribed(now, &ch());
            check(&mut feed, &truth, &mut seen)?;
            let answer = |feed: &mut LiveFeed, truth: &Truth, seen: &mut Seen, now| {
                if let Some(after) = seen.outstanding.take() {
                    let read = truth.read(after, 3);
                    // The first read only places the feed: what came before is not its to deliver.
                    if seen.position.is_none() {
                        seen.position = Some((read.epoch.clone(), read.offset));
                    }
                    feed.handle_read(now, &ch(), &read);
                }
            };
            for step in steps {
                now += Duration::from_millis(10);
                match step {
                    Step::Publish | Step::PublishUnheard => {
                        let (epoch, offset, event) = truth.publish();
                        if up && matches!(step, Step::Publish) {
                            feed.handle_publication(now, &ch(), &epoch, offset, &event, false);
                        }
                    }
                    Step::Down => up = false,
                    Step::Up => {
                        up = true;
                        feed.handle_subscribed(now, &ch());
                    }
                    Step::AnswerRead => answer(&mut feed, &truth, &mut seen, now),
                    Step::FailRead => {
                        if seen.outstanding.take().is_some() {
                            feed.handle_read_failed(now, &ch());
                        }
                    }
                    Step::Wait => {
                        now += Duration::from_millis(200);
                        feed.handle_timeout(now);
                    }
                    Step::Lose => {
                        truth.generation += 1;
                        truth.epoch = alloc::format!("g{}", truth.generation);
                        truth.top = 0;
                    }
                }
                check(&mut feed, &truth, &mut seen)?;
            }
            // Everything answered from here on: the feed catches up with the newest offset.
            feed.handle_subscribed(now, &ch());
            for _ in 0..200 {
                check(&mut feed, &truth, &mut seen)?;
                now += Duration::from_millis(200);
                feed.handle_timeout(now);
                check(&mut feed, &truth, &mut seen)?;
                if seen.outstanding.is_none() {
                    break;
                }
                answer(&mut feed, &truth, &mut seen, now);
            }
            prop_assert!(seen.outstanding.is_none(), "reads settle");
            let expected = (truth.top > 0).then(|| truth.epoch.clone());
            let (epoch, offset) = seen.position.clone().unwrap_or((None, 0));
            if truth.top > 0 {
                prop_assert_eq!((epoch, offset), (expected, truth.top));
            } else {
                prop_assert_eq!(offset, 0);
            }
        }
    }
}

/// A read still out when the channel is unfollowed is answered after it is followed again: that answer describes
/// the old following and is dropped, so the new following is placed by its own read, at the channel's newest
/// position, instead of at the stale one (which would then miss the events between until the next publication).
#[test]
fn a_read_of_an_ended_following_does_not_place_the_new_one() {
    let mut feed = LiveFeed::new(FeedConfig::default());
    feed.follow(t(0), ch());
    feed.handle_subscribed(t(1), &ch());
    assert_eq!(
        drain(&mut feed),
        vec![read_after(None), FeedOutput::Timeout(Timestamp::MAX)]
    );
    feed.unfollow(t(2), &ch());
    feed.follow(t(3), ch());
    feed.handle_subscribed(t(4), &ch());
    assert_eq!(
        drain(&mut feed),
        vec![read_after(None), FeedOutput::Timeout(Timestamp::MAX)]
    );
    // The first read's answer (the channel at 3), then the second's (at 5).
    feed.handle_read(t(5), &ch(), &stream("ep", 3, 1..=3));
    assert_eq!(drain(&mut feed), vec![FeedOutput::Timeout(Timestamp::MAX)]);
    feed.handle_read(t(6), &ch(), &stream("ep", 5, 1..=5));
    let out = drain(&mut feed);
    assert!(
        matches!(&out[0], FeedOutput::Positioned { offset: 5, .. }),
        "{out:?}"
    );
    assert_eq!(feed.position(&ch()), Some((Some("ep"), 5)));
    // A failed read of an ended following is dropped too: the new following's read is still out, no retry.
    feed.handle_subscribed(t(7), &ch());
    assert_eq!(
        drain(&mut feed),
        vec![read_after(Some(5)), FeedOutput::Timeout(Timestamp::MAX)]
    );
    feed.unfollow(t(8), &ch());
    feed.follow(t(9), ch());
    feed.handle_subscribed(t(9), &ch());
    let _ = drain(&mut feed);
    feed.handle_read_failed(t(10), &ch());
    assert_eq!(drain(&mut feed), vec![FeedOutput::Timeout(Timestamp::MAX)]);
}
