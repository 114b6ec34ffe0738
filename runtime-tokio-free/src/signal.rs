//! [`Trigger`]: a one-shot broadcast signal many tasks can wait on (stop a listener, shut the server down).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct State {
    fired: bool,
    wakers: Vec<Waker>,
}

/// A signal that fires once; every clone sees it. Waiting after it fired completes at once.
#[derive(Debug, Clone, Default)]
pub struct Trigger(Arc<Mutex<State>>);

impl Trigger {
    /// A trigger that has not fired.
    pub fn new() -> Trigger {
        Trigger::default()
    }

    /// Fires the signal and wakes every waiter. Firing twice is harmless.
    pub fn fire(&self) {
        let wakers = {
            let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
            s.fired = true;
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Whether it has fired.
    pub fn fired(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).fired
    }

    /// Completes once the signal has fired.
    pub fn wait(&self) -> Wait {
        Wait(self.clone())
    }
}

/// The future of [`Trigger::wait`].
#[derive(Debug)]
pub struct Wait(Trigger);

impl Future for Wait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        if s.fired {
            return Poll::Ready(());
        }
        if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            s.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_for_every_clone() {
        let t = Trigger::new();
        let waiter = t.clone();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut w = waiter.wait();
        assert!(Pin::new(&mut w).poll(&mut cx).is_pending());
        assert!(!waiter.fired());
        t.fire();
        assert!(Pin::new(&mut w).poll(&mut cx).is_ready());
        assert!(waiter.fired());
        futures_lite::future::block_on(waiter.wait());
    }
}
