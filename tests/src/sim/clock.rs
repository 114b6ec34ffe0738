//! Virtual time: a [`VirtualClock`] that only moves when the simulation moves it, to the earliest thing that is due, and
//! an [`Agenda`] of one-shot things scheduled for later (the quinn-proto `tests/util.rs` and str0m harness habit:
//! never sleep, jump to the next wake-up).
//!
//! Nothing here reads the real clock, so a run takes as long as its work does, however many virtual minutes it
//! covers, and two runs of the same seed see the same instants.

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_protocol::time::Timestamp;

/// Where every run starts: an arbitrary, realistic unix time in microseconds (2023-11-14), so that anything the
/// machines derive from `now` (ping timestamps, `server_time`) looks like a real clock.
pub const ORIGIN: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// The simulation's clock. It never goes backwards.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Timestamp,
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock { now: ORIGIN }
    }
}

impl VirtualClock {
    /// The current instant.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// How much virtual time has passed since [`ORIGIN`].
    pub fn elapsed(&self) -> Duration {
        self.now - ORIGIN
    }

    /// Jumps to `at`. An instant in the past leaves the clock where it is: something scheduled "now" during a step
    /// runs at the current instant.
    pub fn advance_to(&mut self, at: Timestamp) {
        self.now = self.now.max(at);
    }
}

/// The earliest of a set of wake-up instants; [`Timestamp::MAX`] when there are none.
pub fn earliest(instants: impl IntoIterator<Item = Timestamp>) -> Timestamp {
    instants.into_iter().min().unwrap_or(Timestamp::MAX)
}

/// One-shot items due at an instant. Items due at the same instant come out in the order they were scheduled, so
/// a run is a pure function of its seed.
#[derive(Debug, Clone)]
pub struct Agenda<T> {
    items: BTreeMap<(Timestamp, u64), T>,
    next_seq: u64,
}

impl<T> Default for Agenda<T> {
    fn default() -> Self {
        Agenda {
            items: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<T> Agenda<T> {
    /// Schedules `item` at `at`.
    pub fn schedule(&mut self, at: Timestamp, item: T) {
        self.items.insert((at, self.next_seq), item);
        self.next_seq += 1;
    }

    /// When the earliest item is due; [`Timestamp::MAX`] when the agenda is empty.
    pub fn next_at(&self) -> Timestamp {
        self.items
            .first_key_value()
            .map_or(Timestamp::MAX, |(&(at, _), _)| at)
    }

    /// Takes the earliest item if it is due at `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<T> {
        if self.next_at() <= now {
            self.items.pop_first().map(|(_, item)| item)
        } else {
            None
        }
    }

    /// Drops every item `keep` refuses.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.items.retain(|_, item| keep(item));
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agenda_is_ordered_by_time_then_by_scheduling_order() {
        let mut a = Agenda::default();
        let t = |ms| ORIGIN + Duration::from_millis(ms);
        a.schedule(t(5), "late");
        a.schedule(t(1), "first");
        a.schedule(t(1), "second");
        assert_eq!(a.next_at(), t(1));
        assert_eq!(a.pop_due(t(0)), None);
        assert_eq!(a.pop_due(t(1)), Some("first"));
        assert_eq!(a.pop_due(t(1)), Some("second"));
        assert_eq!(a.pop_due(t(4)), None);
        assert_eq!(a.pop_due(t(9)), Some("late"));
        assert!(a.is_empty());
        assert_eq!(a.next_at(), Timestamp::MAX);
    }

    #[test]
    fn the_clock_never_goes_back() {
        let mut c = VirtualClock::default();
        c.advance_to(ORIGIN + Duration::from_secs(2));
        c.advance_to(ORIGIN + Duration::from_secs(1));
        assert_eq!(c.elapsed(), Duration::from_secs(2));
        assert_eq!(earliest([c.now(), ORIGIN]), ORIGIN);
        assert_eq!(earliest([]), Timestamp::MAX);
    }
}
