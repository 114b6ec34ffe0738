//! Publishing and fan-out. A publish hands the event to the [store](super::store) (offset, history, retained state:
//! the event is kept once, as one `Arc<Value>`), and only then answers the publisher and encodes its frame **once
//! per dialect that has subscribers**, handing every subscriber a clone of the same `Arc<str>`: no per-subscriber
//! serialisation or copy.

use alloc::sync::Arc;
use core::fmt;
use serde_json::Value;

use super::Hub;
use super::dialect::DialectKind;
use super::error::{HubError, LimitError, MisuseError};
use super::output::HubEvent;
use crate::time::Timestamp;
use crate::wire::channel_payload::encode_delivery;
use crate::wire::project_stream::ProjectStreamMessage;
use crate::wire::{ChannelName, MessageId, encode_event};

/// The prefix of the channels the project-stream dialect subscribes to.
const PROJECT_PREFIX: &str = "projects/";

impl Hub {
    /// Publishes `event` on `channel` (the REST route and the embedding application), as a client's `publish`
    /// would: it gets the next offset, goes into history (and becomes the state when `retain`), and reaches every
    /// subscriber. Returns the offset.
    ///
    /// Refuses a `null` event and one longer than `max_message_bytes` as JSON. Permissions are not checked: the
    /// caller is the server itself.
    pub fn publish(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Value,
        retain: bool,
    ) -> Result<u64, HubError> {
        if event.is_null() {
            return Err(MisuseError::NullEvent.into());
        }
        let max = self.config.max_message_bytes;
        if let Some(bytes) = json_len_over(&event, max) {
            return Err(LimitError::EventTooLarge { bytes, max }.into());
        }
        let offset = self.publish_event(now, channel, event, retain);
        self.reap(now);
        Ok(offset)
    }

    /// Appends and fans out.
    pub(super) fn publish_event(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        event: Value,
        retain: bool,
    ) -> u64 {
        let appended = self.append(now, channel, event, retain);
        self.fan_out(now, channel, &appended);
        appended.offset
    }

    /// Has the store give the event the channel's next offset, keep it in history and, when `retain`, as the
    /// state.
    pub(super) fn append(
        &mut self,
        now: Timestamp,
        name: &ChannelName,
        event: Value,
        retain: bool,
    ) -> Appended {
        let event = Arc::new(event);
        let offset = self.store.append(now, name, Arc::clone(&event), retain);
        self.counters.published += 1;
        Appended { offset, event }
    }

    /// Sends a stored event to every subscriber: one encoding per dialect present, shared by all.
    pub(super) fn fan_out(&mut self, now: Timestamp, name: &ChannelName, appended: &Appended) {
        let Appended { offset, event } = appended;
        if let Some(ch) = self.channels.get(name) {
            let epoch = self.store.epoch(name);
            let mut frames: [Option<Arc<str>>; 3] = [None, None, None];
            for kind in DialectKind::ALL {
                if ch.subscribers_of(kind) > 0 {
                    frames[kind.index()] =
                        event_frame(&mut self.rng, epoch, now, kind, name, *offset, event);
                }
            }
            let mut delivered = 0;
            for (&id, &kind) in &ch.subscribers {
                if let Some(frame) = &frames[kind.index()]
                    && let Some(conn) = self.conns.get_mut(id)
                    && self.outbox.transmit(id, conn, Arc::clone(frame))
                {
                    delivered += 1;
                }
            }
            self.counters.delivered += delivered;
        }
        self.outbox.event(HubEvent::Published {
            channel: name.clone(),
            offset: *offset,
        });
    }
}

/// An event the store has: its offset, and the event shared with the store's copy.
#[derive(Debug, Clone)]
pub(super) struct Appended {
    pub(super) offset: u64,
    pub(super) event: Arc<Value>,
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
    };
    Some(Arc::from(text))
}

/// The length of `value` as compact JSON when it is over `max`; `None` when it fits. Counts without allocating.
/// (It cannot stop early: serde_json asserts that writing to a formatter never fails.)
fn json_len_over(value: &Value, max: usize) -> Option<usize> {
    struct Counter(usize);
    impl fmt::Write for Counter {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 = self.0.saturating_add(s.len());
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail.
    let _ = fmt::write(&mut counter, format_args!("{value}"));
    (counter.0 > max).then_some(counter.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_length_check() {
        let v = json!({"a": "xyz"});
        let len = serde_json::to_string(&v).unwrap().len();
        assert_eq!(json_len_over(&v, len), None);
        assert_eq!(json_len_over(&v, len - 1), Some(len));
    }
}
