//! [`InboxMessage`]: what one node sends another over the other's inbox topic (`{prefix}:n:{node}`) — a routed call
//! for the connection it serves, and the answer coming back.
//!
//! Pub/sub is at-most-once: a message to a node whose pub/sub connection is down is lost. A lost call or answer
//! ends as the caller's `REQUEST_TIMEOUT`, as a call to a server that never answers does; nothing is retried, so a
//! call runs at most once.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::EngineReplyError;
use crate::wire::{Caller, ChannelName, MessageId};

/// A message between nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum InboxMessage {
    /// A `call` made on node `from` for a channel the receiving node serves.
    Call {
        /// The calling node (where the answer goes).
        from: String,
        /// The call's id on the calling node.
        call: MessageId,
        /// The channel.
        channel: ChannelName,
        /// The method.
        method: String,
        /// The parameters.
        params: Value,
        /// Who called.
        caller: Caller,
    },
    /// The answer to a call: the serving connection's `server_response` data (`{result}` or `{error}`), or an
    /// error the serving node made (`NO_HANDLER`, `REQUEST_TIMEOUT`).
    Answer {
        /// The call's id on the calling node.
        call: MessageId,
        /// The answer.
        data: Map<String, Value>,
    },
}

impl InboxMessage {
    /// The payload to publish.
    pub fn encode(&self) -> Vec<u8> {
        let value = match self {
            InboxMessage::Call {
                from,
                call,
                channel,
                method,
                params,
                caller,
            } => json!({
                "t": "call",
                "from": from,
                "id": call.as_str(),
                "channel": channel.as_str(),
                "method": method,
                "params": params,
                "caller": caller.to_value(),
            }),
            InboxMessage::Answer { call, data } => json!({
                "t": "answer",
                "id": call.as_str(),
                "data": data,
            }),
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// Reads a payload; anything another node could not have sent is an error, never a panic.
    pub fn parse(payload: &[u8]) -> Result<InboxMessage, EngineReplyError> {
        let bad = || EngineReplyError::Shape {
            what: "an inbox message",
        };
        let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(payload) else {
            return Err(bad());
        };
        let text =
            |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let call = text(&m, "id")
            .and_then(|id| MessageId::new(id).ok())
            .ok_or_else(bad)?;
        match text(&m, "t").as_deref() {
            Some("call") => Ok(InboxMessage::Call {
                from: text(&m, "from").filter(|f| !f.is_empty()).ok_or_else(bad)?,
                call,
                channel: text(&m, "channel")
                    .and_then(|c| ChannelName::new(&c).ok())
                    .ok_or_else(bad)?,
                method: text(&m, "method").ok_or_else(bad)?,
                params: m.remove("params").unwrap_or(Value::Null),
                caller: m
                    .get("caller")
                    .and_then(Caller::from_value)
                    .ok_or_else(bad)?,
            }),
            Some("answer") => match m.remove("data") {
                Some(Value::Object(data)) => Ok(InboxMessage::Answer { call, data }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_no_node_sends() {
        let call = InboxMessage::Call {
            from: "node-a".into(),
            call: MessageId::new("c-1").unwrap(),
            channel: ChannelName::new("jobs/1").unwrap(),
            method: "cancel".into(),
            params: json!({"force": true}),
            caller: Caller::new("app", Some("ops".into()), None),
        };
        assert_eq!(InboxMessage::parse(&call.encode()), Ok(call));
        let mut data = Map::new();
        data.insert("result".into(), json!([1, 2]));
        let answer = InboxMessage::Answer {
            call: MessageId::new("c-1").unwrap(),
            data,
        };
        assert_eq!(InboxMessage::parse(&answer.encode()), Ok(answer));
        for bad in [
            &b""[..],
            b"[]",
            b"{\"t\":\"call\"}",
            b"{\"t\":\"answer\",\"id\":\"x\",\"data\":1}",
            b"{\"t\":\"call\",\"id\":\"x\",\"from\":\"n\",\"channel\":\"bad channel\",\"method\":\"m\",\"caller\":{\"app_id\":\"a\"}}",
            b"{\"t\":\"other\",\"id\":\"x\"}",
            b"\xff",
        ] {
            assert!(InboxMessage::parse(bad).is_err(), "{bad:?}");
        }
    }
}
