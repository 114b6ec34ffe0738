//! Idle keep-alive connections, kept per origin so the next request to the same host skips the TCP (and TLS)
//! handshake.
//!
//! The rules: at most [`PoolConfig::max_idle_per_host`] idle connections per origin (a connection returned to a
//! full slot is closed); a connection idle for [`PoolConfig::idle_timeout`] or longer is never handed out again
//! (servers close idle connections, and a request written into a half-closed socket fails); the most recently
//! returned connection is handed out first (the one least likely to have been closed by the server). The caller
//! still checks a connection is alive before using it ([`H1Transport`](super::H1Transport) polls it once).

use std::collections::HashMap;
use std::time::Duration;

use switchboard_protocol::time::Timestamp;

use super::endpoint::Endpoint;

/// The knobs of a [`Pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle connections kept per origin. Default 4; 0 disables keep-alive reuse.
    pub max_idle_per_host: usize,
    /// How long an idle connection stays usable. Default 30 s (below the common 60 s server idle timeouts).
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_host: 4,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Counters of a [`Pool`] since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections handed out again from the pool.
    pub reused: u64,
    /// Connections returned and kept.
    pub returned: u64,
    /// Idle connections dropped: past the idle timeout, over the per-host limit, or found dead when checked.
    pub discarded: u64,
}

/// The idle key: one origin (scheme, host, port).
type Key = (super::endpoint::Scheme, String, u16);

#[derive(Debug)]
struct Idle<C> {
    conn: C,
    since: Timestamp,
}

/// Idle connections by origin (see the [module docs](self)).
#[derive(Debug)]
pub struct Pool<C> {
    config: PoolConfig,
    idle: HashMap<Key, Vec<Idle<C>>>,
    stats: PoolStats,
}

impl<C> Pool<C> {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Pool {
            config,
            idle: HashMap::new(),
            stats: PoolStats::default(),
        }
    }

    /// The most recently returned connection to `endpoint`'s origin that is not past the idle timeout at `now`.
    /// Expired ones met on the way are dropped.
    pub fn checkout(&mut self, endpoint: &Endpoint, now: Timestamp) -> Option<C> {
        let key = key(endpoint);
        let list = self.idle.get_mut(&key)?;
        let timeout = self.config.idle_timeout;
        let before = list.len();
        list.retain(|i| now.saturating_duration_since(i.since) < timeout);
        self.stats.discarded += (before - list.len()) as u64;
        let found = list.pop().map(|i| i.conn);
        if list.is_empty() {
            self.idle.remove(&key);
        }
        if found.is_some() {
            self.stats.reused += 1;
        }
        found
    }

    /// Returns a connection whose last exchange left it reusable. Over the per-host limit, the oldest idle
    /// connection is closed to make room.
    pub fn checkin(&mut self, endpoint: &Endpoint, conn: C, now: Timestamp) {
        if self.config.max_idle_per_host == 0 {
            self.stats.discarded += 1;
            return;
        }
        let list = self.idle.entry(key(endpoint)).or_default();
        if list.len() >= self.config.max_idle_per_host {
            list.remove(0);
            self.stats.discarded += 1;
        }
        list.push(Idle { conn, since: now });
        self.stats.returned += 1;
    }

    /// Counts a checked-out connection that turned out dead.
    pub fn note_discarded(&mut self) {
        self.stats.discarded += 1;
    }

    /// Idle connections held now, over all origins.
    pub fn idle(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// The counters.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }
}

fn key(endpoint: &Endpoint) -> Key {
    (
        endpoint.scheme(),
        endpoint.host().to_owned(),
        endpoint.port(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn reuse_newest_first_within_the_idle_timeout() {
        let a = Endpoint::parse("http://a:1").unwrap();
        let b = Endpoint::parse("http://a:2").unwrap();
        let mut pool = Pool::new(PoolConfig {
            max_idle_per_host: 2,
            idle_timeout: Duration::from_secs(10),
        });
        assert_eq!(pool.checkout(&a, at(0)), None);
        pool.checkin(&a, 1, at(0));
        pool.checkin(&a, 2, at(5));
        pool.checkin(&a, 3, at(6)); // over the limit: 1 goes
        pool.checkin(&b, 9, at(6));
        assert_eq!(pool.idle(), 3);
        assert_eq!(pool.checkout(&a, at(7)), Some(3));
        // 2 was returned at 5 s: expired at 15 s exactly.
        assert_eq!(pool.checkout(&a, at(15)), None);
        assert_eq!(pool.checkout(&b, at(15)), Some(9));
        let s = pool.stats();
        assert_eq!((s.reused, s.returned, s.discarded), (2, 4, 2));
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn zero_idle_slots_keep_nothing() {
        let a = Endpoint::parse("http://a").unwrap();
        let mut pool = Pool::new(PoolConfig {
            max_idle_per_host: 0,
            ..PoolConfig::default()
        });
        pool.checkin(&a, 1, at(0));
        assert_eq!(pool.checkout(&a, at(0)), None);
        assert_eq!(pool.stats().discarded, 1);
    }
}
