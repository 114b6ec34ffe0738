//! One table of deadlines by kind, after quinn-proto's `connection/timer.rs`.
//!
//! A machine has a handful of things that can time out (heartbeat, idle, reconnect, the earliest pending call…). It
//! names them with a small `Copy` enum implementing [`TimerKind`] and keeps one deadline slot per kind in a
//! [`TimerTable`]. The table's minimum ([`TimerTable::next`]) is the only deadline the driver ever sees, and it
//! comes with its reason, which is what a façade's `last_timeout_reason()` reports.
//!
//! The table is a fixed array: no allocation, `O(kinds)` per query, and kinds are few.
//!
//! ```
//! use switchboard_protocol::time::Timestamp;
//! use switchboard_protocol::timer::{TimerKind, TimerTable};
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//! enum Timer { Heartbeat, Idle }
//!
//! impl TimerKind for Timer {
//!     const ALL: &'static [Self] = &[Timer::Heartbeat, Timer::Idle];
//!     fn index(self) -> usize { self as usize }
//! }
//!
//! let mut timers = TimerTable::<Timer, 2>::new();
//! timers.set(Timer::Idle, Timestamp::from_millis(35_000));
//! timers.set(Timer::Heartbeat, Timestamp::from_millis(25_000));
//! assert_eq!(timers.next(), Some((Timestamp::from_millis(25_000), Timer::Heartbeat)));
//! ```

use core::fmt::Debug;
use core::marker::PhantomData;

use crate::time::Timestamp;

/// The kinds of timer a machine has: a small `Copy` enum, typically fieldless.
pub trait TimerKind: Copy + Eq + Debug + 'static {
    /// Every kind exactly once, in order. The order breaks ties: of two timers due at the same instant, the earlier
    /// kind in `ALL` comes first. A kind missing from `ALL` cannot be armed (and trips a debug assertion).
    const ALL: &'static [Self];

    /// This kind's position in [`ALL`](Self::ALL), so that `Self::ALL[k.index()] == k`.
    ///
    /// The default searches `ALL`; a fieldless enum listed in declaration order can return `self as usize`.
    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|&kind| kind == self)
            .unwrap_or(usize::MAX)
    }
}

/// One optional deadline per timer kind `T`; `N` is the number of kinds (`T::ALL.len()`, checked at compile time).
///
/// ```compile_fail
/// # use switchboard_protocol::timer::{TimerKind, TimerTable};
/// # #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// # enum Timer { Heartbeat, Idle }
/// # impl TimerKind for Timer { const ALL: &'static [Self] = &[Timer::Heartbeat, Timer::Idle]; }
/// let timers = TimerTable::<Timer, 3>::new(); // two kinds, three slots: does not build
/// ```
///
/// - **Arm and disarm**: [`set`](Self::set), [`stop`](Self::stop), [`stop_all`](Self::stop_all).
/// - **Ask the driver to wake us**: [`next`](Self::next), the earliest deadline with its kind.
/// - **On wake-up**: [`pop_expired`](Self::pop_expired) in a loop, or [`expired`](Self::expired) /
///   [`is_expired`](Self::is_expired) to look without disarming.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TimerTable<T: TimerKind, const N: usize> {
    /// `at[k.index()]`: when kind `k` fires, if armed.
    at: [Option<Timestamp>; N],
    kind: PhantomData<T>,
}

impl<T: TimerKind, const N: usize> TimerTable<T, N> {
    /// Fails the build when `N` is not the number of kinds.
    const N_IS_KIND_COUNT: () = assert!(
        T::ALL.len() == N,
        "TimerTable<T, N>: N must equal T::ALL.len()"
    );

    /// A table with every timer stopped.
    pub const fn new() -> Self {
        let () = Self::N_IS_KIND_COUNT;
        TimerTable {
            at: [None; N],
            kind: PhantomData,
        }
    }

    /// Arms `kind` to fire at `at`, replacing any earlier setting.
    pub fn set(&mut self, kind: T, at: Timestamp) {
        if let Some(slot) = self.slot_mut(kind) {
            *slot = Some(at);
        }
    }

    /// Disarms `kind`.
    pub fn stop(&mut self, kind: T) {
        if let Some(slot) = self.slot_mut(kind) {
            *slot = None;
        }
    }

    /// Disarms every timer (on close).
    pub fn stop_all(&mut self) {
        self.at = [None; N];
    }

    /// When `kind` fires, if it is armed.
    pub fn get(&self, kind: T) -> Option<Timestamp> {
        self.at.get(kind.index()).copied().flatten()
    }

    /// Whether `kind` is armed and due at `now`.
    pub fn is_expired(&self, kind: T, now: Timestamp) -> bool {
        self.get(kind).is_some_and(|at| at <= now)
    }

    /// The earliest armed deadline and its kind; of equal deadlines, the kind that comes first in
    /// [`TimerKind::ALL`]. `None` when nothing is armed.
    pub fn next(&self) -> Option<(Timestamp, T)> {
        // Slot `i` holds kind `ALL[i]`, so a scan of the slots is a scan in `ALL` order, and keeping the first of
        // equal minima keeps the earliest kind. Asked after every input the hub drains, so it walks the array
        // rather than looking each kind up.
        let mut earliest: Option<(Timestamp, usize)> = None;
        for (index, at) in self.at.iter().enumerate() {
            if let Some(at) = *at
                && earliest.is_none_or(|(best, _)| at < best)
            {
                earliest = Some((at, index));
            }
        }
        let (at, index) = earliest?;
        T::ALL.get(index).map(|&kind| (at, kind))
    }

    /// The kinds that are armed and due at `now`, in [`TimerKind::ALL`] order. Leaves them armed.
    pub fn expired(&self, now: Timestamp) -> impl Iterator<Item = T> + '_ {
        self.iter()
            .filter(move |&(_, at)| at <= now)
            .map(|(kind, _)| kind)
    }

    /// Disarms and returns the first kind (in [`TimerKind::ALL`] order) that is due at `now`.
    ///
    /// Call it in a loop on wake-up, handling each kind as it comes; a handler may re-arm timers, but re-arming one
    /// at or before `now` makes it come out again.
    pub fn pop_expired(&mut self, now: Timestamp) -> Option<T> {
        let kind = self.expired(now).next()?;
        self.stop(kind);
        Some(kind)
    }

    /// Every armed timer as `(kind, deadline)`, in [`TimerKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (T, Timestamp)> + '_ {
        T::ALL
            .iter()
            .filter_map(|&kind| self.get(kind).map(|at| (kind, at)))
    }

    fn slot_mut(&mut self, kind: T) -> Option<&mut Option<Timestamp>> {
        let index = kind.index();
        debug_assert!(
            T::ALL.get(index) == Some(&kind),
            "TimerKind::index disagrees with ALL for {kind:?}"
        );
        self.at.get_mut(index)
    }
}

impl<T: TimerKind, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TimerKind, const N: usize> Debug for TimerTable<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::collection::vec as prop_vec;
    use proptest::prelude::{Strategy, prop_assert_eq, prop_oneof, proptest};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Timer {
        Close,
        Idle,
        Heartbeat,
        Reconnect,
    }

    impl TimerKind for Timer {
        const ALL: &'static [Self] = &[
            Timer::Close,
            Timer::Idle,
            Timer::Heartbeat,
            Timer::Reconnect,
        ];
        fn index(self) -> usize {
            self as usize
        }
    }

    /// A kind that relies on the default `index`, listed out of declaration order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Searched {
        A,
        B,
    }

    impl TimerKind for Searched {
        const ALL: &'static [Self] = &[Searched::B, Searched::A];
    }

    type Timers = TimerTable<Timer, 4>;

    fn t(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    #[test]
    fn set_stop_get() {
        let mut timers = Timers::new();
        assert_eq!(timers.next(), None);
        timers.set(Timer::Idle, t(30));
        timers.set(Timer::Idle, t(35));
        assert_eq!(timers.get(Timer::Idle), Some(t(35)));
        assert_eq!(timers.get(Timer::Close), None);
        assert!(!timers.is_expired(Timer::Idle, t(34)));
        assert!(timers.is_expired(Timer::Idle, t(35)));
        assert!(!timers.is_expired(Timer::Close, Timestamp::MAX));
        timers.stop(Timer::Idle);
        assert_eq!(timers.get(Timer::Idle), None);
        timers.set(Timer::Close, t(1));
        timers.stop_all();
        assert_eq!(timers, Timers::default());
    }

    #[test]
    fn next_breaks_ties_by_kind_order() {
        let mut timers = Timers::new();
        timers.set(Timer::Reconnect, t(10));
        timers.set(Timer::Heartbeat, t(10));
        timers.set(Timer::Idle, t(20));
        assert_eq!(timers.next(), Some((t(10), Timer::Heartbeat)));
        timers.set(Timer::Close, t(5));
        assert_eq!(timers.next(), Some((t(5), Timer::Close)));
    }

    #[test]
    fn expired_and_pop_expired_go_in_kind_order() {
        let mut timers = Timers::new();
        timers.set(Timer::Reconnect, t(1));
        timers.set(Timer::Idle, t(3));
        timers.set(Timer::Heartbeat, t(9));
        assert_eq!(
            timers.expired(t(5)).collect::<Vec<_>>(),
            vec![Timer::Idle, Timer::Reconnect]
        );
        assert_eq!(timers.pop_expired(t(5)), Some(Timer::Idle));
        assert_eq!(timers.pop_expired(t(5)), Some(Timer::Reconnect));
        assert_eq!(timers.pop_expired(t(5)), None);
        assert_eq!(timers.get(Timer::Heartbeat), Some(t(9)));
    }

    #[test]
    fn default_index_searches_all() {
        let mut timers = TimerTable::<Searched, 2>::new();
        timers.set(Searched::A, t(1));
        timers.set(Searched::B, t(1));
        assert_eq!(timers.next(), Some((t(1), Searched::B)));
        assert_eq!(
            format!("{timers:?}"),
            "{B: Timestamp(1000), A: Timestamp(1000)}"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(Timer, Timestamp),
        Stop(Timer),
        PopExpired(Timestamp),
        StopAll,
    }

    fn any_timer() -> impl Strategy<Value = Timer> {
        (0usize..4).prop_map(|i| Timer::ALL[i])
    }

    fn any_time() -> impl Strategy<Value = Timestamp> {
        prop_oneof![
            (0u64..20).prop_map(Timestamp::from_micros),
            proptest::strategy::Just(Timestamp::MAX)
        ]
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any_timer(), any_time()).prop_map(|(k, at)| Op::Set(k, at)),
            2 => any_timer().prop_map(Op::Stop),
            2 => any_time().prop_map(Op::PopExpired),
            1 => proptest::strategy::Just(Op::StopAll),
        ]
    }

    proptest! {
        /// The table agrees with a sorted map from kind to deadline after every operation.
        #[test]
        fn matches_a_map_reference(ops in prop_vec(any_op(), 0..60), probe in any_time()) {
            let mut timers = Timers::new();
            let mut model: alloc::collections::BTreeMap<Timer, Timestamp> = Default::default();
            for op in ops {
                match op {
                    Op::Set(kind, at) => {
                        timers.set(kind, at);
                        model.insert(kind, at);
                    }
                    Op::Stop(kind) => {
                        timers.stop(kind);
                        model.remove(&kind);
                    }
                    Op::PopExpired(now) => {
                        let want = model.iter().find(|(_, at)| **at <= now).map(|(k, _)| *k);
                        if let Some(kind) = want {
                            model.remove(&kind);
                        }
                        prop_assert_eq!(timers.pop_expired(now), want);
                    }
                    Op::StopAll => {
                        timers.stop_all();
                        model.clear();
                    }
                }
                let next = model.iter().map(|(k, at)| (*at, *k)).min();
                prop_assert_eq!(timers.next(), next);
                for &kind in Timer::ALL {
                    prop_assert_eq!(timers.get(kind), model.get(&kind).copied());
                    prop_assert_eq!(timers.is_expired(kind, probe), model.get(&kind).is_some_and(|at| *at <= probe));
                }
                let due: Vec<Timer> = model.iter().filter(|(_, at)| **at <= probe).map(|(k, _)| *k).collect();
                prop_assert_eq!(timers.expired(probe).collect::<Vec<_>>(), due);
            }
        }
    }
}
