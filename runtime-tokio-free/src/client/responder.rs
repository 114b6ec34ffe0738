//! [`Responder`]: the one-shot answer to a server request or a routed call.

use futures_channel::mpsc;
use serde_json::Value;
use switchboard_protocol::client::HandlerError;
use switchboard_protocol::wire::{ErrorCode, MessageId};

use super::command::Command;

/// Answers one server request or call. Answer with [`respond`](Self::respond); dropping it unanswered sends an
/// `INTERNAL_ERROR`, so the asking side is not left waiting for its timeout.
#[derive(Debug)]
pub struct Responder {
    id: MessageId,
    commands: mpsc::UnboundedSender<Command>,
    answered: bool,
}

impl Responder {
    pub(crate) fn new(id: MessageId, commands: mpsc::UnboundedSender<Command>) -> Responder {
        Responder {
            id,
            commands,
            answered: false,
        }
    }

    /// The server request's `message_id`.
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// Sends the answer: `Ok(result)`, or `Err` with a code and message. Answers to a connection that has since
    /// dropped are discarded (the server has cancelled the request).
    pub fn respond(mut self, result: Result<Value, HandlerError>) {
        self.answered = true;
        self.send(result);
    }

    fn send(&self, result: Result<Value, HandlerError>) {
        let command = Command::Respond {
            id: self.id.clone(),
            result,
        };
        if self.commands.unbounded_send(command).is_err() {
            tracing::debug!(id = %self.id, "answer dropped: the client is closed");
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            self.send(Err(HandlerError::new(
                ErrorCode::InternalError.as_str(),
                "the handler dropped the request without answering",
            )));
        }
    }
}
