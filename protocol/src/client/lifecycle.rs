//! Carrying out the transition table of [`state`](super::state): dialing, opening (announce, resubscribe, re-serve,
//! flush), losing a connection (close, report, fail what was in flight, back off), giving up, closing; and the
//! connection's timers (heartbeat, client ping).

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::ClientMachine;
use super::event::{ClientEvent, FailReason, ReconnectGiveUpReason};
use super::output::{Output, TimeoutReason};
use super::requests::Kind;
use super::state::{self, ConnectFailure, Happening, State, Step};
use crate::time::Timestamp;
use crate::wire::{ChannelName, ClientFrame, ClientMessage, CloseCode};

impl ClientMachine {
    /// The one place the connection state changes.
    pub(super) fn apply(&mut self, now: Timestamp, happening: Happening<'_>) {
        match state::step(self.state, &happening) {
            Step::Ignore => {}
            Step::AwaitGreeting => {
                self.state = State::ExpectConnected;
                self.timers
                    .set(TimeoutReason::Connect, now + self.config.connect_timeout);
            }
            Step::Open => self.open(now),
            Step::Dial => self.dial(now),
            Step::Lose { abort, was_open } => {
                let (code, reason) = self.cause(&happening);
                if abort {
                    self.outputs.push_back(Output::Close {
                        code,
                        reason: reason.clone(),
                    });
                }
                self.drop_connection(now, was_open, code, reason);
                match self.backoff.next_delay(now) {
                    Some(delay) => {
                        self.state = State::Backoff;
                        self.timers.set(TimeoutReason::Reconnect, now + delay);
                        self.emit(ClientEvent::Reconnecting {
                            attempt: self.backoff.attempt(),
                            delay,
                        });
                    }
                    None => self.give_up(ReconnectGiveUpReason::RetriesExhausted),
                }
            }
            Step::GiveUp { was_open } => {
                let (code, reason) = self.cause(&happening);
                let why = match happening {
                    Happening::ConnectFailed(ConnectFailure::Rejected(reason)) => {
                        ReconnectGiveUpReason::Rejected {
                            reason: reason.clone(),
                        }
                    }
                    _ => ReconnectGiveUpReason::PolicyViolation {
                        reason: String::from(reason.as_ref()),
                    },
                };
                self.drop_connection(now, was_open, code, reason);
                self.give_up(why);
            }
            Step::Shut { abort } => {
                if abort {
                    self.outputs.push_back(Output::Close {
                        code: CloseCode::Normal,
                        reason: Cow::Borrowed("client closing"),
                    });
                }
                self.state = State::Closed;
                self.stop_everything();
            }
        }
    }

    /// Asks the driver for a connection.
    pub(super) fn dial(&mut self, now: Timestamp) {
        self.state = State::ExpectConnect;
        self.outputs.push_back(Output::Connect);
        self.timers
            .set(TimeoutReason::Connect, now + self.config.connect_timeout);
    }

    /// The greeting came: announce it, re-establish every subscription (with `since`) and `serve` registration,
    /// then send what waited in the offline queue, in issue order.
    fn open(&mut self, now: Timestamp) {
        self.state = State::Open;
        self.timers.stop(TimeoutReason::Connect);
        self.backoff.on_connected(now);
        self.arm_heartbeat(now);
        if let Some(interval) = self.config.ping_interval {
            self.timers.set(TimeoutReason::Ping, now + interval);
        }
        let app_id = self.app_id.clone().unwrap_or_default();
        self.emit(ClientEvent::Connected { app_id });

        let wanted: Vec<ChannelName> = self.subscriptions.channels().cloned().collect();
        for channel in wanted {
            if let Some(at) = self.subscriptions.since(&channel) {
                self.patterns.catch_up(&channel, &at);
            }
            let since = self
                .subscriptions
                .since(&channel)
                .or_else(|| self.patterns.position(&channel));
            let message = ClientMessage::Subscribe {
                channel: channel.clone(),
                since,
                presence: self.subscriptions.presence(&channel),
            };
            self.issue_internal(now, message, Kind::Subscribe(channel));
        }
        let patterns: Vec<crate::wire::ChannelPattern> =
            self.patterns.patterns().cloned().collect();
        for pattern in patterns {
            let message = ClientMessage::SubscribePattern {
                since: self.patterns.since(&pattern),
                pattern: pattern.clone(),
            };
            self.issue_internal(now, message, Kind::SubscribePattern(pattern));
        }
        let served: Vec<ChannelName> = self.served.channels().cloned().collect();
        for channel in served {
            let message = ClientMessage::Serve {
                channel: channel.clone(),
            };
            self.issue_internal(now, message, Kind::Serve(channel));
        }
        while let Some(queued) = self.outbox.pop() {
            self.transmit_request(&queued.id, queued.frame);
        }
    }

    /// The connection (or attempt) is gone: stop its timers, forget what belonged to it, report it if the
    /// application had seen it open, and fail what was in flight.
    fn drop_connection(
        &mut self,
        now: Timestamp,
        was_open: bool,
        code: CloseCode,
        reason: Cow<'static, str>,
    ) {
        self.backoff.on_disconnected(now);
        // Closed as a slow consumer after delivering events: a replay too big for the server's queue, resumed from
        // where this connection got to. Each such round makes progress, so the next starts a fresh streak rather
        // than waiting longer and longer to catch up.
        if code == CloseCode::TryAgainLater && self.delivered {
            self.backoff.reset();
        }
        self.delivered = false;
        for timer in [
            TimeoutReason::Heartbeat,
            TimeoutReason::Ping,
            TimeoutReason::Connect,
        ] {
            self.timers.stop(timer);
        }
        self.app_id = None;
        self.auto_ping = None;
        self.silence_limit = None;
        self.max_message_bytes = self.config.max_message_bytes;
        self.server_requests.cancel_all();
        self.subscriptions.connection_lost();
        self.patterns.connection_lost();
        if was_open {
            self.emit(ClientEvent::Disconnected {
                code,
                reason: reason.into_owned(),
            });
        }
        self.fail_sent();
    }

    /// Stops for good after telling the application why.
    fn give_up(&mut self, reason: ReconnectGiveUpReason) {
        self.state = State::GaveUp;
        self.emit(ClientEvent::GaveUp { reason });
        self.stop_everything();
    }

    /// Terminal: no timers, nothing pending, nothing queued.
    fn stop_everything(&mut self) {
        self.timers.stop_all();
        self.server_requests.cancel_all();
        self.auto_ping = None;
        self.app_id = None;
        self.fail_all(&FailReason::Closed);
    }

    /// The close code and reason a happening ends a connection with.
    fn cause(&self, happening: &Happening<'_>) -> (CloseCode, Cow<'static, str>) {
        match happening {
            Happening::TransportDown { code, reason } => (*code, Cow::Owned(String::from(*reason))),
            Happening::ConnectFailed(
                ConnectFailure::Transient(reason) | ConnectFailure::Rejected(reason),
            ) => (CloseCode::Abnormal, Cow::Owned(reason.clone())),
            Happening::Silent => {
                let reason = match self.state {
                    State::ExpectConnect => "connect timed out",
                    State::ExpectConnected => "no greeting from the server",
                    _ => "heartbeat timeout",
                };
                (CloseCode::HeartbeatTimeout, Cow::Borrowed(reason))
            }
            _ => (CloseCode::Abnormal, Cow::Borrowed("")),
        }
    }

    /// Something arrived: the connection may stay silent for another `heartbeat_ms + heartbeat_timeout`.
    pub(super) fn arm_heartbeat(&mut self, now: Timestamp) {
        if let Some(limit) = self.silence_limit {
            self.timers.set(TimeoutReason::Heartbeat, now + limit);
        }
    }

    /// The client `ping` interval came round: send one (its answer is swallowed) and schedule the next.
    pub(super) fn send_ping(&mut self, now: Timestamp) {
        let (State::Open, Some(interval)) = (self.state, self.config.ping_interval) else {
            return;
        };
        let id = self.fresh_id();
        let frame = ClientFrame {
            message_id: id.clone(),
            message: ClientMessage::Ping {
                timestamp: Some(Value::from(now.as_millis())),
            },
        }
        .encode();
        self.auto_ping = Some(id);
        self.outputs.push_back(Output::Transmit(frame));
        self.timers.set(TimeoutReason::Ping, now + interval);
    }
}
