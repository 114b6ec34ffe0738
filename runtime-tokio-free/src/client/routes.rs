//! [`Routes`]: who waits for what. The machine's events are turned into answers for waiting handles and items for
//! the streams: request outcomes by id, channel events by channel, calls by served channel, server requests,
//! notifications and state changes.

use std::collections::HashMap;

use futures_channel::mpsc;
use switchboard_protocol::client::{
    ClientEvent, ClientMachine, FailReason, HandlerError, ReconnectGiveUpReason,
};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, ChannelPattern, ErrorCode, MessageId};

use super::channel_event::{ChannelEvent, PatternItem, SubscriptionItem};
use super::command::{Done, ReplySlot};
use super::connection_state::ConnectionState;
use super::error::RequestError;
use super::handoff::{RawCall, RawRequest};
use super::notification::Notification;

/// What a request's outcome is for.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// A plain request: the answer goes back as is.
    Reply(ReplySlot),
    /// A `subscribe` for this sink.
    Subscribe {
        channel: ChannelName,
        sink_id: u64,
        done: Done,
    },
    /// An `unsubscribe`; `NOT_SUBSCRIBED` counts as done (the channel's subscribe never reached the server).
    Unsubscribe { done: Option<Done> },
    /// A pattern `subscribe` for this sink.
    SubscribePattern {
        pattern: ChannelPattern,
        sink_id: u64,
        done: Done,
    },
    /// A `serve` for this sink.
    Serve {
        channel: ChannelName,
        sink_id: u64,
        done: Done,
    },
}

/// The sinks of one subscribed channel.
type Subscribers = Vec<(u64, mpsc::UnboundedSender<SubscriptionItem>)>;

/// The sinks of one subscribed pattern.
type PatternSinks = Vec<(u64, mpsc::UnboundedSender<PatternItem>)>;

/// Every route from the machine's events to the handles.
#[derive(Debug)]
pub(crate) struct Routes {
    waiting: HashMap<MessageId, Waiting>,
    channels: HashMap<ChannelName, Subscribers>,
    /// Pattern sinks, by pattern.
    patterns: HashMap<ChannelPattern, PatternSinks>,
    served: HashMap<ChannelName, (u64, mpsc::UnboundedSender<RawCall>)>,
    server_requests: Option<mpsc::UnboundedSender<RawRequest>>,
    notifications: Vec<mpsc::UnboundedSender<Notification>>,
    states: Vec<mpsc::UnboundedSender<ConnectionState>>,
    state: ConnectionState,
}

impl Routes {
    pub(crate) fn new() -> Routes {
        Routes {
            waiting: HashMap::new(),
            channels: HashMap::new(),
            patterns: HashMap::new(),
            served: HashMap::new(),
            server_requests: None,
            notifications: Vec::new(),
            states: Vec::new(),
            state: ConnectionState::Connecting,
        }
    }

    /// Remembers what the request with this id is for.
    pub(crate) fn expect(&mut self, id: MessageId, waiting: Waiting) {
        self.waiting.insert(id, waiting);
    }

    // -----------------------------------------------------------------------------------------------------------
    // Registrations

    /// Whether any sink here receives the channel.
    pub(crate) fn has_subscribers(&self, channel: &ChannelName) -> bool {
        self.channels.contains_key(channel)
    }

    pub(crate) fn add_subscriber(
        &mut self,
        channel: ChannelName,
        sink_id: u64,
        sink: mpsc::UnboundedSender<SubscriptionItem>,
    ) {
        self.channels
            .entry(channel)
            .or_default()
            .push((sink_id, sink));
    }

    /// Removes one sink; true when it was there and was the channel's last.
    pub(crate) fn remove_subscriber(&mut self, channel: &ChannelName, sink_id: u64) -> bool {
        let Some(sinks) = self.channels.get_mut(channel) else {
            return false;
        };
        let before = sinks.len();
        sinks.retain(|(id, _)| *id != sink_id);
        let removed = sinks.len() < before;
        if sinks.is_empty() {
            self.channels.remove(channel);
        }
        removed && !self.channels.contains_key(channel)
    }

    /// Whether any sink here receives the pattern.
    pub(crate) fn has_pattern_subscribers(&self, pattern: &ChannelPattern) -> bool {
        self.patterns.contains_key(pattern)
    }

    pub(crate) fn add_pattern_subscriber(
        &mut self,
        pattern: ChannelPattern,
        sink_id: u64,
        sink: mpsc::UnboundedSender<PatternItem>,
    ) {
        self.patterns
            .entry(pattern)
            .or_default()
            .push((sink_id, sink));
    }

    /// Removes one pattern sink; true when it was there and was the pattern's last.
    pub(crate) fn remove_pattern_subscriber(
        &mut self,
        pattern: &ChannelPattern,
        sink_id: u64,
    ) -> bool {
        let Some(sinks) = self.patterns.get_mut(pattern) else {
            return false;
        };
        let before = sinks.len();
        sinks.retain(|(id, _)| *id != sink_id);
        let removed = sinks.len() < before;
        if sinks.is_empty() {
            self.patterns.remove(pattern);
        }
        removed && !self.patterns.contains_key(pattern)
    }

    /// Calls on the channel go to this sink from now on.
    pub(crate) fn set_served(
        &mut self,
        channel: ChannelName,
        sink_id: u64,
        sink: mpsc::UnboundedSender<RawCall>,
    ) {
        self.served.insert(channel, (sink_id, sink));
    }

    /// Drops the channel's call sink if it is still this one.
    fn unserve(&mut self, channel: &ChannelName, sink_id: u64) {
        if self
            .served
            .get(channel)
            .is_some_and(|(id, _)| *id == sink_id)
        {
            self.served.remove(channel);
        }
    }

    pub(crate) fn watch_server_requests(&mut self, sink: mpsc::UnboundedSender<RawRequest>) {
        self.server_requests = Some(sink);
    }

    pub(crate) fn watch_notifications(&mut self, sink: mpsc::UnboundedSender<Notification>) {
        self.notifications.push(sink);
    }

    /// A new state feed starts with the current state.
    pub(crate) fn watch_state(&mut self, sink: mpsc::UnboundedSender<ConnectionState>) {
        if sink.unbounded_send(self.state.clone()).is_ok() {
            self.states.push(sink);
        }
    }

    /// The current connection state.
    pub(crate) fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// The connection's state changed (also used by the driver for [`ConnectionState::Closed`]).
    pub(crate) fn set_state(&mut self, state: ConnectionState) {
        self.state = state;
        broadcast(&mut self.states, &self.state);
    }

    // -----------------------------------------------------------------------------------------------------------
    // Events

    /// Routes one event of the machine. Server requests nobody here handles are refused with `NO_HANDLER` through
    /// the machine.
    pub(crate) fn on_event(
        &mut self,
        event: ClientEvent,
        machine: &mut ClientMachine,
        now: Timestamp,
    ) {
        match event {
            ClientEvent::Connected { app_id } => {
                tracing::info!(%app_id, "connected");
                self.set_state(ConnectionState::Connected { app_id });
            }
            ClientEvent::Response { id, message } => match self.waiting.remove(&id) {
                Some(Waiting::Reply(reply)) => {
                    let _ = reply.send(Ok(message));
                }
                Some(
                    Waiting::Subscribe { done, .. }
                    | Waiting::SubscribePattern { done, .. }
                    | Waiting::Serve { done, .. }
                    | Waiting::Unsubscribe { done: Some(done) },
                ) => {
                    let _ = done.send(Ok(()));
                }
                Some(Waiting::Unsubscribe { done: None }) | None => {}
            },
            ClientEvent::RequestFailed { id, reason } => self.failed(id, reason, machine),
            ClientEvent::ChannelEvent {
                channel,
                epoch,
                offset,
                event,
            } => {
                let item = SubscriptionItem::Event(ChannelEvent {
                    channel: channel.as_str().to_owned(),
                    epoch,
                    offset,
                    event,
                });
                self.deliver(&channel, &item);
                if let SubscriptionItem::Event(event) = item {
                    self.deliver_matching(&channel, &PatternItem::Event(event));
                }
            }
            ClientEvent::Resync { channel } => {
                tracing::warn!(%channel, "events were lost to this client; resync");
                self.deliver(&channel, &SubscriptionItem::Resync);
                let item = PatternItem::Resync {
                    channel: channel.as_str().to_owned(),
                };
                self.deliver_matching(&channel, &item);
            }
            ClientEvent::PatternLost { pattern, reason } => {
                tracing::warn!(%pattern, ?reason, "the server refused to resubscribe the pattern");
                if let Some(sinks) = self.patterns.remove(&pattern) {
                    let item = PatternItem::Lost(reason.into());
                    for (_, sink) in sinks {
                        let _ = sink.unbounded_send(item.clone());
                    }
                }
            }
            ClientEvent::SubscriptionLost { channel, reason } => {
                tracing::warn!(%channel, ?reason, "the server refused to resubscribe");
                self.deliver(&channel, &SubscriptionItem::Lost(reason.into()));
                self.channels.remove(&channel);
            }
            ClientEvent::ServeLost { channel, reason } => {
                tracing::warn!(%channel, ?reason, "the server refused to re-register serve");
                self.served.remove(&channel);
            }
            ClientEvent::ServerRequest {
                id,
                request_type,
                data,
            } => {
                let raw = RawRequest {
                    id,
                    request_type,
                    data,
                };
                let refused = match &self.server_requests {
                    Some(sink) => sink.unbounded_send(raw).err().map(|e| e.into_inner()),
                    None => Some(raw),
                };
                if let Some(raw) = refused {
                    self.server_requests = None;
                    let why = format!("no handler for {:?} here", raw.request_type);
                    refuse(machine, now, &raw.id, why);
                }
            }
            ClientEvent::CallRequest {
                id,
                channel,
                method,
                params,
                caller,
            } => {
                let raw = RawCall {
                    id,
                    channel: channel.as_str().to_owned(),
                    method,
                    params,
                    caller,
                };
                let refused = match self.served.get(&channel) {
                    Some((_, sink)) => sink.unbounded_send(raw).err().map(|e| e.into_inner()),
                    None => Some(raw),
                };
                if let Some(raw) = refused {
                    self.served.remove(&channel);
                    refuse(
                        machine,
                        now,
                        &raw.id,
                        format!("nobody here serves {channel}"),
                    );
                }
            }
            ClientEvent::Notification {
                notification_type,
                message,
                additional_data,
            } => {
                let item = Notification {
                    notification_type,
                    message,
                    additional_data,
                };
                broadcast(&mut self.notifications, &item);
            }
            ClientEvent::ServerError {
                id,
                code,
                message,
                details,
            } => {
                tracing::warn!(?id, code = code.as_str(), %message, ?details, "server error");
            }
            ClientEvent::Disconnected { code, reason } => {
                tracing::info!(code = code.as_u16(), %reason, "disconnected");
                self.set_state(ConnectionState::Disconnected {
                    code: code.as_u16(),
                    reason,
                });
            }
            ClientEvent::Reconnecting { attempt, delay } => {
                tracing::info!(attempt, ?delay, "reconnecting");
                self.set_state(ConnectionState::Reconnecting { attempt, delay });
            }
            ClientEvent::GaveUp { reason } => {
                let reason = describe(&reason);
                tracing::warn!(%reason, "gave up");
                self.set_state(ConnectionState::GaveUp { reason });
            }
            ClientEvent::ProtocolViolation { violation } => {
                tracing::warn!(?violation, "ignored a frame from the server");
            }
            other => tracing::debug!(?other, "unrouted client event"),
        }
    }

    /// A request ended without its answer.
    fn failed(&mut self, id: MessageId, reason: FailReason, machine: &ClientMachine) {
        match self.waiting.remove(&id) {
            Some(Waiting::Reply(reply)) => {
                let _ = reply.send(Err(reason.into()));
            }
            Some(Waiting::Subscribe {
                channel,
                sink_id,
                done,
            }) => {
                // Sent before the connection dropped, or superseded: the machine still wants the channel and
                // re-establishes it on its own.
                if machine.subscriptions().any(|wanted| *wanted == channel) {
                    let _ = done.send(Ok(()));
                    return;
                }
                self.remove_subscriber(&channel, sink_id);
                let error = RequestError::from(reason);
                self.deliver(&channel, &SubscriptionItem::Lost(error.clone()));
                self.channels.remove(&channel);
                let _ = done.send(Err(error));
            }
            Some(Waiting::SubscribePattern {
                pattern,
                sink_id,
                done,
            }) => {
                if machine
                    .pattern_subscriptions()
                    .any(|wanted| *wanted == pattern)
                {
                    let _ = done.send(Ok(()));
                    return;
                }
                self.remove_pattern_subscriber(&pattern, sink_id);
                let error = RequestError::from(reason);
                if let Some(sinks) = self.patterns.remove(&pattern) {
                    for (_, sink) in sinks {
                        let _ = sink.unbounded_send(PatternItem::Lost(error.clone()));
                    }
                }
                let _ = done.send(Err(error));
            }
            Some(Waiting::Unsubscribe { done }) => {
                let outcome = match RequestError::from(reason) {
                    e if e.code() == Some(ErrorCode::NotSubscribed) => Ok(()),
                    e => Err(e),
                };
                if let Some(done) = done {
                    let _ = done.send(outcome);
                }
            }
            Some(Waiting::Serve {
                channel,
                sink_id,
                done,
            }) => {
                // A `serve` on the wire when the connection dropped is re-registered by the machine.
                if reason == FailReason::Disconnected {
                    let _ = done.send(Ok(()));
                    return;
                }
                self.unserve(&channel, sink_id);
                let _ = done.send(Err(reason.into()));
            }
            None => {}
        }
    }

    /// Sends a copy to the sinks of every pattern that matches `channel`.
    fn deliver_matching(&mut self, channel: &ChannelName, item: &PatternItem) {
        if self.patterns.is_empty() {
            return;
        }
        for (pattern, sinks) in self.patterns.iter_mut() {
            if pattern.matches(channel) {
                sinks.retain(|(_, sink)| sink.unbounded_send(item.clone()).is_ok());
            }
        }
    }

    fn deliver(&mut self, channel: &ChannelName, item: &SubscriptionItem) {
        if let Some(sinks) = self.channels.get_mut(channel) {
            sinks.retain(|(_, sink)| sink.unbounded_send(item.clone()).is_ok());
        }
    }
}

/// Sends a copy to every sink, forgetting those whose stream is gone.
fn broadcast<T: Clone>(sinks: &mut Vec<mpsc::UnboundedSender<T>>, item: &T) {
    sinks.retain(|sink| sink.unbounded_send(item.clone()).is_ok());
}

/// Refuses a server request or call nobody here handles, so the asking side need not wait out its timeout.
fn refuse(machine: &mut ClientMachine, now: Timestamp, id: &MessageId, why: String) {
    let refusal = HandlerError::new(ErrorCode::NoHandler.as_str(), why);
    if let Err(e) = machine.respond(now, id, Err(refusal)) {
        tracing::debug!(%id, %e, "could not refuse a server request");
    }
}

fn describe(reason: &ReconnectGiveUpReason) -> String {
    match reason {
        ReconnectGiveUpReason::PolicyViolation { reason } => {
            format!("the server closed the connection for a policy violation: {reason}")
        }
        ReconnectGiveUpReason::Rejected { reason } => {
            format!("the server refused the connection: {reason}")
        }
        ReconnectGiveUpReason::RetriesExhausted => "the reconnect schedule ran out".to_owned(),
        other => format!("{other:?}"),
    }
}
