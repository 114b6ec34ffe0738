//! The hub's side of cluster mode: holding back what needs a channel not loaded yet, the engine's reports, and
//! publishing through the engine.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::super::Hub;
use super::super::conn_table::ConnId;
use super::super::dialect::ConnDialect;
use super::super::intake::Inbound;
use super::super::publish_answer::{Answer, Kept};
use super::super::routing::{Ending, Pending, error_data};
use super::super::sse_stream::SseResume;
use super::{EngineCommand, EngineFailure, EngineTicket, Mirror, Waiting};
use crate::redis::engine::StoredEvent;
use crate::time::Timestamp;
use crate::wire::channel_payload::ChannelPayloadRequest;
use crate::wire::project_stream::ProjectStreamRequest;
use crate::wire::{Caller, ChannelName, ClientMessage, CloseCode, ErrorCode, MessageId};

impl Hub {
    /// Whether this hub is a node of a cluster ([`Hub::clustered`]).
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// `inbound` may be handled now: it is returned. Otherwise it waits (behind the connection's earlier waiting
    /// messages, or for the channel it needs, whose load is started).
    pub(in crate::server) fn cluster_admit(
        &mut self,
        conn: ConnId,
        inbound: Inbound,
    ) -> Option<Inbound> {
        match self.hold_or_pass(conn, Waiting::Inbound(inbound)) {
            Some(Waiting::Inbound(inbound)) => Some(inbound),
            _ => None,
        }
    }

    /// Whether a project-stream open may be handled now; otherwise it waits for its channel.
    pub(in crate::server) fn cluster_admit_open(
        &mut self,
        conn: ConnId,
        since: Option<u64>,
    ) -> bool {
        self.hold_or_pass(conn, Waiting::ProjectOpen { since })
            .is_some()
    }

    /// Whether an event stream's open may be handled now; otherwise it waits for its channels, all loaded at once.
    pub(in crate::server) fn cluster_admit_sse(
        &mut self,
        conn: ConnId,
        resume: SseResume,
    ) -> Option<SseResume> {
        match self.hold_or_pass(conn, Waiting::SseOpen { resume }) {
            Some(Waiting::SseOpen { resume }) => Some(resume),
            _ => None,
        }
    }

    fn hold_or_pass(&mut self, conn: ConnId, waiting: Waiting) -> Option<Waiting> {
        let needs = self.needs_load(conn, &waiting);
        // A stream's channels load side by side rather than one read after another.
        let more = match &waiting {
            Waiting::SseOpen { .. } => self.sse_unloaded(conn),
            _ => Vec::new(),
        };
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return Some(waiting);
        };
        if let Some(queue) = cluster.waiting.get_mut(&conn) {
            queue.push_back(waiting);
            return None;
        }
        let channel = match needs {
            None => return Some(waiting),
            Some(channel) => channel,
        };
        cluster.waiting.insert(conn, VecDeque::from([waiting]));
        cluster.load(&channel, conn);
        for channel in &more {
            cluster.load(channel, conn);
        }
        None
    }

    /// The channels of `conn`'s event stream this node does not hold.
    fn sse_unloaded(&self, conn: ConnId) -> Vec<ChannelName> {
        let Some(cluster) = self.cluster.as_deref() else {
            return Vec::new();
        };
        sse_channels(self.conns.get(conn).map(|c| &c.dialect))
            .iter()
            .filter(|channel| cluster.mirror(channel).is_none())
            .cloned()
            .collect()
    }

    /// Whether an event stream waiting to open needs `channel`: it stays followed meanwhile, or the stream would
    /// wait for it again.
    fn awaited_by_a_stream(&self, channel: &ChannelName) -> bool {
        let Some(cluster) = self.cluster.as_deref() else {
            return false;
        };
        cluster.waiting.iter().any(|(conn, queue)| {
            matches!(queue.front(), Some(Waiting::SseOpen { .. }))
                && sse_channels(self.conns.get(*conn).map(|c| &c.dialect)).contains(channel)
        })
    }

    /// The channel `waiting` needs loaded before it can be handled, if this node does not hold it.
    fn needs_load(&self, conn: ConnId, waiting: &Waiting) -> Option<ChannelName> {
        let cluster = self.cluster.as_deref()?;
        let channel = match waiting {
            Waiting::Inbound(Inbound::Native(Ok(frame))) => match &frame.message {
                ClientMessage::Subscribe { channel, .. } | ClientMessage::GetState { channel } => {
                    channel.clone()
                }
                _ => return None,
            },
            Waiting::Inbound(Inbound::ChannelPayload(Ok(ChannelPayloadRequest::Subscribe {
                channel,
            }))) => channel.clone(),
            Waiting::Inbound(Inbound::ProjectStream(Ok(ProjectStreamRequest::GetState)))
            | Waiting::ProjectOpen { .. } => self.project_of(conn)?.1?,
            Waiting::SseOpen { .. } => self.sse_unloaded(conn).into_iter().next()?,
            Waiting::Inbound(_) => return None,
        };
        cluster.mirror(&channel).is_none().then_some(channel)
    }

    /// The engine placed this node's feed of `channel` ([`EngineCommand::Follow`]): `epoch` and `offset` are its
    /// position, `state` its retained event and `events` the history read with it. What waited for the channel is
    /// handled now, in order.
    pub fn handle_engine_following(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        epoch: Option<String>,
        offset: u64,
        state: Option<(u64, Vec<u8>)>,
        events: Vec<StoredEvent>,
    ) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let Some(waiters) = cluster.loading.remove(channel) else {
            return;
        };
        let events = events
            .into_iter()
            .filter_map(|e| Some((e.offset, e.published_ms, Arc::new(parse(&e.event)?))))
            .collect();
        let state = state.and_then(|(_, event)| parse(&event)).map(Arc::new);
        let retention = cluster.retention;
        // A channel the engine holds nothing of has no epoch yet; its first publish gives it one, which the
        // feed then reports as a new epoch to the subscribers told this one.
        let epoch = epoch.unwrap_or_default();
        let mirror = Mirror::placed(epoch, offset, state, events, retention);
        cluster.mirrors.insert(channel.clone(), mirror);
        for conn in waiters {
            self.resume(now, conn);
        }
        self.cluster_release(channel);
        self.reap(now);
    }

    /// Handles `conn`'s waiting messages until one needs a channel not loaded yet.
    fn resume(&mut self, now: Timestamp, conn: ConnId) {
        loop {
            let open = self.conns.get(conn).is_some_and(|c| !c.closing);
            let Some(cluster) = self.cluster.as_deref_mut() else {
                return;
            };
            if !open {
                cluster.waiting.remove(&conn);
                return;
            }
            let Some(queue) = cluster.waiting.get_mut(&conn) else {
                return;
            };
            let Some(next) = queue.pop_front() else {
                cluster.waiting.remove(&conn);
                return;
            };
            if let Some(channel) = self.needs_load(conn, &next) {
                let cluster = self.cluster.as_deref_mut().expect("clustered");
                if let Some(queue) = cluster.waiting.get_mut(&conn) {
                    queue.push_front(next);
                }
                cluster.load(&channel, conn);
                return;
            }
            match next {
                Waiting::Inbound(inbound) => self.dispatch_inbound(now, conn, inbound),
                Waiting::ProjectOpen { since } => self.open_project_stream(now, conn, since),
                Waiting::SseOpen { resume } => self.open_sse(now, conn, resume),
            }
        }
    }

    /// The next event of a followed channel, from the engine's live feed (offsets consecutive, each once): kept in
    /// the channel's mirror and sent to its local subscribers.
    pub fn handle_engine_delivery(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
        retained: bool,
        event: &[u8],
    ) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let retention = cluster.retention;
        let Some(mirror) = cluster.mirrors.get_mut(channel) else {
            return;
        };
        let Some(event) = parse(event) else {
            return;
        };
        let event = Arc::new(event);
        let published_ms = now.as_millis();
        mirror.push(
            epoch,
            offset,
            published_ms,
            retained,
            Arc::clone(&event),
            retention,
        );
        self.counters.published += 1;
        self.fan_out(now, channel, &Kept { offset, event });
        self.reap(now);
    }

    /// Events of `channel` were missed and are gone from the engine: the mirror restarts at the engine's position,
    /// and the local subscribers are closed with 1013 so they resubscribe from theirs and learn `recovered: false`.
    pub fn handle_engine_resync(
        &mut self,
        now: Timestamp,
        channel: &ChannelName,
        epoch: Option<String>,
        offset: u64,
        state: Option<(u64, Vec<u8>)>,
    ) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let retention = cluster.retention;
        let Some(mirror) = cluster.mirrors.get_mut(channel) else {
            return;
        };
        let state = state.and_then(|(_, event)| parse(&event)).map(Arc::new);
        *mirror = Mirror::placed(
            epoch.unwrap_or_default(),
            offset,
            state,
            Vec::new(),
            retention,
        );
        let subscribers: Vec<ConnId> = self
            .channels
            .get(channel)
            .map(|ch| ch.subscribers.keys().copied().collect())
            .unwrap_or_default();
        for conn in subscribers {
            if let Some(c) = self.conns.get_mut(conn) {
                self.outbox.close(
                    conn,
                    c,
                    CloseCode::TryAgainLater,
                    "events were missed: reconnect to recover",
                );
            }
        }
        self.reap(now);
    }

    /// The engine's answer to [`EngineCommand::Publish`]: the first and last offsets given, or why none were.
    pub fn handle_engine_published(
        &mut self,
        now: Timestamp,
        ticket: EngineTicket,
        outcome: Result<(u64, u64), EngineFailure>,
    ) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let Some((channel, _count, answer)) = cluster.publishes.remove(&ticket) else {
            return;
        };
        match outcome {
            Ok((first, _last)) => self.answer_published(now, &channel, first, answer),
            Err(_) => self.refuse_unstored(now, answer),
        }
        self.reap(now);
    }

    /// The engine's answer to an [`EngineCommand::Publish`] with an idempotency key it already held in the
    /// channel's epoch: nothing was published, and the original's offsets were `first..=last`. The publisher (and
    /// the publishes this node held behind it) are answered with `duplicate: true`; the key is settled here too.
    pub fn handle_engine_duplicate(
        &mut self,
        now: Timestamp,
        ticket: EngineTicket,
        first: u64,
        last: u64,
    ) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let Some((channel, _count, answer)) = cluster.publishes.remove(&ticket) else {
            return;
        };
        match answer {
            Answer::Keyed(keyed) => {
                let held = self
                    .dedupe
                    .settle(now, &channel, &keyed.key, None, first, last);
                self.answer_duplicate(&channel, first, last, keyed.inner);
                for answer in held {
                    self.answer_duplicate(&channel, first, last, answer);
                }
            }
            other => self.answer_duplicate(&channel, first, last, other),
        }
        self.reap(now);
    }

    /// Hands a publish to the engine; the publisher is answered by [`handle_engine_published`](Self::handle_engine_published).
    pub(in crate::server) fn cluster_publish(
        &mut self,
        channel: &ChannelName,
        events: Vec<Arc<Value>>,
        retain_last: bool,
        answer: Answer,
    ) {
        let fresh_epoch = alloc::format!("{:016x}", self.rng.next_u64());
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let ticket = EngineTicket(cluster.next_ticket);
        cluster.next_ticket += 1;
        let count = events.len() as u64;
        let idempotency_key = match &answer {
            Answer::Keyed(keyed) => Some(keyed.key.clone()),
            _ => None,
        };
        cluster
            .publishes
            .insert(ticket, (channel.clone(), count, answer));
        cluster.commands.push_back(EngineCommand::Publish {
            ticket,
            channel: channel.clone(),
            events,
            retain_last,
            fresh_epoch,
            idempotency_key,
            dedupe_window: self.config.dedupe_window,
        });
    }

    /// Stops following `channel` once no local connection subscribes to it or waits for it.
    pub(in crate::server) fn cluster_release(&mut self, channel: &ChannelName) {
        let subscribed = self
            .channels
            .get(channel)
            .is_some_and(|ch| !ch.subscribers.is_empty())
            || self.awaited_by_a_stream(channel);
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        if subscribed || cluster.loading.contains_key(channel) {
            return;
        }
        if cluster.mirrors.remove(channel).is_some() {
            cluster.commands.push_back(EngineCommand::Unfollow {
                channel: channel.clone(),
            });
        }
    }

    /// A connection is gone (`dialect` was its): nothing of it waits any more, and the channels its event stream
    /// waited for are let go unless something else holds them.
    pub(in crate::server) fn cluster_forget(&mut self, conn: ConnId, dialect: &ConnDialect) {
        let Some(cluster) = self.cluster.as_deref_mut() else {
            return;
        };
        let stream_waited = cluster
            .waiting
            .remove(&conn)
            .is_some_and(|queue| matches!(queue.front(), Some(Waiting::SseOpen { .. })));
        if stream_waited {
            for channel in sse_channels(Some(dialect)) {
                self.cluster_release(channel);
            }
        }
    }
}

impl Hub {
    /// A local connection serves `channel` now.
    pub(in crate::server) fn cluster_register(&mut self, channel: &ChannelName) {
        if let Some(cluster) = self.cluster.as_deref_mut() {
            cluster.commands.push_back(EngineCommand::Register {
                channel: channel.clone(),
            });
        }
    }

    /// No local connection serves `channel` any more.
    pub(in crate::server) fn cluster_unregister(&mut self, channel: &ChannelName) {
        if let Some(cluster) = self.cluster.as_deref_mut() {
            cluster.commands.push_back(EngineCommand::Unregister {
                channel: channel.clone(),
            });
        }
    }

    /// Sends a local caller's call, pending as `call`, to the node that serves `channel`.
    pub(in crate::server) fn cluster_forward(
        &mut self,
        call: MessageId,
        channel: &ChannelName,
        method: String,
        params: Value,
        caller: Caller,
    ) {
        if let Some(cluster) = self.cluster.as_deref_mut() {
            cluster.commands.push_back(EngineCommand::Call {
                call,
                channel: channel.clone(),
                method,
                params,
                caller,
            });
        }
    }

    /// Sends the answer to a call from `node` back to it.
    pub(in crate::server) fn cluster_answer(
        &mut self,
        node: String,
        call: MessageId,
        data: Map<String, Value>,
    ) {
        if let Some(cluster) = self.cluster.as_deref_mut() {
            cluster
                .commands
                .push_back(EngineCommand::Answer { node, call, data });
        }
    }

    /// A call from node `node` (its id `call` there) for `channel`: routed to the local connection that serves it,
    /// whose answer goes back to that node; `NO_HANDLER` back at once when none does.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_remote_call(
        &mut self,
        now: Timestamp,
        node: String,
        call: MessageId,
        channel: &ChannelName,
        method: String,
        params: Value,
        caller: Caller,
    ) {
        if self.cluster.is_none() {
            return;
        }
        let target = self
            .channels
            .get(channel)
            .and_then(|ch| ch.server)
            .filter(|&t| self.conns.get(t).is_some_and(|t| !t.closing));
        let Some(target) = target else {
            let data = error_data(
                ErrorCode::NoHandler,
                alloc::format!("no connection serves {channel}"),
                None,
            );
            self.cluster_answer(node, call, data);
            return;
        };
        let routed = self.fresh_request_id();
        let deadline = now + self.config.request_timeout;
        let pending = Pending::Remote {
            target,
            node,
            call,
            channel: channel.clone(),
            method: method.clone(),
        };
        if self
            .outstanding
            .insert(routed.clone(), deadline, pending)
            .is_err()
        {
            return;
        }
        self.send_call(target, routed, channel, method, params, &caller);
        self.reap(now);
    }

    /// The serving node's answer to a call this node forwarded (`call` is its id here).
    pub fn handle_remote_answer(
        &mut self,
        now: Timestamp,
        call: &MessageId,
        data: Map<String, Value>,
    ) {
        if !matches!(self.outstanding.get(call), Some(Pending::Forwarded { .. })) {
            return;
        }
        if let Some(pending) = self.outstanding.resolve(call) {
            self.end_pending(now, call.clone(), pending, Ending::Answered(data));
        }
        self.reap(now);
    }

    /// No node serves the channel of the call this node forwarded as `call`: `NO_HANDLER` to its caller.
    pub fn handle_remote_unreachable(&mut self, now: Timestamp, call: &MessageId) {
        let Some(Pending::Forwarded { channel, .. }) = self.outstanding.get(call) else {
            return;
        };
        let data = error_data(
            ErrorCode::NoHandler,
            alloc::format!("no connection serves {channel}"),
            None,
        );
        self.handle_remote_answer(now, call, data);
    }
}

/// An event from the engine; one that is not JSON was not written by a node and is skipped.
fn parse(event: &[u8]) -> Option<Value> {
    serde_json::from_slice(event).ok()
}

/// An event stream's channels (none for another dialect).
fn sse_channels(dialect: Option<&ConnDialect>) -> &[ChannelName] {
    match dialect {
        Some(ConnDialect::Sse(state)) => &state.channels,
        _ => &[],
    }
}
