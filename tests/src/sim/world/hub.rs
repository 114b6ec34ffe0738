//! The hub side of the driver: carrying out what the hub asks (transmit, close), checking its events and recording
//! the ground truth from its publishes, and telling it when a transport is gone.

use serde_json::Value;
use switchboard_protocol::server::{ConnId, HubEvent, HubOutput};
use switchboard_protocol::wire::{CloseCode, ServerMessage, decode_server};

use super::World;

impl World {
    /// Drains the hub, carrying out what it asks.
    pub(super) fn drain_hub(&mut self) {
        let now = self.clock.now();
        loop {
            match self.hub.poll_output() {
                HubOutput::Timeout(at) => {
                    self.hub_deadline = at;
                    if let Some((tag, channel, offset)) = self.done_unconfirmed.first() {
                        let what = format!(
                            "hub publish #{tag} ended at {channel}#{offset}, which was never published"
                        );
                        return self.fail(what);
                    }
                    return;
                }
                HubOutput::Transmit { conn, frame } => {
                    self.trace.bytes(frame.as_bytes());
                    self.log(|| format!("hub sends {conn}: {frame}"));
                    self.check_recovery_answer(conn, &frame);
                    let Some(&link) = self.hub_conns.get(&conn) else {
                        let state = if self.hub_closed.contains(&conn) {
                            "after its close"
                        } else {
                            "never opened"
                        };
                        return self.fail(format!(
                            "the hub transmits to connection {conn} {state}: {frame}"
                        ));
                    };
                    let unread = self.unread.entry(conn).or_default();
                    *unread += frame.len();
                    if *unread > self.hub.config().max_queued_bytes {
                        let what = format!(
                            "connection {conn} has {unread} bytes handed out and unread, over max_queued_bytes",
                        );
                        return self.fail(what);
                    }
                    self.net.send_to_client(now, link, frame);
                }
                HubOutput::Close { conn, code, reason } => {
                    self.calls.disturbed();
                    self.trace.number(20 + u64::from(code.as_u16()));
                    self.log(|| format!("hub closes {conn} with {code} {reason}"));
                    let Some(link) = self.hub_conns.remove(&conn) else {
                        return self.fail(format!(
                            "the hub closes connection {conn}, which is not open"
                        ));
                    };
                    match code {
                        CloseCode::TryAgainLater => self.counts.slow_consumers += 1,
                        CloseCode::HeartbeatTimeout => self.counts.heartbeat_timeouts += 1,
                        _ => {}
                    }
                    self.closed(conn);
                    self.net.close_by_hub(now, link, code, &reason);
                }
                HubOutput::Event(event) => self.on_hub_event(event),
                HubOutput::Persist(write) => self.on_persist(write),
                HubOutput::Snapshot(job) => self.on_snapshot(job),
                other => {
                    return self.fail(format!("the hub outputs what no driver knows: {other:?}"));
                }
            }
        }
    }

    /// The driver's bookkeeping for a connection of the current hub that is gone.
    pub(super) fn closed(&mut self, conn: ConnId) {
        self.hub_closed.insert(conn);
        self.intakes.remove(&conn);
        self.unread.remove(&conn);
        self.just_closed.push(conn);
    }

    /// An event of the hub: check it, and record the ground truth.
    pub(super) fn on_hub_event(&mut self, event: HubEvent) {
        self.log(|| format!("hub event {event:?}"));
        let generation = self.hub_generation;
        self.check(|c| c.hub_event(generation, &event));
        match event {
            HubEvent::Connected { .. } => self.counts.connections += 1,
            HubEvent::Disconnected { conn, .. } => {
                if self.hub_conns.contains_key(&conn) {
                    return self.fail(format!(
                        "Disconnected for {conn}, which the driver still sees open"
                    ));
                }
                if !self.hub_disconnected.insert(conn) {
                    self.fail(format!("Disconnected twice for {conn}"));
                }
            }
            HubEvent::Published {
                channel,
                epoch,
                offset,
            } => {
                self.counts.published += 1;
                let now = self.clock.now();
                // The channel's log may be another by now (one that kept nothing is forgotten as soon as nobody
                // holds it): its history is read only while it is still the log the event went into.
                let page = if self.hub.epoch(&channel) == epoch {
                    self.hub.history(now, &channel, Some(offset - 1), 1).events
                } else {
                    Vec::new()
                };
                // Over the durable store a write's whole batch is kept before its publishes are reported: with a
                // short history an event may be gone from it already, but the write on disk has it.
                let written = self
                    .storage
                    .as_ref()
                    .and_then(|s| s.last_written.get(&(channel.clone(), offset)))
                    .map(|e| (offset, Value::clone(e)));
                let found = page
                    .first()
                    .filter(|(o, _)| *o == offset)
                    .map(|(o, e)| (*o, Value::clone(e)))
                    .or(written);
                match found {
                    Some((o, event)) if o == offset => {
                        let Some(log) = self.epoch_id(&epoch) else {
                            return;
                        };
                        self.count_recreated(&channel, log, offset);
                        self.check(|c| c.truth.published(log, &channel, offset, &event));
                        let tag = crate::sim::truth::tag_of(&event).map(|(t, _)| t);
                        // The publish that ended here, and any retry of it answered as its duplicate.
                        while let Some(i) = self
                            .done_unconfirmed
                            .iter()
                            .position(|(_, c, o)| *c == channel && *o == offset)
                        {
                            let (want, ..) = self.done_unconfirmed.remove(i);
                            if tag != Some(want) {
                                return self.fail(format!(
                                    "hub publish #{want} ended at {channel}#{offset}, where #{tag:?} was published"
                                ));
                            }
                        }
                    }
                    _ => self.fail(format!(
                        "{channel}#{offset} was published but is not in the history: {page:?}"
                    )),
                }
            }
            HubEvent::RequestCompleted { conn, id, outcome } => {
                if outcome.is_ok() {
                    self.counts.server_requests_answered += 1;
                }
                let ended =
                    self.calls
                        .request_ended(generation, conn, &id, outcome.is_ok(), || {
                            format!("failed: {outcome:?}")
                        });
                if let Err(e) = ended {
                    self.fail(e);
                }
            }
            HubEvent::PublishDone { ticket, outcome } => {
                let Some((channel, tag)) = self.tickets.remove(&ticket) else {
                    return self.fail(format!("PublishDone for an unknown ticket {ticket:?}"));
                };
                // `Published` follows, where the offset is checked; a refused publish was never published.
                match outcome {
                    Ok(offset) => self.done_unconfirmed.push((tag, channel, offset)),
                    Err(_) if !self.checker.truth.by_tag.contains_key(&tag) => {
                        self.counts.publishes_refused += 1;
                    }
                    Err(e) => self.fail(format!(
                        "hub publish #{tag} on {channel} was refused ({e}), but it was published"
                    )),
                }
            }
            HubEvent::PublishDuplicate {
                ticket,
                first_offset,
                last_offset,
            } => {
                let Some((channel, tag)) = self.tickets.remove(&ticket) else {
                    return self.fail(format!("PublishDuplicate for an unknown ticket {ticket:?}"));
                };
                if self.checker.truth.by_tag.contains_key(&tag) {
                    self.check_duplicate(&channel, tag, first_offset, last_offset);
                } else if first_offset != last_offset {
                    self.fail(format!(
                        "a retry of publish #{tag} was answered as a duplicate of a batch {first_offset}..={last_offset}"
                    ));
                } else {
                    // Its original is answered in the same step, and `Published` follows: it must name this tag.
                    self.counts.keyed_duplicates += 1;
                    self.done_unconfirmed.push((tag, channel, first_offset));
                }
            }
            HubEvent::CustomRequest { type_name, .. } => self.fail(format!(
                "a custom request of type {type_name}, none registered"
            )),
            _ => {}
        }
    }

    /// A `subscribe_res` to a `subscribe` that had to recover must say `recovered: true`.
    fn check_recovery_answer(&mut self, conn: ConnId, frame: &str) {
        let Some((expected_conn, id, after_restart)) = &self.expected_recovery else {
            return;
        };
        if *expected_conn != conn || !frame.contains("\"subscribe_res\"") {
            return;
        }
        let Ok(answer) = decode_server(frame) else {
            return self.fail(format!("the hub sent an undecodable frame: {frame}"));
        };
        if answer.message_id.as_ref() != Some(id) {
            return;
        }
        let after_restart = *after_restart;
        self.expected_recovery = None;
        match answer.message {
            ServerMessage::SubscribeRes {
                recovered: Some(true),
                ..
            } => {
                self.counts.recoveries_checked += 1;
                if after_restart {
                    self.counts.recovered_after_restart += 1;
                }
            }
            other => self.fail(format!(
                "a subscribe whose gap the kept history covers was answered {other:?}, not recovered"
            )),
        }
    }

    /// A connection of the current hub is gone from the transport's side: tell the hub.
    pub(super) fn transport_closed(&mut self, conn: ConnId) {
        if self.hub_conns.remove(&conn).is_none() {
            return;
        }
        self.closed(conn);
        self.hub.handle_transport_closed(self.clock.now(), conn);
        self.drain_hub();
    }
}
