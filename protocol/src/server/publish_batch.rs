//! Batch publishing: several events on one channel in one request, stored at consecutive offsets, all or none.
//!
//! Every event is checked before the first is appended, so a bad one refuses the whole batch with nothing stored.
//! The appends then happen in one call under the hub's single ownership, so no other publish can take an offset
//! between them, and the store is told they belong together ([`Store::group_next`](super::store::Store::group_next))
//! so they are kept (or dropped) in one step. The first append carries the answer, which thus goes out, as for a
//! single publish, before the batch's first event reaches subscribers, and only once the whole batch is kept: over a
//! store that writes first, when the one write holding all of it is done; a failed write refuses the batch as a
//! whole. Each event is then fanned out on its own, in order, exactly like single publishes.

use alloc::vec::Vec;
use serde_json::Value;

use super::Hub;
use super::conn_table::ConnId;
use super::error::{HubError, LimitError, MisuseError};
use super::idempotent::Admit;
use super::publish::Answer;
use super::publish_outcome::Publish;
use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey, MAX_BATCH_EVENTS, MessageId, json_len};

impl Hub {
    /// Publishes `events` on `channel` at consecutive offsets, as a native `publish` with `events` would; the last
    /// becomes the channel's state when `retain_last`. All or none: an empty batch, one over
    /// [`MAX_BATCH_EVENTS`], or one holding a `null` event or an event longer than `max_message_bytes` is refused
    /// with nothing stored (the error names the event's index: [`HubError::batch_index`]).
    ///
    /// The answer is the **first** event's offset ([`Publish::Done`], or the outcome of
    /// [`HubEvent::PublishDone`](super::HubEvent::PublishDone) for [`Publish::Pending`]); the last is that plus
    /// `events.len() - 1`. Permissions are not checked: the caller is the server itself.
    pub fn publish_batch(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        events: Vec<Value>,
        retain_last: bool,
    ) -> Result<Publish, HubError> {
        self.publish_batch_keyed(now, channel, events, retain_last, None)
    }

    /// [`publish_batch`](Self::publish_batch) with one idempotency key for the whole batch, answered as
    /// [`publish_keyed`](Self::publish_keyed) answers: a key seen within the window publishes nothing and gives the
    /// original's first and last offsets ([`Publish::Duplicate`]).
    pub fn publish_batch_keyed(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        events: Vec<Value>,
        retain_last: bool,
        key: Option<IdempotencyKey>,
    ) -> Result<Publish, HubError> {
        check_batch(&events, self.config.max_message_bytes)?;
        self.check_channel_limit(channel)?;
        let count = events.len() as u64;
        Ok(
            self.publish_admitted(now, channel, key, count, |hub, answer| {
                hub.append_batch(now, channel, events, retain_last, answer)
            }),
        )
    }

    /// A native client's batch (decoded, so its length and nulls are already checked; the frame's size bounds
    /// every event): appended, then answered with `publish_res` `{channel, first_offset, last_offset}` once kept
    /// (or at once, as a duplicate, when its key was seen).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish_native_batch(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        id: MessageId,
        channel: &ChannelName,
        events: Vec<Value>,
        retain_last: bool,
        key: Option<IdempotencyKey>,
    ) {
        let count = events.len() as u64;
        let answer = Answer::NativeBatch { conn, id, count };
        match self.admit_keyed(now, channel, key, count, answer) {
            Admit::Publish(answer) => {
                self.store_admitted(now, channel, count, answer, |hub, answer| {
                    hub.append_batch(now, channel, events, retain_last, answer)
                });
            }
            Admit::Duplicate {
                first,
                last,
                answer,
            } => self.answer_duplicate(channel, first, last, answer),
            Admit::Held => {}
        }
    }

    /// Appends every event, the first with `answer`, the last with `retain_last`, the others answering nobody.
    /// Returns the first offset when the store kept them at once.
    fn append_batch(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        events: Vec<Value>,
        retain_last: bool,
        answer: Answer,
    ) -> Option<u64> {
        let count = events.len();
        if self.is_clustered() {
            let events = events.into_iter().map(alloc::sync::Arc::new).collect();
            self.cluster_publish(channel, events, retain_last, answer);
            return None;
        }
        self.store.group_next(count);
        let mut answer = Some(answer);
        let mut first = None;
        for (index, event) in events.into_iter().enumerate() {
            let this = answer.take().unwrap_or(Answer::Silent);
            let retain = retain_last && index + 1 == count;
            let kept = self.publish_event(now, channel, event, retain, this);
            if index == 0 {
                first = kept;
            }
        }
        first
    }
}

/// Refuses a batch the hub must not publish, naming the first bad event.
fn check_batch(events: &[Value], max_bytes: usize) -> Result<(), HubError> {
    if events.is_empty() {
        return Err(MisuseError::EmptyBatch.into());
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(LimitError::BatchTooLong {
            len: events.len(),
            max: MAX_BATCH_EVENTS,
        }
        .into());
    }
    for (index, event) in events.iter().enumerate() {
        if event.is_null() {
            return Err(MisuseError::NullEventInBatch { index }.into());
        }
        let bytes = json_len(event);
        if bytes > max_bytes {
            return Err(LimitError::EventInBatchTooLarge {
                index,
                bytes,
                max: max_bytes,
            }
            .into());
        }
    }
    Ok(())
}
