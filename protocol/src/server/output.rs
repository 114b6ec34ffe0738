//! What the hub hands the driver: [`HubOutput`] (frames, closes, events, the next deadline) and [`HubEvent`] (news
//! for the embedding application), and the outbox that queues them and enforces the outbound byte limit.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::conn_table::ConnId;
use super::connection::{Admit, Connection};
use super::dialect::DialectKind;
use super::publish_outcome::{PublishTicket, StorageError};
use super::store::{SnapshotJob, StoreWrite};
use crate::time::Timestamp;
use crate::wire::{ChannelName, CloseCode, MessageId};

/// One thing for the driver to do. Drain with [`Hub::poll_output`](super::Hub::poll_output) until
/// [`HubOutput::Timeout`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HubOutput {
    /// Write `frame` as one text frame to `conn`. Fan-out frames are encoded once and shared by every subscriber.
    /// Report the bytes with [`Hub::handle_sent`](super::Hub::handle_sent) once written.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The text.
        frame: Arc<str>,
    },
    /// Send a close frame with `code` and `reason`, then drop the socket. The hub has already forgotten the
    /// connection and sends it nothing more; [`Hub::handle_transport_closed`](super::Hub::handle_transport_closed)
    /// for it is a no-op.
    Close {
        /// The connection.
        conn: ConnId,
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: String,
    },
    /// News for the embedding application.
    Event(HubEvent),
    /// Append bytes to the store's log (see [`StoreWrite`]), then report
    /// [`Hub::handle_store_written`](super::Hub::handle_store_written) or
    /// [`Hub::handle_store_failed`](super::Hub::handle_store_failed). One at a time: the next comes after the
    /// report.
    Persist(StoreWrite),
    /// Write a snapshot of the store off the hub's lock (see [`SnapshotJob`]), then report
    /// [`Hub::handle_snapshot_written`](super::Hub::handle_snapshot_written) or
    /// [`Hub::handle_snapshot_failed`](super::Hub::handle_snapshot_failed).
    Snapshot(SnapshotJob),
    /// Cluster mode ([`Hub::clustered`](super::Hub::clustered)): do this with the engine, and report as the
    /// command says.
    Engine(super::EngineCommand),
    /// Nothing left; call [`Hub::handle_timeout`](super::Hub::handle_timeout) at this time
    /// ([`Timestamp::MAX`]: never).
    Timeout(Timestamp),
}

/// News for the embedding application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HubEvent {
    /// A connection opened (before its greeting is transmitted).
    Connected {
        /// The connection.
        conn: ConnId,
        /// Its app id.
        app_id: String,
        /// Its dialect.
        dialect: DialectKind,
    },
    /// A connection is gone, and the hub holds nothing of it any more.
    Disconnected {
        /// The connection.
        conn: ConnId,
        /// Its app id.
        app_id: String,
    },
    /// A native client sent a message of a type registered with
    /// [`Hub::register_custom_type`](super::Hub::register_custom_type). Answer it with
    /// [`Hub::respond`](super::Hub::respond).
    CustomRequest {
        /// The connection.
        conn: ConnId,
        /// The request's id.
        message_id: MessageId,
        /// Its `type`.
        type_name: String,
        /// Its `data`.
        data: Map<String, Value>,
    },
    /// A request started with [`Hub::send_request`](super::Hub::send_request) ended. Every request ends exactly
    /// once.
    RequestCompleted {
        /// The connection it was sent to.
        conn: ConnId,
        /// The id `send_request` returned.
        id: MessageId,
        /// The `server_response` data, or why there is none.
        outcome: Result<Map<String, Value>, RequestFailure>,
    },
    /// A [`Hub::publish`](super::Hub::publish) that waited for the store ended: published at this offset, or
    /// refused.
    PublishDone {
        /// The ticket `publish` returned.
        ticket: PublishTicket,
        /// The offset, or why it was not published.
        outcome: Result<u64, StorageError>,
    },
    /// A [`Hub::publish_keyed`](super::Hub::publish_keyed) that waited for its key's original publish ended: the
    /// original was kept at these offsets, and this one published nothing (`duplicate: true`).
    PublishDuplicate {
        /// The ticket `publish_keyed` returned.
        ticket: PublishTicket,
        /// The original's (first) offset.
        first_offset: u64,
        /// The original's last offset.
        last_offset: u64,
    },
    /// An event was published (by a client or by [`Hub::publish`](super::Hub::publish)).
    Published {
        /// The channel.
        channel: ChannelName,
        /// The epoch of the log the event went into: the channel may be in another by the time this is read (a
        /// log that keeps nothing is forgotten once nobody holds it).
        epoch: String,
        /// The event's offset.
        offset: u64,
    },
}

/// Why a server request ended without a response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestFailure {
    /// The client answered with `{response_type, error}`. `code` is `error.code` when the error is an object with
    /// a string code, otherwise `"ERROR"`; `message` is `error.message`, or the error itself when it is a string.
    Error {
        /// The error's code.
        code: String,
        /// The error's text.
        message: String,
    },
    /// No answer within the timeout (`REQUEST_TIMEOUT`).
    Timeout,
    /// The connection closed first.
    Cancelled,
}

/// Who gets a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// One connection.
    App(ConnId),
    /// The connection that owns a session.
    Session(String),
    /// Every native connection except these.
    All {
        /// Left out.
        exclude: Vec<ConnId>,
    },
}

/// The queue of outputs, and the connections closed while producing them (cleaned up before the hub returns).
#[derive(Debug, Clone, Default)]
pub(crate) struct Outbox {
    pub(crate) queue: VecDeque<HubOutput>,
    /// Connections that got a `Close` and still have to be cleaned up, with their close code.
    pub(crate) doomed: VecDeque<(ConnId, CloseCode)>,
    /// Connections closed as slow consumers, ever.
    pub(crate) slow_consumers: u64,
}

impl Outbox {
    /// Queues `frame` for `conn`, or closes it as a slow consumer when the frame would take its queue over the
    /// limit. `false` when nothing was queued.
    pub(crate) fn transmit(&mut self, id: ConnId, conn: &mut Connection, frame: Arc<str>) -> bool {
        match conn.admit(frame.len()) {
            Admit::Queue => {
                self.queue
                    .push_back(HubOutput::Transmit { conn: id, frame });
                true
            }
            Admit::SlowConsumer => {
                self.slow_consumers += 1;
                self.close(id, conn, CloseCode::TryAgainLater, "slow consumer");
                false
            }
            Admit::Closing => false,
        }
    }

    /// Queues a `Close` (once) and marks the connection for clean-up.
    pub(crate) fn close(
        &mut self,
        id: ConnId,
        conn: &mut Connection,
        code: CloseCode,
        reason: &str,
    ) {
        if !conn.begin_close() {
            return;
        }
        self.queue.push_back(HubOutput::Close {
            conn: id,
            code,
            reason: String::from(reason),
        });
        self.doomed.push_back((id, code));
    }

    pub(crate) fn event(&mut self, event: HubEvent) {
        self.queue.push_back(HubOutput::Event(event));
    }
}
