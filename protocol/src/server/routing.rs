//! Routed calls (PROTOCOL §2.3) and the table of everything the hub waits on from a connection.
//!
//! `serve` makes a connection the channel's handler. A `call` becomes a `server_request` (`request_type: "call"`,
//! with `channel`, `method`, `params` and `caller: {app_id, sub?, key?}`: the caller's app id and whom its
//! credential names, from its [`Principal`](super::Principal)) to that connection, under a fresh id; its
//! `server_response` goes back to the caller as `call_res` (`{result}`) or `error` (`{error: {code, message}}`).
//! No handler → `NO_HANDLER`; no answer within `request_timeout` → `REQUEST_TIMEOUT`; the handler disconnects →
//! every call routed to it fails at once (`NO_HANDLER`, details `{reason: "server_disconnected"}`); the caller
//! disconnects → the call stays pending for the handler, and its answer is dropped.
//!
//! Server requests of [`Hub::send_request`] share the table: both are [`Pending`] entries keyed by the id of the
//! `server_request`, in one [`CallTable`](crate::calls::CallTable) whose earliest deadline joins the hub's timers.
//! Every entry ends exactly once, through [`Hub::end_pending`].

use alloc::borrow::ToOwned;
use alloc::string::String;
use serde_json::{Map, Value};

use super::Hub;
use super::conn_table::ConnId;
use super::connection::InFlight;
use super::dialect::ConnDialect;
use super::output::{HubEvent, RequestFailure};
use super::permissions::Action;
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::{Caller as CallerIdentity, ChannelName, ErrorCode, MessageId, ServerMessage};

/// Something the hub waits for from a connection (the `target`): the answer to a `server_request`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pending {
    /// Started by [`Hub::send_request`]; ends as a [`HubEvent::RequestCompleted`].
    Request { target: ConnId },
    /// A routed `call`; ends as `call_res` or `error` to the caller, if it is still there.
    Call {
        target: ConnId,
        /// `None` once the caller disconnected: the answer is dropped.
        caller: Option<Caller>,
        channel: ChannelName,
        method: String,
    },
    /// A node of a cluster: a local caller's `call` sent to the node that serves the channel; ends like a
    /// [`Call`](Pending::Call) when that node's answer comes back (or the deadline passes).
    Forwarded {
        /// `None` once the caller disconnected: the answer is dropped.
        caller: Option<Caller>,
        channel: ChannelName,
        method: String,
    },
    /// A node of a cluster: a `call` from another node to a local server; its answer goes back to that node.
    Remote {
        target: ConnId,
        /// The calling node and the call's id there.
        node: String,
        call: MessageId,
        channel: ChannelName,
        method: String,
    },
}

/// Who made a routed call, and the id of its request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Caller {
    pub(crate) conn: ConnId,
    pub(crate) request_id: MessageId,
}

impl Pending {
    /// The local connection that owes the answer (none for a call forwarded to another node).
    pub(crate) fn target(&self) -> Option<ConnId> {
        match self {
            Pending::Request { target }
            | Pending::Call { target, .. }
            | Pending::Remote { target, .. } => Some(*target),
            Pending::Forwarded { .. } => None,
        }
    }

    pub(crate) fn is_call(&self) -> bool {
        !matches!(self, Pending::Request { .. })
    }

    /// The local caller waiting for the answer, if any.
    #[cfg(any(test, feature = "_internal_test_exports"))]
    pub(crate) fn caller(&self) -> Option<&Caller> {
        match self {
            Pending::Call { caller, .. } | Pending::Forwarded { caller, .. } => caller.as_ref(),
            Pending::Request { .. } | Pending::Remote { .. } => None,
        }
    }
}

/// How a pending entry ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ending {
    /// The target's `server_response` data.
    Answered(Map<String, Value>),
    /// The deadline passed.
    TimedOut,
    /// The target disconnected.
    TargetGone,
}

impl Hub {
    /// `serve`: `conn` answers `call`s on `name` from now on (taking over from any previous server).
    pub(super) fn serve(&mut self, conn: ConnId, name: &ChannelName) -> Result<(), Refusal> {
        let Some(c) = self.conns.get_mut(conn) else {
            return Err(Refusal::new(ErrorCode::InternalError, "connection gone"));
        };
        if !c.permissions.allows(Action::Serve, name) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                alloc::format!("not allowed to serve {name}"),
            ));
        }
        c.serving.insert(name.clone());
        self.cluster_register(name);
        let watched = super::presence::role_before(&self.channels, name, conn);
        let previous_watched = self
            .channels
            .get(name)
            .and_then(|ch| ch.server)
            .filter(|&p| p != conn)
            .map(|p| (p, super::presence::role_before(&self.channels, name, p)));
        let ch = self.route_entry(name);
        let previous = ch.server.replace(conn).filter(|&p| p != conn);
        if let Some(previous) = previous
            && let Some(p) = self.conns.get_mut(previous)
        {
            p.serving.remove(name);
        }
        self.presence_changed(name, conn, watched);
        if let Some((p, before)) = previous_watched {
            self.presence_changed(name, p, before);
        }
        Ok(())
    }

    /// Routes a call from `caller` (request `request_id`) to the connection serving `name`.
    pub(super) fn route_call(
        &mut self,
        now: Timestamp,
        caller: ConnId,
        request_id: MessageId,
        name: &ChannelName,
        method: String,
        params: Option<Value>,
    ) -> Result<(), Refusal> {
        let Some(c) = self.conns.get(caller) else {
            return Err(Refusal::new(ErrorCode::InternalError, "connection gone"));
        };
        if !c.permissions.allows(Action::Call, name) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                alloc::format!("not allowed to call {name}"),
            ));
        }
        let principal = c.permissions.principal();
        let caller_id = CallerIdentity::new(
            String::from(&*c.app_id),
            principal.sub.clone(),
            principal.key.clone(),
        );
        let target = self
            .channels
            .get(name)
            .and_then(|ch| ch.server)
            .filter(|&t| self.conns.get(t).is_some_and(|t| !t.closing));
        if target.is_none() && !self.is_clustered() {
            return Err(Refusal::new(
                ErrorCode::NoHandler,
                alloc::format!("no connection serves {name}"),
            ));
        }
        let routed = self.fresh_request_id();
        let deadline = now + self.config.request_timeout;
        let from = Some(Caller {
            conn: caller,
            request_id: request_id.clone(),
        });
        let pending = match target {
            Some(target) => Pending::Call {
                target,
                caller: from,
                channel: name.clone(),
                method: method.clone(),
            },
            // Another node may serve it: the engine knows which.
            None => Pending::Forwarded {
                caller: from,
                channel: name.clone(),
                method: method.clone(),
            },
        };
        if self
            .outstanding
            .insert(routed.clone(), deadline, pending)
            .is_err()
        {
            return Err(Refusal::new(ErrorCode::InternalError, "request id clash"));
        }
        if let Some(c) = self.conns.get_mut(caller) {
            c.in_flight.insert(
                request_id,
                InFlight::Call {
                    routed: routed.clone(),
                },
            );
        }
        let Some(target) = target else {
            self.cluster_forward(
                routed,
                name,
                method,
                params.unwrap_or(Value::Null),
                caller_id,
            );
            return Ok(());
        };
        self.send_call(
            target,
            routed,
            name,
            method,
            params.unwrap_or(Value::Null),
            &caller_id,
        );
        Ok(())
    }

    /// Sends the `server_request` of a routed call, pending as `routed`, to the serving connection `target`.
    pub(super) fn send_call(
        &mut self,
        target: ConnId,
        routed: MessageId,
        name: &ChannelName,
        method: String,
        params: Value,
        caller_id: &CallerIdentity,
    ) {
        if let Some(t) = self.conns.get_mut(target) {
            t.outstanding.insert(routed.clone());
        }
        let mut data = Map::new();
        data.insert(
            "channel".to_owned(),
            Value::String(name.as_str().to_owned()),
        );
        data.insert("method".to_owned(), Value::String(method));
        data.insert("params".to_owned(), params);
        data.insert("caller".to_owned(), caller_id.to_value());
        let request = ServerMessage::ServerRequest {
            request_type: "call".to_owned(),
            data,
        };
        self.send_native(target, Some(routed), request);
    }

    /// A `server_response` from `from`. Ignored (and counted) unless it answers something pending *to `from`*.
    pub(super) fn handle_server_response(
        &mut self,
        now: Timestamp,
        from: ConnId,
        id: MessageId,
        data: Map<String, Value>,
    ) {
        if self.outstanding.get(&id).and_then(Pending::target) != Some(from) {
            self.counters.unmatched_responses += 1;
            return;
        }
        if let Some(pending) = self.outstanding.resolve(&id) {
            self.end_pending(now, id, pending, Ending::Answered(data));
        }
    }

    /// Fails every pending entry whose deadline has passed.
    pub(super) fn expire_pending(&mut self, now: Timestamp) {
        for (id, pending) in self.outstanding.expire(now) {
            self.end_pending(now, id, pending, Ending::TimedOut);
        }
    }

    /// The caller of the call routed as `routed` disconnected: its answer will be dropped.
    pub(super) fn orphan_call(&mut self, routed: &MessageId) {
        if let Some(Pending::Call { caller, .. } | Pending::Forwarded { caller, .. }) =
            self.outstanding.get_mut(routed)
        {
            *caller = None;
        }
    }

    /// The one place a pending entry ends (already removed from the table).
    pub(super) fn end_pending(
        &mut self,
        now: Timestamp,
        id: MessageId,
        pending: Pending,
        ending: Ending,
    ) {
        if let Some(t) = pending.target().and_then(|t| self.conns.get_mut(t)) {
            t.outstanding.remove(&id);
        }
        if ending == Ending::TimedOut {
            self.counters.requests_timed_out += 1;
        }
        match pending {
            Pending::Request { target } => {
                let outcome = match ending {
                    Ending::Answered(data) => response_outcome(data),
                    Ending::TimedOut => Err(RequestFailure::Timeout),
                    Ending::TargetGone => Err(RequestFailure::Cancelled),
                };
                self.outbox.event(HubEvent::RequestCompleted {
                    conn: target,
                    id,
                    outcome,
                });
            }
            Pending::Call { caller: None, .. } | Pending::Forwarded { caller: None, .. } => {}
            Pending::Remote {
                node,
                call,
                channel,
                method,
                ..
            } => {
                let data = match ending {
                    Ending::Answered(data) => data,
                    Ending::TimedOut => error_data(
                        ErrorCode::RequestTimeout,
                        alloc::format!("{channel} did not answer {method} in time"),
                        None,
                    ),
                    Ending::TargetGone => error_data(
                        ErrorCode::NoHandler,
                        alloc::format!("the connection serving {channel} disconnected"),
                        Some(serde_json::json!({"reason": "server_disconnected"})),
                    ),
                };
                self.cluster_answer(node, call, data);
            }
            Pending::Call {
                caller: Some(caller),
                channel,
                method,
                ..
            }
            | Pending::Forwarded {
                caller: Some(caller),
                channel,
                method,
            } => {
                let native = match self.conns.get_mut(caller.conn) {
                    Some(c) => {
                        c.in_flight.remove(&caller.request_id);
                        c.dialect == ConnDialect::Native
                    }
                    None => return,
                };
                let answer = match ending {
                    Ending::Answered(data) => call_answer(data),
                    Ending::TimedOut => Err(Refusal::new(
                        ErrorCode::RequestTimeout,
                        alloc::format!("{channel} did not answer {method} in time"),
                    )),
                    Ending::TargetGone => Err(Refusal::new(
                        ErrorCode::NoHandler,
                        alloc::format!("the connection serving {channel} disconnected"),
                    )
                    .with_details(serde_json::json!({"reason": "server_disconnected"}))),
                };
                match answer {
                    Ok(result) if native => {
                        let res = ServerMessage::CallRes {
                            channel,
                            method,
                            result,
                        };
                        self.send_native(caller.conn, Some(caller.request_id), res);
                    }
                    // The project-stream `cancel` was acknowledged already; success says nothing more.
                    Ok(_) => {}
                    Err(refusal) => {
                        self.send_refusal(now, caller.conn, Some(caller.request_id), refusal)
                    }
                }
            }
        }
    }

    /// An id for a `server_request`, unique among pending ones.
    pub(super) fn fresh_request_id(&mut self) -> MessageId {
        loop {
            let id = MessageId::random(&mut self.rng);
            if !self.outstanding.contains(&id) {
                return id;
            }
        }
    }
}

/// A `server_response`'s data carrying an error: what a node answers another with when it cannot route a call.
pub(crate) fn error_data(
    code: ErrorCode,
    message: String,
    details: Option<Value>,
) -> Map<String, Value> {
    let mut error = Map::new();
    error.insert("code".to_owned(), Value::String(code.as_str().to_owned()));
    error.insert("message".to_owned(), Value::String(message));
    if let Some(details) = details {
        error.insert("details".to_owned(), details);
    }
    let mut data = Map::new();
    data.insert("error".to_owned(), Value::Object(error));
    data
}

/// A `server_response` to a [`Hub::send_request`] as its outcome: an `error` field (not `null`) makes it a
/// [`RequestFailure::Error`].
fn response_outcome(data: Map<String, Value>) -> Result<Map<String, Value>, RequestFailure> {
    match data.get("error") {
        None | Some(Value::Null) => Ok(data),
        Some(Value::Object(err)) => Err(RequestFailure::Error {
            code: err
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("ERROR")
                .to_owned(),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }),
        Some(Value::String(message)) => Err(RequestFailure::Error {
            code: "ERROR".to_owned(),
            message: message.clone(),
        }),
        Some(other) => Err(RequestFailure::Error {
            code: "ERROR".to_owned(),
            message: alloc::format!("{other}"),
        }),
    }
}

/// A routed call's `server_response` as the caller's answer: `{result}` → the result (`null` when absent);
/// `{error: {code, message, details?}}` → that error. A code outside PROTOCOL §2.4 (or an error that is not an
/// object) becomes `INTERNAL_ERROR` with the original code in `details.code`.
fn call_answer(mut data: Map<String, Value>) -> Result<Value, Refusal> {
    let error = match data.remove("error") {
        None | Some(Value::Null) => return Ok(data.remove("result").unwrap_or(Value::Null)),
        Some(e) => e,
    };
    let (code_text, message, details) = match error {
        Value::Object(mut e) => (
            e.get("code").and_then(Value::as_str).map(str::to_owned),
            e.get("message").and_then(Value::as_str).map(str::to_owned),
            e.remove("details"),
        ),
        Value::String(s) => (None, Some(s), None),
        other => (None, Some(alloc::format!("{other}")), None),
    };
    let message = message.unwrap_or_else(|| "the serving connection reported an error".to_owned());
    match code_text.as_deref().and_then(ErrorCode::from_wire) {
        Some(code) => {
            let refusal = Refusal::new(code, message);
            Err(match details {
                Some(d) => refusal.with_details(d),
                None => refusal,
            })
        }
        None => {
            let mut d = Map::new();
            d.insert(
                "code".to_owned(),
                code_text.map_or(Value::Null, Value::String),
            );
            if let Some(original) = details {
                d.insert("details".to_owned(), original);
            }
            Err(Refusal::new(ErrorCode::InternalError, message).with_details(Value::Object(d)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test data is an object"),
        }
    }

    #[test]
    fn request_outcomes() {
        let ok = map(json!({"response_type": "x", "n": 1}));
        assert_eq!(response_outcome(ok.clone()), Ok(ok));
        assert_eq!(
            response_outcome(map(
                json!({"response_type": "x", "error": {"code": "E", "message": "m"}})
            )),
            Err(RequestFailure::Error {
                code: "E".to_owned(),
                message: "m".to_owned()
            })
        );
        assert_eq!(
            response_outcome(map(json!({"error": "plain"}))),
            Err(RequestFailure::Error {
                code: "ERROR".to_owned(),
                message: "plain".to_owned()
            })
        );
        assert!(response_outcome(map(json!({"error": null}))).is_ok());
    }

    #[test]
    fn call_answers() {
        assert_eq!(call_answer(map(json!({"result": [1]}))), Ok(json!([1])));
        assert_eq!(call_answer(map(json!({}))), Ok(Value::Null));
        let known = call_answer(map(
            json!({"error": {"code": "FORBIDDEN", "message": "no"}}),
        ));
        assert_eq!(known, Err(Refusal::new(ErrorCode::Forbidden, "no")));
        let unknown = call_answer(map(
            json!({"error": {"code": "NOT_FOUND", "message": "gone", "details": 7}}),
        ));
        assert_eq!(
            unknown,
            Err(Refusal::new(ErrorCode::InternalError, "gone")
                .with_details(json!({"code": "NOT_FOUND", "details": 7})))
        );
    }
}
