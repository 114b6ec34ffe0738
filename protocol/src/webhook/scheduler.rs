//! The [`DeliveryScheduler`] machine (see the [module docs](super) for its rules).

use alloc::collections::{BTreeMap, VecDeque};

use crate::http_client::{Decision, Method, Outcome, RetryBudget, RetryState};
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::wire::ChannelName;

use super::config::SchedulerConfig;
use super::output::{AbandonReason, DeliveryCounters, DeliveryOutput};

/// One channel with deliveries pending.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The last offset delivered, given up on or skipped.
    done: u64,
    /// The newest offset published.
    latest: u64,
    /// The channel's log began again (the hub forgot the channel and it was published to again) while an event of
    /// the old log was being sent: that delivery's end says nothing about the new log's offsets.
    restarted: bool,
}

/// Where a channel's delivery under way stands, named after what it expects next.
#[derive(Debug)]
enum Expect {
    /// Waiting for the driver to read the next event from the history.
    Fetched,
    /// Waiting for the answer to an attempt.
    Answer(Attempts),
    /// Waiting until `at` to send again.
    RetryTime(Attempts, Timestamp),
}

/// One event's attempts so far.
#[derive(Debug)]
struct Attempts {
    offset: u64,
    retry: RetryState,
    retries: u32,
}

/// The webhook delivery scheduler: a sans-IO machine, fed publishes and the answers of its requests.
#[derive(Debug)]
pub struct DeliveryScheduler {
    config: SchedulerConfig,
    /// Channels with deliveries pending. A channel is in `ready` or in `under_way`, never both.
    pending: BTreeMap<ChannelName, Cursor>,
    /// Channels waiting for a delivery slot, in turn.
    ready: VecDeque<ChannelName>,
    /// Channels with a delivery under way (at most `max_concurrent`).
    under_way: BTreeMap<ChannelName, Expect>,
    outputs: VecDeque<DeliveryOutput>,
    rng: Rng,
    budget: RetryBudget,
    counters: DeliveryCounters,
}

impl DeliveryScheduler {
    /// A scheduler with nothing pending.
    pub fn new(config: SchedulerConfig) -> Self {
        let rng = Rng::from_seed(config.seed);
        DeliveryScheduler {
            config,
            pending: BTreeMap::new(),
            ready: VecDeque::new(),
            under_way: BTreeMap::new(),
            outputs: VecDeque::new(),
            rng,
            budget: RetryBudget::unlimited(),
            counters: DeliveryCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// An event was published at `offset` on `channel`. Channels the configuration does not match are ignored.
    pub fn handle_published(&mut self, _now: Timestamp, channel: &ChannelName, offset: u64) {
        if !self.config.matches(channel.as_str()) {
            return;
        }
        let sending = matches!(
            self.under_way.get(channel),
            Some(Expect::Answer(_) | Expect::RetryTime(..))
        );
        match self.pending.get_mut(channel) {
            // Within one log offsets only grow: one at or below the newest is the first of a new log.
            Some(cursor) if offset <= cursor.latest => {
                *cursor = Cursor {
                    done: offset.saturating_sub(1),
                    latest: offset,
                    restarted: sending,
                };
            }
            Some(cursor) => cursor.latest = offset,
            None => {
                self.pending.insert(
                    channel.clone(),
                    Cursor {
                        done: offset.saturating_sub(1),
                        latest: offset,
                        restarted: false,
                    },
                );
                self.ready.push_back(channel.clone());
                self.start_ready();
            }
        }
    }

    /// The answer to [`DeliveryOutput::Fetch`]: the offset of the first event after `after` the history still
    /// holds, or `None` when it holds none. Ignored unless `channel` was waiting for it.
    pub fn handle_fetched(&mut self, _now: Timestamp, channel: &ChannelName, next: Option<u64>) {
        if !matches!(self.under_way.get(channel), Some(Expect::Fetched)) {
            return;
        }
        let Some(cursor) = self.pending.get(channel).copied() else {
            self.under_way.remove(channel);
            return;
        };
        match next.filter(|&offset| offset > cursor.done) {
            None => {
                // Everything up to the newest published offset has left the history.
                self.skipped(channel, cursor.done + 1, cursor.latest);
                self.finish(channel, cursor.latest);
            }
            Some(offset) => {
                if offset > cursor.done + 1 {
                    self.skipped(channel, cursor.done + 1, offset - 1);
                }
                let retry = RetryState::new(Method::Post, &self.config.retry, self.rng.fork())
                    .assume_idempotent(true);
                self.under_way.insert(
                    channel.clone(),
                    Expect::Answer(Attempts {
                        offset,
                        retry,
                        retries: 0,
                    }),
                );
                self.outputs.push_back(DeliveryOutput::Send {
                    channel: channel.clone(),
                    offset,
                    attempt: 1,
                });
            }
        }
    }

    /// The attempt on `channel` got a 2xx. Ignored unless `channel` was waiting for an answer.
    pub fn handle_delivered(&mut self, _now: Timestamp, channel: &ChannelName) {
        let Some(attempts) = self.take_answered(channel) else {
            return;
        };
        self.counters.delivered += 1;
        self.outputs.push_back(DeliveryOutput::Delivered {
            channel: channel.clone(),
            offset: attempts.offset,
            retries: attempts.retries,
        });
        self.finish(channel, attempts.offset);
    }

    /// The attempt on `channel` failed with `outcome` (a non-2xx response, a transport error, a timeout): the
    /// retry policy decides between another attempt and giving up. Ignored unless `channel` was waiting for an
    /// answer.
    pub fn handle_failed(&mut self, now: Timestamp, channel: &ChannelName, outcome: Outcome) {
        let Some(mut attempts) = self.take_answered(channel) else {
            return;
        };
        match attempts.retry.on_outcome(now, outcome, &mut self.budget) {
            Decision::RetryAt(at) => {
                attempts.retries += 1;
                self.counters.retries += 1;
                self.under_way
                    .insert(channel.clone(), Expect::RetryTime(attempts, at));
            }
            Decision::Done => self.abandon(channel, attempts.offset, AbandonReason::NotRetried),
            Decision::GiveUp { reason } => self.abandon(
                channel,
                attempts.offset,
                AbandonReason::RetriesExhausted(reason),
            ),
        }
    }

    /// The request for `channel` could not be made at all (a failure no retry can fix). Ignored unless `channel`
    /// was waiting for an answer.
    pub fn handle_unsendable(&mut self, _now: Timestamp, channel: &ChannelName) {
        if let Some(attempts) = self.take_answered(channel) {
            self.abandon(channel, attempts.offset, AbandonReason::Unsendable);
        }
    }

    /// Time passed: every retry whose time has come is sent.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let due: alloc::vec::Vec<ChannelName> = self
            .under_way
            .iter()
            .filter(|(_, stage)| matches!(stage, Expect::RetryTime(_, at) if *at <= now))
            .map(|(c, _)| c.clone())
            .collect();
        for channel in due {
            if let Some(Expect::RetryTime(attempts, _)) = self.under_way.remove(&channel) {
                self.outputs.push_back(DeliveryOutput::Send {
                    channel: channel.clone(),
                    offset: attempts.offset,
                    attempt: attempts.retry.attempts() + 1,
                });
                self.under_way.insert(channel, Expect::Answer(attempts));
            }
        }
    }

    /// The next output; [`DeliveryOutput::Timeout`] means nothing else is queued.
    pub fn poll_output(&mut self) -> DeliveryOutput {
        if let Some(out) = self.outputs.pop_front() {
            return out;
        }
        DeliveryOutput::Timeout(self.next_deadline())
    }

    /// The earliest retry time, or [`Timestamp::MAX`].
    pub fn next_deadline(&self) -> Timestamp {
        self.under_way
            .values()
            .filter_map(|stage| match stage {
                Expect::RetryTime(_, at) => Some(*at),
                _ => None,
            })
            .min()
            .unwrap_or(Timestamp::MAX)
    }

    /// Events published on matching channels and not yet delivered, given up on or skipped.
    pub fn backlog(&self) -> u64 {
        self.pending
            .values()
            .map(|c| c.latest.saturating_sub(c.done))
            .sum()
    }

    /// Channels with a delivery under way.
    pub fn under_way(&self) -> usize {
        self.under_way.len()
    }

    /// The counters so far.
    pub fn counters(&self) -> DeliveryCounters {
        self.counters
    }

    /// Takes the attempts of a channel that was waiting for an answer.
    fn take_answered(&mut self, channel: &ChannelName) -> Option<Attempts> {
        match self.under_way.remove(channel) {
            Some(Expect::Answer(attempts)) => Some(attempts),
            Some(other) => {
                self.under_way.insert(channel.clone(), other);
                None
            }
            None => None,
        }
    }

    fn abandon(&mut self, channel: &ChannelName, offset: u64, reason: AbandonReason) {
        self.counters.abandoned += 1;
        self.outputs.push_back(DeliveryOutput::Abandoned {
            channel: channel.clone(),
            offset,
            reason,
        });
        self.finish(channel, offset);
    }

    fn skipped(&mut self, channel: &ChannelName, from: u64, to: u64) {
        if to < from {
            return;
        }
        self.counters.skipped += to - from + 1;
        self.outputs.push_back(DeliveryOutput::Skipped {
            channel: channel.clone(),
            from,
            to,
        });
    }

    /// Every offset up to `done` of `channel` is handled: its slot is free, and it goes to the back of the ready
    /// list if more is pending.
    fn finish(&mut self, channel: &ChannelName, done: u64) {
        self.under_way.remove(channel);
        if let Some(cursor) = self.pending.get_mut(channel) {
            if !core::mem::take(&mut cursor.restarted) {
                cursor.done = cursor.done.max(done);
            }
            if cursor.done >= cursor.latest {
                self.pending.remove(channel);
            } else {
                self.ready.push_back(channel.clone());
            }
        }
        self.start_ready();
    }

    /// Starts deliveries while channels are ready and fewer than `max_concurrent` are under way.
    fn start_ready(&mut self) {
        while self.under_way.len() < self.config.max_concurrent.max(1) {
            let Some(channel) = self.ready.pop_front() else {
                return;
            };
            let Some(cursor) = self.pending.get(&channel) else {
                continue;
            };
            self.outputs.push_back(DeliveryOutput::Fetch {
                channel: channel.clone(),
                after: cursor.done,
            });
            self.under_way.insert(channel, Expect::Fetched);
        }
    }
}
