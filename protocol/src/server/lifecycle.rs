//! A connection's life in the hub: open (registry entry, greeting, timers), close (the `Close` output), and the
//! clean-up of PROTOCOL §4 that leaves the hub holding nothing of it.
//!
//! Closing is two-step so it can happen anywhere, even in the middle of a fan-out: [`Outbox::close`] marks the
//! connection and queues the `Close`; before any public method returns, [`Hub::reap`] cleans up every marked
//! connection. Clean-up can close others in turn (failing a routed call sends an error to its caller, who may be a
//! slow consumer), so `reap` runs until nothing is marked.
//!
//! [`Outbox::close`]: super::output::Outbox::close

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::Hub;
use super::conn_table::ConnId;
use super::connection::{Connection, InFlight};
use super::dialect::{ConnDialect, Dialect, DialectKind};
use super::intake::Intake;
use super::output::HubEvent;
use super::permissions::Permissions;
use super::routing::Ending;
use super::sse_stream::{SseResume, SseState};
use super::trust::Trust;
use crate::time::Timestamp;
use crate::wire::project_stream::project_channel;
use crate::wire::{CloseCode, MessageId, PROTOCOL_VERSION, ServerMessage};

impl Hub {
    /// A WebSocket was accepted. Registers it with a fresh app id and queues [`HubEvent::Connected`] and the
    /// dialect's greeting (project stream: also its subscription and the replay after `since`).
    ///
    /// Call after the upgrade, with the permissions the handshake's token grants and the [`Trust`] the caller
    /// earns ([`Trust::of`]; it picks the connection's rate limit). Returns the connection's id and its [`Intake`],
    /// which goes to whoever reads the socket: every frame passes through it on the way to
    /// [`handle_inbound`](Hub::handle_inbound).
    pub fn handle_open(
        &mut self,
        now: Timestamp,
        dialect: Dialect,
        permissions: Permissions,
        trust: Trust,
    ) -> (ConnId, Intake) {
        let app_id: Arc<str> = Arc::from(self.fresh_app_id());
        let kind = dialect.kind();
        let intake = Intake::new(&self.config, kind, trust, now);
        let mut sse_resume = None;
        let (conn_dialect, since) = match dialect {
            Dialect::Native => (ConnDialect::Native, None),
            Dialect::Sse(open) => {
                sse_resume = Some(open.resume);
                (ConnDialect::Sse(SseState::new(&open.target)), None)
            }
            Dialect::ProjectStream { project_id, since } => {
                let channel = project_channel(&project_id).ok();
                (
                    ConnDialect::ProjectStream {
                        project_id,
                        channel,
                    },
                    since,
                )
            }
            Dialect::ChannelPayload => (ConnDialect::ChannelPayload, None),
        };
        let mut conn =
            Connection::new(app_id.clone(), conn_dialect, permissions, &self.config, now);
        conn.arm_heartbeat(now, &mut self.rng);
        conn.arm_expiry(now, self.config.token_expiry_warning);
        let id = self.conns.insert(conn);
        self.refile(id);
        self.app_ids.insert(app_id.clone(), id);
        self.counters.connections_opened += 1;
        self.outbox.event(HubEvent::Connected {
            conn: id,
            app_id: String::from(&*app_id),
            dialect: kind,
        });
        match kind {
            DialectKind::Native => {
                let greeting = ServerMessage::Connected {
                    app_id: String::from(&*app_id),
                    status: Default::default(),
                    protocol: PROTOCOL_VERSION,
                    heartbeat_ms: u64::try_from(self.config.heartbeat.as_millis())
                        .unwrap_or(u64::MAX),
                    max_message_bytes: u64::try_from(self.config.max_message_bytes)
                        .unwrap_or(u64::MAX),
                };
                self.send_native(id, None, greeting);
            }
            DialectKind::ProjectStream => {
                if self.cluster_admit_open(id, since) {
                    self.open_project_stream(now, id, since)
                }
            }
            DialectKind::ChannelPayload => {}
            DialectKind::Sse | DialectKind::ProjectSse => {
                let resume = sse_resume.unwrap_or(SseResume::Fresh);
                if let Some(resume) = self.cluster_admit_sse(id, resume) {
                    self.open_sse(now, id, resume);
                }
            }
        }
        self.reap(now);
        (id, intake)
    }

    /// The socket is gone (the peer closed it, or it broke). Cleans the connection up (PROTOCOL §4) and queues
    /// [`HubEvent::Disconnected`]. Idempotent: a connection the hub already closed is ignored.
    pub fn handle_transport_closed(&mut self, now: Timestamp, conn: ConnId) {
        if self.conns.contains(conn) {
            self.cleanup(now, conn);
        }
        self.reap(now);
    }

    /// Closes a connection: queues `Close { code, reason }` and cleans it up at once.
    pub fn close(&mut self, now: Timestamp, conn: ConnId, code: CloseCode, reason: &str) {
        if let Some(c) = self.conns.get_mut(conn) {
            self.outbox.close(conn, c, code, reason);
        }
        self.reap(now);
    }

    /// Closes every connection with 1001 (going away: clients reconnect and recover).
    pub fn shutdown(&mut self, now: Timestamp) {
        let ids: Vec<ConnId> = self.conns.iter().map(|(id, _)| id).collect();
        for id in ids {
            if let Some(c) = self.conns.get_mut(id) {
                self.outbox
                    .close(id, c, CloseCode::GoingAway, "server shutting down");
            }
        }
        self.reap(now);
    }

    /// Cleans up every connection closed since the last call, until none is left.
    pub(super) fn reap(&mut self, now: Timestamp) {
        while let Some((id, _code)) = self.outbox.doomed.pop_front() {
            self.cleanup(now, id);
        }
    }

    /// PROTOCOL §4: cancel the connection's pending server requests and fail the calls routed to it, drop the
    /// replies to its own calls, close its sessions, drop its subscriptions and `serve` registrations, disarm its
    /// timers, and forget its app id.
    fn cleanup(&mut self, now: Timestamp, id: ConnId) {
        let Some(conn) = self.conns.remove(id) else {
            return;
        };
        self.cluster_forget(id, &conn.dialect);
        if self.app_ids.get(&conn.app_id) == Some(&id) {
            self.app_ids.remove(&conn.app_id);
        }
        let mut filed = conn.indexed_at;
        self.deadlines.refile(id, &mut filed, None);
        let watched = self.presence_roles(id, &conn);
        self.drop_patterns(id, &conn.patterns);
        for name in &conn.subscriptions {
            if let Some(ch) = self.channels.get_mut(name) {
                ch.unsubscribe(id);
            }
            self.forget_if_unused(name);
        }
        for name in &conn.serving {
            if let Some(ch) = self.channels.get_mut(name)
                && ch.server == Some(id)
            {
                ch.server = None;
                self.cluster_unregister(name);
            }
            self.forget_if_unused(name);
        }
        self.presence_gone(id, &conn, &watched);
        for session in &conn.sessions {
            self.sessions.by_id.remove(session);
        }
        // Its own calls first: their answers now go nowhere (this also covers calls to itself).
        for in_flight in conn.in_flight.values() {
            if let InFlight::Call { routed } = in_flight {
                self.orphan_call(routed);
            }
        }
        // Then what waits on it, in the order it was asked (deadline order; ties by id).
        let mut waiting: Vec<(Timestamp, MessageId)> = conn
            .outstanding
            .iter()
            .map(|id| {
                (
                    self.outstanding.deadline(id).unwrap_or(Timestamp::MAX),
                    id.clone(),
                )
            })
            .collect();
        waiting.sort();
        for (_, routed) in waiting {
            if let Some(pending) = self.outstanding.resolve(&routed) {
                self.end_pending(now, routed, pending, Ending::TargetGone);
            }
        }
        self.outbox.event(HubEvent::Disconnected {
            conn: id,
            app_id: String::from(&*conn.app_id),
        });
    }

    fn fresh_app_id(&mut self) -> String {
        loop {
            let id = MessageId::random(&mut self.rng).into_string();
            if !self.app_ids.contains_key(id.as_str()) {
                return id;
            }
        }
    }
}
