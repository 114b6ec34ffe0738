//! Sessions: `create_session` / `close_session` (PROTOCOL §2.2). A session belongs to the connection that created
//! it, carries the client's metadata, and ends when that connection closes it or disconnects.
//!
//! `max_sessions` is per connection (a hub-wide cap would let one client starve every other): the next
//! `create_session` over it is `SESSION_LIMIT`. Closing a session that does not exist, has ended, or belongs to
//! another connection is `SESSION_NOT_FOUND` (a client cannot probe or end another's sessions).

use alloc::collections::BTreeMap;
use alloc::string::String;
use serde_json::Value;

use super::Hub;
use super::conn_table::ConnId;
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::{ErrorCode, MessageId};

/// One open session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionInfo {
    /// The connection that created it.
    pub(crate) conn: ConnId,
    /// The client's `metadata` (`null` when none).
    pub(crate) metadata: Value,
    /// When it was created.
    pub(crate) created_at: Timestamp,
}

/// Every open session by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sessions {
    pub(crate) by_id: BTreeMap<String, SessionInfo>,
}

impl Hub {
    /// `create_session`: a new session for `conn`, or `SESSION_LIMIT`.
    pub(super) fn create_session(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        metadata: Option<Value>,
    ) -> Result<String, Refusal> {
        let max = self.config.max_sessions;
        let Some(c) = self.conns.get(conn) else {
            return Err(Refusal::new(ErrorCode::InternalError, "connection gone"));
        };
        if c.sessions.len() >= max {
            return Err(Refusal::new(
                ErrorCode::SessionLimit,
                alloc::format!("this connection already has {max} open sessions"),
            ));
        }
        let session_id = loop {
            let id = MessageId::random(&mut self.rng).into_string();
            if !self.sessions.by_id.contains_key(&id) {
                break id;
            }
        };
        self.sessions.by_id.insert(
            session_id.clone(),
            SessionInfo {
                conn,
                metadata: metadata.unwrap_or(Value::Null),
                created_at: now,
            },
        );
        if let Some(c) = self.conns.get_mut(conn) {
            c.sessions.insert(session_id.clone());
        }
        Ok(session_id)
    }

    /// `close_session`: ends one of `conn`'s sessions, or `SESSION_NOT_FOUND`.
    pub(super) fn close_session(&mut self, conn: ConnId, session_id: &str) -> Result<(), Refusal> {
        match self.sessions.by_id.get(session_id) {
            Some(s) if s.conn == conn => {
                self.sessions.by_id.remove(session_id);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.sessions.remove(session_id);
                }
                Ok(())
            }
            _ => Err(Refusal::new(
                ErrorCode::SessionNotFound,
                alloc::format!("no open session {session_id} on this connection"),
            )),
        }
    }
}
