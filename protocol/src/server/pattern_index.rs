//! The index of pattern subscriptions: a trie over pattern segments, with one edge per literal segment, one `*` edge
//! and, at each node, the subscribers whose pattern ends there with `**`. A publish walks it along the channel's
//! segments, so its cost depends on the channel's segments and the patterns that share its prefixes, never on the
//! number of pattern subscriptions; an empty index costs one check.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use super::conn_table::ConnId;
use crate::wire::{ChannelPattern, PatternSegment};

/// Pattern subscriptions by their segments.
#[derive(Debug, Clone, Default)]
pub(crate) struct PatternIndex {
    root: Node,
    /// Subscriptions filed (a connection's pattern counts once).
    len: usize,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Literal segments.
    literal: BTreeMap<String, Node>,
    /// The `*` segment.
    one: Option<Box<Node>>,
    /// Patterns ending at this node (no more segments).
    here: BTreeSet<ConnId>,
    /// Patterns ending at this node with `**` (one or more further segments).
    rest: BTreeSet<ConnId>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.one.is_none()
            && self.here.is_empty()
            && self.rest.is_empty()
    }

    /// Adds every subscriber whose pattern matches `rest` (what is left of the channel's name; `None` when nothing
    /// is), walking the name without splitting it into a list first.
    fn collect(&self, rest: Option<&str>, out: &mut Vec<ConnId>) {
        let Some(name) = rest else {
            out.extend(self.here.iter().copied());
            return;
        };
        out.extend(self.rest.iter().copied());
        let (first, tail) = match name.split_once('/') {
            Some((first, tail)) => (first, Some(tail)),
            None => (name, None),
        };
        if let Some(next) = self.literal.get(first) {
            next.collect(tail, out);
        }
        if let Some(next) = &self.one {
            next.collect(tail, out);
        }
    }

    /// Removes `conn` at the end of `segments`; whether it was there. Prunes nodes left empty.
    fn remove(&mut self, segments: &[PatternSegment<'_>], conn: ConnId) -> bool {
        match segments.split_first() {
            None => self.here.remove(&conn),
            Some((PatternSegment::Rest, _)) => self.rest.remove(&conn),
            Some((PatternSegment::One, tail)) => {
                let Some(next) = self.one.as_deref_mut() else {
                    return false;
                };
                let removed = next.remove(tail, conn);
                if next.is_empty() {
                    self.one = None;
                }
                removed
            }
            Some((PatternSegment::Literal(lit), tail)) => {
                let Some(next) = self.literal.get_mut(*lit) else {
                    return false;
                };
                let removed = next.remove(tail, conn);
                if next.is_empty() {
                    self.literal.remove(*lit);
                }
                removed
            }
        }
    }
}

impl PatternIndex {
    /// Whether no connection subscribes by pattern.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Subscriptions filed.
    #[cfg(any(test, feature = "_internal_test_exports"))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Files `conn`'s subscription to `pattern`; `false` when it was filed already.
    pub(crate) fn insert(&mut self, pattern: &ChannelPattern, conn: ConnId) -> bool {
        let mut node = &mut self.root;
        for seg in pattern.segments() {
            match seg {
                PatternSegment::Rest => {
                    let added = node.rest.insert(conn);
                    self.len += usize::from(added);
                    return added;
                }
                PatternSegment::One => node = node.one.get_or_insert_with(Box::default),
                PatternSegment::Literal(lit) => {
                    node = node.literal.entry(String::from(lit)).or_default()
                }
            }
        }
        let added = node.here.insert(conn);
        self.len += usize::from(added);
        added
    }

    /// Removes `conn`'s subscription to `pattern`; `false` when it was not filed.
    pub(crate) fn remove(&mut self, pattern: &ChannelPattern, conn: ConnId) -> bool {
        let segments: Vec<PatternSegment<'_>> = pattern.segments().collect();
        let removed = self.root.remove(&segments, conn);
        self.len -= usize::from(removed);
        removed
    }

    /// Whether `conn`'s subscription to `pattern` is filed.
    #[cfg(any(test, feature = "_internal_test_exports"))]
    pub(crate) fn contains(&self, pattern: &ChannelPattern, conn: ConnId) -> bool {
        let mut node = &self.root;
        for seg in pattern.segments() {
            match seg {
                PatternSegment::Rest => return node.rest.contains(&conn),
                PatternSegment::One => match &node.one {
                    Some(next) => node = next,
                    None => return false,
                },
                PatternSegment::Literal(lit) => match node.literal.get(lit) {
                    Some(next) => node = next,
                    None => return false,
                },
            }
        }
        node.here.contains(&conn)
    }

    /// Whether any subscription of `conn` is filed.
    #[cfg(any(test, feature = "_internal_test_exports"))]
    pub(crate) fn mentions(&self, conn: ConnId) -> bool {
        fn walk(node: &Node, conn: ConnId) -> bool {
            node.here.contains(&conn)
                || node.rest.contains(&conn)
                || node.one.as_deref().is_some_and(|n| walk(n, conn))
                || node.literal.values().any(|n| walk(n, conn))
        }
        walk(&self.root, conn)
    }

    /// The connections with a pattern matching `channel`, each once, in order.
    pub(crate) fn matching(&self, channel: &str) -> Vec<ConnId> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        self.root.collect(Some(channel), &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::pattern_matches;
    use proptest::prelude::*;

    fn pat(s: &str) -> ChannelPattern {
        ChannelPattern::new(s).unwrap()
    }

    #[test]
    fn matches_and_prunes() {
        let mut index = PatternIndex::default();
        let a = ConnId::from_u64(1);
        let b = ConnId::from_u64(2);
        assert!(index.insert(&pat("jobs/*"), a));
        assert!(!index.insert(&pat("jobs/*"), a));
        assert!(index.insert(&pat("jobs/**"), b));
        assert!(index.insert(&pat("jobs/1"), b));
        assert_eq!(index.len(), 3);
        assert_eq!(index.matching("jobs/1"), [a, b]);
        assert_eq!(index.matching("jobs/2/logs"), [b]);
        assert_eq!(index.matching("jobs"), []);
        assert!(index.remove(&pat("jobs/*"), a));
        assert!(!index.remove(&pat("jobs/*"), a));
        assert!(index.remove(&pat("jobs/**"), b));
        assert!(index.remove(&pat("jobs/1"), b));
        assert!(index.is_empty());
        assert!(index.root.is_empty(), "every node pruned");
    }

    /// Segments from a small alphabet, so generated patterns and channels meet often.
    fn segment() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("a"), Just("b"), Just("c")]
    }

    fn channel() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 1..5).prop_map(|s| s.join("/"))
    }

    fn pattern() -> impl Strategy<Value = String> {
        let seg = prop_oneof![3 => segment().prop_map(String::from), 2 => Just(String::from("*"))];
        (prop::collection::vec(seg, 0..4), any::<bool>()).prop_filter_map(
            "a pattern has a segment",
            |(mut segs, rest)| {
                if rest {
                    segs.push(String::from("**"));
                }
                (!segs.is_empty()).then(|| segs.join("/"))
            },
        )
    }

    proptest! {
        /// The index answers exactly what testing every pattern with the grant matcher answers.
        #[test]
        fn index_agrees_with_the_naive_matcher(
            subs in prop::collection::vec((pattern(), 0u64..4), 1..24),
            removals in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            channels in prop::collection::vec(channel(), 1..16),
        ) {
            let mut index = PatternIndex::default();
            let mut naive: BTreeSet<(String, u64)> = BTreeSet::new();
            for (p, conn) in &subs {
                let added = index.insert(&pat(p), ConnId::from_u64(*conn));
                prop_assert_eq!(added, naive.insert((p.clone(), *conn)));
            }
            let filed: Vec<(String, u64)> = naive.iter().cloned().collect();
            for i in removals {
                let (p, conn) = i.get(&filed);
                let removed = index.remove(&pat(p), ConnId::from_u64(*conn));
                prop_assert_eq!(removed, naive.remove(&(p.clone(), *conn)));
            }
            prop_assert_eq!(index.len(), naive.len());
            let mut matched = 0;
            for c in &channels {
                let mut want: Vec<ConnId> = naive
                    .iter()
                    .filter(|(p, _)| pattern_matches(p, c))
                    .map(|(_, conn)| ConnId::from_u64(*conn))
                    .collect();
                want.sort_unstable();
                want.dedup();
                matched += want.len();
                for (p, _) in &naive {
                    prop_assert_eq!(pat(p).matches(c), pattern_matches(p, c));
                }
                prop_assert_eq!(index.matching(c), want, "channel {}", c);
            }
            // Inputs that never match would test nothing; the alphabet makes this rare, and a case without a
            // match still checks the index answers nothing.
            let _ = matched;
        }
    }

    /// Over many generated cases, the generator reaches matches (the property above is not vacuous).
    #[test]
    fn generated_inputs_reach_matches() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let mut hits = 0;
        for _ in 0..200 {
            let p = pattern().new_tree(&mut runner).unwrap().current();
            let c = channel().new_tree(&mut runner).unwrap().current();
            hits += usize::from(pattern_matches(&p, &c));
        }
        assert!(hits >= 20, "only {hits} of 200 generated pairs match");
    }
}
