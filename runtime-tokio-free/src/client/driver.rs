//! [`Driver`]: the background task of a [`Client`](super::Client). It owns the sans-IO machine and the WebSocket
//! and runs the loop of the protocol crate's module docs:
//!
//! 1. drain [`ClientMachine::poll_output`](switchboard_protocol::client::ClientMachine::poll_output): dial on
//!    `Connect`, queue frames on `Transmit`, close on `Close`, route `Event`s to the handles, and arm the alarm on
//!    `Timeout`;
//! 2. wait until the link (dial result, incoming frames), the command channel or the alarm has something — a
//!    capped batch of it;
//! 3. feed the batch to the machine (`handle_*` and commands), and go round again.
//!
//! Writes make progress inside the same wait: queued frames are fed and flushed once while reads continue.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use switchboard_protocol::client::{ClientError, ClientEvent, ClientMachine, Output, UsageError};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, ChannelPattern, CloseCode};

use super::alarm::Alarm;
use super::command::{Command, Op};
use super::connection_state::ConnectionState;
use super::dial::dial;
use super::error::RequestError;
use super::link::{Link, LinkEvent, shut};
use super::options::ClientOptions;
use super::routes::{Routes, Waiting};
use super::target::Target;
use super::token_provider::TokenProvider;
use crate::Runtime;

/// At most this many frames and this many commands are taken per wake; then the machine's outputs are drained and
/// written before more input is read, and the task yields to the executor.
const MAX_INPUTS_PER_WAKE: usize = 64;

/// Something to feed the machine.
enum Wake<R: Runtime> {
    Link(LinkEvent<R>),
    Command(Command),
    /// Every handle is gone.
    CommandsEnded,
    Deadline,
}

/// The background task.
pub(crate) struct Driver<R: Runtime> {
    runtime: R,
    machine: ClientMachine,
    target: Target,
    /// Where fresh tokens come from, if anywhere.
    token_provider: Option<TokenProvider>,
    /// Whether a dial has started: the first one uses the configured token, later ones ask the provider.
    dialed: bool,
    websocket: WebSocketConfig,
    close_timeout: Duration,
    link: Link<R>,
    alarm: Alarm,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    routes: Routes,
    close_waiters: Vec<oneshot::Sender<()>>,
    /// The state the client ended in, once it has ended (shared with the handles).
    last_state: Arc<Mutex<Option<ConnectionState>>>,
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(
        runtime: R,
        target: Target,
        options: ClientOptions,
        commands: mpsc::UnboundedReceiver<Command>,
        last_state: Arc<Mutex<Option<ConnectionState>>>,
    ) -> Driver<R> {
        let machine = ClientMachine::new(options.protocol.clone(), runtime.now());
        Driver {
            machine,
            target,
            token_provider: options.token_provider.clone(),
            dialed: false,
            websocket: options.websocket_config(),
            close_timeout: options.close_timeout,
            link: Link::Idle,
            alarm: Alarm::new(),
            commands,
            commands_open: true,
            routes: Routes::new(),
            close_waiters: Vec::new(),
            last_state,
            runtime,
        }
    }

    /// Runs until the client is closed, every handle is dropped, or the machine gives up.
    pub(crate) async fn run(mut self) {
        tracing::debug!(url = %self.target.uri(), "client task started");
        loop {
            self.drain().await;
            if self.machine.is_closed() {
                break;
            }
            let wakes = poll_fn(|cx| self.poll_wakes(cx)).await;
            let busy = wakes.len() >= MAX_INPUTS_PER_WAKE;
            for wake in wakes {
                self.handle(wake);
            }
            if busy {
                futures_lite::future::yield_now().await;
            }
        }
        let last = match self.routes.state() {
            gave_up @ ConnectionState::GaveUp { .. } => gave_up.clone(),
            _ => ConnectionState::Closed,
        };
        // The last state is readable before the channel closes, so a handle whose command is refused from here on
        // can still report it ([`Client::state_changes`](super::Client::state_changes)).
        if let Ok(mut slot) = self.last_state.lock() {
            *slot = Some(last.clone());
        }
        // From here on handles see the client as closed. Commands still buffered are dropped, and their waiters
        // get `RequestError::Closed`; a state feed among them still gets the last state.
        self.commands.close();
        let mut late_watchers = Vec::new();
        while let Ok(command) = self.commands.try_recv() {
            if let Command::WatchState(sink) = command {
                late_watchers.push(sink);
            }
        }
        if let Some(open) = self.link.take() {
            let close = Some((CloseCode::Normal, "client closing".to_owned()));
            shut(self.runtime.clone(), open, close, self.close_timeout).await;
        }
        if !matches!(last, ConnectionState::GaveUp { .. }) {
            self.routes.set_state(last.clone());
        }
        for sink in late_watchers {
            let _ = sink.unbounded_send(last.clone());
        }
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
        tracing::debug!("client task ended");
    }

    /// Carries out every output of the machine, until it says when to wake it.
    async fn drain(&mut self) {
        let mut closing = None;
        loop {
            match self.machine.poll_output() {
                Output::Connect => {
                    if self.dialed {
                        self.fresh_token();
                    }
                    self.dialed = true;
                    let dialing = dial(self.runtime.clone(), self.target.clone(), self.websocket);
                    self.link = Link::Dialing(Box::pin(dialing));
                }
                Output::Transmit(frame) => self.link.send(frame),
                Output::Close { code, reason } => {
                    // An open socket is closed politely; a dial in progress is abandoned.
                    if let Some(open) = self.link.take() {
                        let close = Some((code, reason.into_owned()));
                        let shutting = shut(self.runtime.clone(), open, close, self.close_timeout);
                        if self.machine.is_closed() {
                            // The client is ending: finish the close handshake before the task returns.
                            closing = Some(shutting);
                        } else {
                            self.runtime.spawn(Box::pin(shutting));
                        }
                    }
                }
                Output::Event(ClientEvent::TokenExpiring { expires_in }) => {
                    if self.token_provider.is_none() {
                        tracing::warn!(
                            ?expires_in,
                            "the token expires soon and no token provider is configured; the server will close \
                             the connection then"
                        );
                    }
                    let now = self.runtime.now();
                    if let Some(token) = self.fresh_token()
                        && let Err(e) = self.machine.refresh(now, &token)
                    {
                        tracing::debug!(%e, "refresh not sent");
                    }
                }
                Output::Event(event) => {
                    let now = self.runtime.now();
                    self.routes.on_event(event, &mut self.machine, now);
                }
                Output::Timeout(at) => {
                    self.alarm.set(at);
                    break;
                }
                other => tracing::debug!(?other, "unhandled output"),
            }
        }
        if let Some(shutting) = closing {
            shutting.await;
        }
    }

    /// Asks the provider for the newest token; the next upgrades carry it. `None` without a provider, or when it
    /// has nothing new.
    fn fresh_token(&mut self) -> Option<String> {
        let token = self.token_provider.as_ref()?.fetch()?;
        match self.target.set_token(&token) {
            Ok(()) => Some(token),
            Err(e) => {
                tracing::warn!(%e, "the token provider gave an unusable token");
                None
            }
        }
    }

    /// Gathers a batch of inputs; pending while there is none.
    fn poll_wakes(&mut self, cx: &mut Context<'_>) -> Poll<Vec<Wake<R>>> {
        let mut events = Vec::new();
        self.link.poll(cx, MAX_INPUTS_PER_WAKE, &mut events);
        let mut wakes: Vec<Wake<R>> = events.into_iter().map(Wake::Link).collect();
        let mut taken = 0;
        while self.commands_open && taken < MAX_INPUTS_PER_WAKE {
            match self.commands.poll_next_unpin(cx) {
                Poll::Ready(Some(command)) => {
                    wakes.push(Wake::Command(command));
                    taken += 1;
                }
                Poll::Ready(None) => {
                    self.commands_open = false;
                    wakes.push(Wake::CommandsEnded);
                }
                Poll::Pending => break,
            }
        }
        if self.alarm.poll(cx, &self.runtime).is_ready() {
            wakes.push(Wake::Deadline);
        }
        if wakes.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(wakes)
        }
    }

    /// Feeds one input to the machine.
    fn handle(&mut self, wake: Wake<R>) {
        let now = self.runtime.now();
        match wake {
            Wake::Link(LinkEvent::Up) => self.machine.handle_connected(now),
            Wake::Link(LinkEvent::Failed(failure)) => {
                tracing::debug!(?failure, "connect failed");
                self.machine.handle_connect_failed(now, failure);
            }
            Wake::Link(LinkEvent::Text(text)) => self.machine.handle_text(now, text.as_str()),
            Wake::Link(LinkEvent::Closed { code, reason, open }) => {
                self.runtime.spawn(Box::pin(shut(
                    self.runtime.clone(),
                    open,
                    None,
                    self.close_timeout,
                )));
                self.machine.handle_disconnected(now, code, &reason);
            }
            Wake::Link(LinkEvent::Lost(reason)) => {
                self.machine
                    .handle_disconnected(now, CloseCode::Abnormal, &reason);
            }
            Wake::Command(command) => self.command(command, now),
            Wake::CommandsEnded => self.machine.close(now),
            Wake::Deadline => self.machine.handle_timeout(now),
        }
    }

    /// Carries out one command of the handles.
    fn command(&mut self, command: Command, now: Timestamp) {
        match command {
            Command::Request { op, reply } => {
                let issued = match op {
                    Op::Custom {
                        type_name,
                        data,
                        timeout,
                    } => self.machine.request(now, &type_name, data, timeout),
                    Op::Publish {
                        channel,
                        event,
                        retain,
                        key,
                    } => self
                        .machine
                        .publish_keyed(now, &channel, event, retain, key),
                    Op::PublishBatch {
                        channel,
                        events,
                        retain_last,
                        key,
                    } => self
                        .machine
                        .publish_batch_keyed(now, &channel, events, retain_last, key),
                    Op::GetState { channel } => self.machine.get_state(now, &channel),
                    Op::Presence { channel } => self.machine.presence(now, &channel),
                    Op::Call {
                        channel,
                        method,
                        params,
                    } => self.machine.call(now, &channel, &method, params),
                    Op::CreateSession { metadata } => self.machine.create_session(now, metadata),
                    Op::CloseSession { session_id } => self.machine.close_session(now, &session_id),
                };
                match issued {
                    Ok(id) => self.routes.expect(id, Waiting::Reply(reply)),
                    Err(e) => {
                        let _ = reply.send(Err(refused(e)));
                    }
                }
            }
            Command::Subscribe {
                channel,
                presence,
                sink_id,
                sink,
                done,
            } => {
                let name = match checked(&channel) {
                    Ok(name) => name,
                    Err(e) => {
                        let _ = done.send(Err(e));
                        return;
                    }
                };
                // Another subscription here already covers the channel: share it. Asking for presence subscribes
                // again all the same (the server answers it like a first subscribe and starts the notifications).
                let shared = self.routes.has_subscribers(&name);
                self.routes.add_subscriber(name.clone(), sink_id, sink);
                if shared && !presence {
                    let _ = done.send(Ok(()));
                    return;
                }
                match self.machine.subscribe_with(now, &channel, presence) {
                    Ok(id) => self.routes.expect(
                        id,
                        Waiting::Subscribe {
                            channel: name,
                            sink_id,
                            done,
                        },
                    ),
                    Err(e) => {
                        self.routes.remove_subscriber(&name, sink_id);
                        let _ = done.send(Err(refused(e)));
                    }
                }
            }
            Command::Unsubscribe {
                channel,
                sink_id,
                done,
            } => {
                let last = checked(&channel)
                    .map(|name| self.routes.remove_subscriber(&name, sink_id))
                    .unwrap_or(false);
                if !last || self.machine.is_closed() {
                    if let Some(done) = done {
                        let _ = done.send(Ok(()));
                    }
                    return;
                }
                match self.machine.unsubscribe(now, &channel) {
                    Ok(id) => self.routes.expect(id, Waiting::Unsubscribe { done }),
                    Err(e) => {
                        if let Some(done) = done {
                            let _ = done.send(Err(refused(e)));
                        }
                    }
                }
            }
            Command::SubscribePattern {
                pattern,
                sink_id,
                sink,
                done,
            } => {
                let parsed = match checked_pattern(&pattern) {
                    Ok(parsed) => parsed,
                    Err(e) => {
                        let _ = done.send(Err(e));
                        return;
                    }
                };
                let shared = self.routes.has_pattern_subscribers(&parsed);
                self.routes
                    .add_pattern_subscriber(parsed.clone(), sink_id, sink);
                if shared {
                    let _ = done.send(Ok(()));
                    return;
                }
                match self.machine.subscribe_pattern(now, &pattern) {
                    Ok(id) => self.routes.expect(
                        id,
                        Waiting::SubscribePattern {
                            pattern: parsed,
                            sink_id,
                            done,
                        },
                    ),
                    Err(e) => {
                        self.routes.remove_pattern_subscriber(&parsed, sink_id);
                        let _ = done.send(Err(refused(e)));
                    }
                }
            }
            Command::UnsubscribePattern {
                pattern,
                sink_id,
                done,
            } => {
                let last = checked_pattern(&pattern)
                    .map(|p| self.routes.remove_pattern_subscriber(&p, sink_id))
                    .unwrap_or(false);
                if !last || self.machine.is_closed() {
                    if let Some(done) = done {
                        let _ = done.send(Ok(()));
                    }
                    return;
                }
                match self.machine.unsubscribe_pattern(now, &pattern) {
                    Ok(id) => self.routes.expect(id, Waiting::Unsubscribe { done }),
                    Err(e) => {
                        if let Some(done) = done {
                            let _ = done.send(Err(refused(e)));
                        }
                    }
                }
            }
            Command::Serve {
                channel,
                sink_id,
                sink,
                done,
            } => {
                let name = match checked(&channel) {
                    Ok(name) => name,
                    Err(e) => {
                        let _ = done.send(Err(e));
                        return;
                    }
                };
                match self.machine.serve(now, &channel) {
                    Ok(id) => {
                        self.routes.set_served(name.clone(), sink_id, sink);
                        self.routes.expect(
                            id,
                            Waiting::Serve {
                                channel: name,
                                sink_id,
                                done,
                            },
                        );
                    }
                    Err(e) => {
                        let _ = done.send(Err(refused(e)));
                    }
                }
            }
            Command::Respond { id, result } => {
                if let Err(e) = self.machine.respond(now, &id, result) {
                    tracing::debug!(%id, %e, "answer not sent");
                }
            }
            Command::WatchServerRequests(sink) => self.routes.watch_server_requests(sink),
            Command::WatchNotifications(sink) => self.routes.watch_notifications(sink),
            Command::WatchState(sink) => self.routes.watch_state(sink),
            Command::Close { done } => {
                self.close_waiters.push(done);
                self.machine.close(now);
            }
        }
    }
}

/// A refused command as the handle sees it: after close, simply [`RequestError::Closed`].
fn refused(error: ClientError) -> RequestError {
    match error {
        ClientError::Usage(UsageError::Closed) => RequestError::Closed,
        other => RequestError::Refused(other),
    }
}

/// Checks a pattern the way the machine will.
fn checked_pattern(pattern: &str) -> Result<ChannelPattern, RequestError> {
    ChannelPattern::new(pattern).map_err(|reason| {
        RequestError::Refused(ClientError::Usage(UsageError::InvalidChannel {
            name: pattern.to_owned(),
            reason,
        }))
    })
}

/// Checks a channel name the way the machine will.
fn checked(channel: &str) -> Result<ChannelName, RequestError> {
    ChannelName::new(channel).map_err(|reason| {
        RequestError::Refused(ClientError::Usage(UsageError::InvalidChannel {
            name: channel.to_owned(),
            reason,
        }))
    })
}
