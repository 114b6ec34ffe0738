//! The native dialect (PROTOCOL §2): every client message, answered by exactly one `<type>_res` or `error` with its
//! `message_id`, plus the two answers that get no answer (`server_response`, `server_pong`) and the message types
//! the embedding application registered.
//!
//! Order of checks for a frame: decode (failures classified by the wire codec) → rate limit (`RATE_LIMITED`,
//! echoing the id when it could be read) → duplicate in-flight id (`DUPLICATE_MESSAGE_ID`; only `call`s and custom
//! requests stay in flight, everything else completes at once) → the message's own checks (`FORBIDDEN`,
//! `TOO_MANY_SUBSCRIPTIONS`, …).

use alloc::string::String;
use serde_json::{Map, Value, json};

use super::Hub;
use super::conn_table::ConnId;
use super::connection::InFlight;
use super::idempotent::Admit;
use super::output::HubEvent;
use super::permissions::Action;
use super::publish::Answer;
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::{
    ClientFrame, ClientMessage, DecodeError, DecodeErrorKind, ErrorCode, MessageId, ServerMessage,
};

impl Hub {
    /// A native frame from the intake: a message, a registered custom type, or a decode error to answer.
    pub(super) fn native_frame(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        decoded: Result<ClientFrame, DecodeError>,
    ) {
        match decoded {
            Ok(frame) => self.native_message(now, conn, frame.message_id, frame.message),
            Err(DecodeError { message_id, kind }) => match kind {
                DecodeErrorKind::UnknownType { type_name, data }
                    if self.custom_types.contains(&type_name) =>
                {
                    self.custom_request(now, conn, message_id, type_name, data);
                }
                kind => self.send_decode_error(now, conn, &DecodeError { message_id, kind }),
            },
        }
    }

    fn native_message(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        id: MessageId,
        message: ClientMessage,
    ) {
        if message.expects_response()
            && self
                .conns
                .get(conn)
                .is_some_and(|c| c.in_flight.contains_key(&id))
        {
            let refusal = Refusal::new(
                ErrorCode::DuplicateMessageId,
                alloc::format!("a request with message_id {id} is still in flight"),
            );
            self.send_refusal(now, conn, Some(id), refusal);
            return;
        }
        let answer: Result<Option<ServerMessage>, Refusal> = match message {
            ClientMessage::Ping { timestamp } => Ok(Some(ServerMessage::PingRes {
                timestamp,
                server_time: now.as_millis(),
            })),
            ClientMessage::CreateSession { metadata } => self
                .create_session(now, conn, metadata)
                .map(|session_id| Some(ServerMessage::CreateSessionRes { session_id })),
            ClientMessage::CloseSession { session_id } => self
                .close_session(conn, &session_id)
                .map(|()| Some(ServerMessage::CloseSessionRes { session_id })),
            ClientMessage::Subscribe {
                channel,
                since,
                presence,
            } => match self.subscribe(now, conn, &channel, since.as_ref()) {
                Ok(sub) => {
                    self.watch_presence(conn, &channel, presence);
                    let res = ServerMessage::SubscribeRes {
                        epoch: self.epoch(&channel).into(),
                        channel: channel.clone(),
                        offset: sub.offset,
                        recovered: sub.recovered,
                    };
                    if self.send_native(conn, Some(id), res) {
                        self.send_replay(conn, sub.replay);
                    }
                    return;
                }
                Err(refusal) => Err(refusal),
            },
            ClientMessage::SubscribePattern { pattern, since } => {
                match self.subscribe_pattern(now, conn, &pattern, since.as_ref()) {
                    Ok(sub) => {
                        let res = ServerMessage::SubscribePatternRes {
                            pattern,
                            channels: sub.channels,
                        };
                        if self.send_native(conn, Some(id), res) {
                            self.send_replay(conn, sub.replay);
                        }
                        return;
                    }
                    Err(refusal) => Err(refusal),
                }
            }
            ClientMessage::UnsubscribePattern { pattern } => self
                .unsubscribe_pattern(conn, &pattern)
                .map(|()| Some(ServerMessage::UnsubscribePatternRes { pattern })),
            ClientMessage::Unsubscribe { channel } => self
                .unsubscribe(conn, &channel)
                .map(|()| Some(ServerMessage::UnsubscribeRes { channel })),
            ClientMessage::Publish {
                channel,
                event,
                retain,
                idempotency_key,
            } => {
                if !self.allows(conn, Action::Publish, &channel) {
                    Err(Refusal::new(
                        ErrorCode::Forbidden,
                        alloc::format!("not allowed to publish to {channel}"),
                    ))
                } else if let Some(refusal) = self.channel_limit_refusal(&channel) {
                    Err(refusal)
                } else {
                    let answer = Answer::Native { conn, id };
                    match self.admit_keyed(now, &channel, idempotency_key, 1, answer) {
                        Admit::Publish(answer) => {
                            self.store_admitted(now, &channel, 1, answer, |hub, answer| {
                                hub.publish_event(now, &channel, event, retain, answer)
                            });
                        }
                        Admit::Duplicate {
                            first,
                            last,
                            answer,
                        } => self.answer_duplicate(&channel, first, last, answer),
                        Admit::Held => {}
                    }
                    return;
                }
            }
            ClientMessage::PublishBatch {
                channel,
                events,
                retain_last,
                idempotency_key,
            } => {
                if !self.allows(conn, Action::Publish, &channel) {
                    Err(Refusal::new(
                        ErrorCode::Forbidden,
                        alloc::format!("not allowed to publish to {channel}"),
                    ))
                } else if let Some(refusal) = self.channel_limit_refusal(&channel) {
                    Err(refusal)
                } else {
                    self.publish_native_batch(
                        now,
                        conn,
                        id,
                        &channel,
                        events,
                        retain_last,
                        idempotency_key,
                    );
                    return;
                }
            }
            ClientMessage::GetState { channel } => {
                if self.allows(conn, Action::Subscribe, &channel) {
                    let state = self.state(&channel);
                    Ok(Some(ServerMessage::GetStateRes {
                        channel,
                        epoch: state.epoch,
                        offset: state.offset,
                        state: state.state.unwrap_or(Value::Null),
                    }))
                } else {
                    Err(Refusal::new(
                        ErrorCode::Forbidden,
                        alloc::format!("not allowed to read {channel}"),
                    ))
                }
            }
            ClientMessage::Presence { channel } => {
                if self.allows(conn, Action::Subscribe, &channel) {
                    Ok(Some(self.presence_res(channel)))
                } else {
                    Err(Refusal::new(
                        ErrorCode::Forbidden,
                        alloc::format!("not allowed to read {channel}"),
                    ))
                }
            }
            ClientMessage::Serve { channel } => self
                .serve(conn, &channel)
                .map(|()| Some(ServerMessage::ServeRes { channel })),
            ClientMessage::Call {
                channel,
                method,
                params,
            } => self
                .route_call(now, conn, id.clone(), &channel, method, params)
                .map(|()| None),
            ClientMessage::ServerResponse { data } => {
                self.handle_server_response(now, conn, id, data);
                return;
            }
            ClientMessage::Refresh { token } => {
                self.refresh(now, conn, id, &token);
                return;
            }
            // Activity is all a pong means, and it was counted on arrival.
            ClientMessage::ServerPong { .. } => return,
            ClientMessage::Custom { type_name, data } => {
                if self.custom_types.contains(&type_name) {
                    self.custom_request(now, conn, Some(id), type_name, data);
                    return;
                }
                Err(Refusal::new(
                    ErrorCode::InvalidMessageType,
                    alloc::format!("unknown message type `{type_name}`"),
                ))
            }
        };
        match answer {
            Ok(Some(res)) => {
                self.send_native(conn, Some(id), res);
            }
            Ok(None) => {}
            Err(refusal) => self.send_refusal(now, conn, Some(id), refusal),
        }
    }

    /// A message of a registered type: in flight until [`respond`](Hub::respond).
    fn custom_request(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        message_id: Option<MessageId>,
        type_name: String,
        data: Map<String, Value>,
    ) {
        let Some(id) = message_id else {
            let refusal =
                Refusal::new(ErrorCode::ValidationError, "field `message_id` is required")
                    .with_details(json!({"field": "message_id", "problem": "is required"}));
            self.send_refusal(now, conn, None, refusal);
            return;
        };
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.in_flight.contains_key(&id) {
            let refusal = Refusal::new(
                ErrorCode::DuplicateMessageId,
                alloc::format!("a request with message_id {id} is still in flight"),
            );
            self.send_refusal(now, conn, Some(id), refusal);
            return;
        }
        c.in_flight.insert(
            id.clone(),
            InFlight::Custom {
                type_name: type_name.clone(),
            },
        );
        self.outbox.event(HubEvent::CustomRequest {
            conn,
            message_id: id,
            type_name,
            data,
        });
    }

    /// Answers a [`HubEvent::CustomRequest`]: `Ok(data)` → `<type_name>_res` with `data`; `Err((code, message))` →
    /// an `error` with that code. Returns `false` (and sends nothing) when the connection is gone or the request is
    /// not in flight (already answered).
    pub fn respond(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        request_id: &MessageId,
        type_name: &str,
        result: Result<Map<String, Value>, (ErrorCode, String)>,
    ) -> bool {
        let in_flight =
            self.conns
                .get_mut(conn)
                .is_some_and(|c| match c.in_flight.get(request_id) {
                    Some(InFlight::Custom { .. }) => c.in_flight.remove(request_id).is_some(),
                    _ => false,
                });
        if !in_flight {
            return false;
        }
        match result {
            Ok(data) => {
                let res = ServerMessage::Custom {
                    type_name: alloc::format!("{type_name}_res"),
                    data,
                };
                self.send_native(conn, Some(request_id.clone()), res);
            }
            Err((code, message)) => {
                self.send_error(now, conn, Some(request_id.clone()), code, &message, None)
            }
        }
        self.reap(now);
        true
    }
}
