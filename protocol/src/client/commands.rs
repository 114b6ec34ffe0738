//! The application's commands. Each takes `now`, queues its work and returns at once; none fails for want of
//! draining or because of the network (those end the request with an event instead).

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Map, Value};

use super::ClientMachine;
use super::error::{ClientError, UsageError};
use super::event::HandlerError;
use super::output::Output;
use super::requests::{Kind, ServerRequestKind};
use super::state::Happening;
use crate::time::Timestamp;
use crate::wire::{ChannelName, ClientFrame, ClientMessage, IdempotencyKey, MessageId};

/// Types [`ClientMachine::request`] refuses: the answers, and the requests whose bookkeeping needs their own command.
const RESERVED_TYPES: [&str; 5] = [
    "subscribe",
    "unsubscribe",
    "serve",
    "server_response",
    "server_pong",
];

impl ClientMachine {
    /// Sends any request: `ping`, `create_session`, or a type the server's application registered. Answered by
    /// [`Response`](super::ClientEvent::Response) or [`RequestFailed`](super::ClientEvent::RequestFailed) with the
    /// returned id. `timeout` defaults to [`ClientConfig::request_timeout`](super::ClientConfig::request_timeout)
    /// and runs from now, offline time included; `Duration::MAX` never times out.
    pub fn request(
        &mut self,
        now: Timestamp,
        request_type: &str,
        data: Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        if request_type.is_empty() || RESERVED_TYPES.contains(&request_type) {
            return Err(UsageError::ReservedType {
                type_name: String::from(request_type),
            }
            .into());
        }
        let message = ClientMessage::Custom {
            type_name: String::from(request_type),
            data,
        };
        self.issue(now, message, Kind::Plain, timeout)
    }

    /// Subscribes to a channel. From the moment the `subscribe` goes out, the machine keeps the channel
    /// subscribed across reconnects, recovering missed events with `since`, until [`unsubscribe`](Self::unsubscribe)
    /// or until the server refuses it. Subscribing again to a wanted channel resumes from the last position seen.
    pub fn subscribe(&mut self, now: Timestamp, channel: &str) -> Result<MessageId, ClientError> {
        self.subscribe_with(now, channel, false)
    }

    /// [`subscribe`](Self::subscribe), asking with `presence` for `join`/`leave` notifications of the channel's
    /// members (they arrive as [`ClientEvent::Notification`](super::ClientEvent::Notification)s); resubscriptions ask again.
    pub fn subscribe_with(
        &mut self,
        now: Timestamp,
        channel: &str,
        presence: bool,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let channel = channel_name(channel)?;
        let since = self
            .subscriptions
            .since(&channel)
            .or_else(|| self.patterns.position(&channel));
        self.subscriptions.set_presence(&channel, presence);
        let message = ClientMessage::Subscribe {
            channel: channel.clone(),
            since,
            presence,
        };
        self.issue(now, message, Kind::Subscribe(channel), None)
    }

    /// Unsubscribes: once the `unsubscribe` goes out, no more events of the channel are delivered and its position
    /// is forgotten.
    pub fn unsubscribe(&mut self, now: Timestamp, channel: &str) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let channel = channel_name(channel)?;
        let message = ClientMessage::Unsubscribe {
            channel: channel.clone(),
        };
        self.issue(now, message, Kind::Unsubscribe(channel), None)
    }

    /// Subscribes to every channel `pattern` matches, existing or made later (PROTOCOL §3.2): their events arrive as
    /// [`ChannelEvent`](super::ClientEvent::ChannelEvent)s, each with its own channel and offset. The machine keeps
    /// the pattern subscribed across reconnects with its own map of positions per channel as `since`, so each
    /// channel's events continue without gap or repeat, until [`unsubscribe_pattern`](Self::unsubscribe_pattern)
    /// or a refusal.
    pub fn subscribe_pattern(
        &mut self,
        now: Timestamp,
        pattern: &str,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let pattern = channel_pattern(pattern)?;
        let message = ClientMessage::SubscribePattern {
            since: self.patterns.since(&pattern),
            pattern: pattern.clone(),
        };
        self.issue(now, message, Kind::SubscribePattern(pattern), None)
    }

    /// Ends a pattern subscription: once the `unsubscribe` goes out, events reaching the client only by it stop.
    pub fn unsubscribe_pattern(
        &mut self,
        now: Timestamp,
        pattern: &str,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let pattern = channel_pattern(pattern)?;
        let message = ClientMessage::UnsubscribePattern {
            pattern: pattern.clone(),
        };
        self.issue(now, message, Kind::UnsubscribePattern(pattern), None)
    }

    /// Publishes an event (any JSON value but `null`); `retain` makes it the channel's state.
    pub fn publish(
        &mut self,
        now: Timestamp,
        channel: &str,
        event: Value,
        retain: bool,
    ) -> Result<MessageId, ClientError> {
        self.publish_keyed(now, channel, event, retain, None)
    }

    /// [`publish`](Self::publish) with an idempotency key: the server answers a publish whose key the channel saw
    /// within its dedupe window with the original offset and `duplicate: true`, and publishes nothing. Resending a
    /// publish that failed with [`FailReason::Disconnected`](super::FailReason::Disconnected) under the same key
    /// thus never lands twice.
    pub fn publish_keyed(
        &mut self,
        now: Timestamp,
        channel: &str,
        event: Value,
        retain: bool,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let channel = channel_name(channel)?;
        if event.is_null() {
            return Err(UsageError::NullEvent.into());
        }
        let message = ClientMessage::Publish {
            channel,
            event,
            retain,
            idempotency_key,
        };
        self.issue(now, message, Kind::Plain, None)
    }

    /// Publishes `events` at consecutive offsets, all or none (`publish_res` with `first_offset` and
    /// `last_offset`); `retain_last` makes the last one the channel's state. Refuses locally what the server
    /// would refuse whole: no events, more than [`MAX_BATCH_EVENTS`](crate::wire::MAX_BATCH_EVENTS), a `null`.
    pub fn publish_batch(
        &mut self,
        now: Timestamp,
        channel: &str,
        events: Vec<Value>,
        retain_last: bool,
    ) -> Result<MessageId, ClientError> {
        self.publish_batch_keyed(now, channel, events, retain_last, None)
    }

    /// [`publish_batch`](Self::publish_batch) with an idempotency key for the whole batch: a batch whose key the
    /// channel saw within the server's dedupe window is answered with the original offsets and `duplicate: true`.
    pub fn publish_batch_keyed(
        &mut self,
        now: Timestamp,
        channel: &str,
        events: Vec<Value>,
        retain_last: bool,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let channel = channel_name(channel)?;
        if events.is_empty() || events.len() > crate::wire::MAX_BATCH_EVENTS {
            return Err(UsageError::BadBatch { index: None }.into());
        }
        if let Some(index) = events.iter().position(Value::is_null) {
            return Err(UsageError::BadBatch { index: Some(index) }.into());
        }
        let message = ClientMessage::PublishBatch {
            channel,
            events,
            retain_last,
            idempotency_key,
        };
        self.issue(now, message, Kind::Plain, None)
    }

    /// Asks for a channel's retained state (`get_state_res`: epoch, offset, state).
    pub fn get_state(&mut self, now: Timestamp, channel: &str) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let channel = channel_name(channel)?;
        self.issue(now, ClientMessage::GetState { channel }, Kind::Plain, None)
    }

    /// Asks who is on a channel and whether anyone serves it (`presence_res`: count, serving, members).
    pub fn presence(&mut self, now: Timestamp, channel: &str) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let channel = channel_name(channel)?;
        self.issue(now, ClientMessage::Presence { channel }, Kind::Plain, None)
    }

    /// Calls a method on whoever serves the channel (`call_res` with the result, or an `error`).
    pub fn call(
        &mut self,
        now: Timestamp,
        channel: &str,
        method: &str,
        params: Option<Value>,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let channel = channel_name(channel)?;
        let message = ClientMessage::Call {
            channel,
            method: String::from(method),
            params,
        };
        self.issue(now, message, Kind::Plain, None)
    }

    /// Serves a channel: the server routes its `call`s here as [`CallRequest`](super::ClientEvent::CallRequest)s.
    /// The machine re-registers it on every connection until the server refuses it.
    pub fn serve(&mut self, now: Timestamp, channel: &str) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let channel = channel_name(channel)?;
        let message = ClientMessage::Serve {
            channel: channel.clone(),
        };
        self.issue(now, message, Kind::Serve(channel), None)
    }

    /// Presents a fresh token for the open connection (a `refresh`): answered by
    /// [`Response`](super::ClientEvent::Response) with `refresh_res` when the server took it, or by
    /// [`RequestFailed`](super::ClientEvent::RequestFailed) with `FORBIDDEN` when it did not (the connection keeps
    /// its old grants). Offline, it waits in the queue like any request; the driver should present the same token
    /// when it reconnects anyway.
    pub fn refresh(&mut self, now: Timestamp, token: &str) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let message = ClientMessage::Refresh {
            token: String::from(token),
        };
        self.issue(now, message, Kind::Plain, None)
    }

    /// Opens a session on the server (`create_session_res` with its id). Sessions end with the connection.
    pub fn create_session(
        &mut self,
        now: Timestamp,
        metadata: Option<Value>,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        self.issue(
            now,
            ClientMessage::CreateSession { metadata },
            Kind::Plain,
            None,
        )
    }

    /// Closes a session.
    pub fn close_session(
        &mut self,
        now: Timestamp,
        session_id: &str,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let message = ClientMessage::CloseSession {
            session_id: String::from(session_id),
        };
        self.issue(now, message, Kind::Plain, None)
    }

    /// Answers a [`ServerRequest`](super::ClientEvent::ServerRequest) or
    /// [`CallRequest`](super::ClientEvent::CallRequest) of the open connection with a `server_response`.
    ///
    /// For a call, `Ok(result)` is sent as `{result}` and `Err(e)` as `{error: {code, message}}`, which the server
    /// hands the caller as `call_res` or `error`. For other requests, an `Ok` object is sent as the `data` (with
    /// `response_type` set to the request type unless present), another `Ok` value as `{response_type, result}`,
    /// and `Err(e)` as `{response_type, error: {code, message}}`.
    pub fn respond(
        &mut self,
        now: Timestamp,
        id: &MessageId,
        result: Result<Value, HandlerError>,
    ) -> Result<(), ClientError> {
        self.ensure_live()?;
        // Forget what the server has already given up on.
        self.server_requests.expire(now);
        let Some(kind) = self.server_requests.get(id) else {
            return Err(UsageError::UnknownServerRequest { id: id.clone() }.into());
        };
        let data = response_data(kind, result);
        let frame = ClientFrame {
            message_id: id.clone(),
            message: ClientMessage::ServerResponse { data },
        }
        .encode();
        self.check_size(&frame)?;
        self.server_requests.resolve(id);
        self.outputs.push_back(Output::Transmit(frame));
        Ok(())
    }

    /// Closes the client for good: the connection closes with 1000 (no reconnect), every pending request fails
    /// with [`FailReason::Closed`](super::FailReason::Closed), and later commands are refused. Idempotent.
    pub fn close(&mut self, now: Timestamp) {
        self.apply(now, Happening::CloseRequested);
    }
}

fn channel_pattern(pattern: &str) -> Result<crate::wire::ChannelPattern, UsageError> {
    crate::wire::ChannelPattern::new(pattern).map_err(|reason| UsageError::InvalidChannel {
        name: String::from(pattern),
        reason,
    })
}

fn channel_name(name: &str) -> Result<ChannelName, UsageError> {
    ChannelName::new(name).map_err(|reason| UsageError::InvalidChannel {
        name: String::from(name),
        reason,
    })
}

/// The `data` of a `server_response`.
pub(super) fn response_data(
    kind: &ServerRequestKind,
    result: Result<Value, HandlerError>,
) -> Map<String, Value> {
    let mut data = Map::new();
    let error = |e: HandlerError| {
        let mut inner = Map::new();
        inner.insert(String::from("code"), Value::String(e.code));
        inner.insert(String::from("message"), Value::String(e.message));
        Value::Object(inner)
    };
    match (kind, result) {
        (ServerRequestKind::Call, Ok(result)) => {
            data.insert(String::from("result"), result);
        }
        (ServerRequestKind::Call, Err(e)) => {
            data.insert(String::from("error"), error(e));
        }
        (ServerRequestKind::Other(request_type), result) => {
            match result {
                Ok(Value::Object(fields)) => data = fields,
                Ok(result) => {
                    data.insert(String::from("result"), result);
                }
                Err(e) => {
                    data.insert(String::from("error"), error(e));
                }
            }
            if !data.contains_key("response_type") {
                data.insert(
                    String::from("response_type"),
                    Value::String(request_type.clone()),
                );
            }
        }
    }
    data
}
