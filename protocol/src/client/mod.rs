//! The sans-IO client machine: [`ClientMachine`] owns the connection lifecycle, requests both ways, subscriptions with
//! gap-free recovery, the heartbeat, jittered reconnects and the offline queue (PROTOCOL §2–4). It does no IO and
//! reads no clock: the driver feeds it what happened (`handle_*`), issues commands, and carries out what
//! [`ClientMachine::poll_output`] says, until it says [`Output::Timeout`].
//!
//! # The run loop
//!
//! ```no_run
//! use switchboard_protocol::client::{ClientMachine, ClientConfig, ClientEvent, ConnectFailure, Output};
//! use switchboard_protocol::time::Timestamp;
//! use switchboard_protocol::wire::CloseCode;
//!
//! // A stand-in for the driver's WebSocket and clock (in `switchboard-runtime`, an async task).
//! enum NetEvent { Up, Failed(String), Text(String), Closed(u16, String), Deadline }
//! struct Net;
//! impl Net {
//!     fn now(&self) -> Timestamp { Timestamp::ZERO /* e.g. unix micros */ }
//!     fn connect(&mut self) {}
//!     fn send(&mut self, _frame: &str) {}
//!     fn close(&mut self, _code: u16, _reason: &str) {}
//!     fn wait_until(&mut self, _deadline: Timestamp) -> NetEvent { NetEvent::Deadline }
//! }
//! let mut net = Net;
//!
//! // 1. Build the machine. It asks for a connection at once; seed it from the OS in production.
//! let mut config = ClientConfig::default();
//! config.seed = 42;
//! let mut client = ClientMachine::new(config, net.now());
//!
//! // 2. Issue commands whenever you like: they go out at once when connected, wait in the offline queue when not,
//! //    and never fail for want of draining.
//! client.subscribe(net.now(), "projects/p1")?;
//!
//! while !client.is_closed() {
//!     // 3. Drain every output, in order, until `Timeout`.
//!     let deadline = loop {
//!         match client.poll_output() {
//!             Output::Connect => net.connect(),
//!             Output::Transmit(frame) => net.send(&frame),
//!             Output::Close { code, reason } => net.close(code.as_u16(), &reason),
//!             Output::Event(ClientEvent::ChannelEvent { channel, offset, event, .. }) => {
//!                 println!("{channel} #{offset}: {event}");
//!             }
//!             Output::Event(ClientEvent::CallRequest { id, method, .. }) => {
//!                 // 4. Answer what the server asks, now or later.
//!                 let result = serde_json::json!({ "echo": method });
//!                 client.respond(net.now(), &id, Ok(result))?;
//!             }
//!             Output::Event(other) => println!("{other:?}"),
//!             Output::Timeout(at) => break at,
//!             _ => {}
//!         }
//!     };
//!     // 5. Wait for the network or the deadline, whichever comes first, and feed back what happened.
//!     match net.wait_until(deadline) {
//!         NetEvent::Up => client.handle_connected(net.now()),
//!         NetEvent::Failed(why) => client.handle_connect_failed(net.now(), ConnectFailure::Transient(why)),
//!         NetEvent::Text(text) => client.handle_text(net.now(), &text),
//!         NetEvent::Closed(code, reason) => {
//!             client.handle_disconnected(net.now(), CloseCode::from_u16(code), &reason)
//!         }
//!         // 6. The deadline came: let the timers fire (request timeouts, heartbeat, reconnect, ping).
//!         NetEvent::Deadline => client.handle_timeout(net.now()),
//!     }
//! }
//! # Ok::<(), switchboard_protocol::client::ClientError>(())
//! ```
//!
//! # Guarantees
//!
//! - Every id a request command returns ends in exactly one [`ClientEvent::Response`] or
//!   [`ClientEvent::RequestFailed`].
//! - Per channel and epoch, [`ClientEvent::ChannelEvent`] offsets strictly increase: replays overlapping what was
//!   delivered are dropped. On every connection the machine resubscribes with `since` the last position seen;
//!   when the server cannot cover the gap (`recovered: false`, or an answer that skips ahead of that position or
//!   into another epoch), or an event shows the channel's history restarted (a new epoch), [`ClientEvent::Resync`].
//! - Requests in flight when a connection drops fail with [`FailReason::Disconnected`] and are never re-sent;
//!   subscriptions and `serve` registrations are re-established by the machine; requests issued while offline wait
//!   in a bounded queue and go out after the resubscriptions, in issue order.
//! - Reconnects follow [`ClientConfig::backoff`] (500 ms first, ×2, 30 s cap, full jitter, unlimited, reset after 10 s
//!   up), for every close but the application's own [`ClientMachine::close`] (1000) and a policy close (1008), after
//!   which the machine gives up ([`ClientEvent::GaveUp`]). A connection silent for the server's `heartbeat_ms` plus
//!   [`ClientConfig::heartbeat_timeout`] is closed with 4008 and replaced; `server_ping` is answered on its own.
//! - The same seed and the same inputs give the same outputs: ids and jitter come from [`ClientConfig::seed`].
//! - Nothing the server sends can panic the machine; what it cannot use is reported as
//!   [`ClientEvent::ProtocolViolation`] and ignored.

mod commands;
mod config;
mod error;
mod event;
#[cfg(any(test, feature = "_internal_test_exports"))]
#[cfg_attr(docsrs, doc(cfg(feature = "_internal_test_exports")))]
pub mod fuzz;
mod inbound;
mod lifecycle;
mod outbox;
mod output;
mod patterns;
mod requests;
mod state;
mod subscriptions;

#[cfg(test)]
mod tests;

pub use config::ClientConfig;
pub use error::{ClientError, SendLimitError, UsageError};
pub use event::{ClientEvent, FailReason, HandlerError, ReconnectGiveUpReason, Violation};
pub use output::{Output, TimeoutReason};
pub use state::ConnectFailure;

use alloc::collections::VecDeque;
use alloc::string::String;
use core::time::Duration;

use crate::backoff::Backoff;
use crate::calls::CallTable;
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::timer::{TimerKind, TimerTable};
use crate::wire::{ChannelName, CloseCode, MessageId, ServerMessage, decode_server};

use outbox::Outbox;
use output::TIMER_KINDS;
use requests::{Pending, ServerRequestKind};
use state::{Happening, State};
use subscriptions::{Served, Subscriptions};

/// The client machine. One per logical client; it survives any number of connections.
///
/// - **Create**: [`new`](Self::new) (asks for a connection at once).
/// - **Inputs** (call as things happen, then drain): [`handle_connected`](Self::handle_connected) after
///   [`Output::Connect`] succeeded, [`handle_connect_failed`](Self::handle_connect_failed) when it did not,
///   [`handle_text`](Self::handle_text) for every text frame received, [`handle_disconnected`](Self::handle_disconnected)
///   when the connection closed without an [`Output::Close`] from the machine, [`handle_timeout`](Self::handle_timeout)
///   when the last [`Output::Timeout`] instant has come.
/// - **Commands** (any time; they queue): [`request`](Self::request), [`subscribe`](Self::subscribe),
///   [`unsubscribe`](Self::unsubscribe), [`publish`](Self::publish), [`get_state`](Self::get_state),
///   [`call`](Self::call), [`serve`](Self::serve), [`create_session`](Self::create_session),
///   [`close_session`](Self::close_session) each return the request's id; [`respond`](Self::respond) answers a
///   server request; [`close`](Self::close) ends the machine.
/// - **Outputs**: [`poll_output`](Self::poll_output) until [`Output::Timeout`];
///   [`last_timeout_reason`](Self::last_timeout_reason) says which timer set it.
/// - **Look**: [`is_connected`](Self::is_connected), [`is_closed`](Self::is_closed), [`app_id`](Self::app_id),
///   [`subscriptions`](Self::subscriptions), [`pending_requests`](Self::pending_requests),
///   [`queued`](Self::queued), [`queued_bytes`](Self::queued_bytes).
#[derive(Debug)]
pub struct ClientMachine {
    config: ClientConfig,
    rng: Rng,
    state: State,
    backoff: Backoff,
    timers: TimerTable<TimeoutReason, TIMER_KINDS>,
    last_timeout_reason: Option<TimeoutReason>,
    outputs: VecDeque<Output>,
    /// Every request not yet ended, queued or in flight, by id.
    calls: CallTable<MessageId, Pending>,
    /// Issue order of requests, for ending several at once in the order they were made.
    next_seq: u64,
    outbox: Outbox,
    subscriptions: Subscriptions,
    /// Wanted patterns and the positions of the channels they reached.
    patterns: patterns::PatternSubscriptions,
    served: Served,
    /// Server requests of the current connection awaiting [`ClientMachine::respond`], forgotten after the server's own
    /// timeout.
    server_requests: CallTable<MessageId, ServerRequestKind>,
    /// The id of the last automatic `ping`, whose answer is swallowed.
    auto_ping: Option<MessageId>,
    /// From the current connection's greeting.
    app_id: Option<String>,
    /// The largest frame the server accepts.
    max_message_bytes: usize,
    /// How long the current connection may stay silent.
    silence_limit: Option<Duration>,
    /// The current connection delivered a channel event (a slow-consumer close after that was progress, not a
    /// failure to back off from).
    delivered: bool,
}

impl ClientMachine {
    /// A machine that asks for its first connection at once ([`Output::Connect`]).
    pub fn new(config: ClientConfig, now: Timestamp) -> ClientMachine {
        let mut rng = Rng::from_seed(config.seed);
        let backoff = Backoff::new(config.backoff.clone(), rng.fork());
        let mut client = ClientMachine {
            outbox: Outbox::new(config.max_queued_messages, config.max_queued_bytes),
            max_message_bytes: config.max_message_bytes,
            config,
            rng,
            state: State::ExpectConnect,
            backoff,
            timers: TimerTable::new(),
            last_timeout_reason: None,
            outputs: VecDeque::new(),
            calls: CallTable::new(),
            next_seq: 0,
            subscriptions: Subscriptions::default(),
            patterns: patterns::PatternSubscriptions::default(),
            served: Served::default(),
            server_requests: CallTable::new(),
            auto_ping: None,
            delivered: false,
            app_id: None,
            silence_limit: None,
        };
        client.dial(now);
        client
    }

    // -----------------------------------------------------------------------------------------------------------
    // Outputs

    /// The next thing to do. Call it until it returns [`Output::Timeout`], after every input and command.
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        self.sync_request_timer();
        match self.timers.next() {
            Some((at, reason)) => {
                self.last_timeout_reason = Some(reason);
                Output::Timeout(at)
            }
            None => {
                self.last_timeout_reason = None;
                Output::Timeout(Timestamp::MAX)
            }
        }
    }

    /// Which timer set the deadline of the last [`Output::Timeout`]; `None` when none was armed.
    pub fn last_timeout_reason(&self) -> Option<TimeoutReason> {
        self.last_timeout_reason
    }

    // -----------------------------------------------------------------------------------------------------------
    // Inputs

    /// The connection asked for by [`Output::Connect`] is up; the machine now waits for the server's greeting.
    pub fn handle_connected(&mut self, now: Timestamp) {
        self.apply(now, Happening::TransportUp);
    }

    /// The connection asked for by [`Output::Connect`] could not be made.
    pub fn handle_connect_failed(&mut self, now: Timestamp, failure: ConnectFailure) {
        self.apply(now, Happening::ConnectFailed(&failure));
    }

    /// The connection closed (by the server or the network; 1006 when there was no close frame). Not needed after
    /// an [`Output::Close`]: the machine has already moved on.
    pub fn handle_disconnected(&mut self, now: Timestamp, code: CloseCode, reason: &str) {
        self.apply(now, Happening::TransportDown { code, reason });
    }

    /// A text frame arrived on the current connection.
    pub fn handle_text(&mut self, now: Timestamp, text: &str) {
        match self.state {
            State::ExpectConnected => {}
            State::Open => self.arm_heartbeat(now),
            // A frame from a connection the machine has already let go of.
            _ => return,
        }
        let frame = match decode_server(text) {
            Ok(frame) => frame,
            Err(e) => return self.violation(Violation::Undecodable(e)),
        };
        if self.state == State::Open {
            return self.dispatch(now, frame);
        }
        match frame.message {
            ServerMessage::Connected {
                app_id,
                heartbeat_ms,
                max_message_bytes,
                ..
            } => {
                self.app_id = Some(app_id);
                self.max_message_bytes = usize::try_from(max_message_bytes).unwrap_or(usize::MAX);
                self.silence_limit = match (heartbeat_ms, self.config.ping_interval) {
                    (0, None) => None,
                    (0, Some(ping)) => Some(ping + self.config.heartbeat_timeout),
                    (ms, _) => Some(Duration::from_millis(ms) + self.config.heartbeat_timeout),
                };
                self.apply(now, Happening::Greeting);
            }
            other => self.violation(Violation::Unexpected {
                type_name: String::from(other.type_name()),
            }),
        }
    }

    /// The instant of the last [`Output::Timeout`] has come (or passed): fire every timer that is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.sync_request_timer();
        let mut due = [false; TIMER_KINDS];
        for (slot, &kind) in due.iter_mut().zip(TimeoutReason::ALL) {
            *slot = self.timers.is_expired(kind, now);
        }
        for (&kind, due) in TimeoutReason::ALL.iter().zip(due) {
            // A handler may have stopped a later kind (a dead connection stops the ping): check again.
            if !due || !self.timers.is_expired(kind, now) {
                continue;
            }
            self.timers.stop(kind);
            match kind {
                TimeoutReason::Request => self.expire_requests(now),
                TimeoutReason::Heartbeat | TimeoutReason::Connect => {
                    self.apply(now, Happening::Silent)
                }
                TimeoutReason::Reconnect => self.apply(now, Happening::BackoffElapsed),
                TimeoutReason::Ping => self.send_ping(now),
            }
        }
    }
}

impl ClientMachine {
    // -----------------------------------------------------------------------------------------------------------
    // Looking

    /// Whether a connection is open: the server has greeted it and commands go out at once.
    pub fn is_connected(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the machine has stopped for good ([`close`](Self::close), or [`ClientEvent::GaveUp`]).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::GaveUp)
    }

    /// The open connection's `app_id`, from the server's greeting.
    pub fn app_id(&self) -> Option<&str> {
        self.app_id.as_deref()
    }

    /// The channels the machine keeps subscribed (those whose `subscribe` went out, until their `unsubscribe`
    /// does), in name order.
    pub fn subscriptions(&self) -> impl Iterator<Item = &ChannelName> + '_ {
        self.subscriptions.channels()
    }

    /// The patterns the machine keeps subscribed (PROTOCOL §3.2), in order.
    pub fn pattern_subscriptions(&self) -> impl Iterator<Item = &crate::wire::ChannelPattern> + '_ {
        self.patterns.patterns()
    }

    /// Requests not yet ended, queued or in flight, including the machine's own resubscriptions.
    pub fn pending_requests(&self) -> usize {
        self.calls.len()
    }

    /// Requests waiting in the offline queue.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// Bytes of the frames waiting in the offline queue.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    fn emit(&mut self, event: ClientEvent) {
        self.outputs.push_back(Output::Event(event));
    }

    fn violation(&mut self, violation: Violation) {
        self.emit(ClientEvent::ProtocolViolation { violation });
    }
}
