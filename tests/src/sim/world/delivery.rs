//! What the network delivers, handed to the machine at the receiving end: dial results, frames, close frames and
//! resets.

use switchboard_protocol::client::ConnectFailure;
use switchboard_protocol::server::{ConnId, Dialect, Inbound, Permissions, Trust};
use switchboard_protocol::wire::{ClientFrame, ClientMessage, CloseCode};

use crate::sim::durability::recovery_expected;

use crate::sim::network::{NetEvent, Packet};

use super::{Transport, World};

impl World {
    pub(super) fn on_network(&mut self, event: NetEvent) {
        let now = self.clock.now();
        match event {
            NetEvent::DialDone {
                client,
                incarnation,
                attempt,
                result,
            } => {
                self.trace.number(30);
                let s = &self.slots[client];
                if s.incarnation != incarnation || s.transport != Transport::Dialing(attempt) {
                    // An abandoned attempt: the socket is dropped before the hub ever sees it.
                    return;
                }
                let result = match result {
                    Ok(()) if now < self.listener_up_at => {
                        Err(String::from("the server is restarting"))
                    }
                    other => other,
                };
                match result {
                    Err(why) => {
                        self.log(|| format!("client {client}'s dial fails: {why}"));
                        self.slots[client].transport = Transport::Idle;
                        let machine = &mut self.slots[client].machine;
                        machine.handle_connect_failed(now, ConnectFailure::Transient(why));
                    }
                    Ok(()) => {
                        let (conn, intake) = self.hub.handle_open(
                            now,
                            Dialect::Native,
                            Permissions::allow_all(),
                            Trust::Untrusted,
                        );
                        self.intakes.insert(conn, intake);
                        let link =
                            self.net
                                .open_link(now, client, incarnation, self.hub_generation, conn);
                        self.log(|| {
                            format!("client {client} connects: {link} = hub connection {conn}")
                        });
                        if self.hub_conns.insert(conn, link).is_some()
                            || self.hub_closed.contains(&conn)
                        {
                            return self.fail(format!("the hub reuses connection id {conn}"));
                        }
                        self.slots[client].transport = Transport::Linked(link);
                        self.drain_hub();
                        self.slots[client].machine.handle_connected(now);
                    }
                }
                self.drain_client(client);
            }
            NetEvent::AtHub {
                link,
                conn,
                hub_generation,
                packet,
            } => {
                if hub_generation != self.hub_generation || !self.hub_conns.contains_key(&conn) {
                    return self.fail(format!("{link} delivered to a hub end that is closed"));
                }
                match packet {
                    Packet::Frame(text) => {
                        self.trace.number(31);
                        self.log(|| format!("hub receives {conn}: {text}"));
                        if let Some(intake) = self.intakes.get_mut(&conn) {
                            let inbound = intake.text(now, &text);
                            self.expect_recovery(conn, &inbound);
                            self.hub.handle_inbound(now, conn, inbound);
                        }
                        self.drain_hub();
                        if let Some((_, id, _)) = self.expected_recovery.take() {
                            self.fail(format!(
                                "the subscribe {id} that had to recover was never answered"
                            ));
                        }
                    }
                    Packet::Close { code, .. } => {
                        self.trace.number(32);
                        self.log(|| format!("hub sees {conn} closed by the client ({code})"));
                        self.transport_closed(conn);
                    }
                }
            }
            NetEvent::AtClient {
                link,
                client,
                incarnation,
                conn,
                hub_generation,
                packet,
            } => {
                let s = &self.slots[client];
                if s.incarnation != incarnation || s.transport != Transport::Linked(link) {
                    return self.fail(format!(
                        "{link} delivered to client {client}, which had left it"
                    ));
                }
                match packet {
                    Packet::Frame(text) => {
                        self.trace.number(33);
                        self.log(|| format!("client {client} receives {text}"));
                        if hub_generation == self.hub_generation
                            && self.hub_conns.contains_key(&conn)
                        {
                            if let Some(unread) = self.unread.get_mut(&conn) {
                                *unread = unread.saturating_sub(text.len());
                            }
                            self.hub.handle_sent(conn, text.len());
                        }
                        self.slots[client].machine.handle_text(now, &text);
                    }
                    Packet::Close { code, reason } => {
                        self.trace.number(34);
                        self.log(|| format!("client {client} sees the hub close: {code} {reason}"));
                        self.slots[client].transport = Transport::Idle;
                        self.slots[client]
                            .machine
                            .handle_disconnected(now, code, &reason);
                    }
                }
                self.drain_client(client);
            }
            NetEvent::CutSeenByClient {
                link,
                client,
                incarnation,
            } => {
                self.trace.number(35);
                let s = &self.slots[client];
                if s.incarnation != incarnation || s.transport != Transport::Linked(link) {
                    return self.fail(format!(
                        "client {client} told of the cut of {link}, which it had left"
                    ));
                }
                self.log(|| format!("client {client} sees {link} reset"));
                self.slots[client].transport = Transport::Idle;
                let machine = &mut self.slots[client].machine;
                machine.handle_disconnected(now, CloseCode::Abnormal, "connection reset");
                self.drain_client(client);
            }
            NetEvent::CutSeenByHub {
                link,
                conn,
                hub_generation,
            } => {
                self.trace.number(36);
                if hub_generation == self.hub_generation {
                    self.log(|| format!("hub sees {link} ({conn}) reset"));
                    self.transport_closed(conn);
                }
            }
        }
    }
}

impl World {
    /// Over the durable store, notes a `subscribe` with `since` the hub must answer with `recovered: true`
    /// ([`recovery_expected`]); the answer is checked as it leaves the hub.
    fn expect_recovery(&mut self, conn: ConnId, inbound: &Inbound) {
        let Inbound::Native(Ok(ClientFrame {
            message_id,
            message: ClientMessage::Subscribe { channel, since, .. },
        })) = inbound
        else {
            return;
        };
        let first = self.subscribe_frames.insert((conn, channel.clone()));
        let (true, Some(since), Some(_)) = (first, since, &self.storage) else {
            return;
        };
        // What the hub itself counts as queued for the connection: the rule it answers by.
        let queued = self.hub.connection(conn).map_or(0, |c| c.queued_bytes());
        if recovery_expected(&self.hub, self.clock.now(), channel, since, queued) {
            let after_restart = self
                .restored_heads
                .get(channel)
                .is_some_and(|&head| since.offset <= head);
            self.expected_recovery = Some((conn, message_id.clone(), after_restart));
        }
    }
}
