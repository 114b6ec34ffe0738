//! [`CallStream`]: the `call`s routed to a channel this client serves, each with its [`Responder`].

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use switchboard_protocol::wire::Caller;

use super::command::Command;
use super::handoff::RawCall;
use super::responder::Responder;

/// One routed `call`. Answer it through [`responder`](Self::responder).
#[derive(Debug)]
pub struct IncomingCall {
    /// The served channel.
    pub channel: String,
    /// The method.
    pub method: String,
    /// The parameters (`null` when none).
    pub params: Value,
    /// Who called (the calling connection's `app_id`, its token's `sub`, its API key's name), when the server
    /// said; [`caller`](Self::caller) reads it.
    pub caller: Option<Caller>,
    /// Answers the call: `Ok(result)` reaches the caller as `call_res`, `Err` as an `error`.
    pub responder: Responder,
}

impl IncomingCall {
    /// Who called: the calling connection's `app_id`, and the `sub` of its token or the name of its API key when
    /// it authenticated with one ([`Caller::name`] picks the best of them for a log line). `None` when the server
    /// did not say.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }
}

/// The calls routed to a served channel ([`Client::serve`](super::Client::serve)). The client re-registers the
/// channel on every reconnect. Calls that arrive once this stream is dropped are refused with `NO_HANDLER`.
#[derive(Debug)]
pub struct CallStream {
    channel: String,
    calls: mpsc::UnboundedReceiver<RawCall>,
    commands: mpsc::UnboundedSender<Command>,
}

impl CallStream {
    pub(crate) fn new(
        channel: String,
        calls: mpsc::UnboundedReceiver<RawCall>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> CallStream {
        CallStream {
            channel,
            calls,
            commands,
        }
    }

    /// The served channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

impl Stream for CallStream {
    type Item = IncomingCall;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IncomingCall>> {
        let raw = match self.calls.poll_next_unpin(cx) {
            Poll::Ready(Some(raw)) => raw,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(Some(IncomingCall {
            channel: raw.channel,
            method: raw.method,
            params: raw.params,
            caller: raw.caller,
            responder: Responder::new(raw.id, self.commands.clone()),
        }))
    }
}
