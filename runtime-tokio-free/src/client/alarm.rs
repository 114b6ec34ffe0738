//! [`Alarm`]: the one timer of the driver, set to the machine's next deadline. It compares the runtime's clock with
//! the deadline itself, so a timer that fires a little early or late changes nothing.

use std::task::{Context, Poll};

use switchboard_protocol::time::Timestamp;

use crate::{BoxFuture, Runtime};

/// A timer for one deadline at a time.
pub(crate) struct Alarm {
    at: Timestamp,
    sleep: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for Alarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alarm")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl Alarm {
    /// An alarm with no deadline.
    pub(crate) fn new() -> Alarm {
        Alarm {
            at: Timestamp::MAX,
            sleep: None,
        }
    }

    /// Sets the deadline ([`Timestamp::MAX`]: none). The runtime timer is only replaced when it changes.
    pub(crate) fn set(&mut self, at: Timestamp) {
        if at != self.at {
            self.at = at;
            self.sleep = None;
        }
    }

    /// Ready once the runtime's clock has reached the deadline.
    pub(crate) fn poll<R: Runtime>(&mut self, cx: &mut Context<'_>, runtime: &R) -> Poll<()> {
        if self.at == Timestamp::MAX {
            return Poll::Pending;
        }
        loop {
            if runtime.now() >= self.at {
                self.sleep = None;
                return Poll::Ready(());
            }
            let at = self.at;
            let sleep = self.sleep.get_or_insert_with(|| runtime.sleep_until(at));
            match sleep.as_mut().poll(cx) {
                // Woken: check the clock again (and sleep again if the timer was early).
                Poll::Ready(()) => self.sleep = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
