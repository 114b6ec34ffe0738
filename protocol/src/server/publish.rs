//! Publishing and fan-out. A publish hands the event to the [store](super::store) (offset, history, retained state:
//! the event is kept once, as one `Arc<Value>`), and only once the store has kept it answers the publisher and
//! encodes its frame **once per dialect that has subscribers**, handing every subscriber a clone of the same
//! `Arc<str>`: no per-subscriber serialisation or copy. A store that writes before it keeps (the durable store)
//! answers the append as pending; the publish then waits, in order, in the hub's parked queue until the driver
//! reports the write ([`Hub::handle_store_written`]), and is refused if the write failed.

use alloc::sync::Arc;
use serde_json::Value;

use super::Hub;
use super::dialect::DialectKind;
use super::error::{HubError, LimitError, MisuseError};
use super::idempotent::Admit;
use super::output::HubEvent;
pub(super) use super::publish_answer::{Answer, Kept};
use super::publish_outcome::{Publish, PublishTicket, StorageError};
use super::store::Appended;
use crate::time::Timestamp;
use crate::wire::channel_payload::encode_delivery;
use crate::wire::project_stream::ProjectStreamMessage;
use crate::wire::{
    ChannelName, ErrorCode, IdempotencyKey, MessageId, ServerMessage, encode_event, json_len,
};

/// The prefix of the channels the project-stream dialect subscribes to.
const PROJECT_PREFIX: &str = "projects/";

impl Hub {
    /// Publishes `event` on `channel` (the REST route and the embedding application), as a client's `publish`
    /// would: it gets the next offset, goes into history (and becomes the state when `retain`), and reaches every
    /// subscriber.
    ///
    /// Over a store that keeps events at once the answer is [`Publish::Done`] with the offset. Over a store that
    /// writes them first it is [`Publish::Pending`]: the event is delivered, and
    /// [`HubEvent::PublishDone`] with the ticket says how it ended, once the store's write is done.
    ///
    /// Refuses a `null` event and one longer than `max_message_bytes` as JSON. Permissions are not checked: the
    /// caller is the server itself.
    pub fn publish(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Value,
        retain: bool,
    ) -> Result<Publish, HubError> {
        self.publish_keyed(now, channel, event, retain, None)
    }

    /// [`publish`](Self::publish) with an idempotency key (PROTOCOL §2.2): when `key` was seen on `channel` within
    /// the dedupe window, nothing is published and the answer is [`Publish::Duplicate`] with the original's offsets
    /// — or, while the original is still waiting for the store, [`Publish::Pending`], ended by
    /// [`HubEvent::PublishDuplicate`] (or by [`HubEvent::PublishDone`] with the original's failure).
    pub fn publish_keyed(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Value,
        retain: bool,
        key: Option<IdempotencyKey>,
    ) -> Result<Publish, HubError> {
        if event.is_null() {
            return Err(MisuseError::NullEvent.into());
        }
        let max = self.config.max_message_bytes;
        let bytes = json_len(&event);
        if bytes > max {
            return Err(LimitError::EventTooLarge { bytes, max }.into());
        }
        self.check_channel_limit(channel)?;
        Ok(self.publish_admitted(now, channel, key, 1, |hub, answer| {
            hub.publish_sized(now, channel, event, bytes, retain, answer)
        }))
    }

    /// A checked publish of `count` events under `key`: a duplicate is answered with the original's offsets, one
    /// whose original is still being stored waits for it, anything else goes to `store` (which gives the first
    /// offset once kept, or `None` while the store writes). A pending publish takes the next ticket.
    pub(super) fn publish_admitted(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        key: Option<IdempotencyKey>,
        count: u64,
        store: impl FnOnce(&mut Hub, Answer) -> Option<u64>,
    ) -> Publish {
        let ticket = PublishTicket(self.next_ticket);
        let outcome = match self.admit_keyed(now, channel, key, count, Answer::Ticket(ticket)) {
            Admit::Publish(answer) => {
                match self.store_admitted(now, channel, count, answer, store) {
                    Some(offset) => Publish::Done(offset),
                    None => Publish::Pending(ticket),
                }
            }
            Admit::Duplicate { first, last, .. } => {
                self.counters.duplicate_publishes += 1;
                Publish::Duplicate {
                    first_offset: first,
                    last_offset: last,
                }
            }
            Admit::Held => Publish::Pending(ticket),
        };
        if matches!(outcome, Publish::Pending(_)) {
            self.next_ticket += 1;
        }
        self.reap(now);
        outcome
    }

    /// Has the store keep the event; once it is kept, answers the publisher and fans the event out. Returns the
    /// offset when that was at once (the publisher is then not answered here: the caller has the offset).
    pub(super) fn publish_event(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Value,
        retain: bool,
        answer: Answer,
    ) -> Option<u64> {
        // The event's own JSON length is what history is budgeted in. The frames carry more (envelope, offset)
        // and are encoded only after the store gave the offset, so the length is counted here, once, without
        // building the text.
        let bytes = json_len(&event);
        self.publish_sized(now, channel, event, bytes, retain, answer)
    }

    /// [`publish_event`](Self::publish_event) with the event's JSON length already counted.
    fn publish_sized(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Value,
        bytes: usize,
        retain: bool,
        answer: Answer,
    ) -> Option<u64> {
        let event = Arc::new(event);
        if self.is_clustered() {
            self.cluster_publish(channel, alloc::vec![event], retain, answer);
            return None;
        }
        match self
            .store
            .append(now, channel, Arc::clone(&event), bytes, retain)
        {
            Appended::Kept(offset) => {
                let answer = answer.without_ticket();
                self.complete(now, channel, Kept { offset, event }, answer);
                Some(offset)
            }
            Appended::Pending(offset) => {
                self.parked.push_back(Parked {
                    channel: channel.clone(),
                    kept: Kept { offset, event },
                    answer,
                });
                None
            }
        }
    }

    /// The store's write `batch` is done: the publishes it held are answered and delivered, in order.
    pub fn handle_store_written(&mut self, now: Timestamp, batch: u64) {
        let kept = self.store.handle_written(now, batch);
        for _ in 0..kept {
            let Some(Parked {
                channel,
                kept,
                answer,
            }) = self.parked.pop_front()
            else {
                break;
            };
            self.complete(now, &channel, kept, answer);
        }
        self.reap(now);
    }

    /// The store's write `batch` failed: the publishes it held, and those queued behind it, are refused with
    /// `STORAGE_UNAVAILABLE` (REST: 503) and never delivered; their offsets will be given again.
    pub fn handle_store_failed(&mut self, now: Timestamp, batch: u64) {
        let dropped = self.store.handle_write_failed(now, batch);
        for _ in 0..dropped {
            let Some(parked) = self.parked.pop_front() else {
                break;
            };
            self.refuse_unstored(now, parked.answer);
        }
        self.reap(now);
    }

    /// Tells the publisher its event was not stored (`STORAGE_UNAVAILABLE`; REST: 503).
    pub(super) fn refuse_unstored(&mut self, now: Timestamp, answer: Answer) {
        self.counters.storage_failures += 1;
        // A node of a cluster cannot tell a publish Redis never ran from one whose answer was lost.
        let (message, error) = if self.is_clustered() {
            (UNCONFIRMED, StorageError::Unconfirmed)
        } else {
            (STORAGE_FAILED, StorageError::WriteFailed)
        };
        match answer {
            Answer::Native { conn, id } | Answer::NativeBatch { conn, id, .. } => self.send_error(
                now,
                conn,
                Some(id),
                ErrorCode::StorageUnavailable,
                message,
                None,
            ),
            Answer::Edge { conn } => self.send_error(
                now,
                conn,
                None,
                ErrorCode::StorageUnavailable,
                message,
                None,
            ),
            Answer::Ticket(ticket) => self.outbox.event(HubEvent::PublishDone {
                ticket,
                outcome: Err(error),
            }),
            Answer::Keyed(keyed) => self.refuse_keyed(now, *keyed),
            Answer::Silent => {}
        }
    }

    /// The store's snapshot covering log segments up to `covers` is written, `bytes` long.
    pub fn handle_snapshot_written(&mut self, now: Timestamp, covers: u64, bytes: u64) {
        self.store.handle_snapshot_written(now, covers, bytes);
    }

    /// The store's snapshot covering log segments up to `covers` could not be written.
    pub fn handle_snapshot_failed(&mut self, now: Timestamp, covers: u64) {
        self.store.handle_snapshot_failed(now, covers);
    }

    /// Answers the publisher of a kept event, then sends it to every subscriber.
    fn complete(&mut self, now: Timestamp, channel: &ChannelName, kept: Kept, answer: Answer) {
        self.counters.published += 1;
        // The answer goes before the event, so a subscribed publisher sees its offset first.
        self.answer_published(now, channel, kept.offset, answer);
        self.fan_out(now, channel, &kept);
    }

    /// Answers the publisher of an event (or batch) kept at `offset` (a batch: its first).
    pub(super) fn answer_published(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        offset: u64,
        answer: Answer,
    ) {
        match answer {
            Answer::Native { conn, id } => {
                let res = ServerMessage::PublishRes {
                    channel: channel.clone(),
                    offset,
                    duplicate: false,
                };
                self.send_native(conn, Some(id), res);
            }
            Answer::NativeBatch { conn, id, count } => {
                // This is the batch's first event; the store keeps a batch whole, at consecutive offsets.
                let res = ServerMessage::PublishBatchRes {
                    channel: channel.clone(),
                    first_offset: offset,
                    last_offset: offset + count.saturating_sub(1),
                    duplicate: false,
                };
                self.send_native(conn, Some(id), res);
            }
            Answer::Ticket(ticket) => self.outbox.event(HubEvent::PublishDone {
                ticket,
                outcome: Ok(offset),
            }),
            Answer::Keyed(keyed) => self.settle_keyed(now, offset, *keyed),
            Answer::Edge { .. } | Answer::Silent => {}
        }
    }

    /// Sends a kept event to every subscriber: one encoding per dialect present, shared by all. Subscribers by
    /// pattern come from the pattern index; a connection reached both ways gets the event once.
    pub(super) fn fan_out(&mut self, now: Timestamp, name: &ChannelName, kept: &Kept) {
        let Kept { offset, event } = kept;
        let by_pattern = self.patterns.matching(name);
        let ch = self.channels.get(name);
        let epoch =
            super::cluster::view::epoch_of(self.cluster.as_deref(), self.store.as_ref(), name);
        if ch.is_some() || !by_pattern.is_empty() {
            let mut present = [false; DialectKind::COUNT];
            if let Some(ch) = ch {
                for kind in DialectKind::ALL {
                    present[kind.index()] = ch.subscribers_of(kind) > 0;
                }
            }
            // Only connections not already subscribed to the channel itself.
            let mut extra = alloc::vec::Vec::with_capacity(by_pattern.len());
            for id in by_pattern {
                if ch.is_some_and(|ch| ch.subscribers.contains_key(&id)) {
                    continue;
                }
                if let Some(conn) = self.conns.get(id) {
                    present[conn.kind().index()] = true;
                    extra.push((id, conn.kind()));
                }
            }
            let mut frames: [Option<Arc<str>>; DialectKind::COUNT] = Default::default();
            for kind in DialectKind::ALL {
                if present[kind.index()] {
                    frames[kind.index()] =
                        event_frame(&mut self.rng, epoch, now, kind, name, *offset, event);
                }
            }
            let direct = ch
                .into_iter()
                .flat_map(|ch| ch.subscribers.iter().map(|(&id, &kind)| (id, kind)));
            let mut delivered = 0;
            for (id, kind) in direct.chain(extra) {
                if let Some(frame) = &frames[kind.index()]
                    && let Some(conn) = self.conns.get_mut(id)
                    && let frame = conn.dialect.frame_for(name, epoch, *offset, frame)
                    && self.outbox.transmit(id, conn, frame)
                {
                    delivered += 1;
                }
            }
            self.counters.delivered += delivered;
        }
        let epoch = alloc::string::String::from(epoch);
        self.outbox.event(HubEvent::Published {
            channel: name.clone(),
            epoch,
            offset: *offset,
        });
    }
}

const STORAGE_FAILED: &str = "the event could not be stored; it was not published";
const UNCONFIRMED: &str = "redis did not confirm the publish; the event may or may not have been stored (check the channel's history before publishing it again)";

/// A publish waiting for the store's write.
#[derive(Debug)]
pub(super) struct Parked {
    channel: ChannelName,
    kept: Kept,
    answer: Answer,
}

/// The frame carrying one channel event in one dialect. `None` for a project-stream frame on a channel outside
/// `projects/` (no project-stream connection subscribes to one).
pub(super) fn event_frame(
    rng: &mut crate::rng::Rng,
    epoch: &str,
    now: Timestamp,
    kind: DialectKind,
    channel: &ChannelName,
    offset: u64,
    event: &Value,
) -> Option<Arc<str>> {
    let text = match kind {
        DialectKind::Native => encode_event(&MessageId::random(rng), channel, epoch, offset, event),
        DialectKind::ChannelPayload => encode_delivery(channel, event),
        DialectKind::ProjectStream => {
            let project_id = channel.strip_prefix(PROJECT_PREFIX)?;
            ProjectStreamMessage::from_event(project_id, offset, event, now.as_millis()).encode()
        }
        DialectKind::Sse | DialectKind::ProjectSse => {
            return super::sse::stream_event_frame(kind, epoch, now, channel, offset, event);
        }
    };
    Some(Arc::from(text))
}
