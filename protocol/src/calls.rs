//! The correlation table: ids of requests in flight → their deadline and whatever the caller keeps for them.
//!
//! [`CallTable`] holds one entry per pending call. A response [`resolve`](CallTable::resolve)s its entry by id, a
//! timeout [`expire`](CallTable::expire)s every entry whose deadline has come, and a lost connection
//! [`cancel_all`](CallTable::cancel_all)s the lot, so no request is ever dropped silently (PROTOCOL §4). Its
//! [`next_deadline`](CallTable::next_deadline) is what the owning machine feeds into its timer table.
//!
//! Every operation is `O(log n)` (plus the entries it returns): a map by id, and an index of `(deadline, id)` kept
//! in step with it. A deadline of [`Timestamp::MAX`] means "no timeout": such calls are never expired and are left
//! out of the index.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;

use crate::time::Timestamp;

/// Pending calls by id, each with a deadline and a value.
///
/// - **Add**: [`insert`](Self::insert) when a request goes out.
/// - **Remove one**: [`resolve`](Self::resolve) when its response comes in; [`remove_where`](Self::remove_where)
///   for bulk removal by predicate.
/// - **Time out**: [`expire`](Self::expire) after the deadline from [`next_deadline`](Self::next_deadline) fires.
/// - **Disconnect**: [`cancel_all`](Self::cancel_all).
/// - **Look**: [`get`](Self::get), [`get_mut`](Self::get_mut), [`deadline`](Self::deadline),
///   [`contains`](Self::contains), [`len`](Self::len), [`is_empty`](Self::is_empty), [`iter`](Self::iter).
#[derive(Clone)]
pub struct CallTable<K, V> {
    /// Every pending call by id.
    calls: BTreeMap<K, (Timestamp, V)>,
    /// `(deadline, id)` of every call in `calls` whose deadline is not [`Timestamp::MAX`].
    deadlines: BTreeSet<(Timestamp, K)>,
}

/// [`CallTable::insert`] refused an id that is already pending. Gives back what was passed in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call id is already pending")]
#[non_exhaustive]
pub struct DuplicateId<K, V> {
    /// The id that is already in the table.
    pub id: K,
    /// The value that was not inserted.
    pub value: V,
}

impl<K: Ord + Clone, V> CallTable<K, V> {
    /// An empty table.
    pub const fn new() -> Self {
        CallTable {
            calls: BTreeMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    /// Adds a pending call that times out at `deadline` ([`Timestamp::MAX`]: never). Refuses an id that is
    /// already pending, leaving the existing entry as it was.
    pub fn insert(
        &mut self,
        id: K,
        deadline: Timestamp,
        value: V,
    ) -> Result<(), DuplicateId<K, V>> {
        if self.calls.contains_key(&id) {
            return Err(DuplicateId { id, value });
        }
        if deadline != Timestamp::MAX {
            self.deadlines.insert((deadline, id.clone()));
        }
        self.calls.insert(id, (deadline, value));
        Ok(())
    }

    /// Removes the call `id` and returns its value, or `None` if it is not pending (unknown, already resolved,
    /// expired or cancelled): a response to such an id is late or bogus.
    pub fn resolve(&mut self, id: &K) -> Option<V> {
        self.remove_entry(id).map(|(_, value)| value)
    }

    /// The value of the pending call `id`.
    pub fn get(&self, id: &K) -> Option<&V> {
        self.calls.get(id).map(|(_, value)| value)
    }

    /// The value of the pending call `id`, mutably.
    pub fn get_mut(&mut self, id: &K) -> Option<&mut V> {
        self.calls.get_mut(id).map(|(_, value)| value)
    }

    /// The deadline of the pending call `id`.
    pub fn deadline(&self, id: &K) -> Option<Timestamp> {
        self.calls.get(id).map(|&(deadline, _)| deadline)
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &K) -> bool {
        self.calls.contains_key(id)
    }

    /// How many calls are pending.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is pending.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The earliest deadline of any pending call; `None` when nothing can time out.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Removes and returns every call whose deadline is at or before `now`, earliest deadline first, ties by id.
    /// Calls without a deadline ([`Timestamp::MAX`]) never expire.
    pub fn expire(&mut self, now: Timestamp) -> Vec<(K, V)> {
        let mut expired = Vec::new();
        while self
            .deadlines
            .first()
            .is_some_and(|(deadline, _)| *deadline <= now)
        {
            let Some((_, id)) = self.deadlines.pop_first() else {
                break;
            };
            if let Some((_, value)) = self.calls.remove(&id) {
                expired.push((id, value));
            }
        }
        expired
    }

    /// Removes and returns every pending call, in id order (on disconnect: each fails with a disconnected error).
    pub fn cancel_all(&mut self) -> Vec<(K, V)> {
        self.deadlines.clear();
        core::mem::take(&mut self.calls)
            .into_iter()
            .map(|(id, (_, value))| (id, value))
            .collect()
    }

    /// Removes and returns, in id order, every call for which `pred(id, value)` is true.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&K, &mut V) -> bool) -> Vec<(K, V)> {
        let doomed: Vec<K> = self
            .calls
            .iter_mut()
            .filter_map(|(id, (_, value))| pred(id, value).then(|| id.clone()))
            .collect();
        doomed
            .iter()
            .filter_map(|id| self.remove_entry(id))
            .collect()
    }

    /// Every pending call as `(id, deadline, value)`, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, Timestamp, &V)> + '_ {
        self.calls
            .iter()
            .map(|(id, (deadline, value))| (id, *deadline, value))
    }

    /// Removes `id` from both the map and the deadline index.
    fn remove_entry(&mut self, id: &K) -> Option<(K, V)> {
        let (id, (deadline, value)) = self.calls.remove_entry(id)?;
        let key = (deadline, id);
        self.deadlines.remove(&key);
        Some((key.1, value))
    }
}

impl<K: Ord + Clone, V> Default for CallTable<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for CallTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.calls.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::collection::vec as prop_vec;
    use proptest::prelude::{Strategy, any, prop_assert_eq, prop_oneof, proptest};

    fn t(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    impl<K: Ord + Clone, V> CallTable<K, V> {
        /// The index holds exactly the `(deadline, id)` of every call with a finite deadline.
        fn assert_in_sync(&self) {
            let want: BTreeSet<(Timestamp, K)> = self
                .calls
                .iter()
                .filter(|(_, (deadline, _))| *deadline != Timestamp::MAX)
                .map(|(id, (deadline, _))| (*deadline, id.clone()))
                .collect();
            assert!(self.deadlines == want, "deadline index out of sync");
        }
    }

    #[test]
    fn insert_resolve_and_duplicates() {
        let mut calls = CallTable::new();
        assert!(calls.is_empty());
        assert_eq!(calls.insert("a", t(10), 1), Ok(()));
        assert_eq!(
            calls.insert("a", t(5), 2),
            Err(DuplicateId { id: "a", value: 2 })
        );
        assert_eq!(
            calls.deadline(&"a"),
            Some(t(10)),
            "a refused insert leaves the entry alone"
        );
        assert_eq!(calls.get(&"a"), Some(&1));
        *calls.get_mut(&"a").unwrap() += 10;
        assert!(calls.contains(&"a"));
        assert_eq!(calls.len(), 1);
        assert_eq!(calls.resolve(&"a"), Some(11));
        assert_eq!(calls.resolve(&"a"), None);
        assert!(!calls.contains(&"a"));
        assert_eq!(calls.next_deadline(), None);
        calls.assert_in_sync();
    }

    #[test]
    fn expire_goes_by_deadline_then_id() {
        let mut calls = CallTable::new();
        for (id, at) in [(3, 20), (1, 20), (2, 10), (4, 30), (5, 25)] {
            calls.insert(id, t(at), id * 100).unwrap();
        }
        calls.insert(0, Timestamp::MAX, 0).unwrap();
        assert_eq!(calls.next_deadline(), Some(t(10)));
        assert_eq!(calls.expire(t(9)), vec![]);
        assert_eq!(calls.expire(t(20)), vec![(2, 200), (1, 100), (3, 300)]);
        assert_eq!(calls.next_deadline(), Some(t(25)));
        assert_eq!(calls.expire(Timestamp::MAX), vec![(5, 500), (4, 400)]);
        assert_eq!(
            calls.next_deadline(),
            None,
            "no-timeout calls have no deadline"
        );
        assert_eq!(calls.len(), 1);
        calls.assert_in_sync();
    }

    #[test]
    fn cancel_all_and_remove_where() {
        let mut calls = CallTable::new();
        for id in [4u32, 1, 3, 2] {
            calls.insert(id, t(u64::from(id)), id).unwrap();
        }
        let evens = calls.remove_where(|id, _| id % 2 == 0);
        assert_eq!(evens, vec![(2, 2), (4, 4)]);
        calls.assert_in_sync();
        assert_eq!(
            calls
                .iter()
                .map(|(id, at, _)| (*id, at))
                .collect::<Vec<_>>(),
            vec![(1, t(1)), (3, t(3))]
        );
        assert_eq!(calls.cancel_all(), vec![(1, 1), (3, 3)]);
        assert!(calls.is_empty());
        assert_eq!(calls.next_deadline(), None);
        calls.assert_in_sync();
    }

    /// One step of a random workload. Ids and times are drawn from small ranges so collisions are common.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, Timestamp, u32),
        Resolve(u8),
        Expire(Timestamp),
        CancelAll,
        RemoveWhere(u8),
    }

    fn any_time() -> impl Strategy<Value = Timestamp> {
        prop_oneof![8 => (0u64..50).prop_map(Timestamp::from_micros), 1 => proptest::strategy::Just(Timestamp::MAX)]
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..16, any_time(), any::<u32>()).prop_map(|(id, at, v)| Op::Insert(id, at, v)),
            3 => (0u8..16).prop_map(Op::Resolve),
            2 => any_time().prop_map(Op::Expire),
            1 => proptest::strategy::Just(Op::CancelAll),
            1 => (2u8..5).prop_map(Op::RemoveWhere),
        ]
    }

    proptest! {
        /// The table agrees with a plain list scanned linearly, after every operation of any sequence.
        #[test]
        fn matches_a_linear_reference(ops in prop_vec(any_op(), 0..80)) {
            let mut table = CallTable::new();
            let mut model: Vec<(u8, Timestamp, u32)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(id, at, v) => {
                        let want = if model.iter().any(|e| e.0 == id) {
                            Err(DuplicateId { id, value: v })
                        } else {
                            model.push((id, at, v));
                            Ok(())
                        };
                        prop_assert_eq!(table.insert(id, at, v), want);
                    }
                    Op::Resolve(id) => {
                        let want = model.iter().position(|e| e.0 == id).map(|i| model.remove(i).2);
                        prop_assert_eq!(table.resolve(&id), want);
                    }
                    Op::Expire(now) => {
                        let mut want: Vec<_> =
                            model.iter().filter(|e| e.1 <= now && e.1 != Timestamp::MAX).copied().collect();
                        want.sort_by_key(|e| (e.1, e.0));
                        model.retain(|e| !(e.1 <= now && e.1 != Timestamp::MAX));
                        let want: Vec<_> = want.into_iter().map(|(id, _, v)| (id, v)).collect();
                        prop_assert_eq!(table.expire(now), want);
                    }
                    Op::CancelAll => {
                        let mut want: Vec<_> = model.drain(..).map(|(id, _, v)| (id, v)).collect();
                        want.sort();
                        prop_assert_eq!(table.cancel_all(), want);
                    }
                    Op::RemoveWhere(m) => {
                        let mut want: Vec<_> =
                            model.iter().filter(|e| e.0 % m == 0).map(|&(id, _, v)| (id, v)).collect();
                        want.sort();
                        model.retain(|e| e.0 % m != 0);
                        prop_assert_eq!(table.remove_where(|id, _| id % m == 0), want);
                    }
                }
                let next = model.iter().map(|e| e.1).filter(|&at| at != Timestamp::MAX).min();
                prop_assert_eq!(table.next_deadline(), next);
                prop_assert_eq!(table.len(), model.len());
                prop_assert_eq!(table.is_empty(), model.is_empty());
                for &(id, at, v) in &model {
                    prop_assert_eq!(table.get(&id), Some(&v));
                    prop_assert_eq!(table.deadline(&id), Some(at));
                }
                table.assert_in_sync();
            }
        }
    }
}
