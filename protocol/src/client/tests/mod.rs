//! Client machine tests: transcripts (the exact output sequence of each scenario), behaviour details, and a
//! state-machine property test against a scripted fake server.
//!
//! Transmitted frames are decoded with [`decode_client`] before comparing, so a transcript states their content;
//! ids are random but seeded, so a test takes them from the command that returned them or from the frame itself.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Map, Value, json};

use super::*;
use crate::time::Timestamp;
use crate::wire::{
    ChannelName, ClientFrame, ClientMessage, CloseCode, DecodeError, DecodeErrorKind, ErrorCode,
    MessageId, ServerFrame, ServerMessage, StreamPosition, decode_client,
};

mod behaviour;
mod model;
mod patterns;
mod token_refresh;
mod transcripts;

/// One output in readable form: transmitted frames decoded.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Out {
    Connect,
    Tx(ClientFrame),
    Close(u16, String),
    Ev(ClientEvent),
    Timeout(Timestamp),
}

/// Drains the machine until (and including) its `Timeout`.
pub(super) fn drain(client: &mut ClientMachine) -> Vec<Output> {
    let mut outputs = Vec::new();
    loop {
        let output = client.poll_output();
        let done = matches!(output, Output::Timeout(_));
        outputs.push(output);
        if done {
            return outputs;
        }
    }
}

/// [`drain`], readable.
pub(super) fn outs(client: &mut ClientMachine) -> Vec<Out> {
    drain(client)
        .into_iter()
        .map(|output| match output {
            Output::Connect => Out::Connect,
            Output::Transmit(text) => Out::Tx(decode(&text)),
            Output::Close { code, reason } => Out::Close(code.as_u16(), reason.into_owned()),
            Output::Event(event) => Out::Ev(event),
            Output::Timeout(at) => Out::Timeout(at),
        })
        .collect()
}

/// Decodes what the client sent; types the decoder does not know come back as [`ClientMessage::Custom`].
pub(super) fn decode(text: &str) -> ClientFrame {
    match decode_client(text) {
        Ok(frame) => frame,
        Err(DecodeError {
            message_id: Some(message_id),
            kind: DecodeErrorKind::UnknownType { type_name, data },
        }) => ClientFrame {
            message_id,
            message: ClientMessage::Custom { type_name, data },
        },
        Err(e) => panic!("the client sent an invalid frame {text}: {e}"),
    }
}

/// The id of a transmitted frame in a transcript.
pub(super) fn tx_id(out: &Out) -> MessageId {
    match out {
        Out::Tx(frame) => frame.message_id.clone(),
        other => panic!("not a transmit: {other:?}"),
    }
}

pub(super) fn tx(id: &MessageId, message: ClientMessage) -> Out {
    Out::Tx(ClientFrame {
        message_id: id.clone(),
        message,
    })
}

pub(super) fn ev(event: ClientEvent) -> Out {
    Out::Ev(event)
}

/// Milliseconds after an arbitrary origin (unix-like, so `as_millis` values look real).
pub(super) fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

pub(super) fn mid(s: &str) -> MessageId {
    MessageId::new(s).unwrap()
}

pub(super) fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A server frame's text.
pub(super) fn server(id: Option<&MessageId>, message: ServerMessage) -> String {
    ServerFrame {
        message_id: id.cloned(),
        message,
    }
    .encode()
}

pub(super) fn greeting(app_id: &str) -> String {
    server(
        Some(&mid("greeting-1")),
        ServerMessage::Connected {
            app_id: app_id.to_string(),
            status: crate::wire::ConnectedStatus::Connected,
            protocol: 1,
            heartbeat_ms: 25_000,
            max_message_bytes: 1_048_576,
        },
    )
}

pub(super) fn event(channel: &str, epoch: &str, offset: u64) -> String {
    server(
        Some(&mid("ev")),
        ServerMessage::Event {
            channel: ch(channel),
            epoch: epoch.to_string(),
            offset,
            event: json!({ "n": offset }),
        },
    )
}

pub(super) fn channel_event(channel: &str, epoch: &str, offset: u64) -> Out {
    ev(ClientEvent::ChannelEvent {
        channel: ch(channel),
        epoch: epoch.to_string(),
        offset,
        event: json!({ "n": offset }),
    })
}

pub(super) fn subscribe_res(
    id: &MessageId,
    channel: &str,
    epoch: &str,
    offset: u64,
    recovered: Option<bool>,
) -> String {
    server(
        Some(id),
        ServerMessage::SubscribeRes {
            channel: ch(channel),
            epoch: epoch.to_string(),
            offset,
            recovered,
        },
    )
}

pub(super) fn since(epoch: &str, offset: u64) -> Option<StreamPosition> {
    Some(StreamPosition {
        epoch: epoch.to_string(),
        offset,
    })
}

/// A client with this config, connected and greeted at `t(0)`, outputs drained.
pub(super) fn open_client_with(config: ClientConfig) -> ClientMachine {
    let mut c = ClientMachine::new(config, t(0));
    drain(&mut c);
    c.handle_connected(t(0));
    c.handle_text(t(0), &greeting("app-1"));
    drain(&mut c);
    assert!(c.is_connected());
    c
}

/// A client with the defaults and seed 7, open at `t(0)`.
pub(super) fn open_client() -> ClientMachine {
    open_client_with(ClientConfig::with_seed(7))
}

/// The first reconnect delay of seed 7 with the default backoff (see the recorded schedule in the transcripts).
pub(super) const FIRST_DELAY: Duration = Duration::from_micros(65_035);

/// The default heartbeat deadline for a frame received at `at`: 25 s + 10 s.
pub(super) fn heartbeat_after(at: Timestamp) -> Out {
    Out::Timeout(at + Duration::from_secs(35))
}
