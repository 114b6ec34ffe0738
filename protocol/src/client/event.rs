//! What the client machine tells the application: [`ClientEvent`], and why requests fail ([`FailReason`]).

use alloc::string::String;
use core::time::Duration;
use serde_json::{Map, Value};

use crate::wire::{ChannelName, CloseCode, DecodeError, ErrorCode, MessageId, ServerMessage};

/// Something the application should know about, out of [`Output::Event`](super::Output::Event).
///
/// Every id returned by a request command ends in exactly one [`Response`](Self::Response) or
/// [`RequestFailed`](Self::RequestFailed).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server greeted a new connection; commands flow again. Comes before the machine's resubscriptions and the
    /// offline queue go out.
    Connected {
        /// The connection's name in the server's registry (the `caller` other clients' handlers see).
        app_id: String,
    },
    /// A request was answered.
    Response {
        /// The request's id.
        id: MessageId,
        /// The answer: the request's `<type>_res` message (never [`ServerMessage::Error`], which is a
        /// [`RequestFailed`](Self::RequestFailed)).
        message: ServerMessage,
    },
    /// A request ended without an answer, or with an `error`.
    RequestFailed {
        /// The request's id.
        id: MessageId,
        /// Why.
        reason: FailReason,
    },
    /// An event on a subscribed channel. Per channel and epoch, offsets strictly increase and none is delivered
    /// twice, across reconnects too.
    ChannelEvent {
        /// The channel.
        channel: ChannelName,
        /// The channel's epoch: a new epoch means its history started afresh.
        epoch: String,
        /// The event's offset.
        offset: u64,
        /// The event.
        event: Value,
    },
    /// A resubscription could not recover the events missed while offline (`recovered: false`, or an answer that
    /// moves the channel on from the last position seen without replaying what lies between), or an event arrived
    /// in a new epoch (the channel's history started afresh): some events are lost to this client. Fetch the
    /// channel's state (`get_state`) to catch up; live events keep coming.
    Resync {
        /// The channel.
        channel: ChannelName,
    },
    /// The server refused to re-establish a subscription on reconnect (e.g. `FORBIDDEN`), or refused a `subscribe`
    /// whose request had already timed out (its late `error` also comes as [`ServerError`](Self::ServerError)); the
    /// channel is no longer subscribed.
    SubscriptionLost {
        /// The channel.
        channel: ChannelName,
        /// The server's refusal.
        reason: FailReason,
    },
    /// The server refused to re-establish a pattern subscription on reconnect (e.g. `FORBIDDEN`), or ended it
    /// (`subscription_ended` after a narrowing `refresh`); the pattern is no longer subscribed.
    PatternLost {
        /// The pattern.
        pattern: crate::wire::ChannelPattern,
        /// The server's refusal.
        reason: FailReason,
    },
    /// The server refused to re-establish a `serve` registration on reconnect, or refused a `serve` whose request
    /// had already timed out; calls on the channel no longer come here.
    ServeLost {
        /// The channel.
        channel: ChannelName,
        /// The server's refusal.
        reason: FailReason,
    },
    /// The server warned that the connection's token expires soon (a `token_expiring` notification): get a fresh
    /// token and pass it to [`ClientMachine::refresh`](super::ClientMachine::refresh), or the server closes the
    /// connection with 4401 when it expires. Reconnects should present the fresh token too.
    TokenExpiring {
        /// How long until the server closes the connection.
        expires_in: Duration,
    },
    /// A `server_request` other than a routed call. Answer with
    /// [`ClientMachine::respond`](super::ClientMachine::respond).
    ServerRequest {
        /// Its id, to pass to `respond`.
        id: MessageId,
        /// What is asked.
        request_type: String,
        /// The rest of its `data`.
        data: Map<String, Value>,
    },
    /// A `call` routed to this client, on a channel it serves. Answer with
    /// [`ClientMachine::respond`](super::ClientMachine::respond): `Ok(result)` or `Err(HandlerError)`.
    CallRequest {
        /// Its id, to pass to `respond`.
        id: MessageId,
        /// The served channel.
        channel: ChannelName,
        /// The method.
        method: String,
        /// The parameters (`null` when none).
        params: Value,
        /// Who called: the calling connection's `app_id` and whom its credential names, when the server said.
        caller: Option<crate::wire::Caller>,
    },
    /// A `notification`.
    Notification {
        /// What kind.
        notification_type: String,
        /// Human text.
        message: Option<String>,
        /// Anything else.
        additional_data: Option<Value>,
    },
    /// An `error` that answers no pending request: no `message_id` (about a frame the server could not read), or
    /// one that is no longer pending (a late answer to a request that timed out).
    ServerError {
        /// The `message_id`, if any.
        id: Option<MessageId>,
        /// The code.
        code: ErrorCode,
        /// Human text.
        message: String,
        /// Details.
        details: Option<Value>,
    },
    /// The connection is down; the machine will reconnect ([`Reconnecting`](Self::Reconnecting)) or give up
    /// ([`GaveUp`](Self::GaveUp)). Requests in flight fail right after with [`FailReason::Disconnected`].
    Disconnected {
        /// The close code (4008 when the machine found the connection silent, 1006 when it dropped).
        code: CloseCode,
        /// The close reason.
        reason: String,
    },
    /// The next connection attempt is scheduled.
    Reconnecting {
        /// Which retry of the current streak, from 1.
        attempt: u32,
        /// How long until [`Output::Connect`](super::Output::Connect).
        delay: Duration,
    },
    /// The machine stopped for good: every pending request has failed with [`FailReason::Closed`].
    GaveUp {
        /// Why.
        reason: ReconnectGiveUpReason,
    },
    /// The server sent something the machine could not use; it was ignored.
    ProtocolViolation {
        /// What was wrong.
        violation: Violation,
    },
}

/// Why a request ended without a response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FailReason {
    /// No answer within its timeout, counted from the command.
    TimedOut,
    /// It was sent, and the connection dropped before the answer came. It is not re-sent: it may not be idempotent.
    Disconnected,
    /// The server answered with an `error`.
    Error {
        /// The code.
        code: ErrorCode,
        /// Human text.
        message: String,
        /// Details (e.g. `retry_after_ms` for `RATE_LIMITED`).
        details: Option<Value>,
    },
    /// It was issued offline and the offline queue was full (by count or bytes).
    QueueFull,
    /// The client was closed, or gave up, before the request was answered.
    Closed,
}

/// Why the machine gave up: it stops connecting and reconnecting for good ([`ClientEvent::GaveUp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconnectGiveUpReason {
    /// The server closed the connection with 1008 (policy violation, e.g. authentication).
    PolicyViolation {
        /// The close reason.
        reason: String,
    },
    /// The driver reported a connect failure that retrying cannot fix ([`ConnectFailure::Rejected`]).
    ///
    /// [`ConnectFailure::Rejected`]: super::ConnectFailure::Rejected
    Rejected {
        /// The driver's description.
        reason: String,
    },
    /// The backoff schedule ran out of attempts or time.
    RetriesExhausted,
}

/// A server frame the machine ignored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Violation {
    /// It could not be decoded.
    Undecodable(DecodeError),
    /// A message that makes no sense now: anything but `connected` before the greeting, a second greeting, a
    /// `server_request` without an id, or a client-side type.
    Unexpected {
        /// Its `type`.
        type_name: String,
    },
    /// A `server_request` reusing the id of one still awaiting an answer.
    DuplicateServerRequest {
        /// The id.
        id: MessageId,
    },
    /// An answer naming a pending `subscribe`, `unsubscribe` or `serve` that is not that request's `<type>_res` for
    /// the same channel. It does not end the request, which still waits for its answer (or its timeout), and it
    /// changes nothing in the subscriptions.
    MismatchedAnswer {
        /// The request it names.
        id: MessageId,
        /// Its `type`.
        type_name: String,
    },
}

/// A failed answer to a server request, for [`ClientMachine::respond`](super::ClientMachine::respond): sent as
/// `{error: {code, message}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    /// A machine-readable code, e.g. `"NOT_FOUND"`.
    pub code: String,
    /// Human text.
    pub message: String,
}

impl HandlerError {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError {
            code: code.into(),
            message: message.into(),
        }
    }
}
