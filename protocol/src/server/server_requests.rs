//! What the server starts towards apps: server requests ([`Hub::send_request`], answered by `server_response`) and
//! notifications ([`Hub::notify`]: to one app, a session's owner, or everyone but some). Both are native messages;
//! the other dialects cannot receive them.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Map, Value};

use super::Hub;
use super::conn_table::ConnId;
use super::dialect::DialectKind;
use super::error::{HubError, MisuseError};
use super::output::NotifyTarget;
use super::routing::Pending;
use crate::time::Timestamp;
use crate::wire::{MessageId, ServerFrame, ServerMessage};

impl Hub {
    /// Sends `server_request` `{request_type, …data}` to a native connection and returns its id. It ends exactly
    /// once, as [`HubEvent::RequestCompleted`](super::HubEvent::RequestCompleted): the `server_response`, an error
    /// in it, a timeout (`timeout`, or `request_timeout` when `None`), or cancellation when the connection closes
    /// first.
    pub fn send_request(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        request_type: &str,
        mut data: Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<MessageId, HubError> {
        match self.conns.get(conn) {
            None => return Err(MisuseError::UnknownConnection(conn).into()),
            Some(c) if c.closing => return Err(MisuseError::UnknownConnection(conn).into()),
            Some(c) if c.kind() != DialectKind::Native => {
                return Err(MisuseError::NotNative {
                    conn,
                    dialect: c.kind(),
                }
                .into());
            }
            Some(_) => {}
        }
        let id = self.fresh_request_id();
        let deadline = now + timeout.unwrap_or(self.config.request_timeout);
        // `fresh_request_id` checked the id is free, so this cannot clash.
        let _ = self
            .outstanding
            .insert(id.clone(), deadline, Pending::Request { target: conn });
        if let Some(c) = self.conns.get_mut(conn) {
            c.outstanding.insert(id.clone());
        }
        data.remove("request_type");
        let request = ServerMessage::ServerRequest {
            request_type: request_type.to_owned(),
            data,
        };
        self.send_native(conn, Some(id.clone()), request);
        self.reap(now);
        Ok(id)
    }

    /// Sends a `notification` (encoded once) to the native connections `target` names, and returns how many got it.
    pub fn notify(
        &mut self,
        now: Timestamp,
        target: NotifyTarget,
        notification_type: &str,
        message: Option<String>,
        additional_data: Option<Value>,
    ) -> usize {
        let recipients: Vec<ConnId> = match target {
            NotifyTarget::App(conn) => Vec::from([conn]),
            NotifyTarget::Session(session) => self
                .sessions
                .by_id
                .get(&session)
                .map(|s| Vec::from([s.conn]))
                .unwrap_or_default(),
            NotifyTarget::All { exclude } => self
                .conns
                .iter()
                .map(|(id, _)| id)
                .filter(|id| !exclude.contains(id))
                .collect(),
        };
        let recipients: Vec<ConnId> = recipients
            .into_iter()
            .filter(|&id| {
                self.conns
                    .get(id)
                    .is_some_and(|c| c.kind() == DialectKind::Native)
            })
            .collect();
        if recipients.is_empty() {
            return 0;
        }
        let frame: Arc<str> = Arc::from(
            ServerFrame {
                message_id: Some(MessageId::random(&mut self.rng)),
                message: ServerMessage::Notification {
                    notification_type: notification_type.to_owned(),
                    message,
                    additional_data,
                },
            }
            .encode(),
        );
        let delivered = recipients
            .into_iter()
            .filter(|&id| self.send_frame(id, Arc::clone(&frame)))
            .count();
        self.reap(now);
        delivered
    }
}
