//! [`LinkStatus`]: whether a connection's task has Redis right now, and since when it has not — read by the
//! connection's handles without asking the task (a node's readiness, a publish that need not wait).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_protocol::time::Timestamp;

/// The value while the connection is up; otherwise the value is the microsecond timestamp it went down at.
const UP: u64 = u64::MAX;

/// Shared between a connection's task (which writes it) and its handles (which read it).
#[derive(Debug, Clone)]
pub(crate) struct LinkStatus {
    down_since: Arc<AtomicU64>,
}

impl LinkStatus {
    /// A connection not up yet: down since `now`.
    pub(crate) fn new(now: Timestamp) -> LinkStatus {
        LinkStatus {
            down_since: Arc::new(AtomicU64::new(now.as_micros().min(UP - 1))),
        }
    }

    /// The connection is logged in.
    pub(crate) fn set_up(&self) {
        self.down_since.store(UP, Ordering::SeqCst);
    }

    /// The connection went down at `now` (a later failed dial keeps the first time).
    pub(crate) fn set_down(&self, now: Timestamp) {
        let _ = self.down_since.compare_exchange(
            UP,
            now.as_micros().min(UP - 1),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Whether the connection is up.
    pub(crate) fn is_up(&self) -> bool {
        self.down_since().is_none()
    }

    /// Since when the connection has been down, or `None` while it is up.
    pub(crate) fn down_since(&self) -> Option<Timestamp> {
        match self.down_since.load(Ordering::SeqCst) {
            UP => None,
            micros => Some(Timestamp::from_micros(micros)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_since_the_start_then_up_then_down_since_the_first_failure() {
        let status = LinkStatus::new(Timestamp::from_millis(10));
        assert_eq!(status.down_since(), Some(Timestamp::from_millis(10)));
        assert!(!status.is_up());
        status.set_up();
        assert!(status.is_up());
        assert_eq!(status.down_since(), None);
        status.set_down(Timestamp::from_millis(20));
        // Every failed dial after it reports down again; the outage began at the first.
        status.set_down(Timestamp::from_millis(30));
        assert_eq!(status.down_since(), Some(Timestamp::from_millis(20)));
        let reader = status.clone();
        status.set_up();
        assert!(reader.is_up());
    }
}
