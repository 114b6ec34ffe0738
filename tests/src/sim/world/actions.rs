//! The applications' actions and the faults, carried out on the machines and recorded in the ledgers.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_protocol::client::{ClientError, UsageError};
use switchboard_protocol::server::{HubConfig, NotifyTarget};
use switchboard_protocol::wire::ChannelPattern;

use crate::sim::faults::Fault;
use crate::sim::invariants::Request;
use crate::sim::network::LinkId;
use crate::sim::workload::WorkloadAction;

use super::{Task, World};

impl World {
    pub(super) fn on_task(&mut self, task: Task) {
        let now = self.clock.now();
        match task {
            Task::Workload => {
                let action = self.workload.next_action();
                self.perform(action);
                let gap = self.workload.next_gap();
                self.agenda.schedule(now + gap, Task::Workload);
            }
            Task::Fault => {
                if let Some(fault) = self.faults.next_fault() {
                    self.inject(fault);
                }
                let gap = self.faults.next_gap();
                self.agenda.schedule(now + gap, Task::Fault);
            }
            Task::Respond {
                client,
                incarnation,
                id,
                reply,
            } => {
                self.trace.number(40);
                if self.slots[client].incarnation != incarnation {
                    return;
                }
                self.log(|| format!("client {client} answers {id}: {:?}", reply.answer));
                match self.slots[client].machine.respond(now, &id, reply.answer) {
                    // The connection it came on has closed since: the hub has already given up on it.
                    Ok(()) | Err(ClientError::Usage(UsageError::UnknownServerRequest { .. })) => {}
                    Err(e) => {
                        return self.fail(format!("client {client} could not answer {id}: {e}"));
                    }
                }
                self.drain_client(client);
            }
            Task::StoreWritten { process, batch } => self.on_store_written(process, batch),
            Task::SnapshotWritten {
                process,
                covers,
                fails,
            } => self.on_snapshot_written(process, covers, fails),
        }
    }

    /// Carries out one application action and records what it expects.
    pub(super) fn perform(&mut self, action: WorkloadAction) {
        let now = self.clock.now();
        self.trace.number(50);
        self.log(|| format!("action {action:?}"));
        let (client, issued) = match action {
            WorkloadAction::Publish {
                client,
                channel,
                retain,
            } => {
                let (tag, event) = self.workload.event(retain);
                let r = self.slots[client]
                    .machine
                    .publish(now, &channel, event, retain);
                (client, r.map(|id| (id, Request::Publish { channel, tag })))
            }
            WorkloadAction::Subscribe { client, channel } => {
                let r = self.slots[client].machine.subscribe(now, &channel);
                (client, r.map(|id| (id, Request::Subscribe { channel })))
            }
            WorkloadAction::SubscribePattern { client, pattern } => {
                let r = self.slots[client].machine.subscribe_pattern(now, &pattern);
                let pattern =
                    ChannelPattern::new(&pattern).expect("the workload's patterns are valid");
                (
                    client,
                    r.map(|id| (id, Request::SubscribePattern { pattern })),
                )
            }
            WorkloadAction::Unsubscribe { client, channel } => {
                let r = self.slots[client].machine.unsubscribe(now, &channel);
                (client, r.map(|id| (id, Request::Unsubscribe { channel })))
            }
            WorkloadAction::GetState { client, channel } => {
                let r = self.slots[client].machine.get_state(now, &channel);
                (client, r.map(|id| (id, Request::GetState { channel })))
            }
            WorkloadAction::Call { client, channel } => {
                let n = self.workload.number();
                let method = String::from("echo");
                let connected = self.slots[client].machine.is_connected();
                let r = self.slots[client].machine.call(
                    now,
                    &channel,
                    &method,
                    Some(json!({ "n": n })),
                );
                if let (true, Ok(id)) = (connected, &r) {
                    let incarnation = self.slots[client].incarnation;
                    self.calls
                        .call_issued(now, client, incarnation, id.clone(), n);
                }
                (
                    client,
                    r.map(|id| (id, Request::Call { channel, method, n })),
                )
            }
            WorkloadAction::Serve { client, channel } => {
                self.calls.disturbed();
                let r = self.slots[client].machine.serve(now, &channel);
                (client, r.map(|id| (id, Request::Serve { channel })))
            }
            WorkloadAction::Ping { client } => {
                let timestamp = now.as_millis();
                let mut data = Map::new();
                data.insert(String::from("timestamp"), Value::from(timestamp));
                let r = self.slots[client].machine.request(now, "ping", data, None);
                (client, r.map(|id| (id, Request::Ping { timestamp })))
            }
            WorkloadAction::CreateSession { client } => {
                let r = self.slots[client]
                    .machine
                    .create_session(now, Some(json!({ "slot": client })));
                (client, r.map(|id| (id, Request::CreateSession)))
            }
            WorkloadAction::CloseSession { client } => {
                let sessions = &mut self.workload.apps[client].sessions;
                let Some(session_id) = sessions.pop() else {
                    return;
                };
                let r = self.slots[client].machine.close_session(now, &session_id);
                (
                    client,
                    r.map(|id| (id, Request::CloseSession { session_id })),
                )
            }
            WorkloadAction::Replace { client } => return self.replace_client(client),
            WorkloadAction::HubPublish { channel, retain } => {
                return self.hub_publish_or_retry(&channel, retain);
            }
            WorkloadAction::HubRequest => return self.hub_request(),
            WorkloadAction::HubNotify => {
                let open_before = self.hub_conns.len();
                let reached = self.hub.notify(
                    now,
                    NotifyTarget::All {
                        exclude: Vec::new(),
                    },
                    "sim_notice",
                    Some(String::from("hello")),
                    None,
                );
                self.drain_hub();
                // Every connection still open got it. Some that got it may have been closed since, in the same
                // command: closing one slow consumer fails the calls routed to it, and those errors can make another
                // connection a slow consumer in turn.
                let open_after = self.hub_conns.len();
                if reached < open_after || reached > open_before {
                    let what = format!(
                        "a notification reached {reached} connections; {open_before} were open before, \
                         {open_after} after"
                    );
                    self.fail(what);
                }
                return;
            }
        };
        match issued {
            Ok((id, request)) => {
                self.counts.commands += 1;
                let deadline = now + self.scenario.client.request_timeout;
                let s = &mut self.slots[client];
                s.book.sync_patterns(s.machine.pattern_subscriptions());
                if let Err(e) = self
                    .checker
                    .issued(&mut s.book, client, id, request, deadline)
                {
                    return self.fail(format!("client {client}: {e}"));
                }
                self.drain_client(client);
            }
            Err(e) => self.fail(format!("client {client} refused a valid command: {e}")),
        }
    }

    /// The server application asks a random connected client for a number back.
    pub(super) fn hub_request(&mut self) {
        if self.hub_conns.is_empty() {
            return;
        }
        let now = self.clock.now();
        let index = self.workload.index(self.hub_conns.len());
        let conn = *self
            .hub_conns
            .keys()
            .nth(index)
            .expect("index within bounds");
        let n = self.workload.number();
        let timeout = self.workload.request_timeout();
        let mut data = Map::new();
        data.insert(String::from("n"), Value::from(n));
        match self.hub.send_request(now, conn, "sim_query", data, timeout) {
            Ok(id) => {
                self.counts.server_requests += 1;
                let lasts = timeout.unwrap_or(self.hub.config().request_timeout);
                self.calls
                    .request_sent(now, self.hub_generation, conn, id.clone(), n, lasts);
                let deadline = now + lasts;
                let generation = self.hub_generation;
                self.check(|c| c.hub_request_sent(generation, id, conn, n, deadline));
                self.drain_hub();
            }
            Err(e) => self.fail(format!(
                "send_request to open connection {conn} refused: {e}"
            )),
        }
    }

    /// Applies a fault.
    pub(super) fn inject(&mut self, fault: Fault) {
        let now = self.clock.now();
        self.trace.number(60);
        self.log(|| format!("fault {fault:?}"));
        // The fault's trouble lasts until it ends (a stall, a listener or hub down) and the world has recovered.
        let trouble_ends = now
            + match &fault {
                Fault::Cut { .. } => Duration::ZERO,
                Fault::Stall { stall } => *stall,
                Fault::ListenerRestart { down } | Fault::HubRestart { down, .. } => *down,
            };
        self.calls.disturbed();
        self.calls.calm_after(trouble_ends + self.recovery_wait());
        match fault {
            Fault::Cut {
                client_notice,
                hub_notice,
            } => {
                let live = self.net.live_links();
                if !live.is_empty() {
                    let link = live[self.workload.index(live.len())];
                    self.counts.cuts += 1;
                    self.net.cut(now, link, client_notice, hub_notice);
                }
            }
            Fault::Stall { stall } => {
                let live: Vec<LinkId> = self
                    .net
                    .live_links()
                    .into_iter()
                    .filter(|&l| self.net.link(l).client_open && self.net.link(l).hub_open)
                    .collect();
                if !live.is_empty() {
                    let link = live[self.workload.index(live.len())];
                    self.counts.stalls += 1;
                    self.net.stall(link, now + stall);
                }
            }
            Fault::ListenerRestart { down } => {
                self.counts.listener_restarts += 1;
                self.drop_every_link(true);
                self.listener_up_at = now + down;
            }
            Fault::HubRestart { graceful, down } => {
                self.counts.hub_restarts += 1;
                if graceful {
                    self.hub.shutdown(now);
                    self.drain_hub();
                    if !self.hub_conns.is_empty() {
                        let what = format!(
                            "{} connections survived the hub's shutdown",
                            self.hub_conns.len()
                        );
                        return self.fail(what);
                    }
                    if let Err(e) = self.hub.check_invariants() {
                        return self.fail(format!("hub invariant after shutdown: {e}"));
                    }
                    self.check_closed();
                } else {
                    self.checker.hub_crashed(self.hub_generation);
                }
                // Whatever is still in flight to or from the old hub dies with its process.
                self.drop_every_link(false);
                self.hub_generation += 1;
                self.logs_seen.clear();
                let config = HubConfig {
                    seed: self.rng.next_u64(),
                    ..self.scenario.hub.clone()
                };
                let restarted = match self.storage {
                    Some(_) => self.restarted_hub(config, graceful),
                    None => Some(super::server_hub(config)),
                };
                let Some(hub) = restarted else {
                    // A durability invariant broke; the run stops after this step.
                    return;
                };
                let durable = self.storage.is_some();
                self.hub = hub;
                self.tickets.clear();
                self.subscribe_frames.clear();
                self.expected_recovery = None;
                self.hub_conns.clear();
                self.intakes.clear();
                self.hub_closed.clear();
                self.hub_disconnected.clear();
                self.just_closed.clear();
                self.unread.clear();
                if durable {
                    self.restored_heads = self
                        .workload
                        .channels
                        .iter()
                        .map(|c| (c.clone(), self.hub.state(c).offset))
                        .collect();
                    self.restored_heads.retain(|_, head| *head > 0);
                } else {
                    // The memory store's history died with the hub: no epoch of it may come back.
                    self.checker.truth.close_all();
                }
                self.listener_up_at = now + down;
                self.drain_hub();
            }
        }
    }

    /// Cuts every live link. Clients hear of it soon (a reset); the hub does too when it survives (`tell_hub`).
    pub(super) fn drop_every_link(&mut self, tell_hub: bool) {
        let now = self.clock.now();
        for link in self.net.live_links() {
            let client_notice = Some(Duration::from_millis(self.rng.range_inclusive(0, 200)));
            let hub_notice =
                tell_hub.then(|| Duration::from_millis(self.rng.range_inclusive(0, 200)));
            self.net.cut(now, link, client_notice, hub_notice);
        }
    }
}
