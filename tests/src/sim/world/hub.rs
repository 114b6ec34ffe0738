//! The hub side of the driver: carrying out what the hub asks (transmit, close), checking its events and recording
//! the ground truth from its publishes, and telling it when a transport is gone.

use switchboard_protocol::server::{ConnId, HubEvent, HubOutput};
use switchboard_protocol::wire::CloseCode;

use super::World;

impl World {
    /// Drains the hub, carrying out what it asks.
    pub(super) fn drain_hub(&mut self) {
        let now = self.clock.now();
        loop {
            match self.hub.poll_output() {
                HubOutput::Timeout(at) => {
                    self.hub_deadline = at;
                    return;
                }
                HubOutput::Transmit { conn, frame } => {
                    self.trace.bytes(frame.as_bytes());
                    self.log(|| format!("hub sends {conn}: {frame}"));
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
            HubEvent::Published { channel, offset } => {
                self.counts.published += 1;
                let now = self.clock.now();
                let page = self.hub.history(now, &channel, Some(offset - 1), 1);
                match page.events.first() {
                    Some((o, event)) if *o == offset => {
                        let event = event.clone();
                        self.check(|c| c.truth.published(generation, &channel, offset, &event));
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
            HubEvent::CustomRequest { type_name, .. } => self.fail(format!(
                "a custom request of type {type_name}, none registered"
            )),
            _ => {}
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
