//! What must hold across a restart of a hub over the durable store, checked against the ground
//! [`truth`](super::truth) (every event in it was acknowledged: the hub reports `Published` only once the store's
//! write is done, and only then answers the publisher and delivers it).
//!
//! - **Nothing acknowledged is lost.** After the crash and the restore, every channel resumes at the offset it had
//!   acknowledged or later (later: events whose write reached the disk but whose acknowledgement died with the
//!   process; they are read from the files and join the truth). Every acknowledged event the old hub still held,
//!   and that the restored history still has room for, is held again at the same offset with the same content, in
//!   order; nothing the restored hub holds differs from what was acknowledged there; the retained state is the last
//!   retained event. Once a write was acknowledged the epoch is on disk and must be kept.
//! - **Recovery works across the restart** ([`recovery_expected`]): a `subscribe` with `since` in the kept epoch,
//!   whose gap the history still covers (and whose replay fits the connection's queue), must be answered with
//!   `recovered: true`.
//!
//! The third durability invariant (no subscriber ever gets two different events under one epoch and offset) is in
//! [`invariants`](super::invariants), where every delivery is checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use switchboard_protocol::server::Hub;
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, StreamPosition};

use super::truth::{Truth, tag_of};

/// What every durability violation's description starts with: the planted-fault test recognises it.
pub const LOST: &str = "restart lost acknowledged data";

/// What a hub held of one channel just before it died.
#[derive(Debug, Clone, Default)]
struct HeldChannel {
    /// The epoch of the channel's log.
    epoch: String,
    /// It had a retained state.
    retained: bool,
    head: u64,
    /// `(offset, tag)` of every kept event, oldest first.
    events: Vec<(u64, u64)>,
}

/// What a hub held just before it died, per channel.
#[derive(Debug, Clone, Default)]
pub struct Held {
    channels: BTreeMap<ChannelName, HeldChannel>,
}

impl Held {
    /// Reads what `hub` holds of `channels` at `now`.
    pub fn of(hub: &Hub, now: Timestamp, channels: &[ChannelName]) -> Held {
        let limit = hub.config().history_size + 1;
        let channels = channels
            .iter()
            .map(|c| {
                let events = hub
                    .history(now, c, None, limit)
                    .events
                    .iter()
                    .filter_map(|(o, e)| Some((*o, tag_of(e)?.0)))
                    .collect();
                let state = hub.state(c);
                let held = HeldChannel {
                    retained: state.state.is_some(),
                    epoch: state.epoch,
                    head: state.offset,
                    events,
                };
                (c.clone(), held)
            })
            .collect();
        Held { channels }
    }
}

/// Event records found in the store's files, by channel and offset (the first record of an offset stands).
pub type Written = BTreeMap<(ChannelName, u64), Arc<Value>>;

/// What a restore check counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreCheck {
    /// Acknowledged events found again at their offset with their content.
    pub verified: u64,
    /// Events written but never acknowledged, found in the files and added to the truth.
    pub learned: u64,
    /// Channels with acknowledged events whose log kept its epoch.
    pub epochs_kept: u64,
}

/// Checks the restored `hub` against what the old one held (`before`) and the truth of each channel's log; adds the
/// events the files hold beyond the truth (`written`) to it. A channel whose log held acknowledged events must keep
/// its epoch (a changed one would make every position in it worthless); one that held none may start a new log.
pub fn check_restored(
    truth: &mut Truth,
    before: &Held,
    hub: &Hub,
    now: Timestamp,
    written: &Written,
) -> Result<RestoreCheck, String> {
    let mut check = RestoreCheck::default();
    let history_size = hub.config().history_size as u64;
    for (channel, held) in &before.channels {
        let epoch = hub.state(channel).epoch;
        if epoch != held.epoch {
            // A log that kept no event and no state is idle once nobody holds it (nobody does at a restart): it
            // may be forgotten, and positions in it answered `recovered: false`.
            if !held.events.is_empty() || held.retained {
                return Err(format!(
                    "{LOST}: {channel}'s epoch changed from {} to {epoch} although it kept {} events in it (and \
                     a state: {})",
                    held.epoch,
                    held.events.len(),
                    held.retained
                ));
            }
            continue;
        }
        let generation = truth.id(&epoch)?;
        if held.head > 0 {
            check.epochs_kept += 1;
        }
        let acknowledged = truth.head(generation, channel);
        let head = hub.state(channel).offset;
        if head < acknowledged || head < held.head {
            return Err(format!(
                "{LOST}: {channel} resumes at offset {head}, {acknowledged} were acknowledged (the old hub \
                 was at {})",
                held.head
            ));
        }
        for offset in acknowledged + 1..=head {
            let Some(event) = written.get(&(channel.clone(), offset)) else {
                return Err(format!(
                    "the restored store has {channel}#{offset}, which no file holds"
                ));
            };
            truth.published(generation, channel, offset, event)?;
            check.learned += 1;
        }
        let restored: BTreeMap<u64, u64> = hub
            .history(now, channel, None, history_size as usize + 1)
            .events
            .iter()
            .filter_map(|(o, e)| Some((*o, tag_of(e)?.0)))
            .collect();
        for (&offset, &tag) in &restored {
            let want = truth.tag_at(generation, channel, offset);
            if want != Some(tag) {
                return Err(format!(
                    "{LOST}: the restored {channel}#{offset} is #{tag}, #{want:?} was acknowledged there"
                ));
            }
        }
        for &(offset, tag) in &held.events {
            // The restored history keeps the newest `history_size` events, written-but-unacknowledged ones too.
            if offset + history_size <= head {
                continue;
            }
            if restored.get(&offset) != Some(&tag) {
                return Err(format!(
                    "{LOST}: {channel}#{offset} (#{tag}) was held before the restart, not after it (the \
                     restored history holds offsets {:?}..={:?})",
                    restored.keys().next(),
                    restored.keys().next_back()
                ));
            }
            check.verified += 1;
        }
        let state = hub.state(channel).state;
        let got = state.as_ref().and_then(tag_of).map(|(t, _)| t);
        let want = truth.retained_at(generation, channel, head);
        if got != want {
            return Err(format!(
                "{LOST}: {channel}'s restored state is #{got:?}, the last retained event is #{want:?}"
            ));
        }
    }
    Ok(check)
}

/// Whether `subscribe` with `since` on `channel` must be answered `recovered: true` by `hub` now: the position is
/// in the channel's epoch, not ahead of it, the kept history reaches back to the event after it, and the replay
/// (estimated generously) fits the connection's outbound queue, which holds `queued` bytes.
pub fn recovery_expected(
    hub: &Hub,
    now: Timestamp,
    channel: &ChannelName,
    since: &StreamPosition,
    queued: usize,
) -> bool {
    /// More than an event frame takes besides its event (type, id, channel, epoch, offset).
    const FRAME_OVERHEAD: usize = 300;
    /// The room the hub keeps for the answer before a replay (`recovery.rs`).
    const ANSWER_ROOM: usize = 512;
    let state = hub.state(channel);
    if since.epoch != state.epoch || since.offset > state.offset {
        return false;
    }
    let missed = (state.offset - since.offset) as usize;
    if missed == 0 {
        // Even an empty replay is refused when the queue has no room left for the answer (`recovery.rs`).
        return queued + ANSWER_ROOM <= hub.config().max_queued_bytes;
    }
    let page = hub.history(now, channel, Some(since.offset), missed);
    if page.events.first().map(|(o, _)| *o) != Some(since.offset + 1) || page.events.len() != missed
    {
        return false;
    }
    let replay: usize = page
        .events
        .iter()
        .map(|(_, e)| e.to_string().len() + FRAME_OVERHEAD)
        .sum();
    queued + ANSWER_ROOM + replay <= hub.config().max_queued_bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_protocol::server::HubConfig;

    fn ch() -> ChannelName {
        ChannelName::new("news/0").unwrap()
    }

    /// A memory hub (its epochs come from the seed, so two hubs of one seed share them) with events tagged `tags`.
    fn hub_with(tags: &[u64]) -> Hub {
        hub_seeded(9, tags)
    }

    fn hub_seeded(seed: u64, tags: &[u64]) -> Hub {
        let mut hub = Hub::new(HubConfig {
            seed,
            ..HubConfig::default()
        });
        for &tag in tags {
            hub.publish(
                Timestamp::ZERO,
                &ch(),
                json!({"tag": tag, "retain": tag == 2}),
                tag == 2,
            )
            .unwrap();
        }
        hub
    }

    fn truth_of(tags: &[u64]) -> Truth {
        let mut truth = Truth::default();
        assert_eq!(truth.id(hub_with(&[]).epoch(&ch())), Ok(0));
        for (i, &tag) in tags.iter().enumerate() {
            let event = json!({"tag": tag, "retain": tag == 2});
            truth.published(0, &ch(), i as u64 + 1, &event).unwrap();
        }
        truth
    }

    #[test]
    fn a_restore_that_keeps_everything_passes_and_one_that_loses_an_event_fails() {
        let now = Timestamp::ZERO;
        let old = hub_with(&[1, 2, 3]);
        let before = Held::of(&old, now, &[ch()]);
        let check = |restored: &Hub, written: &Written| {
            check_restored(&mut truth_of(&[1, 2, 3]), &before, restored, now, written)
        };
        let none = Written::new();
        assert_eq!(
            check(&hub_with(&[1, 2, 3]), &none),
            Ok(RestoreCheck {
                verified: 3,
                learned: 0,
                epochs_kept: 1,
            })
        );
        // The same events in another epoch: every position in the old one would be worthless.
        let new_epoch = check(&hub_seeded(10, &[1, 2, 3]), &none).unwrap_err();
        assert!(new_epoch.contains("epoch changed"), "{new_epoch}");
        let lost = check(&hub_with(&[1, 2]), &none).unwrap_err();
        assert!(lost.starts_with(LOST), "{lost}");
        let changed = check(&hub_with(&[1, 2, 4]), &none).unwrap_err();
        assert!(changed.starts_with(LOST), "{changed}");
        // A fourth event the files hold but nobody acknowledged joins the truth; one no file holds is an error.
        let mut written = Written::new();
        written.insert((ch(), 4), Arc::new(json!({"tag": 4, "retain": false})));
        assert_eq!(
            check(&hub_with(&[1, 2, 3, 4]), &written).map(|c| c.learned),
            Ok(1)
        );
        assert!(check(&hub_with(&[1, 2, 3, 4]), &none).is_err());
    }

    #[test]
    fn recovery_is_expected_only_where_the_history_reaches() {
        let hub = hub_with(&[1, 2, 3]);
        let epoch = String::from(hub.epoch(&ch()));
        let since = |epoch: &str, offset| StreamPosition {
            epoch: String::from(epoch),
            offset,
        };
        let now = Timestamp::ZERO;
        assert!(recovery_expected(&hub, now, &ch(), &since(&epoch, 1), 0));
        assert!(recovery_expected(&hub, now, &ch(), &since(&epoch, 3), 0));
        assert!(!recovery_expected(&hub, now, &ch(), &since(&epoch, 4), 0));
        assert!(!recovery_expected(&hub, now, &ch(), &since("other", 1), 0));
        assert!(!recovery_expected(
            &hub,
            now,
            &ch(),
            &since(&epoch, 1),
            hub.config().max_queued_bytes
        ));
    }
}
