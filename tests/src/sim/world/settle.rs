//! The end of a run: no more actions or faults, the network heals, and every machine must recover and catch up.

use std::time::Duration;

use switchboard_protocol::time::Timestamp;

use super::{Task, World};

impl World {
    /// Runs steps until `until` (or a violation), never past it.
    pub(super) fn run_until(&mut self, until: Timestamp, max_steps: u64) {
        let start = self.steps;
        while self.violation.is_none() && self.next_wake() <= until {
            if self.steps - start > max_steps {
                return self.fail(format!("settling took more than {max_steps} steps"));
            }
            self.step();
        }
        self.clock.advance_to(until);
    }

    /// How long the world needs to recover from trouble once it ends: a dial already out to time out, the longest
    /// backoff, a dial, the greeting; silent dead connections to be closed by the hub's heartbeat; every request to
    /// time out.
    pub(super) fn recovery_wait(&self) -> Duration {
        let c = &self.scenario.client;
        let h = &self.scenario.hub;
        2 * (c.connect_timeout + c.backoff.max_delay)
            + h.heartbeat
            + h.heartbeat_timeout
            + c.request_timeout.max(h.request_timeout)
            + Duration::from_secs(5)
    }

    /// Stops the applications and the faults, heals the network, waits long enough for every machine to recover,
    /// and checks that they did: everyone connected and caught up, nothing left open.
    pub(super) fn settle(&mut self) {
        self.log(|| String::from("settling"));
        self.agenda
            .retain(|task| !matches!(task, Task::Workload | Task::Fault));
        self.calm_storage();
        let now = self.clock.now();
        self.net.heal(now);
        let wait = self.recovery_wait();
        let until = self.listener_up_at.max(now) + wait;
        self.run_until(until, 200_000);
        if self.violation.is_some() {
            return;
        }
        for (i, s) in self.slots.iter().enumerate() {
            if !s.machine.is_connected() {
                let what = format!("client {i} is not connected {wait:?} after the network healed");
                return self.fail(what);
            }
            if s.book.open_requests() > 0 {
                let what = format!(
                    "client {i} still has {} requests open",
                    s.book.open_requests()
                );
                return self.fail(what);
            }
        }
        if self.checker.hub_open_requests() > 0 {
            let what = format!(
                "{} server requests still open",
                self.checker.hub_open_requests()
            );
            return self.fail(what);
        }
        if self.hub_conns.len() != self.slots.len() {
            let what = format!(
                "the hub holds {} connections for {} clients after settling",
                self.hub_conns.len(),
                self.slots.len()
            );
            return self.fail(what);
        }
        // A last event on every channel must reach every client that wants it (over the durable store the
        // publish is done once its write is, within the wait).
        let mut expected = Vec::new();
        for channel in self.workload.channels.clone() {
            let Some(log) = self.log_id(&channel) else {
                return;
            };
            let before = (log, self.checker.truth.head(log, &channel));
            self.hub_publish(&channel, false);
            for (i, s) in self.slots.iter().enumerate() {
                if s.machine.subscriptions().any(|c| *c == channel) {
                    expected.push((i, channel.clone(), before));
                }
            }
        }
        let until = self.clock.now() + Duration::from_secs(2);
        self.run_until(until, 100_000);
        for (i, channel, (log_before, before)) in expected {
            let Some(log) = self.log_id(&channel) else {
                return;
            };
            let offset = self.checker.truth.head(log, &channel);
            // A subscribed channel is held, so it keeps its log; were it forgotten, its next log starts at 1.
            let before = if log == log_before { before } else { 0 };
            if offset <= before {
                return self.fail(format!(
                    "the last publish on {channel} was never done: the channel is still at {offset}"
                ));
            }
            let got = self.slots[i].book.position(&channel);
            if got != Some((log, offset)) {
                let what = format!(
                    "client {i} did not catch up on {channel}: its last event is {got:?}, the hub's is \
                     {offset} (log {log})"
                );
                return self.fail(what);
            }
        }
    }
}
