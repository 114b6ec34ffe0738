//! Idempotent publishing, the hub's side (PROTOCOL §2.2 `publish`, `idempotency_key`). Every publish form with a key
//! goes through [`Hub::admit_keyed`] before it is appended: a key seen on the channel within the window answers the
//! original offsets with `duplicate: true` and publishes nothing; a key whose original is still in flight (the
//! durable store writing it, the engine publishing it) holds the answer until the original ends, and a fresh key is
//! wrapped into the publish's [`Answer`] so the outcome settles or forgets it
//! ([`settle_keyed`](Hub::settle_keyed), [`refuse_keyed`](Hub::refuse_keyed)). The table itself is
//! [`dedupe`](super::dedupe).

use alloc::boxed::Box;
use alloc::string::String;

use super::Hub;
use super::dedupe::Seen;
use super::output::HubEvent;
use super::publish_answer::{Answer, Keyed};
use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey, ServerMessage};

/// What a publish does about its key.
#[derive(Debug)]
pub(super) enum Admit {
    /// Publish, answering with this (the key wrapped in, when there is one).
    Publish(Answer),
    /// Publish nothing: the key's original was kept at these offsets; `answer` is still to be answered.
    Duplicate {
        first: u64,
        last: u64,
        answer: Answer,
    },
    /// Publish nothing: the answer waits for the key's original, which is in flight.
    Held,
}

impl Hub {
    /// Looks up `key` (if any) for a publish of `count` events on `channel` answered by `answer`.
    pub(super) fn admit_keyed(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        key: Option<IdempotencyKey>,
        count: u64,
        answer: Answer,
    ) -> Admit {
        let Some(key) = key.filter(|_| self.dedupe.is_on()) else {
            return Admit::Publish(answer);
        };
        let epoch = (self.cluster.is_none()).then(|| self.store.epoch(channel));
        match self.dedupe.check(now, channel, &key, epoch, &answer) {
            Seen::Fresh => Admit::Publish(Answer::Keyed(Box::new(Keyed {
                channel: channel.clone(),
                key,
                count,
                inner: answer,
            }))),
            Seen::Duplicate { first, last } => Admit::Duplicate {
                first,
                last,
                answer,
            },
            Seen::Held => Admit::Held,
        }
    }

    /// Has `store` append an admitted publish of `count` events (answered by `answer`), returning the first offset
    /// when kept at once. The store is told a keyed one's key first, so one that writes before it keeps writes
    /// the key with the events, and a retry after a restart still finds it.
    pub(super) fn store_admitted(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        count: u64,
        answer: Answer,
        store: impl FnOnce(&mut Hub, Answer) -> Option<u64>,
    ) -> Option<u64> {
        if let Answer::Keyed(keyed) = &answer
            && !self.is_clustered()
        {
            self.store.key_next(now, channel, &keyed.key, count);
        }
        store(self, answer)
    }

    /// A keyed publish was kept from `first`: its key settles, its publisher is answered, then every publish held
    /// behind it, as duplicates.
    pub(super) fn settle_keyed(&mut self, now: Timestamp, first: u64, keyed: Keyed) {
        let Keyed {
            channel,
            key,
            count,
            inner,
        } = keyed;
        let last = first + count.saturating_sub(1);
        let epoch = (self.cluster.is_none()).then(|| String::from(self.store.epoch(&channel)));
        let held = self.dedupe.settle(now, &channel, &key, epoch, first, last);
        self.answer_published(now, &channel, first, inner);
        for answer in held {
            self.answer_duplicate(&channel, first, last, answer);
        }
    }

    /// A keyed publish was not kept: its key is forgotten (so a retry publishes), and its publisher and every
    /// publish held behind it are refused alike.
    pub(super) fn refuse_keyed(&mut self, now: Timestamp, keyed: Keyed) {
        let held = self.dedupe.forget(&keyed.channel, &keyed.key);
        self.refuse_unstored(now, keyed.inner);
        for answer in held {
            self.refuse_unstored(now, answer);
        }
    }

    /// Answers a publish that published nothing: the original's offsets, with `duplicate: true`.
    pub(super) fn answer_duplicate(
        &mut self,
        channel: &ChannelName,
        first: u64,
        last: u64,
        answer: Answer,
    ) {
        self.counters.duplicate_publishes += 1;
        match answer {
            Answer::Native { conn, id } => {
                let res = ServerMessage::PublishRes {
                    channel: channel.clone(),
                    offset: first,
                    duplicate: true,
                };
                self.send_native(conn, Some(id), res);
            }
            Answer::NativeBatch { conn, id, .. } => {
                let res = ServerMessage::PublishBatchRes {
                    channel: channel.clone(),
                    first_offset: first,
                    last_offset: last,
                    duplicate: true,
                };
                self.send_native(conn, Some(id), res);
            }
            Answer::Ticket(ticket) => self.outbox.event(HubEvent::PublishDuplicate {
                ticket,
                first_offset: first,
                last_offset: last,
            }),
            Answer::Keyed(keyed) => {
                self.counters.duplicate_publishes -= 1;
                self.answer_duplicate(channel, first, last, keyed.inner);
            }
            Answer::Edge { .. } | Answer::Silent => {}
        }
    }

    /// Idempotency keys remembered (settled within the window).
    pub(super) fn dedupe_keys(&self) -> usize {
        self.dedupe.settled()
    }
}
