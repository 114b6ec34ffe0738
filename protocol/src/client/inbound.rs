//! What the server sends on an open connection, message by message: events through the subscription filter,
//! answers to pending requests, server requests and calls, pings, notifications, errors.

use alloc::format;
use alloc::string::String;
use serde_json::{Map, Value};

use super::ClientMachine;
use super::commands::response_data;
use super::event::{ClientEvent, FailReason, HandlerError, Violation};
use super::output::Output;
use super::requests::{SERVER_REQUEST_TIMEOUT, ServerRequestKind};
use super::subscriptions::Admission;
use core::time::Duration;

use crate::time::Timestamp;
use crate::wire::{
    ChannelName, ClientFrame, ClientMessage, ErrorCode, MessageId, SUBSCRIPTION_ENDED, ServerFrame,
    ServerMessage, TOKEN_EXPIRING,
};

impl ClientMachine {
    /// Handles one decoded frame of the open connection.
    pub(super) fn dispatch(&mut self, now: Timestamp, frame: ServerFrame) {
        let ServerFrame {
            message_id,
            message,
        } = frame;
        match message {
            ServerMessage::Event {
                channel,
                epoch,
                offset,
                event,
            } => {
                let mut admission = self.subscriptions.admit(&channel, &epoch, offset);
                match admission {
                    Admission::NotWanted => {
                        admission = self.patterns.admit(&channel, &epoch, offset)
                    }
                    // A pattern may have delivered it already (while the channel was between an `unsubscribe` and
                    // a new `subscribe` whose replay overlaps), or delivered the channel in another epoch.
                    Admission::Deliver | Admission::NewEpoch => {
                        match self.patterns.judge(&channel, &epoch, offset) {
                            Some(Admission::Duplicate) => admission = Admission::Duplicate,
                            judged => {
                                if judged == Some(Admission::NewEpoch) {
                                    admission = Admission::NewEpoch;
                                }
                                self.patterns.seen(&channel, &epoch, offset);
                            }
                        }
                    }
                    Admission::Duplicate => {}
                }
                if admission == Admission::NewEpoch {
                    self.emit(ClientEvent::Resync {
                        channel: channel.clone(),
                    });
                }
                if matches!(admission, Admission::Deliver | Admission::NewEpoch) {
                    self.delivered = true;
                    self.emit(ClientEvent::ChannelEvent {
                        channel,
                        epoch,
                        offset,
                        event,
                    });
                }
            }
            ServerMessage::ServerPing { timestamp } => self.pong(now, message_id, timestamp),
            ServerMessage::ServerRequest { request_type, data } => {
                self.server_request(now, message_id, request_type, data)
            }
            ServerMessage::Notification {
                notification_type,
                message,
                additional_data,
            } => self.notification(notification_type, message, additional_data),
            ServerMessage::Connected { .. } => self.violation(Violation::Unexpected {
                type_name: String::from("connected"),
            }),
            ServerMessage::Error {
                code,
                message,
                details,
            } => match self.take_answered(message_id.as_ref()) {
                Some((id, pending)) => self.fail(
                    id,
                    pending,
                    FailReason::Error {
                        code,
                        message,
                        details,
                    },
                ),
                None if message_id.is_some() && message_id == self.auto_ping => {
                    self.auto_ping = None;
                }
                None => {
                    let reason = FailReason::Error {
                        code,
                        message: message.clone(),
                        details: details.clone(),
                    };
                    self.emit(ClientEvent::ServerError {
                        id: message_id.clone(),
                        code,
                        message,
                        details,
                    });
                    if let Some(id) = message_id {
                        self.late_refusal(&id, reason);
                    }
                }
            },
            // Answers, and types this version does not know: they matter only as the answer to something pending,
            // and only when they fit it (a hostile server may answer a `subscribe` with another type or channel).
            answer => {
                if message_id.is_some() && message_id == self.auto_ping {
                    self.auto_ping = None;
                } else if let Some(id) = message_id.clone().filter(|id| self.misfits(id, &answer)) {
                    self.violation(Violation::MismatchedAnswer {
                        id,
                        type_name: String::from(answer.type_name()),
                    });
                } else if let Some((id, pending)) = self.take_answered(message_id.as_ref()) {
                    self.complete(id, pending, answer);
                } else if let Some(id) = &message_id {
                    self.late_answer(id, &answer);
                }
            }
        }
    }

    /// An answer to a `subscribe` that had already timed out on our side (say the connection was stalled). It
    /// still says where the subscription starts and whether events were lost: apply it as an on-time answer would
    /// be, resync included, rather than deliver the next live event as if it followed the last one seen.
    fn late_answer(&mut self, id: &MessageId, answer: &ServerMessage) {
        // A pattern's, likewise: until it is applied the pattern takes no event on this connection.
        if let ServerMessage::SubscribePatternRes { pattern, channels } = answer {
            if self.patterns.is_latest(pattern, id) {
                for channel in self.patterns.subscribed(pattern, channels) {
                    self.emit(ClientEvent::Resync { channel });
                }
            }
            return;
        }
        let Some(channel) = self.subscriptions.late_answer(id) else {
            return;
        };
        if let ServerMessage::SubscribeRes {
            channel: answered,
            epoch,
            offset,
            recovered,
        } = answer
            && *answered == channel
            && self
                .subscriptions
                .subscribed(&channel, epoch, *offset, *recovered)
        {
            self.emit(ClientEvent::Resync { channel });
        }
    }

    /// An `error` for a request that had already timed out on our side. If it refused the latest `subscribe` or
    /// `serve` of a channel, the server does not have that registration: drop it as an on-time refusal would, and
    /// say so (the application only heard that the request timed out).
    fn late_refusal(&mut self, id: &MessageId, reason: FailReason) {
        self.subscriptions.late_answer(id);
        if let Some(channel) = self.subscriptions.refused_by_id(id) {
            self.emit(ClientEvent::SubscriptionLost {
                channel,
                reason: reason.clone(),
            });
        }
        if let Some(channel) = self.served.refused_by_id(id) {
            self.emit(ClientEvent::ServeLost { channel, reason });
        }
    }

    /// The pending request an answer (or `error`) is for. Only requests on the wire can be answered; an id that
    /// matches nothing is a late answer (the request timed out) or a bogus one, and is dropped. Either way, an answered
    /// `unsubscribe` ends the late events of its subscription.
    fn take_answered(
        &mut self,
        id: Option<&MessageId>,
    ) -> Option<(MessageId, super::requests::Pending)> {
        if let Some(id) = id {
            self.subscriptions.answered(id);
        }
        self.take_sent(id)
    }

    /// The pending request on the wire with this id, taken out of the table.
    fn take_sent(
        &mut self,
        id: Option<&MessageId>,
    ) -> Option<(MessageId, super::requests::Pending)> {
        let id = id?;
        if !self.calls.get(id).is_some_and(|pending| pending.sent) {
            return None;
        }
        let pending = self.calls.resolve(id)?;
        Some((id.clone(), pending))
    }

    /// Whether `answer` names a request on the wire that it cannot be the answer to.
    fn misfits(&self, id: &MessageId, answer: &ServerMessage) -> bool {
        self.calls
            .get(id)
            .is_some_and(|pending| pending.sent && !pending.kind.answered_by(answer))
    }

    /// A `notification`: the token's coming expiry and the end of a subscription or `serve` registration are the
    /// machine's business (PROTOCOL, token lifetime); anything else is the application's.
    fn notification(
        &mut self,
        notification_type: String,
        message: Option<String>,
        additional_data: Option<Value>,
    ) {
        let data = additional_data.as_ref();
        match notification_type.as_str() {
            TOKEN_EXPIRING => {
                if let Some(ms) = data.and_then(|d| d["expires_in_ms"].as_u64()) {
                    return self.emit(ClientEvent::TokenExpiring {
                        expires_in: Duration::from_millis(ms),
                    });
                }
            }
            SUBSCRIPTION_ENDED => {
                let pattern = data
                    .and_then(|d| d["pattern"].as_str())
                    .and_then(|p| crate::wire::ChannelPattern::new(p).ok());
                if let Some(pattern) = pattern
                    && self.patterns.patterns().any(|p| *p == pattern)
                {
                    let reason = FailReason::Error {
                        code: ErrorCode::Forbidden,
                        message: message.clone().unwrap_or_default(),
                        details: additional_data.clone(),
                    };
                    self.patterns.unwant(&pattern);
                    return self.emit(ClientEvent::PatternLost { pattern, reason });
                }
                let channel = data
                    .and_then(|d| d["channel"].as_str())
                    .and_then(|c| ChannelName::new(c).ok());
                let kind = data.and_then(|d| d["kind"].as_str());
                let code = data
                    .and_then(|d| d["code"].as_str())
                    .and_then(ErrorCode::from_wire)
                    .unwrap_or(ErrorCode::Forbidden);
                if let Some(channel) = channel {
                    let reason = FailReason::Error {
                        code,
                        message: message.clone().unwrap_or_default(),
                        details: additional_data.clone(),
                    };
                    match kind {
                        Some("subscribe") if self.subscriptions.ended(&channel) => {
                            return self.emit(ClientEvent::SubscriptionLost { channel, reason });
                        }
                        Some("serve") if self.served.ended(&channel) => {
                            return self.emit(ClientEvent::ServeLost { channel, reason });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        self.emit(ClientEvent::Notification {
            notification_type,
            message,
            additional_data,
        });
    }

    /// Answers a `server_ping` at once: `server_pong` with our clock and the ping's, under the ping's id.
    fn pong(&mut self, now: Timestamp, id: Option<MessageId>, server_timestamp: u64) {
        let message_id = match id {
            Some(id) => id,
            None => self.fresh_id(),
        };
        let frame = ClientFrame {
            message_id,
            message: ClientMessage::ServerPong {
                timestamp: Some(now.as_millis()),
                server_timestamp: Some(server_timestamp),
            },
        }
        .encode();
        self.outputs.push_back(Output::Transmit(frame));
    }

    /// A `server_request`: a routed call on a served channel becomes a `CallRequest`, anything else a
    /// `ServerRequest`; both wait for [`ClientMachine::respond`]. A call on a channel this client does not serve is
    /// refused at once with `NO_HANDLER`, so its caller does not wait out a timeout.
    fn server_request(
        &mut self,
        now: Timestamp,
        id: Option<MessageId>,
        request_type: String,
        mut data: Map<String, Value>,
    ) {
        let Some(id) = id else {
            return self.violation(Violation::Unexpected {
                type_name: String::from("server_request"),
            });
        };
        self.server_requests.expire(now);
        if self.server_requests.contains(&id) {
            return self.violation(Violation::DuplicateServerRequest { id });
        }
        let deadline = now + SERVER_REQUEST_TIMEOUT;
        if request_type == "call"
            && let Some((channel, method)) = call_target(&data)
        {
            if !self.served.contains(&channel) {
                let refusal = HandlerError::new(
                    ErrorCode::NoHandler.as_str(),
                    format!("this client does not serve {channel}"),
                );
                let data = response_data(&ServerRequestKind::Call, Err(refusal));
                let frame = ClientFrame {
                    message_id: id,
                    message: ClientMessage::ServerResponse { data },
                }
                .encode();
                self.outputs.push_back(Output::Transmit(frame));
                return;
            }
            let params = data.remove("params").unwrap_or(Value::Null);
            let caller = data
                .remove("caller")
                .as_ref()
                .and_then(crate::wire::Caller::from_value);
            let _ = self
                .server_requests
                .insert(id.clone(), deadline, ServerRequestKind::Call);
            return self.emit(ClientEvent::CallRequest {
                id,
                channel,
                method,
                params,
                caller,
            });
        }
        let _ = self.server_requests.insert(
            id.clone(),
            deadline,
            ServerRequestKind::Other(request_type.clone()),
        );
        self.emit(ClientEvent::ServerRequest {
            id,
            request_type,
            data,
        });
    }
}

/// The channel and method of a routed call, when both are there and valid.
fn call_target(data: &Map<String, Value>) -> Option<(ChannelName, String)> {
    let channel = ChannelName::new(data.get("channel")?.as_str()?).ok()?;
    let method = data.get("method")?.as_str()?;
    Some((channel, String::from(method)))
}
