//! The async [`Client`]: the sans-IO client machine of `switchboard-protocol` driven on any [`Runtime`].
//!
//! [`Client::connect`] returns at once; a background task (spawned with [`Runtime::spawn`]) owns the machine and the
//! WebSocket, connects, reconnects with backoff, resubscribes with `since` so no event is missed or repeated, and
//! answers the server's pings. The handle is cheap to clone; every method talks to the task over a channel.
//!
//! - **Requests** (each ends in its answer or a [`RequestError`]): [`request`](Client::request),
//!   [`publish`](Client::publish), [`get_state`](Client::get_state), [`call`](Client::call),
//!   [`create_session`](Client::create_session), [`close_session`](Client::close_session).
//! - **Streams**: [`subscribe`](Client::subscribe) → [`Subscription`] of a channel's events;
//!   [`serve`](Client::serve) → [`CallStream`] of the calls routed here; [`server_requests`](Client::server_requests)
//!   → [`ServerRequests`]; [`notifications`](Client::notifications); [`state_changes`](Client::state_changes).
//!   Calls and server requests come with a [`Responder`].
//! - **End**: [`close`](Client::close) closes with 1000 and fails what is pending with [`RequestError::Closed`].
//!   Dropping every handle and stream does the same.
//!
//! ```no_run
//! # async fn run<R: switchboard_runtime::Runtime>(runtime: R) -> Result<(), Box<dyn std::error::Error>> {
//! use futures_util::StreamExt;
//! use switchboard_runtime::client::{Client, ClientOptions, SubscriptionItem};
//!
//! let client = Client::connect(runtime, "ws://127.0.0.1:8000/api/ws", ClientOptions::default())?;
//! let mut events = client.subscribe("projects/p1").await?;
//! let offset = client.publish("projects/p1", serde_json::json!({"step": 1}), false).await?;
//! while let Some(SubscriptionItem::Event(e)) = events.next().await {
//!     println!("{} #{}: {}", e.channel, e.offset, e.event);
//!     if e.offset >= offset { break; }
//! }
//! client.close().await;
//! # Ok(()) }
//! ```

pub(crate) mod alarm;
mod channel_event;
mod command;
mod connection_state;
mod dial;
mod driver;
mod error;
mod feed;
mod handoff;
mod link;
mod notification;
mod options;
mod pattern_subscription;
mod presence;
mod responder;
mod routes;
mod serve;
mod server_request;
mod subscription;
mod target;
mod token_provider;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use serde_json::{Map, Value};
use switchboard_protocol::wire::ServerMessage;

pub use channel_event::{ChannelEvent, PatternItem, SubscriptionItem};
pub use connection_state::ConnectionState;
pub use error::{ConnectError, RequestError};
pub use feed::{Feed, Notifications, StateChanges};
pub use notification::Notification;
pub use options::ClientOptions;
pub use pattern_subscription::PatternSubscription;
pub use presence::{Member, PresenceChange, PresenceReply};
pub use responder::Responder;
pub use serve::{CallStream, IncomingCall};
pub use server_request::{IncomingRequest, ServerRequests};
pub use subscription::Subscription;
pub use switchboard_protocol::client::{ClientConfig, HandlerError};
pub use switchboard_protocol::wire::IdempotencyKey;
pub use token_provider::TokenProvider;

use command::{Command, Op};
use driver::Driver;
use target::Target;

use crate::Runtime;

/// The server's answer to [`Client::get_state`] (`get_state_res`): a channel's position and retained state.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStateReply {
    /// The channel.
    pub channel: String,
    /// The channel's epoch.
    pub epoch: String,
    /// The channel's current offset.
    pub offset: u64,
    /// The retained event, `null` when none.
    pub state: Value,
}

/// Where a [`Client::publish_with_key`] was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyedPublish {
    /// The event's offset (the original's, for a duplicate).
    pub offset: u64,
    /// The key was seen within the server's dedupe window: nothing was published this time.
    pub duplicate: bool,
}

/// Where a [`Client::publish_batch_with_key`] was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyedBatch {
    /// The events' offsets (the original batch's, for a duplicate).
    pub offsets: std::ops::RangeInclusive<u64>,
    /// The key was seen within the server's dedupe window: nothing was published this time.
    pub duplicate: bool,
}

/// A handle to a Switchboard connection that survives reconnects. Clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    /// The state the client's task ended in, once it has ended.
    last_state: Arc<Mutex<Option<ConnectionState>>>,
}

impl Client {
    /// Starts a client for `url` (`ws://host:port/api/ws`, or `wss://` with the feature `tls`, trusting
    /// [`ClientOptions::tls`]) and returns at once; the connection is made in the background, and requests made
    /// before it is up wait in the offline queue. Fails only for a URL or token it can never use.
    pub fn connect<R: Runtime>(
        runtime: R,
        url: &str,
        options: ClientOptions,
    ) -> Result<Client, ConnectError> {
        let target = Target::parse(url, options.token.as_deref())?;
        #[cfg(feature = "tls")]
        let target = target.trusting(options.tls.clone());
        let (commands, receiver) = mpsc::unbounded();
        let last_state = Arc::new(Mutex::new(None));
        let driver = Driver::new(
            runtime.clone(),
            target,
            options,
            receiver,
            last_state.clone(),
        );
        runtime.spawn(Box::pin(driver.run()));
        Ok(Client {
            commands,
            last_state,
        })
    }

    /// Sends any request (`ping`, or a type the server's application registered) and waits for its answer, the
    /// `<type>_res` message. `timeout` overrides the configured request timeout.
    pub async fn request(
        &self,
        request_type: &str,
        data: Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<ServerMessage, RequestError> {
        self.ask(Op::Custom {
            type_name: request_type.to_owned(),
            data,
            timeout,
        })
        .await
    }

    /// Publishes an event (any JSON value but `null`); `retain` makes it the channel's state. Returns its offset.
    pub async fn publish(
        &self,
        channel: &str,
        event: Value,
        retain: bool,
    ) -> Result<u64, RequestError> {
        Ok(self.publish_op(channel, event, retain, None).await?.offset)
    }

    /// [`publish`](Self::publish) with an idempotency key: when the channel saw `key` within the server's dedupe
    /// window, nothing is published and the answer is the original's offset, marked
    /// [`KeyedPublish::duplicate`]. Publish again with the same key after a [`RequestError`] that leaves it unknown
    /// whether the first landed (a lost connection, a timeout): it lands once.
    pub async fn publish_with_key(
        &self,
        channel: &str,
        event: Value,
        retain: bool,
        key: IdempotencyKey,
    ) -> Result<KeyedPublish, RequestError> {
        self.publish_op(channel, event, retain, Some(key)).await
    }

    async fn publish_op(
        &self,
        channel: &str,
        event: Value,
        retain: bool,
        key: Option<IdempotencyKey>,
    ) -> Result<KeyedPublish, RequestError> {
        let op = Op::Publish {
            channel: channel.to_owned(),
            event,
            retain,
            key,
        };
        match self.ask(op).await? {
            ServerMessage::PublishRes {
                offset, duplicate, ..
            } => Ok(KeyedPublish { offset, duplicate }),
            other => Err(unexpected(&other)),
        }
    }

    /// Publishes `events` at consecutive offsets in one request, all or none; `retain_last` makes the last one
    /// the channel's state. Returns the first and last offsets. No events, more than
    /// [`MAX_BATCH_EVENTS`](switchboard_protocol::wire::MAX_BATCH_EVENTS) or a `null` among them is refused
    /// before anything is sent.
    pub async fn publish_batch(
        &self,
        channel: &str,
        events: Vec<Value>,
        retain_last: bool,
    ) -> Result<std::ops::RangeInclusive<u64>, RequestError> {
        let published = self
            .publish_batch_op(channel, events, retain_last, None)
            .await?;
        Ok(published.offsets)
    }

    /// [`publish_batch`](Self::publish_batch) with one idempotency key for the batch: when the channel saw `key`
    /// within the server's dedupe window, nothing is published and the answer is the original's offsets, marked
    /// [`KeyedBatch::duplicate`]. Send it again with the same key after a lost connection or a timeout: it lands
    /// once.
    pub async fn publish_batch_with_key(
        &self,
        channel: &str,
        events: Vec<Value>,
        retain_last: bool,
        key: IdempotencyKey,
    ) -> Result<KeyedBatch, RequestError> {
        self.publish_batch_op(channel, events, retain_last, Some(key))
            .await
    }

    async fn publish_batch_op(
        &self,
        channel: &str,
        events: Vec<Value>,
        retain_last: bool,
        key: Option<IdempotencyKey>,
    ) -> Result<KeyedBatch, RequestError> {
        let op = Op::PublishBatch {
            channel: channel.to_owned(),
            events,
            retain_last,
            key,
        };
        match self.ask(op).await? {
            ServerMessage::PublishBatchRes {
                first_offset,
                last_offset,
                duplicate,
                ..
            } => Ok(KeyedBatch {
                offsets: first_offset..=last_offset,
                duplicate,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// The channel's retained state, epoch and current offset.
    pub async fn get_state(&self, channel: &str) -> Result<ChannelStateReply, RequestError> {
        let op = Op::GetState {
            channel: channel.to_owned(),
        };
        match self.ask(op).await? {
            ServerMessage::GetStateRes {
                channel,
                epoch,
                offset,
                state,
            } => Ok(ChannelStateReply {
                channel: channel.as_str().to_owned(),
                epoch,
                offset,
                state,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// Who is on a channel (subscribes to or serves it) and whether anyone serves it — whether a `call` would reach a
    /// handler right now.
    pub async fn presence(&self, channel: &str) -> Result<PresenceReply, RequestError> {
        let op = Op::Presence {
            channel: channel.to_owned(),
        };
        match self.ask(op).await? {
            ServerMessage::PresenceRes {
                channel,
                count,
                serving,
                members,
            } => Ok(PresenceReply {
                channel: channel.as_str().to_owned(),
                count,
                serving,
                members,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// Calls `method` on whoever serves the channel and returns its result. `params` of `null` sends none. A
    /// refusal by the handler is [`RequestError::Server`] with its code; nobody serving is `NO_HANDLER`.
    pub async fn call(
        &self,
        channel: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, RequestError> {
        let op = Op::Call {
            channel: channel.to_owned(),
            method: method.to_owned(),
            params: (!params.is_null()).then_some(params),
        };
        match self.ask(op).await? {
            ServerMessage::CallRes { result, .. } => Ok(result),
            other => Err(unexpected(&other)),
        }
    }

    /// Opens a session on the server and returns its id. Sessions end with the connection.
    pub async fn create_session(&self, metadata: Option<Value>) -> Result<String, RequestError> {
        match self.ask(Op::CreateSession { metadata }).await? {
            ServerMessage::CreateSessionRes { session_id } => Ok(session_id),
            other => Err(unexpected(&other)),
        }
    }

    /// Closes a session.
    pub async fn close_session(&self, session_id: &str) -> Result<(), RequestError> {
        let op = Op::CloseSession {
            session_id: session_id.to_owned(),
        };
        match self.ask(op).await? {
            ServerMessage::CloseSessionRes { .. } => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Subscribes to a channel and returns its events once the server has confirmed (or, when the connection
    /// dropped meanwhile, once the subscription is sure to be re-established). Events published after this
    /// returns are delivered. Several subscriptions to one channel share one server subscription.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, RequestError> {
        self.subscribe_inner(channel, false).await
    }

    /// [`subscribe`](Self::subscribe), also asking the server for the channel's `join`/`leave` notifications: they
    /// arrive on [`notifications`](Self::notifications), read with [`PresenceChange::from_notification`]. Take the
    /// notification feed before subscribing so no change is missed; [`presence`](Self::presence) gives the members
    /// to start from. The server keeps sending them while any subscription of the channel here is held, across
    /// reconnects.
    pub async fn subscribe_with_presence(
        &self,
        channel: &str,
    ) -> Result<Subscription, RequestError> {
        self.subscribe_inner(channel, true).await
    }

    async fn subscribe_inner(
        &self,
        channel: &str,
        presence: bool,
    ) -> Result<Subscription, RequestError> {
        let sink_id = next_sink_id();
        let (sink, items) = mpsc::unbounded();
        let (done, outcome) = oneshot::channel();
        self.send(Command::Subscribe {
            channel: channel.to_owned(),
            presence,
            sink_id,
            sink,
            done,
        })?;
        // Created before waiting, so that giving up on the wait unsubscribes.
        let subscription =
            Subscription::new(channel.to_owned(), sink_id, items, self.commands.clone());
        outcome.await.unwrap_or(Err(RequestError::Closed))?;
        Ok(subscription)
    }

    /// Subscribes to every channel `pattern` matches (`*` one segment, a trailing `**` the rest; PROTOCOL §3.2),
    /// those that exist and those made later, once the server has confirmed. Each event carries its channel and
    /// offset; the client keeps its position in every channel and resubscribes with them after a reconnect, so
    /// each channel continues without gap or repeat.
    pub async fn subscribe_pattern(
        &self,
        pattern: &str,
    ) -> Result<PatternSubscription, RequestError> {
        let sink_id = next_sink_id();
        let (sink, items) = mpsc::unbounded();
        let (done, outcome) = oneshot::channel();
        self.send(Command::SubscribePattern {
            pattern: pattern.to_owned(),
            sink_id,
            sink,
            done,
        })?;
        let subscription =
            PatternSubscription::new(pattern.to_owned(), sink_id, items, self.commands.clone());
        outcome.await.unwrap_or(Err(RequestError::Closed))?;
        Ok(subscription)
    }

    /// Serves a channel: `call`s on it are routed here, as [`IncomingCall`]s on the returned stream, until the
    /// stream is dropped (later calls are refused with `NO_HANDLER`). The registration survives reconnects. A
    /// second `serve` of the same channel takes the calls over from the first.
    pub async fn serve(&self, channel: &str) -> Result<CallStream, RequestError> {
        let sink_id = next_sink_id();
        let (sink, calls) = mpsc::unbounded();
        let (done, outcome) = oneshot::channel();
        self.send(Command::Serve {
            channel: channel.to_owned(),
            sink_id,
            sink,
            done,
        })?;
        outcome.await.unwrap_or(Err(RequestError::Closed))?;
        Ok(CallStream::new(
            channel.to_owned(),
            calls,
            self.commands.clone(),
        ))
    }

    /// The server's requests to this client (other than routed calls). Only the most recent such stream receives
    /// them; while none is alive they are refused with `NO_HANDLER`.
    pub fn server_requests(&self) -> ServerRequests {
        let (sink, requests) = mpsc::unbounded();
        // If the client is closed the stream simply ends.
        let _ = self
            .commands
            .unbounded_send(Command::WatchServerRequests(sink));
        ServerRequests::new(requests, self.commands.clone())
    }

    /// The server's notifications, from now on. Every such stream gets every notification.
    pub fn notifications(&self) -> Notifications {
        let (sink, items) = mpsc::unbounded();
        let _ = self
            .commands
            .unbounded_send(Command::WatchNotifications(sink));
        Feed::new(items, self.commands.clone())
    }

    /// The connection's state: first the current one, then every change (connected, disconnected, reconnecting,
    /// gave up, closed). Every such stream gets every change.
    pub fn state_changes(&self) -> StateChanges {
        let (sink, items) = mpsc::unbounded();
        if let Err(refused) = self.commands.unbounded_send(Command::WatchState(sink)) {
            // The task has ended (and set its last state before refusing commands): that state is the current one.
            let last = self.last_state.lock().ok().and_then(|slot| slot.clone());
            if let (Command::WatchState(sink), Some(last)) = (refused.into_inner(), last) {
                let _ = sink.unbounded_send(last);
            }
        }
        Feed::new(items, self.commands.clone())
    }

    /// Closes the client: the connection closes with 1000 (no reconnect), pending requests fail with
    /// [`RequestError::Closed`], streams end. Returns once the close handshake is over (or timed out). Idempotent.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self
            .commands
            .unbounded_send(Command::Close { done })
            .is_ok()
        {
            // Cancelled means the task has already ended.
            let _ = closed.await;
        }
    }

    /// Whether the client has stopped: closed, or gave up reconnecting. Requests then fail with
    /// [`RequestError::Closed`].
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    async fn ask(&self, op: Op) -> Result<ServerMessage, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request { op, reply })?;
        answer.await.unwrap_or(Err(RequestError::Closed))
    }

    fn send(&self, command: Command) -> Result<(), RequestError> {
        self.commands
            .unbounded_send(command)
            .map_err(|_| RequestError::Closed)
    }
}

fn unexpected(message: &ServerMessage) -> RequestError {
    RequestError::UnexpectedResponse {
        type_name: message.type_name().to_owned(),
    }
}

/// Names each stream's sink, so that removing one never removes another.
fn next_sink_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
