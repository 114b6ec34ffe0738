//! Requests from issue to end: ids, the offline queue or the wire, deadlines, and how each answer or failure ends
//! one (and what it changes in the subscription bookkeeping).

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::ClientMachine;
use super::error::{ClientError, SendLimitError, UsageError};
use super::event::{ClientEvent, FailReason};
use super::outbox::QueueFull;
use super::output::{Output, TimeoutReason};
use super::state::State;
use crate::time::Timestamp;
use crate::wire::{
    ChannelName, ChannelPattern, ClientFrame, ClientMessage, MessageId, ServerMessage,
};

/// A request that has not ended.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// Issue order.
    seq: u64,
    pub(super) kind: Kind,
    /// Issued by the application (which knows its id) rather than by the machine (resubscriptions).
    by_app: bool,
    /// On the wire, rather than in the offline queue.
    pub(super) sent: bool,
}

/// The requests whose sending or answer changes the machine's own bookkeeping.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    Plain,
    Subscribe(ChannelName),
    Unsubscribe(ChannelName),
    Serve(ChannelName),
    SubscribePattern(ChannelPattern),
    UnsubscribePattern(ChannelPattern),
}

impl Kind {
    /// Whether `answer` can be this request's answer: the machine acts on those of `subscribe`, `unsubscribe` and
    /// `serve`, so they must be of the request's own type and channel; it does not know what other requests expect.
    pub(super) fn answered_by(&self, answer: &ServerMessage) -> bool {
        match (self, answer) {
            (Kind::Plain, _) => true,
            (Kind::Subscribe(channel), ServerMessage::SubscribeRes { channel: named, .. })
            | (Kind::Unsubscribe(channel), ServerMessage::UnsubscribeRes { channel: named })
            | (Kind::Serve(channel), ServerMessage::ServeRes { channel: named }) => {
                channel == named
            }
            (
                Kind::SubscribePattern(pattern),
                ServerMessage::SubscribePatternRes { pattern: named, .. },
            )
            | (
                Kind::UnsubscribePattern(pattern),
                ServerMessage::UnsubscribePatternRes { pattern: named },
            ) => pattern == named,
            _ => false,
        }
    }
}

/// How to shape the answer to a server request.
#[derive(Debug, Clone)]
pub(super) enum ServerRequestKind {
    Call,
    Other(String),
}

/// How long the server waits for a `server_response` (its `request_timeout_ms` default, PROTOCOL §2.3); the
/// machine forgets unanswered server requests after this long.
pub(super) const SERVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl ClientMachine {
    /// Issues an application request: on the wire when open, in the offline queue otherwise, failed at once with
    /// [`FailReason::QueueFull`] when the queue has no room. Its deadline runs from `now` either way.
    pub(super) fn issue(
        &mut self,
        now: Timestamp,
        message: ClientMessage,
        kind: Kind,
        timeout: Option<Duration>,
    ) -> Result<MessageId, ClientError> {
        self.ensure_live()?;
        let id = self.fresh_id();
        let frame = ClientFrame {
            message_id: id.clone(),
            message,
        }
        .encode();
        self.check_size(&frame)?;
        let deadline = now + timeout.unwrap_or(self.config.request_timeout);
        let pending = Pending {
            seq: self.take_seq(),
            kind,
            by_app: true,
            sent: false,
        };
        if self.state == State::Open {
            self.track(id.clone(), deadline, pending);
            self.transmit_request(&id, frame);
        } else if let Err(QueueFull) = self.outbox.push(id.clone(), frame) {
            self.emit(ClientEvent::RequestFailed {
                id: id.clone(),
                reason: FailReason::QueueFull,
            });
        } else {
            self.track(id.clone(), deadline, pending);
        }
        Ok(id)
    }

    /// Issues one of the machine's own requests on the open connection (resubscriptions, re-serves).
    pub(super) fn issue_internal(&mut self, now: Timestamp, message: ClientMessage, kind: Kind) {
        let id = self.fresh_id();
        let frame = ClientFrame {
            message_id: id.clone(),
            message,
        }
        .encode();
        let pending = Pending {
            seq: self.take_seq(),
            kind,
            by_app: false,
            sent: false,
        };
        self.track(id.clone(), now + self.config.request_timeout, pending);
        self.transmit_request(&id, frame);
    }

    /// Puts a tracked request on the wire, applying what its sending means: a channel becomes wanted when its
    /// `subscribe` goes out, and stops being wanted when its `unsubscribe` does.
    pub(super) fn transmit_request(&mut self, id: &MessageId, frame: String) {
        if let Some(pending) = self.calls.get_mut(id) {
            pending.sent = true;
            match &pending.kind {
                Kind::Plain => {}
                Kind::Subscribe(channel) => self.subscriptions.want(channel, id.clone()),
                Kind::Unsubscribe(channel) => {
                    if let Some(position) = self.subscriptions.since(channel) {
                        self.patterns.adopt(channel, position);
                    }
                    self.subscriptions.unwant(channel, id.clone())
                }
                Kind::Serve(channel) => self.served.serve(channel, id.clone()),
                Kind::SubscribePattern(pattern) => self.patterns.want(pattern, id.clone()),
                Kind::UnsubscribePattern(pattern) => self.patterns.unwant(pattern),
            }
        }
        self.outputs.push_back(Output::Transmit(frame));
    }

    /// Ends a request with its answer.
    pub(super) fn complete(&mut self, id: MessageId, pending: Pending, message: ServerMessage) {
        let mut resync = None;
        if let (
            Kind::Subscribe(channel),
            ServerMessage::SubscribeRes {
                channel: answered,
                epoch,
                offset,
                recovered,
            },
        ) = (&pending.kind, &message)
            && channel == answered
            && self
                .subscriptions
                .subscribed(channel, epoch, *offset, *recovered)
        {
            resync = Some(channel.clone());
        }
        let mut lost = Vec::new();
        if let (
            Kind::SubscribePattern(pattern),
            ServerMessage::SubscribePatternRes {
                pattern: answered,
                channels,
            },
        ) = (&pending.kind, &message)
            && pattern == answered
        {
            lost = self.patterns.subscribed(pattern, channels);
        }
        if pending.by_app {
            self.emit(ClientEvent::Response { id, message });
        }
        if let Some(channel) = resync {
            // The application starts over at the channel's new position: a pattern following the channel starts
            // there too, or its replay would hand the application events from before the resync.
            if let Some(position) = self.subscriptions.since(&channel) {
                self.patterns.adopt(&channel, position);
            }
            self.emit(ClientEvent::Resync { channel });
        }
        for channel in lost {
            self.emit(ClientEvent::Resync { channel });
        }
    }

    /// Ends a request without an answer. A refused `subscribe` or `serve` also drops its registration; when the
    /// machine itself had issued it, the application hears of that as `SubscriptionLost` / `ServeLost`.
    pub(super) fn fail(&mut self, id: MessageId, pending: Pending, reason: FailReason) {
        if let FailReason::Error { .. } = reason {
            match &pending.kind {
                Kind::Subscribe(channel) => {
                    if self.subscriptions.refused(channel, &id) && !pending.by_app {
                        self.emit(ClientEvent::SubscriptionLost {
                            channel: channel.clone(),
                            reason: reason.clone(),
                        });
                    }
                }
                Kind::Serve(channel) => {
                    if self.served.refused(channel, &id) && !pending.by_app {
                        self.emit(ClientEvent::ServeLost {
                            channel: channel.clone(),
                            reason: reason.clone(),
                        });
                    }
                }
                Kind::SubscribePattern(pattern) => {
                    if self.patterns.refused(pattern, &id) && !pending.by_app {
                        self.emit(ClientEvent::PatternLost {
                            pattern: pattern.clone(),
                            reason: reason.clone(),
                        });
                    }
                }
                Kind::Plain | Kind::Unsubscribe(_) | Kind::UnsubscribePattern(_) => {}
            }
        }
        if pending.by_app {
            self.emit(ClientEvent::RequestFailed { id, reason });
        }
    }

    /// Fails every request whose deadline has come, taking queued ones out of the offline queue.
    pub(super) fn expire_requests(&mut self, now: Timestamp) {
        for (id, pending) in self.calls.expire(now) {
            if !pending.sent {
                self.outbox.remove(&id);
            } else if let Kind::Subscribe(channel) = &pending.kind {
                self.subscriptions.timed_out(id.clone(), channel.clone());
            }
            self.fail(id, pending, FailReason::TimedOut);
        }
    }

    /// Fails every sent request (the connection dropped), in issue order.
    pub(super) fn fail_sent(&mut self) {
        let mut lost = self.calls.remove_where(|_, pending| pending.sent);
        lost.sort_by_key(|(_, pending)| pending.seq);
        for (id, pending) in lost {
            self.fail(id, pending, FailReason::Disconnected);
        }
    }

    /// Fails every request, queued or sent, in issue order, and empties the offline queue (the machine stops).
    pub(super) fn fail_all(&mut self, reason: &FailReason) {
        while self.outbox.pop().is_some() {}
        let mut all: Vec<(MessageId, Pending)> = self.calls.cancel_all();
        all.sort_by_key(|(_, pending)| pending.seq);
        for (id, pending) in all {
            self.fail(id, pending, reason.clone());
        }
    }

    /// The request timer follows the earliest pending deadline.
    pub(super) fn sync_request_timer(&mut self) {
        match self.calls.next_deadline() {
            Some(at) => self.timers.set(TimeoutReason::Request, at),
            None => self.timers.stop(TimeoutReason::Request),
        }
    }

    /// A random id not in use.
    pub(super) fn fresh_id(&mut self) -> MessageId {
        loop {
            let id = MessageId::random(&mut self.rng);
            if !self.calls.contains(&id) && self.auto_ping.as_ref() != Some(&id) {
                return id;
            }
        }
    }

    pub(super) fn ensure_live(&self) -> Result<(), UsageError> {
        if self.is_closed() {
            Err(UsageError::Closed)
        } else {
            Ok(())
        }
    }

    pub(super) fn check_size(&self, frame: &str) -> Result<(), SendLimitError> {
        if frame.len() > self.max_message_bytes {
            Err(SendLimitError::MessageTooLarge {
                size: frame.len(),
                max: self.max_message_bytes,
            })
        } else {
            Ok(())
        }
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn track(&mut self, id: MessageId, deadline: Timestamp, pending: Pending) {
        // `fresh_id` never returns a pending id, so this cannot be refused.
        let inserted = self.calls.insert(id, deadline, pending);
        debug_assert!(inserted.is_ok(), "fresh ids are unique");
    }
}
