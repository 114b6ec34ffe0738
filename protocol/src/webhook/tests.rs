//! The scheduler against a reference model (random scenarios, with a check that they reach every branch) and
//! exact transcripts.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::backoff::{BackoffConfig, Jitter};
use crate::http_client::{GiveUpReason, Outcome, RetryPolicy, StatusSet};
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::wire::ChannelName;

/// Retries 500 up to three attempts in all, 100 ms then 200 ms apart, no jitter.
fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        backoff: BackoffConfig {
            first_delay: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_secs(1),
            jitter: Jitter::None,
            max_attempts: None,
            max_elapsed: None,
            ..BackoffConfig::default()
        },
        retry_on: StatusSet::from_slice(&[500]),
        non_idempotent_retry_on: StatusSet::empty(),
        ..RetryPolicy::default()
    }
}

fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

/// How one attempt goes, scripted per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Retryable,
    Permanent,
    Unsendable,
}

/// What the reference model expects of one event, from its script: the terminal output and the attempts made.
fn expected(script: &[Answer], max_attempts: u32) -> (Result<u32, AbandonReason>, u32) {
    for (i, answer) in script.iter().enumerate().take(max_attempts as usize) {
        let attempts = i as u32 + 1;
        match answer {
            Answer::Ok => return (Ok(i as u32), attempts),
            Answer::Permanent => return (Err(AbandonReason::NotRetried), attempts),
            Answer::Unsendable => return (Err(AbandonReason::Unsendable), attempts),
            Answer::Retryable => {}
        }
    }
    (
        Err(AbandonReason::RetriesExhausted(
            GiveUpReason::AttemptsExhausted,
        )),
        max_attempts,
    )
}

/// Which branches one run reached.
#[derive(Debug, Default, Clone, Copy)]
struct Coverage {
    delivered_after_retry: u64,
    not_retried: u64,
    exhausted: u64,
    unsendable: u64,
    skipped: u64,
    cap_held_back: u64,
}

/// The harness: a hub history that may lose old events, scripted receivers, and a driver that answers the
/// scheduler's requests in random order. Checks the model's rules as it goes and at the end.
struct Run {
    s: DeliveryScheduler,
    rng: Rng,
    now: Timestamp,
    channels: Vec<ChannelName>,
    /// Per channel: the newest offset published and the oldest the history still holds.
    published: BTreeMap<ChannelName, (u64, u64)>,
    /// Per event: its script.
    scripts: BTreeMap<(ChannelName, u64), Vec<Answer>>,
    /// Requests the driver has not answered: fetches (offset None) and sends.
    open: Vec<(ChannelName, Option<u64>)>,
    /// Per event: sends seen.
    sends: BTreeMap<(ChannelName, u64), u32>,
    /// Per channel: the terminal or skipped offsets, in order.
    handled: BTreeMap<ChannelName, Vec<u64>>,
    /// Per event: the terminal output.
    terminal: BTreeMap<(ChannelName, u64), Result<u32, AbandonReason>>,
    cov: Coverage,
}

impl Run {
    fn new(seed: u64, channels: usize, max_concurrent: usize) -> Run {
        Run {
            s: DeliveryScheduler::new(SchedulerConfig::new(policy(), max_concurrent, seed)),
            rng: Rng::from_seed(seed ^ 0x5eed),
            now: Timestamp::from_millis(1_000),
            channels: (0..channels).map(|i| ch(&format!("c/{i}"))).collect(),
            published: BTreeMap::new(),
            scripts: BTreeMap::new(),
            open: Vec::new(),
            sends: BTreeMap::new(),
            handled: BTreeMap::new(),
            terminal: BTreeMap::new(),
            cov: Coverage::default(),
        }
    }

    fn publish(&mut self, i: usize) {
        let channel = self.channels[i % self.channels.len()].clone();
        let entry = self.published.entry(channel.clone()).or_insert((0, 1));
        entry.0 += 1;
        let offset = entry.0;
        let script = (0..4)
            .map(|_| match self.rng.below_inclusive(9) {
                0..=4 => Answer::Ok,
                5..=7 => Answer::Retryable,
                8 => Answer::Permanent,
                _ => Answer::Unsendable,
            })
            .collect();
        self.scripts.insert((channel.clone(), offset), script);
        self.s.handle_published(self.now, &channel, offset);
        self.drain();
    }

    /// The history forgets the oldest kept event of a channel.
    fn evict(&mut self, i: usize) {
        let channel = &self.channels[i % self.channels.len()];
        if let Some((latest, oldest)) = self.published.get_mut(channel)
            && *oldest <= *latest
        {
            *oldest += 1;
        }
    }

    fn answer(&mut self, pick: usize) {
        if self.open.is_empty() {
            return;
        }
        let (channel, request) = self.open.remove(pick % self.open.len());
        match request {
            None => {
                let (latest, oldest) = self.published[&channel];
                let done = self
                    .handled
                    .get(&channel)
                    .and_then(|h| h.last())
                    .copied()
                    .unwrap_or(0);
                let next = (done + 1).max(oldest);
                let next = (next <= latest).then_some(next);
                self.s.handle_fetched(self.now, &channel, next);
            }
            Some(offset) => {
                let key = (channel.clone(), offset);
                let n = self.sends[&key] as usize;
                match self.scripts[&key][n - 1] {
                    Answer::Ok => self.s.handle_delivered(self.now, &channel),
                    Answer::Retryable => {
                        self.s
                            .handle_failed(self.now, &channel, Outcome::status(500))
                    }
                    Answer::Permanent => {
                        self.s
                            .handle_failed(self.now, &channel, Outcome::status(404))
                    }
                    Answer::Unsendable => self.s.handle_unsendable(self.now, &channel),
                }
            }
        }
        self.drain();
    }

    /// Jumps to the scheduler's deadline, if any.
    fn advance(&mut self) {
        let at = self.s.next_deadline();
        if at != Timestamp::MAX {
            assert!(
                at >= self.now,
                "deadlines are never in the past of the last input"
            );
            self.now = at;
            self.s.handle_timeout(self.now);
            self.drain();
        }
    }

    fn drain(&mut self) {
        loop {
            let out = self.s.poll_output();
            match out {
                DeliveryOutput::Timeout(at) => {
                    if at != Timestamp::MAX {
                        assert!(at > self.now, "a due retry was left unsent");
                    }
                    break;
                }
                DeliveryOutput::Fetch { channel, after } => {
                    let done = self
                        .handled
                        .get(&channel)
                        .and_then(|h| h.last())
                        .copied()
                        .unwrap_or(after);
                    assert_eq!(after, done, "fetch after the last handled offset");
                    self.open.push((channel, None));
                }
                DeliveryOutput::Send {
                    channel,
                    offset,
                    attempt,
                } => {
                    let key = (channel.clone(), offset);
                    let n = self.sends.entry(key).or_default();
                    *n += 1;
                    assert_eq!(*n, attempt, "attempts are numbered from 1");
                    let done = self
                        .handled
                        .get(&channel)
                        .and_then(|h| h.last())
                        .copied()
                        .unwrap_or(0);
                    assert!(offset > done, "in order: {offset} after {done}");
                    self.open.push((channel, Some(offset)));
                }
                DeliveryOutput::Delivered {
                    channel,
                    offset,
                    retries,
                } => {
                    if retries > 0 {
                        self.cov.delivered_after_retry += 1;
                    }
                    self.handle(channel, offset, Ok(retries));
                }
                DeliveryOutput::Abandoned {
                    channel,
                    offset,
                    reason,
                } => {
                    match reason {
                        AbandonReason::NotRetried => self.cov.not_retried += 1,
                        AbandonReason::RetriesExhausted(_) => self.cov.exhausted += 1,
                        AbandonReason::Unsendable => self.cov.unsendable += 1,
                    }
                    self.handle(channel, offset, Err(reason));
                }
                DeliveryOutput::Skipped { channel, from, to } => {
                    let (_, oldest) = self.published[&channel];
                    assert!(
                        to < oldest,
                        "only events the history lost are skipped ({from}..={to}, oldest {oldest})"
                    );
                    self.cov.skipped += 1;
                    for offset in from..=to {
                        self.handled
                            .entry(channel.clone())
                            .or_default()
                            .push(offset);
                    }
                }
            }
        }
        // At most one request per channel and at most `max_concurrent` channels under way.
        let max = self.s.config().max_concurrent;
        assert!(self.s.under_way() <= max);
        let mut open: Vec<&ChannelName> = self.open.iter().map(|(c, _)| c).collect();
        open.sort();
        let before = open.len();
        open.dedup();
        assert_eq!(open.len(), before, "two requests open on one channel");
        let waiting = self
            .published
            .iter()
            .filter(|(c, (latest, _))| {
                self.handled
                    .get(*c)
                    .and_then(|h| h.last())
                    .copied()
                    .unwrap_or(0)
                    < *latest
            })
            .count();
        if self.s.under_way() == max && waiting > max {
            self.cov.cap_held_back += 1;
        }
    }

    fn handle(&mut self, channel: ChannelName, offset: u64, result: Result<u32, AbandonReason>) {
        let list = self.handled.entry(channel.clone()).or_default();
        assert_eq!(
            list.last().map_or(1, |l| l + 1),
            offset,
            "events end one by one, in order"
        );
        list.push(offset);
        let prev = self.terminal.insert((channel, offset), result);
        assert!(prev.is_none(), "an event ended twice");
    }

    /// Answers everything and runs the clock until nothing is left, then checks the model's end state.
    fn finish(mut self) -> Coverage {
        let mut steps = 0;
        while !self.open.is_empty() || self.s.next_deadline() != Timestamp::MAX {
            if self.open.is_empty() {
                self.advance();
            } else {
                self.answer(0);
            }
            steps += 1;
            assert!(steps < 100_000, "the scheduler does not settle");
        }
        assert_eq!(self.s.backlog(), 0);
        assert_eq!(self.s.under_way(), 0);
        let max_attempts = policy().max_attempts;
        for (channel, (latest, _)) in &self.published {
            let handled = self.handled.get(channel).cloned().unwrap_or_default();
            assert_eq!(
                handled,
                (1..=*latest).collect::<Vec<_>>(),
                "every offset of {channel} handled once"
            );
            for offset in 1..=*latest {
                let key = (channel.clone(), offset);
                let Some(result) = self.terminal.get(&key) else {
                    assert!(
                        !self.sends.contains_key(&key),
                        "a skipped event was never sent"
                    );
                    continue;
                };
                let (want, attempts) = expected(&self.scripts[&key], max_attempts);
                assert_eq!(*result, want, "{channel}/{offset}");
                assert_eq!(self.sends[&key], attempts, "{channel}/{offset} attempts");
            }
        }
        let c = self.s.counters();
        assert_eq!(c.delivered + c.abandoned, self.terminal.len() as u64);
        self.cov
    }
}

/// One random scenario: publishes, answers in any order, time jumps and history losses.
fn scenario(seed: u64) -> Coverage {
    let mut rng = Rng::from_seed(seed);
    let channels = rng.range_inclusive(1, 5) as usize;
    let max_concurrent = rng.range_inclusive(1, 3) as usize;
    let mut run = Run::new(seed, channels, max_concurrent);
    for _ in 0..rng.range_inclusive(5, 60) {
        match rng.below_inclusive(9) {
            0..=3 => run.publish(rng.next_u64() as usize),
            4..=6 => run.answer(rng.next_u64() as usize),
            7 | 8 => run.advance(),
            _ => run.evict(rng.next_u64() as usize),
        }
    }
    run.finish()
}

proptest! {
    #[test]
    fn the_scheduler_keeps_the_models_rules(seed in any::<u64>()) {
        scenario(seed);
    }
}

#[test]
fn generated_scenarios_reach_every_branch() {
    let runs = 300u64;
    let mut reached = [0u64; 6];
    for seed in 0..runs {
        let c = scenario(seed);
        let hits = [
            c.delivered_after_retry,
            c.not_retried,
            c.exhausted,
            c.unsendable,
            c.skipped,
            c.cap_held_back,
        ];
        for (r, h) in reached.iter_mut().zip(hits) {
            *r += u64::from(h > 0);
        }
    }
    let names = [
        "retried then delivered",
        "not retried",
        "retries exhausted",
        "unsendable",
        "skipped",
        "cap held a channel back",
    ];
    for (name, r) in names.iter().zip(reached) {
        assert!(
            r * 10 >= runs,
            "only {r} of {runs} scenarios reached {name:?}"
        );
    }
}

/// Renders outputs one a line.
fn transcript(s: &mut DeliveryScheduler) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let out = s.poll_output();
        let line = match &out {
            DeliveryOutput::Fetch { channel, after } => format!("fetch {channel} after {after}"),
            DeliveryOutput::Send {
                channel,
                offset,
                attempt,
            } => format!("send {channel}/{offset} #{attempt}"),
            DeliveryOutput::Delivered {
                channel,
                offset,
                retries,
            } => format!("delivered {channel}/{offset} retries {retries}"),
            DeliveryOutput::Abandoned {
                channel,
                offset,
                reason,
            } => format!("abandoned {channel}/{offset} {reason:?}"),
            DeliveryOutput::Skipped { channel, from, to } => {
                format!("skipped {channel} {from}..={to}")
            }
            DeliveryOutput::Timeout(at) if *at == Timestamp::MAX => String::from("idle"),
            DeliveryOutput::Timeout(at) => format!("wake at {}ms", at.as_micros() / 1000),
        };
        lines.push(line);
        if matches!(out, DeliveryOutput::Timeout(_)) {
            return lines;
        }
    }
}

#[test]
fn transcript_one_slot_retry_then_the_next_channel() {
    let t0 = Timestamp::from_millis(1_000);
    let (a, b) = (ch("a"), ch("b"));
    let mut s = DeliveryScheduler::new(SchedulerConfig::new(policy(), 1, 7));
    s.handle_published(t0, &a, 1);
    s.handle_published(t0, &a, 2);
    s.handle_published(t0, &b, 5);
    assert_eq!(transcript(&mut s), ["fetch a after 0", "idle"]);
    s.handle_fetched(t0, &a, Some(1));
    assert_eq!(transcript(&mut s), ["send a/1 #1", "idle"]);
    s.handle_failed(t0, &a, Outcome::status(500));
    assert_eq!(transcript(&mut s), ["wake at 1100ms"]);
    s.handle_timeout(t0 + Duration::from_millis(99));
    assert_eq!(
        transcript(&mut s),
        ["wake at 1100ms"],
        "not before its time"
    );
    s.handle_timeout(t0 + Duration::from_millis(100));
    assert_eq!(transcript(&mut s), ["send a/1 #2", "idle"]);
    s.handle_delivered(t0 + Duration::from_millis(100), &a);
    // a still has offset 2 pending: it goes behind b, which was waiting for the one slot.
    assert_eq!(
        transcript(&mut s),
        ["delivered a/1 retries 1", "fetch b after 4", "idle"]
    );
    s.handle_fetched(t0, &b, Some(5));
    s.handle_failed(t0, &b, Outcome::status(404));
    assert_eq!(
        transcript(&mut s),
        [
            "send b/5 #1",
            "abandoned b/5 NotRetried",
            "fetch a after 1",
            "idle"
        ]
    );
    s.handle_fetched(t0, &a, None);
    assert_eq!(transcript(&mut s), ["skipped a 2..=2", "idle"]);
    assert_eq!(s.backlog(), 0);
    assert_eq!(
        s.counters(),
        DeliveryCounters {
            delivered: 1,
            abandoned: 1,
            skipped: 1,
            retries: 1
        }
    );
}

#[test]
fn transcript_history_gap_and_exhausted_retries() {
    let t0 = Timestamp::from_millis(0);
    let a = ch("jobs/1");
    let config = SchedulerConfig::new(policy(), 4, 1).with_channels(vec![String::from("jobs/*")]);
    let mut s = DeliveryScheduler::new(config);
    s.handle_published(t0, &ch("news"), 1);
    assert_eq!(
        transcript(&mut s),
        ["idle"],
        "unmatched channels are ignored"
    );
    for offset in 1..=3 {
        s.handle_published(t0, &a, offset);
    }
    assert_eq!(transcript(&mut s), ["fetch jobs/1 after 0", "idle"]);
    s.handle_fetched(t0, &a, Some(3));
    assert_eq!(
        transcript(&mut s),
        ["skipped jobs/1 1..=2", "send jobs/1/3 #1", "idle"]
    );
    let mut now = t0;
    for (attempt, wait) in [(2, 100), (3, 200)] {
        s.handle_failed(now, &a, Outcome::status(500));
        now += Duration::from_millis(wait);
        assert_eq!(
            transcript(&mut s),
            [format!("wake at {}ms", now.as_micros() / 1000)]
        );
        s.handle_timeout(now);
        assert_eq!(
            transcript(&mut s),
            [format!("send jobs/1/3 #{attempt}"), String::from("idle")]
        );
    }
    s.handle_failed(now, &a, Outcome::status(500));
    assert_eq!(
        transcript(&mut s),
        [
            "abandoned jobs/1/3 RetriesExhausted(AttemptsExhausted)",
            "idle"
        ]
    );
    // Answers nobody asked for change nothing.
    s.handle_delivered(now, &a);
    s.handle_fetched(now, &a, Some(9));
    s.handle_unsendable(now, &a);
    assert_eq!(transcript(&mut s), ["idle"]);
}

#[test]
fn transcript_a_channel_forgotten_and_published_to_again_is_delivered_from_its_new_first_offset() {
    let t0 = Timestamp::from_millis(1_000);
    let a = ch("a");
    let mut s = DeliveryScheduler::new(SchedulerConfig::new(policy(), 1, 7));
    for offset in 1..=3 {
        s.handle_published(t0, &a, offset);
    }
    s.handle_fetched(t0, &a, Some(1));
    assert_eq!(
        transcript(&mut s),
        ["fetch a after 0", "send a/1 #1", "idle"]
    );
    // While the old log's first event is being sent, the hub forgets the channel and a new log begins at 1.
    s.handle_published(t0, &a, 1);
    s.handle_delivered(t0, &a);
    // The new log's offset 1 is still to deliver: the old delivery moved nothing.
    assert_eq!(
        transcript(&mut s),
        ["delivered a/1 retries 0", "fetch a after 0", "idle"]
    );
    s.handle_fetched(t0, &a, Some(1));
    s.handle_delivered(t0, &a);
    assert_eq!(
        transcript(&mut s),
        ["send a/1 #1", "delivered a/1 retries 0", "idle"]
    );
    assert_eq!(s.backlog(), 0);
}
