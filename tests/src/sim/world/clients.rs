//! The client side of the driver: carrying out what a client machine asks (dial, transmit, close), checking and
//! reacting to its events, and a client leaving for good while a new one joins its slot.

use switchboard_protocol::client::{ClientEvent, ClientMachine, FailReason, Output};
use switchboard_protocol::wire::{ErrorCode, ServerMessage};

use crate::sim::invariants::ClientBook;

use super::{Task, Transport, World};

impl World {
    /// A new client machine with a seed of its own.
    pub(super) fn new_client(&mut self) -> ClientMachine {
        let mut config = self.scenario.client.clone();
        config.seed = self.rng.next_u64();
        self.counts.clients += 1;
        ClientMachine::new(config, self.clock.now())
    }

    /// Drains a client machine, carrying out what it asks.
    pub(super) fn drain_client(&mut self, slot: usize) {
        let now = self.clock.now();
        loop {
            let output = self.slots[slot].machine.poll_output();
            match output {
                Output::Timeout(at) => {
                    self.slots[slot].deadline = at;
                    return;
                }
                Output::Connect => {
                    self.trace.number(10);
                    self.log(|| format!("client {slot} dials"));
                    let s = &mut self.slots[slot];
                    if s.transport != Transport::Idle {
                        let what = format!("client {slot} asks to connect while {:?}", s.transport);
                        return self.fail(what);
                    }
                    s.dials += 1;
                    s.transport = Transport::Dialing(s.dials);
                    let (incarnation, attempt) = (s.incarnation, s.dials);
                    self.net.dial(now, slot, incarnation, attempt);
                }
                Output::Transmit(frame) => {
                    self.trace.bytes(frame.as_bytes());
                    self.log(|| format!("client {slot} sends {frame}"));
                    match self.slots[slot].transport {
                        Transport::Linked(link) if self.net.link(link).client_open => {
                            self.net.send_to_hub(now, link, frame);
                        }
                        other => {
                            return self.fail(format!(
                                "client {slot} transmits with no open connection ({other:?}): {frame}"
                            ));
                        }
                    }
                }
                Output::Close { code, reason } => {
                    self.trace.number(11);
                    self.log(|| format!("client {slot} closes with {code} {reason}"));
                    match std::mem::replace(&mut self.slots[slot].transport, Transport::Idle) {
                        Transport::Linked(link) => {
                            self.net.close_by_client(now, link, code, &reason)
                        }
                        Transport::Dialing(_) => {}
                        Transport::Idle => {
                            return self.fail(format!(
                                "client {slot} closes a connection it does not have"
                            ));
                        }
                    }
                }
                Output::Event(event) => self.on_client_event(slot, event),
                other => return self.fail(format!("client {slot}: unknown output {other:?}")),
            }
        }
    }

    /// An event of a client machine: check it, and let the application react.
    pub(super) fn on_client_event(&mut self, slot: usize, event: ClientEvent) {
        self.log(|| format!("client {slot} event {event:?}"));
        {
            let s = &mut self.slots[slot];
            s.book.sync_patterns(s.machine.pattern_subscriptions());
            if let Err(e) = self.checker.client_event(&mut s.book, slot, &event) {
                return self.fail(format!("client {slot}: {e}"));
            }
        }
        let now = self.clock.now();
        let incarnation = self.slots[slot].incarnation;
        match event {
            ClientEvent::ChannelEvent { offset, .. } => {
                self.trace.number(offset);
                self.counts.delivered += 1;
            }
            ClientEvent::Resync { .. } => {
                self.trace.number(12);
                self.counts.resyncs += 1;
            }
            ClientEvent::CallRequest { id, params, .. } => {
                let reply = self.workload.answer_call(&params);
                self.calls.handler_chose(
                    params.get("n").and_then(serde_json::Value::as_u64),
                    reply.as_ref().is_some_and(|r| r.answer.is_ok()),
                    reply.as_ref().map(|r| r.delay),
                );
                if let Some(reply) = reply {
                    let task = Task::Respond {
                        client: slot,
                        incarnation,
                        id,
                        reply: reply.clone(),
                    };
                    self.agenda.schedule(now + reply.delay, task);
                }
            }
            ClientEvent::ServerRequest { id, data, .. } => {
                let reply = self.workload.answer_request(&data);
                self.calls.handler_chose(
                    data.get("n").and_then(serde_json::Value::as_u64),
                    reply.as_ref().is_some_and(|r| r.answer.is_ok()),
                    reply.as_ref().map(|r| r.delay),
                );
                if let Some(reply) = reply {
                    let task = Task::Respond {
                        client: slot,
                        incarnation,
                        id,
                        reply: reply.clone(),
                    };
                    self.agenda.schedule(now + reply.delay, task);
                }
            }
            ClientEvent::Response {
                message: ServerMessage::CreateSessionRes { session_id },
                ..
            } => self.workload.apps[slot].sessions.push(session_id),
            ClientEvent::Response {
                id,
                message: ServerMessage::CallRes { .. },
            } => {
                self.counts.calls_succeeded += 1;
                let ended = self
                    .calls
                    .call_ended(slot, incarnation, &id, true, String::new);
                if let Err(e) = ended {
                    self.fail(e);
                }
            }
            ClientEvent::RequestFailed { id, reason } => {
                if matches!(
                    &reason,
                    FailReason::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    }
                ) {
                    self.calls.disturbed();
                }
                let ended = self.calls.call_ended(slot, incarnation, &id, false, || {
                    format!("failed: {reason:?}")
                });
                if let Err(e) = ended {
                    self.fail(e);
                }
            }
            ClientEvent::ServerError {
                code: ErrorCode::RateLimited,
                ..
            }
            | ClientEvent::Disconnected { .. } => self.calls.disturbed(),
            _ => {}
        }
    }

    /// The application leaves: close the client for good, and a new one joins in its slot.
    pub(super) fn replace_client(&mut self, slot: usize) {
        let now = self.clock.now();
        self.calls.disturbed();
        self.counts.departures += 1;
        self.slots[slot].book.closing();
        self.slots[slot].machine.close(now);
        self.drain_client(slot);
        if self.violation.is_some() {
            return;
        }
        let s = &self.slots[slot];
        if s.transport != Transport::Idle {
            let what = format!(
                "client {slot} closed but kept its transport ({:?})",
                s.transport
            );
            return self.fail(what);
        }
        if !s.machine.is_closed() {
            return self.fail(format!("client {slot} is not closed after close()"));
        }
        if let Err(e) = self.checker.retired(&s.book, slot) {
            return self.fail(format!("client {slot}: {e}"));
        }
        let machine = self.new_client();
        let s = &mut self.slots[slot];
        s.machine = machine;
        s.incarnation += 1;
        s.book = ClientBook::default();
        self.workload.apps[slot] = Default::default();
        self.drain_client(slot);
        for action in self.workload.joining(slot) {
            self.perform(action);
        }
    }
}
