//! [`Command`]: what the handles ask of the background task, over one unbounded channel. The task ends when every
//! sender is gone (every handle and stream dropped) or on [`Command::Close`].

use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use serde_json::{Map, Value};
use switchboard_protocol::client::HandlerError;
use switchboard_protocol::wire::{IdempotencyKey, MessageId, ServerMessage};

use super::channel_event::{PatternItem, SubscriptionItem};
use super::connection_state::ConnectionState;
use super::error::RequestError;
use super::handoff::{RawCall, RawRequest};
use super::notification::Notification;

/// Where a plain request's answer goes.
pub(crate) type ReplySlot = oneshot::Sender<Result<ServerMessage, RequestError>>;
/// Where the outcome of a registration (subscribe, serve, unsubscribe) goes.
pub(crate) type Done = oneshot::Sender<Result<(), RequestError>>;

/// One request to the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A request answered by one message.
    Request {
        /// What to send.
        op: Op,
        /// Where the answer goes.
        reply: ReplySlot,
    },
    /// Deliver a channel's events to `sink`, subscribing if nobody else here already does.
    Subscribe {
        /// The channel, unchecked.
        channel: String,
        /// Ask for the channel's `join`/`leave` notifications.
        presence: bool,
        /// Identifies the sink for [`Command::Unsubscribe`].
        sink_id: u64,
        /// Where the channel's events go.
        sink: mpsc::UnboundedSender<SubscriptionItem>,
        /// Told once the subscription stands (or failed).
        done: Done,
    },
    /// Stop delivering to one sink; unsubscribe when it was the channel's last.
    Unsubscribe {
        /// The channel.
        channel: String,
        /// The sink.
        sink_id: u64,
        /// Told once the `unsubscribe` is answered, when the caller waits.
        done: Option<Done>,
    },
    /// Subscribe `sink` to a pattern ([`Client::subscribe_pattern`](super::Client::subscribe_pattern)).
    SubscribePattern {
        pattern: String,
        sink_id: u64,
        sink: mpsc::UnboundedSender<PatternItem>,
        done: Done,
    },
    /// Drop one pattern sink; unsubscribe when it was the pattern's last.
    UnsubscribePattern {
        pattern: String,
        sink_id: u64,
        done: Option<Done>,
    },
    /// Serve a channel: its calls go to `sink`.
    Serve {
        /// The channel, unchecked.
        channel: String,
        /// Identifies the registration, so an old failure does not drop a newer sink.
        sink_id: u64,
        /// Where the calls go.
        sink: mpsc::UnboundedSender<RawCall>,
        /// Told once the server confirmed (or refused).
        done: Done,
    },
    /// Answer a server request or a call.
    Respond {
        /// The server request's id.
        id: MessageId,
        /// The answer.
        result: Result<Value, HandlerError>,
    },
    /// Route server requests (other than calls) to this sink, replacing any earlier one.
    WatchServerRequests(mpsc::UnboundedSender<RawRequest>),
    /// Copy notifications to this sink.
    WatchNotifications(mpsc::UnboundedSender<Notification>),
    /// Copy connection state changes to this sink, starting with the current state.
    WatchState(mpsc::UnboundedSender<ConnectionState>),
    /// Close the client: the connection closes with 1000 and pending requests fail with
    /// [`RequestError::Closed`]. `done` is told once the close handshake is over (or timed out).
    Close {
        /// Told when the task has finished.
        done: oneshot::Sender<()>,
    },
}

/// The requests answered by one message.
#[derive(Debug)]
pub(crate) enum Op {
    /// Any request type.
    Custom {
        /// The `type`.
        type_name: String,
        /// The `data`.
        data: Map<String, Value>,
        /// Overrides the default request timeout.
        timeout: Option<Duration>,
    },
    /// `publish`.
    Publish {
        /// The channel.
        channel: String,
        /// The event.
        event: Value,
        /// Make it the channel's state.
        retain: bool,
        /// The idempotency key, if any.
        key: Option<IdempotencyKey>,
    },
    /// `publish` with `events`.
    PublishBatch {
        /// The channel.
        channel: String,
        /// The events.
        events: Vec<Value>,
        /// Make the last one the channel's state.
        retain_last: bool,
        /// The batch's idempotency key, if any.
        key: Option<IdempotencyKey>,
    },
    /// `get_state`.
    GetState {
        /// The channel.
        channel: String,
    },
    /// `presence`.
    Presence {
        /// The channel.
        channel: String,
    },
    /// `call`.
    Call {
        /// The served channel.
        channel: String,
        /// The method.
        method: String,
        /// The parameters.
        params: Option<Value>,
    },
    /// `create_session`.
    CreateSession {
        /// The session's metadata.
        metadata: Option<Value>,
    },
    /// `close_session`.
    CloseSession {
        /// The session.
        session_id: String,
    },
}
