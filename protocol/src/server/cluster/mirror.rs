//! [`Mirror`]: what a node holds of a channel it follows in the engine — its epoch, newest offset, retained state and
//! the history read when it started following, kept up to date by the engine's live feed.
//!
//! Every event the feed delivers is the channel's next offset (the feed orders, fills gaps and drops duplicates),
//! so the mirror is the engine's view of the channel as of the feed's position. Recovery and `get_state` are then
//! answered from it at once, exactly as a single node answers them from its store: all the events after a position
//! or none (`recovered: false`), never a part.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::Value;

use crate::wire::StreamPosition;

/// One followed channel's copy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mirror {
    epoch: String,
    offset: u64,
    state: Option<Arc<Value>>,
    /// `(offset, published unix ms, event)`, consecutive offsets ending at `offset` (or empty).
    history: VecDeque<(u64, u64, Arc<Value>)>,
}

/// How much history a mirror keeps: the engine's own retention, so a mirror never answers `recovered: true` where
/// the engine would not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    pub(crate) size: usize,
    pub(crate) ttl: Duration,
}

impl Mirror {
    /// A mirror placed at `epoch:offset`, with the history read then (kept only as far as it is consecutive up to
    /// `offset`: a read that did not reach the newest event leaves older positions unrecoverable, not wrong).
    pub(crate) fn placed(
        epoch: String,
        offset: u64,
        state: Option<Arc<Value>>,
        events: Vec<(u64, u64, Arc<Value>)>,
        retention: Retention,
    ) -> Mirror {
        let mut history = VecDeque::new();
        let mut next = offset;
        for (at, published_ms, event) in events.into_iter().rev() {
            if at != next || at == 0 {
                break;
            }
            history.push_front((at, published_ms, event));
            next -= 1;
        }
        let mut mirror = Mirror {
            epoch,
            offset,
            state,
            history,
        };
        mirror.trim(retention);
        mirror
    }

    pub(crate) fn epoch(&self) -> &str {
        &self.epoch
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn state(&self) -> Option<&Arc<Value>> {
        self.state.as_ref()
    }

    /// The feed delivered `offset`: the next event of the channel (a delivery of another epoch or out of step is
    /// the feed's bug, and restarts the history there rather than leave a hole in it).
    pub(crate) fn push(
        &mut self,
        epoch: &str,
        offset: u64,
        published_ms: u64,
        retained: bool,
        event: Arc<Value>,
        retention: Retention,
    ) {
        if epoch != self.epoch || offset != self.offset + 1 {
            self.epoch = epoch.into();
            self.history.clear();
        }
        self.offset = offset;
        if retained {
            self.state = Some(Arc::clone(&event));
        }
        self.history.push_back((offset, published_ms, event));
        self.trim(retention);
    }

    /// Every event after `after` when the mirror holds all of them, unexpired at `now_ms`; `None` otherwise.
    pub(crate) fn replay(
        &self,
        now_ms: u64,
        after: &StreamPosition,
        retention: Retention,
    ) -> Option<Vec<(u64, Arc<Value>)>> {
        if after.epoch != self.epoch || after.offset > self.offset {
            return None;
        }
        if after.offset == self.offset {
            return Some(Vec::new());
        }
        let oldest = self.history.front()?.0;
        if oldest > after.offset + 1 {
            return None;
        }
        let cutoff = cutoff_ms(now_ms, retention.ttl);
        let wanted = self.history.iter().filter(|(at, _, _)| *at > after.offset);
        let mut events = Vec::new();
        for (at, published_ms, event) in wanted {
            if *published_ms < cutoff {
                return None;
            }
            events.push((*at, Arc::clone(event)));
        }
        Some(events)
    }

    /// Kept events after `since` (from the oldest kept), at most `limit`, unexpired at `now_ms`.
    pub(crate) fn page(
        &self,
        now_ms: u64,
        since: Option<u64>,
        limit: usize,
        retention: Retention,
    ) -> Vec<(u64, Arc<Value>)> {
        let cutoff = cutoff_ms(now_ms, retention.ttl);
        self.history
            .iter()
            .filter(|(at, published_ms, _)| {
                since.is_none_or(|s| *at > s) && *published_ms >= cutoff
            })
            .take(limit)
            .map(|(at, _, event)| (*at, Arc::clone(event)))
            .collect()
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.history.len()
    }

    fn trim(&mut self, retention: Retention) {
        while self.history.len() > retention.size {
            self.history.pop_front();
        }
    }
}

/// The oldest publish time still in history at `now_ms` (0: no time-to-live).
fn cutoff_ms(now_ms: u64, ttl: Duration) -> u64 {
    if ttl.is_zero() {
        0
    } else {
        now_ms.saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use serde_json::json;

    const KEEP: Retention = Retention {
        size: 3,
        ttl: Duration::from_secs(10),
    };

    fn ev(n: u64) -> Arc<Value> {
        Arc::new(json!({ "n": n }))
    }

    fn at(epoch: &str, offset: u64) -> StreamPosition {
        StreamPosition {
            epoch: epoch.into(),
            offset,
        }
    }

    fn offsets(events: Option<Vec<(u64, Arc<Value>)>>) -> Option<Vec<u64>> {
        events.map(|events| events.into_iter().map(|(at, _)| at).collect())
    }

    #[test]
    fn replays_all_or_nothing_within_size_epoch_and_age() {
        let loaded = vec![(4, 1_000, ev(4)), (5, 1_000, ev(5))];
        let mut m = Mirror::placed("e".into(), 5, None, loaded, KEEP);
        assert_eq!(
            offsets(m.replay(2_000, &at("e", 3), KEEP)),
            Some(vec![4, 5])
        );
        assert_eq!(offsets(m.replay(2_000, &at("e", 5), KEEP)), Some(vec![]));
        assert_eq!(
            m.replay(2_000, &at("e", 2), KEEP),
            None,
            "4 is the oldest held"
        );
        assert_eq!(m.replay(2_000, &at("x", 5), KEEP), None, "another epoch");
        assert_eq!(
            m.replay(2_000, &at("e", 6), KEEP),
            None,
            "ahead of the channel"
        );
        m.push("e", 6, 5_000, true, ev(6), KEEP);
        m.push("e", 7, 5_000, false, ev(7), KEEP);
        assert_eq!(m.len(), 3, "trimmed to the history size");
        assert_eq!(
            offsets(m.replay(6_000, &at("e", 4), KEEP)),
            Some(vec![5, 6, 7])
        );
        assert_eq!(m.state(), Some(&ev(6)), "the retained event is the state");
        assert_eq!(
            m.replay(11_500, &at("e", 4), KEEP),
            None,
            "5 was published more than the time-to-live ago"
        );
        assert_eq!(
            offsets(m.replay(11_500, &at("e", 5), KEEP)),
            Some(vec![6, 7])
        );
        assert_eq!(
            m.page(11_500, None, 10, KEEP)
                .into_iter()
                .map(|(at, _)| at)
                .collect::<Vec<_>>(),
            vec![6, 7]
        );
    }

    #[test]
    fn a_load_that_did_not_reach_the_newest_event_keeps_nothing_older() {
        // The read's events stop at 3 while the channel is at 5: 4 and 5 are not held, so nothing before 5 is.
        let loaded = vec![(2, 0, ev(2)), (3, 0, ev(3))];
        let m = Mirror::placed("e".into(), 5, None, loaded, KEEP);
        assert_eq!(m.len(), 0);
        assert_eq!(m.replay(0, &at("e", 3), KEEP), None);
        assert_eq!(offsets(m.replay(0, &at("e", 5), KEEP)), Some(vec![]));
    }

    #[test]
    fn a_delivery_out_of_step_restarts_the_history_rather_than_hide_a_hole() {
        let mut m = Mirror::placed("e".into(), 2, None, vec![(2, 0, ev(2))], KEEP);
        m.push("e", 4, 0, false, ev(4), KEEP);
        assert_eq!(m.replay(0, &at("e", 2), KEEP), None);
        assert_eq!(offsets(m.replay(0, &at("e", 3), KEEP)), Some(vec![4]));
    }
}
