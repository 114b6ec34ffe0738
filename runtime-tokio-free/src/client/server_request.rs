//! [`ServerRequests`]: the `server_request`s (other than routed calls) the server sends this client, each with its
//! [`Responder`].

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};

use super::command::Command;
use super::handoff::RawRequest;
use super::responder::Responder;

/// One `server_request`. Answer it through [`responder`](Self::responder).
#[derive(Debug)]
pub struct IncomingRequest {
    /// What is asked (`request_type`).
    pub request_type: String,
    /// The rest of the request's `data`.
    pub data: Map<String, Value>,
    /// Answers the request with a `server_response`: an `Ok` object is sent as its `data` (with
    /// `response_type` set to the request type unless present), another `Ok` value as `{response_type, result}`,
    /// and `Err` as `{response_type, error: {code, message}}`.
    pub responder: Responder,
}

/// The server's requests to this client ([`Client::server_requests`](super::Client::server_requests)). Only the
/// latest such stream receives them; while there is none, they are refused with `NO_HANDLER`.
#[derive(Debug)]
pub struct ServerRequests {
    requests: mpsc::UnboundedReceiver<RawRequest>,
    commands: mpsc::UnboundedSender<Command>,
}

impl ServerRequests {
    pub(crate) fn new(
        requests: mpsc::UnboundedReceiver<RawRequest>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> ServerRequests {
        ServerRequests { requests, commands }
    }
}

impl Stream for ServerRequests {
    type Item = IncomingRequest;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IncomingRequest>> {
        let raw = match self.requests.poll_next_unpin(cx) {
            Poll::Ready(Some(raw)) => raw,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(Some(IncomingRequest {
            request_type: raw.request_type,
            data: raw.data,
            responder: Responder::new(raw.id, self.commands.clone()),
        }))
    }
}
