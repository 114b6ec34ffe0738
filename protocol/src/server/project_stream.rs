//! The project-stream dialect (PROTOCOL §5): a connection bound to one channel, `projects/{project_id}`.
//!
//! On open: `connected`, the subscription, and — with `?since=` — the replay of the events after it (in the current
//! epoch), or a `state` message when they can no longer be replayed. Client messages: `ping` → `pong`;
//! `get_state` → `state`; `cancel` → `cancel_acknowledged` and a routed `call` with method `cancel` (errors of
//! that call come back as `error`); anything else → `error` with the native code in `data.details.code`.

use alloc::sync::Arc;

use super::Hub;
use super::conn_table::ConnId;
use super::dialect::ConnDialect;
use super::permissions::Action;
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::project_stream::{ProjectStreamMessage, ProjectStreamRequest};
use crate::wire::{ChannelName, CloseCode, DecodeError, ErrorCode, MessageId, StreamPosition};

impl Hub {
    /// The project id and channel of a project-stream connection.
    pub(super) fn project_of(
        &self,
        conn: ConnId,
    ) -> Option<(alloc::string::String, Option<ChannelName>)> {
        match &self.conns.get(conn)?.dialect {
            ConnDialect::ProjectStream {
                project_id,
                channel,
            } => Some((project_id.clone(), channel.clone())),
            _ => None,
        }
    }

    fn send_project(&mut self, conn: ConnId, message: &ProjectStreamMessage) -> bool {
        self.send_frame(conn, Arc::from(message.encode()))
    }

    /// The greeting, the subscription and the recovery of a new project-stream connection.
    pub(super) fn open_project_stream(&mut self, now: Timestamp, conn: ConnId, since: Option<u64>) {
        let Some((project_id, channel)) = self.project_of(conn) else {
            return;
        };
        let unix_ms = now.as_millis();
        self.send_project(conn, &ProjectStreamMessage::connected(&project_id, unix_ms));
        let Some(channel) = channel else {
            let refusal = Refusal::new(
                ErrorCode::InvalidChannel,
                alloc::format!("{project_id:?} is not a valid project id"),
            );
            self.refuse_open(now, conn, refusal);
            return;
        };
        let since = since.map(|offset| StreamPosition {
            epoch: self.epoch(&channel).into(),
            offset,
        });
        match self.subscribe(now, conn, &channel, since.as_ref()) {
            Ok(sub) => match sub.recovered {
                Some(true) => self.send_replay(conn, sub.replay),
                Some(false) => {
                    let state = self.state(&channel);
                    let msg = ProjectStreamMessage::state(
                        &project_id,
                        unix_ms,
                        state.offset,
                        state.state,
                    );
                    self.send_project(conn, &msg);
                }
                None => {}
            },
            Err(refusal) => self.refuse_open(now, conn, refusal),
        }
    }

    /// A project-stream connection that cannot be served: an `error`, then close 1008.
    fn refuse_open(&mut self, now: Timestamp, conn: ConnId, refusal: Refusal) {
        let reason = match refusal.code {
            ErrorCode::Forbidden => "forbidden",
            _ => "invalid project id",
        };
        self.send_refusal(now, conn, None, refusal);
        if let Some(c) = self.conns.get_mut(conn) {
            self.outbox
                .close(conn, c, CloseCode::PolicyViolation, reason);
        }
    }

    /// A project-stream frame from the intake.
    pub(super) fn project_stream_request(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        decoded: Result<ProjectStreamRequest, DecodeError>,
    ) {
        let Some((project_id, Some(channel))) = self.project_of(conn) else {
            return;
        };
        let unix_ms = now.as_millis();
        match decoded {
            Err(e) => self.send_decode_error(now, conn, &e),
            Ok(ProjectStreamRequest::Ping) => {
                self.send_project(conn, &ProjectStreamMessage::pong(&project_id, unix_ms));
            }
            Ok(ProjectStreamRequest::GetState) => {
                let state = self.state(&channel);
                let msg =
                    ProjectStreamMessage::state(&project_id, unix_ms, state.offset, state.state);
                self.send_project(conn, &msg);
            }
            Ok(ProjectStreamRequest::Cancel) => {
                if !self.allows(conn, Action::Call, &channel) {
                    let refusal = Refusal::new(
                        ErrorCode::Forbidden,
                        alloc::format!("not allowed to cancel {channel}"),
                    );
                    self.send_refusal(now, conn, None, refusal);
                    return;
                }
                let ack = ProjectStreamMessage::cancel_acknowledged(&project_id, unix_ms);
                self.send_project(conn, &ack);
                // The dialect has no ids; the call is tracked under one the hub makes up.
                let request_id = MessageId::random(&mut self.rng);
                let method = alloc::string::String::from("cancel");
                if let Err(refusal) = self.route_call(now, conn, request_id, &channel, method, None)
                {
                    self.send_refusal(now, conn, None, refusal);
                }
            }
        }
    }
}
