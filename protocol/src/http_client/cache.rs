//! A bounded TTL cache for `GET` responses, keyed by method and target (`"GET /api/info"`, see
//! [`cache_key`](super::cache_key)).
//!
//! # Expiry
//!
//! An entry inserted at `t` with time-to-live `ttl` is fresh while `now < t + ttl` and expired from `t + ttl` on. An
//! expired entry is never returned; it is dropped when a [`get`](ResponseCache::get) finds it, when an
//! [`insert`](ResponseCache::insert) needs room, or by [`purge_expired`](ResponseCache::purge_expired) (each counts
//! in [`CacheStats::expirations`]).
//!
//! # Eviction: soonest-expiring first
//!
//! When an insert of a new key finds the cache full, every expired entry is dropped first; if that frees nothing,
//! the entry that **expires soonest** is evicted ([`CacheStats::evictions`]), ties broken by the smaller key. This
//! is chosen over LRU on purpose: every entry here has a deadline, the one closest to it has the least useful life
//! left, and the order needs no bookkeeping on reads (a hit changes nothing but the hit counter), so one ordered
//! index serves both expiry and eviction, each in `O(log n)`. With a single TTL for everything it is FIFO.
//!
//! # Invalidation by writes
//!
//! A key's **path** is its target without the method, the query, the fragment, and (for an absolute URL) the
//! scheme and authority; trailing `/`s are ignored when comparing. Paths compare byte for byte, as sent.
//!
//! - [`invalidate_prefix(p)`](ResponseCache::invalidate_prefix) drops every entry whose path is `p` or lies under
//!   it (`p/…`), whatever its query: `/items/4` drops `/items/4`, `/items/4?x=1` and `/items/4/tags`, but not
//!   `/items/42` (segments are whole) nor `/items`.
//! - [`invalidate_write(p)`](ResponseCache::invalidate_write) is what a successful write (`POST`, `PUT`, `PATCH`,
//!   `DELETE` to `p`) should do: `invalidate_prefix(p)` plus the **collection** `p` belongs to, which is `p` with
//!   its last segment removed, exactly (with any query, not its other members): a `DELETE /items/4` drops
//!   `/items/4…` and `/items`, `/items?page=2`, but keeps `/items/5`.
//!
//! For Switchboard, `POST /api/v1/channels/{c}/events` so drops every cached history page of `c` (and the
//! never-cached `/api/v1/channels/{c}`). A retained publish also changes `/api/v1/channels/{c}/state`, a sibling
//! rather than a member: a client that caches state and publishes with `retain` calls
//! `invalidate_prefix("/api/v1/channels/{c}")` as well.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use core::time::Duration;

use crate::time::Timestamp;

use super::request::split_target;

/// Counters of a [`ResponseCache`] since it was made or [`reset_stats`](ResponseCache::reset_stats) was called
/// (except `size` and `capacity`, which are current).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// `get`s that returned a fresh entry.
    pub hits: u64,
    /// `get`s that returned nothing (absent or expired).
    pub misses: u64,
    /// Entries held now, including expired ones not yet dropped.
    pub size: usize,
    /// The most entries the cache holds.
    pub capacity: usize,
    /// Fresh entries evicted to make room.
    pub evictions: u64,
    /// Expired entries dropped.
    pub expirations: u64,
    /// Entries dropped by `invalidate_*` and `remove`.
    pub invalidations: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, `None` before any `get`.
    pub fn hit_rate(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }
}

#[derive(Debug, Clone)]
struct Entry<V> {
    value: V,
    expires_at: Timestamp,
}

/// A bounded TTL cache (see the [module docs](self) for expiry, eviction and invalidation).
///
/// - **Read**: [`get`](Self::get) (counts a hit or a miss).
/// - **Write**: [`insert`](Self::insert) after a cacheable `GET` response; [`remove`](Self::remove).
/// - **After a write request succeeds**: [`invalidate_write`](Self::invalidate_write) with its path
///   ([`RequestParts::invalidates`](super::RequestParts::invalidates)); [`invalidate_prefix`](Self::invalidate_prefix)
///   for wider sweeps; [`clear`](Self::clear).
/// - **Housekeeping**: [`purge_expired`](Self::purge_expired), [`next_expiry`](Self::next_expiry).
/// - **Look**: [`stats`](Self::stats), [`reset_stats`](Self::reset_stats), [`len`](Self::len),
///   [`capacity`](Self::capacity).
#[derive(Debug, Clone)]
pub struct ResponseCache<V> {
    capacity: usize,
    entries: BTreeMap<String, Entry<V>>,
    /// `(expires_at, key)` of every entry: expiry order, then eviction order.
    by_expiry: BTreeSet<(Timestamp, String)>,
    stats: CacheStats,
}

impl<V> ResponseCache<V> {
    /// An empty cache holding at most `capacity` entries (0: it never stores anything).
    pub fn new(capacity: usize) -> Self {
        ResponseCache {
            capacity,
            entries: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            stats: CacheStats {
                capacity,
                ..CacheStats::default()
            },
        }
    }

    /// The most entries the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held, including expired ones not yet dropped.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fresh value for `key` at `now`, counting a hit; otherwise `None`, counting a miss (and dropping the entry
    /// if it had expired).
    pub fn get(&mut self, now: Timestamp, key: &str) -> Option<&V> {
        let expired = match self.entries.get(key) {
            None => {
                self.stats.misses += 1;
                return None;
            }
            Some(entry) => entry.expires_at <= now,
        };
        if expired {
            self.take(key);
            self.stats.expirations += 1;
            self.stats.misses += 1;
            return None;
        }
        self.stats.hits += 1;
        self.entries.get(key).map(|e| &e.value)
    }

    /// Whether `key` has a fresh entry at `now`. Counts nothing and drops nothing.
    pub fn contains(&self, now: Timestamp, key: &str) -> bool {
        self.entries.get(key).is_some_and(|e| now < e.expires_at)
    }

    /// Stores `value` under `key`, fresh until `now + ttl`, replacing any entry for `key`. When a new key finds the
    /// cache full, expired entries are dropped and, failing that, the soonest-expiring entry is evicted. A zero
    /// `ttl` (or a zero capacity) stores nothing, but still drops an existing entry for `key`: the response that
    /// superseded it is not to be cached, so neither is the old one.
    pub fn insert(&mut self, now: Timestamp, key: impl Into<String>, value: V, ttl: Duration) {
        let key = key.into();
        let replaced = self.take(&key).is_some();
        if ttl.is_zero() || self.capacity == 0 {
            if replaced {
                self.stats.invalidations += 1;
            }
            return;
        }
        if self.entries.len() >= self.capacity {
            self.purge_expired(now);
        }
        if self.entries.len() >= self.capacity
            && let Some((_, victim)) = self.by_expiry.pop_first()
        {
            self.entries.remove(&victim);
            self.stats.evictions += 1;
        }
        let expires_at = now + ttl;
        self.by_expiry.insert((expires_at, key.clone()));
        self.entries.insert(key, Entry { value, expires_at });
        self.stats.size = self.entries.len();
    }

    /// Removes `key`'s entry, fresh or not, and returns its value (counted as an invalidation).
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let value = self.take(key)?;
        self.stats.invalidations += 1;
        Some(value)
    }

    /// Drops every entry whose path is `path` or lies under it (see the [module docs](self)); returns how many.
    pub fn invalidate_prefix(&mut self, path: &str) -> usize {
        let prefix = trim_slashes(split_target(path).0);
        self.invalidate_where(|p| p == prefix || is_under(p, prefix))
    }

    /// Drops what a successful write to `path` makes stale: everything [`invalidate_prefix`](Self::invalidate_prefix)
    /// drops, plus the entries for `path`'s parent collection exactly (see the [module docs](self)); returns how
    /// many.
    pub fn invalidate_write(&mut self, path: &str) -> usize {
        let resource = trim_slashes(split_target(path).0);
        let collection = resource.rfind('/').map(|i| &resource[..i]);
        self.invalidate_where(|p| p == resource || is_under(p, resource) || Some(p) == collection)
    }

    /// Drops every entry (not counted as invalidations); keeps the counters.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.by_expiry.clear();
        self.stats.size = 0;
    }

    /// Drops every entry expired at `now`; returns how many.
    pub fn purge_expired(&mut self, now: Timestamp) -> usize {
        let mut dropped = 0;
        while let Some((expires_at, _)) = self.by_expiry.first()
            && *expires_at <= now
        {
            let (_, key) = self.by_expiry.pop_first().expect("first() was Some");
            self.entries.remove(&key);
            dropped += 1;
        }
        self.stats.expirations += dropped as u64;
        self.stats.size = self.entries.len();
        dropped
    }

    /// When the soonest entry expires (`None` when empty): a driver that wants expired responses freed promptly
    /// calls [`purge_expired`](Self::purge_expired) then.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.by_expiry.first().map(|(at, _)| *at)
    }

    /// The counters, with the current size.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Zeroes the counters (size and capacity stay current).
    pub fn reset_stats(&mut self) {
        self.stats = CacheStats {
            size: self.entries.len(),
            capacity: self.capacity,
            ..CacheStats::default()
        };
    }

    /// Removes `key` from both indexes, counting nothing.
    fn take(&mut self, key: &str) -> Option<V> {
        let (key, entry) = self.entries.remove_entry(key)?;
        self.by_expiry.remove(&(entry.expires_at, key));
        self.stats.size = self.entries.len();
        Some(entry.value)
    }

    fn invalidate_where(&mut self, mut doomed: impl FnMut(&str) -> bool) -> usize {
        let before = self.entries.len();
        let by_expiry = &mut self.by_expiry;
        self.entries.retain(|key, entry| {
            let url = key.split_once(' ').map_or(key.as_str(), |(_, url)| url);
            let keep = !doomed(trim_slashes(split_target(url).0));
            if !keep {
                by_expiry.remove(&(entry.expires_at, key.clone()));
            }
            keep
        });
        let dropped = before - self.entries.len();
        self.stats.invalidations += dropped as u64;
        self.stats.size = self.entries.len();
        dropped
    }
}

fn trim_slashes(path: &str) -> &str {
    path.trim_end_matches('/')
}

/// Whether `path` is strictly under `prefix` at a segment boundary (both already trimmed of trailing `/`).
fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use proptest::prelude::{Just, Strategy, prop_assert, prop_assert_eq, prop_oneof, proptest};

    fn at_ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn keys<V>(c: &ResponseCache<V>) -> Vec<&str> {
        c.entries.keys().map(String::as_str).collect()
    }

    #[test]
    fn hit_miss_and_expiry() {
        let mut c = ResponseCache::new(10);
        assert_eq!(c.get(at_ms(0), "GET /a"), None);
        c.insert(at_ms(0), "GET /a", 1, secs(10));
        assert_eq!(c.get(at_ms(0), "GET /a"), Some(&1));
        assert_eq!(c.get(at_ms(9_999), "GET /a"), Some(&1));
        assert!(c.contains(at_ms(9_999), "GET /a"));
        assert!(!c.contains(at_ms(10_000), "GET /a"));
        // Expired exactly at insert + ttl, and dropped by the get that finds it so.
        assert_eq!(c.get(at_ms(10_000), "GET /a"), None);
        assert!(c.is_empty());
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.expirations, s.size), (2, 2, 1, 0));
        assert_eq!(s.hit_rate(), Some(0.5));
        c.reset_stats();
        assert_eq!(c.stats().hit_rate(), None);
        assert_eq!(c.stats().capacity, 10);
    }

    #[test]
    fn insert_replaces_and_restarts_the_ttl() {
        let mut c = ResponseCache::new(2);
        c.insert(at_ms(0), "GET /a", "old", secs(1));
        c.insert(at_ms(500), "GET /a", "new", secs(1));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(at_ms(1_200), "GET /a"), Some(&"new"));
        assert_eq!(c.next_expiry(), Some(at_ms(1_500)));
        assert_eq!(c.stats().evictions, 0);
        // A zero TTL stores nothing and drops the superseded entry.
        c.insert(at_ms(1_300), "GET /a", "uncacheable", Duration::ZERO);
        assert!(c.is_empty());
        assert_eq!(c.stats().invalidations, 1);
        assert_eq!(c.next_expiry(), None);
    }

    /// Full: expired entries go first; only when none has expired is a fresh one evicted, the soonest-expiring.
    #[test]
    fn eviction_prefers_expired_then_soonest_expiring() {
        let mut c = ResponseCache::new(3);
        c.insert(at_ms(0), "GET /long", 1, secs(100));
        c.insert(at_ms(0), "GET /short", 2, secs(5));
        c.insert(at_ms(0), "GET /mid", 3, secs(50));
        c.insert(at_ms(1_000), "GET /new", 4, secs(100));
        assert_eq!(keys(&c), ["GET /long", "GET /mid", "GET /new"]);
        assert_eq!(c.stats().evictions, 1);
        // At 60 s /mid has expired: it is dropped as an expiration, nothing fresh is evicted.
        c.insert(at_ms(60_000), "GET /newer", 5, secs(100));
        assert_eq!(keys(&c), ["GET /long", "GET /new", "GET /newer"]);
        assert_eq!((c.stats().evictions, c.stats().expirations), (1, 1));
        // Equal expiry: the smaller key goes.
        let mut c = ResponseCache::new(2);
        c.insert(at_ms(0), "GET /b", 1, secs(1));
        c.insert(at_ms(0), "GET /a", 2, secs(1));
        c.insert(at_ms(0), "GET /c", 3, secs(1));
        assert_eq!(keys(&c), ["GET /b", "GET /c"]);
        // Reads do not protect an entry (not LRU).
        let mut c = ResponseCache::new(1);
        c.insert(at_ms(0), "GET /x", 1, secs(1));
        assert_eq!(c.get(at_ms(0), "GET /x"), Some(&1));
        c.insert(at_ms(0), "GET /y", 2, secs(1));
        assert_eq!(keys(&c), ["GET /y"]);
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let mut c = ResponseCache::new(0);
        c.insert(at_ms(0), "GET /a", 1, secs(1));
        assert_eq!(c.get(at_ms(0), "GET /a"), None);
        assert_eq!(c.stats().evictions, 0);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn invalidate_prefix_is_segment_aware() {
        let mut c = ResponseCache::new(100);
        for k in [
            "GET /items",
            "GET /items?page=2",
            "GET /items/4",
            "GET /items/4/",
            "GET /items/4?x=1",
            "GET /items/4/tags",
            "GET /items/42",
            "GET /items/5",
            "GET https://api.example/items/4",
            "GET /other",
        ] {
            c.insert(at_ms(0), k, (), secs(60));
        }
        assert_eq!(c.invalidate_prefix("/items/4"), 5);
        assert_eq!(
            keys(&c),
            [
                "GET /items",
                "GET /items/42",
                "GET /items/5",
                "GET /items?page=2",
                "GET /other"
            ]
        );
        // A trailing slash or a query on the argument changes nothing.
        assert_eq!(c.invalidate_prefix("/items/5/?q"), 1);
        assert_eq!(c.stats().invalidations, 6);
        // The root covers everything.
        assert_eq!(c.invalidate_prefix("/"), 4);
        assert!(c.is_empty());
        assert_eq!(c.next_expiry(), None);
    }

    #[test]
    fn invalidate_write_drops_the_resource_and_its_collection() {
        let mut c = ResponseCache::new(100);
        for k in [
            "GET /items",
            "GET /items?page=2",
            "GET /items/4",
            "GET /items/4/tags",
            "GET /items/5",
            "GET /items/42",
            "GET /",
        ] {
            c.insert(at_ms(0), k, (), secs(60));
        }
        assert_eq!(c.invalidate_write("/items/4"), 4);
        assert_eq!(keys(&c), ["GET /", "GET /items/42", "GET /items/5"]);
        // A write to a top-level collection drops it and the root.
        assert_eq!(c.invalidate_write("/items"), 3);
        assert!(c.is_empty());

        // Switchboard: a publish drops the channel's history pages, not other channels' nor the channel's state.
        let mut c = ResponseCache::new(100);
        for k in [
            "GET /api/v1/channels/a/events?since=0&limit=1000",
            "GET /api/v1/channels/a/events?since=1000&limit=1000",
            "GET /api/v1/channels/a/state",
            "GET /api/v1/channels/ab/events?since=0&limit=1000",
        ] {
            c.insert(at_ms(0), k, (), secs(60));
        }
        assert_eq!(c.invalidate_write("/api/v1/channels/a/events"), 2);
        assert_eq!(c.len(), 2);
        assert_eq!(c.invalidate_prefix("/api/v1/channels/a"), 1);
        assert_eq!(
            keys(&c),
            ["GET /api/v1/channels/ab/events?since=0&limit=1000"]
        );
    }

    #[test]
    fn remove_clear_and_purge() {
        let mut c = ResponseCache::new(10);
        c.insert(at_ms(0), "GET /a", 1, secs(1));
        c.insert(at_ms(0), "GET /b", 2, secs(2));
        c.insert(at_ms(0), "GET /c", 3, secs(3));
        assert_eq!(c.remove("GET /a"), Some(1));
        assert_eq!(c.remove("GET /a"), None);
        assert_eq!(c.purge_expired(at_ms(2_000)), 1);
        assert_eq!(c.next_expiry(), Some(at_ms(3_000)));
        assert_eq!(c.stats().size, 1);
        c.clear();
        assert!(c.is_empty());
        let s = c.stats();
        assert_eq!((s.invalidations, s.expirations, s.size), (1, 1, 0));
    }

    // ---- the reference model ----

    #[derive(Debug, Clone)]
    enum Op {
        Get(usize),
        Insert(usize, u64),
        Advance(u64),
        InvalidatePrefix(usize),
        InvalidateWrite(usize),
        Purge,
    }

    const KEYS: [&str; 8] = [
        "GET /a",
        "GET /a?x=1",
        "GET /a/1",
        "GET /a/1/x",
        "GET /a/12",
        "GET /ab",
        "GET /b",
        "GET /",
    ];
    const PATHS: [&str; 6] = ["/a", "/a/1", "/a/1/x", "/b", "/", "/ab/"];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..KEYS.len()).prop_map(Op::Get),
            4 => (0..KEYS.len(), 0u64..5).prop_map(|(k, ttl)| Op::Insert(k, ttl)),
            2 => (0u64..4).prop_map(Op::Advance),
            1 => (0..PATHS.len()).prop_map(Op::InvalidatePrefix),
            1 => (0..PATHS.len()).prop_map(Op::InvalidateWrite),
            1 => Just(Op::Purge),
        ]
    }

    /// The simplest model that could be right: a list scanned in full for everything.
    #[derive(Default)]
    struct Model {
        items: Vec<(String, u32, u64)>, // key, value, expires_at (s)
        hits: u64,
        misses: u64,
        evictions: u64,
        expirations: u64,
        invalidations: u64,
    }

    fn model_path(key: &str) -> String {
        let url = &key[4..];
        let path = url.split('?').next().unwrap();
        path.trim_end_matches('/').to_string()
    }

    impl Model {
        fn drop_where(&mut self, f: impl Fn(&str) -> bool) -> usize {
            let before = self.items.len();
            self.items.retain(|(k, _, _)| !f(&model_path(k)));
            before - self.items.len()
        }
    }

    proptest! {
        #[test]
        fn matches_reference_model(cap in 0usize..5, ops in proptest::collection::vec(op(), 1..80)) {
            let mut c = ResponseCache::new(cap);
            let mut m = Model::default();
            let mut now = 0u64;
            for (i, op) in ops.into_iter().enumerate() {
                let t = Timestamp::from_micros(now * 1_000_000);
                match op {
                    Op::Get(k) => {
                        let key = KEYS[k];
                        let want = match m.items.iter().position(|(mk, _, _)| mk == key) {
                            None => { m.misses += 1; None }
                            Some(p) if m.items[p].2 <= now => {
                                m.items.remove(p); m.expirations += 1; m.misses += 1; None
                            }
                            Some(p) => { m.hits += 1; Some(m.items[p].1) }
                        };
                        prop_assert_eq!(c.get(t, key).copied(), want, "op {}", i);
                    }
                    Op::Insert(k, ttl) => {
                        let key = KEYS[k];
                        let value = i as u32;
                        let had = m.items.iter().position(|(mk, _, _)| mk == key).map(|p| m.items.remove(p));
                        if ttl == 0 || cap == 0 {
                            if had.is_some() { m.invalidations += 1; }
                        } else {
                            if m.items.len() >= cap {
                                let before = m.items.len();
                                m.items.retain(|it| it.2 > now);
                                m.expirations += (before - m.items.len()) as u64;
                            }
                            if m.items.len() >= cap {
                                let victim = (0..m.items.len())
                                    .min_by(|&a, &b| (m.items[a].2, &m.items[a].0).cmp(&(m.items[b].2, &m.items[b].0)))
                                    .unwrap();
                                m.items.remove(victim);
                                m.evictions += 1;
                            }
                            m.items.push((key.to_string(), value, now + ttl));
                        }
                        c.insert(t, key, value, Duration::from_secs(ttl));
                    }
                    Op::Advance(s) => now += s,
                    Op::InvalidatePrefix(p) => {
                        let prefix = PATHS[p].trim_end_matches('/');
                        let n = m.drop_where(|path| path == prefix || path.starts_with(&alloc::format!("{prefix}/")));
                        m.invalidations += n as u64;
                        prop_assert_eq!(c.invalidate_prefix(PATHS[p]), n);
                    }
                    Op::InvalidateWrite(p) => {
                        let res = PATHS[p].trim_end_matches('/');
                        let parent = res.rfind('/').map(|i| res[..i].to_string());
                        let n = m.drop_where(|path| path == res || path.starts_with(&alloc::format!("{res}/"))
                            || Some(path.to_string()) == parent);
                        m.invalidations += n as u64;
                        prop_assert_eq!(c.invalidate_write(PATHS[p]), n);
                    }
                    Op::Purge => {
                        let before = m.items.len();
                        m.items.retain(|it| it.2 > now);
                        let n = before - m.items.len();
                        m.expirations += n as u64;
                        prop_assert_eq!(c.purge_expired(t), n);
                    }
                }
                let s = c.stats();
                prop_assert_eq!(
                    (s.hits, s.misses, s.size, s.evictions, s.expirations, s.invalidations),
                    (m.hits, m.misses, m.items.len(), m.evictions, m.expirations, m.invalidations),
                    "op {}", i
                );
                prop_assert!(c.len() <= cap);
                prop_assert_eq!(c.by_expiry.len(), c.entries.len());
                let mut mk: Vec<&str> = m.items.iter().map(|(k, _, _)| k.as_str()).collect();
                mk.sort_unstable();
                prop_assert_eq!(keys(&c), mk);
            }
        }
    }
}
