//! What must hold after every step, checked against the simulation's own records rather than the machines' word.
//!
//! - **Requests end exactly once.** Every id a client command returns is in its slot's ledger until one
//!   [`ClientEvent::Response`] or [`ClientEvent::RequestFailed`] ends it; a second ending, an ending for an id never
//!   issued, or an id still open after its deadline is a violation. Likewise every [`Hub::send_request`] id until
//!   its one [`HubEvent::RequestCompleted`].
//! - **Answers match their requests.** A `publish_res` names the offset the hub really gave that publish; a
//!   `call_res` carries the echo of that call's parameters; a `server_response` outcome carries the number its
//!   server request asked for; a `get_state_res` returns the last retained event up to its offset; only the error
//!   codes that request can legitimately get.
//! - **Channel events are true, ordered and gap-free.** The hub's ground [`truth`](super::truth) is recorded from
//!   every [`HubEvent::Published`]: per hub generation (epoch) and channel, the event at each offset, with offsets
//!   consecutive and no publish applied twice. Per client and channel, a delivered event must be exactly what was
//!   published at its epoch and offset; offsets strictly increase within an epoch; and each one follows the
//!   previous one with no gap — across reconnects, hub restarts and slow-consumer closes — unless the client
//!   reported [`ClientEvent::Resync`] for the channel since the last one (a new epoch needs it too).
//! - **No subscription is dropped silently.** A channel whose `subscribe` the application saw succeed stays in
//!   [`ClientMachine::subscriptions`] until the application unsubscribes, a later subscribe of it is refused, or the
//!   client reports [`ClientEvent::SubscriptionLost`].
//! - **No surprises.** A client never reports a protocol violation from the hub, never gives up (the sim retries
//!   forever and never closes with 1008), and only reports an unmatched `error` for a request it had already timed
//!   out or for a rate-limited answer.
//!
//! - **One position, one event.** No subscriber ever gets, under an (epoch, offset) any subscriber already saw, a
//!   different event (checked against the deliveries themselves; it matters once a durable hub's restart keeps the
//!   epoch). The other durability invariants are in [`durability`](super::durability).
//!
//! The connection-level invariants (nothing reaches or leaves a closed connection, the hub forgets a closed
//! connection entirely, queues within bounds, `Hub::check_invariants`) are checked by the driver in
//! [`world`](super::world), which sees every output.
//!
//! [`Hub::send_request`]: switchboard_protocol::server::Hub::send_request
//! [`ClientMachine::subscriptions`]: switchboard_protocol::client::ClientMachine::subscriptions

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use switchboard_protocol::client::{ClientEvent, FailReason};
use switchboard_protocol::server::{ConnId, HubEvent, RequestFailure};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{
    ChannelName, ChannelPattern, ErrorCode, MessageId, ServerMessage,
};

use super::truth::{Truth, tag_of};

/// The error code a call handler of the simulation answers with when it refuses; the hub passes it on as
/// `INTERNAL_ERROR` with this code in `details.code`.
pub const REFUSAL_CODE: &str = "SIM_REFUSED";

/// A client request as the workload issued it: what its answer must look like.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `publish` of the event tagged `tag`.
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The event's tag.
        tag: u64,
    },
    /// `subscribe`.
    Subscribe {
        /// The channel.
        channel: ChannelName,
    },
    /// `unsubscribe`.
    Unsubscribe {
        /// The channel.
        channel: ChannelName,
    },
    /// `subscribe` with a pattern.
    SubscribePattern {
        /// The pattern.
        pattern: ChannelPattern,
    },
    /// `get_state`.
    GetState {
        /// The channel.
        channel: ChannelName,
    },
    /// `call` with params `{"n": n}`.
    Call {
        /// The channel.
        channel: ChannelName,
        /// The method.
        method: String,
        /// The number in the params, echoed by the handler.
        n: u64,
    },
    /// `serve`.
    Serve {
        /// The channel.
        channel: ChannelName,
    },
    /// `ping` with this timestamp.
    Ping {
        /// The timestamp, echoed by the hub.
        timestamp: u64,
    },
    /// `create_session`.
    CreateSession,
    /// `close_session`.
    CloseSession {
        /// The session.
        session_id: String,
    },
}

impl Request {
    /// The error codes the hub may legitimately answer this request with; a publish may be refused for a failed
    /// store write when the hub runs over a disk that fails (`storage_fails`).
    fn allowed_errors(&self, storage_fails: bool) -> &'static [ErrorCode] {
        use ErrorCode as E;
        match self {
            Request::Publish { .. } if storage_fails => &[E::RateLimited, E::StorageUnavailable],
            Request::Unsubscribe { .. } => &[E::RateLimited, E::NotSubscribed],
            Request::Call { .. } => &[
                E::RateLimited,
                E::NoHandler,
                E::RequestTimeout,
                E::InternalError,
            ],
            Request::CreateSession => &[E::RateLimited, E::SessionLimit],
            Request::CloseSession { .. } => &[E::RateLimited, E::SessionNotFound],
            _ => &[E::RateLimited],
        }
    }
}

/// Where one client stands on one channel.
#[derive(Debug, Clone, Default)]
struct Track {
    /// The last event delivered, or the position a fresh subscription started at: `(generation, offset)`.
    last: Option<(u32, u64)>,
    /// A `Resync` was reported since `last`: the next event may skip ahead or start a new epoch.
    excused: bool,
    /// The application saw a `subscribe` of this channel succeed and has not let go of it since.
    confirmed: bool,
    /// The application's latest `subscribe` of the channel since it last let go: only its answer counts.
    latest_subscribe: Option<MessageId>,
}

/// One client machine's ledger: its open requests and where it stands on each channel.
#[derive(Debug, Default)]
pub struct ClientBook {
    open: BTreeMap<MessageId, (Request, Timestamp)>,
    /// Requests that ended by timing out: the hub's late `error` for one of them is expected.
    timed_out: BTreeSet<MessageId>,
    channels: BTreeMap<ChannelName, Track>,
    /// Patterns the application subscribed to, with their latest `subscribe`: every matching channel gets a track
    /// of its own, held to the same rules as a channel subscription's.
    patterns: BTreeMap<ChannelPattern, MessageId>,
    /// Patterns the machine follows right now ([`sync_patterns`](ClientBook::sync_patterns)): a channel one of them
    /// matches keeps its track when the application lets go of the channel itself.
    following: BTreeSet<ChannelPattern>,
    /// Patterns whose answer the application saw: the channels it listed start at their offsets, and a channel
    /// not listed was made since (or while the client was away, and then comes from its start).
    answered_patterns: BTreeSet<ChannelPattern>,
    /// The application closed the client: requests may fail with `Closed`.
    closing: bool,
}

impl ClientBook {
    /// Whether a pattern the machine follows matches `channel`.
    fn pattern_follows(&self, channel: &ChannelName) -> bool {
        self.following.iter().any(|p| p.matches(channel))
    }

    /// The patterns the machine follows now (a pattern subscribe that timed out in the offline queue never went
    /// out, and the machine does not follow it).
    pub fn sync_patterns<'a>(&mut self, following: impl Iterator<Item = &'a ChannelPattern>) {
        self.following = following.cloned().collect();
        let following = &self.following;
        self.answered_patterns.retain(|p| following.contains(p));
    }

    /// The application lets go of a channel subscription: no more promises about the channel, unless a pattern
    /// still follows it (then its events keep coming without a gap).
    fn let_go(&mut self, channel: &ChannelName) {
        if self.pattern_follows(channel) {
            if let Some(track) = self.channels.get_mut(channel) {
                track.confirmed = false;
                track.latest_subscribe = None;
            }
        } else {
            self.channels.insert(channel.clone(), Track::default());
        }
    }

    /// How many requests are open.
    pub fn open_requests(&self) -> usize {
        self.open.len()
    }

    /// The channels whose subscribe the application saw succeed and still holds.
    pub fn confirmed(&self) -> impl Iterator<Item = &ChannelName> + '_ {
        self.channels
            .iter()
            .filter(|(_, t)| t.confirmed)
            .map(|(c, _)| c)
    }

    /// The last event delivered on a channel (or where a fresh subscription started).
    pub fn position(&self, channel: &ChannelName) -> Option<(u32, u64)> {
        self.channels.get(channel).and_then(|t| t.last)
    }

    /// The application is about to close the client.
    pub fn closing(&mut self) {
        self.closing = true;
    }
}

/// The ledgers and the ground truth of one run.
#[derive(Debug, Default)]
pub struct Checker {
    /// What the hubs published.
    pub truth: Truth,
    /// Open client requests by deadline, for the "ended by its deadline" check: (deadline, slot, id).
    deadlines: BTreeSet<(Timestamp, usize, MessageId)>,
    /// Open hub server requests: id → (generation, conn, n, deadline).
    hub_open: BTreeMap<MessageId, (u32, ConnId, u64, Timestamp)>,
    hub_deadlines: BTreeSet<(Timestamp, MessageId)>,
    /// The hub's store writes may fail (a durable store on a disk that fills up).
    pub storage_fails: bool,
    /// Every (epoch, channel, offset) any subscriber was delivered, and the tag it carried.
    seen: BTreeMap<(String, ChannelName, u64), u64>,
    /// Deliveries at a position some subscriber had already seen, checked to carry the same event.
    pub redeliveries_checked: u64,
}

impl Checker {
    /// A client command returned `id` for `request`, which must end by `deadline`.
    pub fn issued(
        &mut self,
        book: &mut ClientBook,
        slot: usize,
        id: MessageId,
        request: Request,
        deadline: Timestamp,
    ) -> Result<(), String> {
        match &request {
            Request::Subscribe { channel } => {
                book.channels
                    .entry(channel.clone())
                    .or_default()
                    .latest_subscribe = Some(id.clone());
            }
            Request::Unsubscribe { channel } => {
                // The application lets go: no more promises about this channel until it subscribes again.
                book.let_go(channel);
            }
            Request::SubscribePattern { pattern } => {
                book.patterns.insert(pattern.clone(), id.clone());
            }
            _ => {}
        }
        self.deadlines.insert((deadline, slot, id.clone()));
        if book.open.insert(id.clone(), (request, deadline)).is_some() {
            return Err(format!(
                "the client returned the id {id} of a request still open"
            ));
        }
        Ok(())
    }

    /// A client machine is gone for good (its application closed it): everything it was asked must have ended.
    pub fn retired(&mut self, book: &ClientBook, slot: usize) -> Result<(), String> {
        for (id, (_, deadline)) in &book.open {
            self.deadlines.remove(&(*deadline, slot, id.clone()));
        }
        match book.open.first_key_value() {
            None => Ok(()),
            Some((id, (request, _))) => Err(format!(
                "client closed with {} requests never ended, e.g. {id} ({request:?})",
                book.open.len()
            )),
        }
    }

    /// Checks one event of a client machine against its ledger and the truth.
    pub fn client_event(
        &mut self,
        book: &mut ClientBook,
        slot: usize,
        event: &ClientEvent,
    ) -> Result<(), String> {
        match event {
            ClientEvent::Response { id, message } => {
                let request = self.end(book, slot, id)?;
                self.check_answer(book, id, &request, message)
                    .map_err(|e| format!("answer to {id} ({request:?}): {e}"))
            }
            ClientEvent::RequestFailed { id, reason } => {
                let request = self.end(book, slot, id)?;
                self.check_failure(book, id, &request, reason)
                    .map_err(|e| format!("failure of {id} ({request:?}): {e}"))
            }
            ClientEvent::ChannelEvent {
                channel,
                epoch,
                offset,
                event,
            } => {
                self.check_delivery(book, channel, epoch, *offset, event)
                    .map_err(|e| format!("{channel}: {e}"))?;
                self.check_same_event(channel, epoch, *offset, event)
            }
            ClientEvent::Resync { channel } => {
                book.channels.entry(channel.clone()).or_default().excused = true;
                Ok(())
            }
            ClientEvent::SubscriptionLost { channel, .. } => {
                book.let_go(channel);
                Ok(())
            }
            ClientEvent::PatternLost { pattern, .. } => Err(format!(
                "the pattern {pattern} was lost (nothing in the simulation refuses one)"
            )),
            ClientEvent::ServerError {
                id, code, message, ..
            } => {
                let late = id.as_ref().is_some_and(|id| book.timed_out.contains(id));
                if late || *code == ErrorCode::RateLimited {
                    Ok(())
                } else {
                    Err(format!(
                        "unexpected error from the hub: {code} {message} (id {id:?})"
                    ))
                }
            }
            ClientEvent::GaveUp { reason } => Err(format!("the client gave up: {reason:?}")),
            ClientEvent::ProtocolViolation { violation } => Err(format!(
                "the client saw a protocol violation: {violation:?}"
            )),
            ClientEvent::CallRequest { caller, .. } if caller.is_none() => {
                Err(String::from("a routed call without its caller"))
            }
            _ => Ok(()),
        }
    }

    /// Takes an open request out of the ledger: it must be there.
    fn end(
        &mut self,
        book: &mut ClientBook,
        slot: usize,
        id: &MessageId,
    ) -> Result<Request, String> {
        let Some((request, deadline)) = book.open.remove(id) else {
            return Err(format!(
                "request {id} ended, but it is not open (ended twice, or never issued)"
            ));
        };
        self.deadlines.remove(&(deadline, slot, id.clone()));
        Ok(request)
    }

    fn check_answer(
        &self,
        book: &mut ClientBook,
        id: &MessageId,
        request: &Request,
        message: &ServerMessage,
    ) -> Result<(), String> {
        let same = |a: &ChannelName, b: &ChannelName| {
            if a == b {
                Ok(())
            } else {
                Err(format!("answer names channel {b}"))
            }
        };
        match (request, message) {
            (
                Request::Publish { channel, tag },
                ServerMessage::PublishRes {
                    channel: c, offset, ..
                },
            ) => {
                same(channel, c)?;
                match self.truth.by_tag.get(tag) {
                    Some((published_on, p)) if published_on == channel && p.offset == *offset => {
                        Ok(())
                    }
                    Some((published_on, p)) => Err(format!(
                        "publish_res says offset {offset}, the hub published it at {published_on}#{}",
                        p.offset
                    )),
                    None => Err(format!(
                        "publish_res offset {offset}, but the hub never published it"
                    )),
                }
            }
            (
                Request::Subscribe { channel },
                ServerMessage::SubscribeRes {
                    channel: c,
                    epoch,
                    offset,
                    recovered,
                },
            ) => {
                same(channel, c)?;
                let generation = self.truth.generation(epoch)?;
                let head = self.truth.head(generation, channel);
                if *offset > head {
                    return Err(format!(
                        "subscribe_res offset {offset} ahead of the channel ({head})"
                    ));
                }
                let track = book.channels.entry(channel.clone()).or_default();
                if track.latest_subscribe.as_ref() != Some(id) {
                    // Superseded: the application has unsubscribed or subscribed again since.
                    return Ok(());
                }
                track.confirmed = true;
                if *recovered != Some(true) {
                    // A subscription that replays nothing starts at the answer's position: from here on, gap-free.
                    track.last = match track.last {
                        Some((g, o)) if g == generation => Some((g, o.max(*offset))),
                        _ => Some((generation, *offset)),
                    };
                }
                Ok(())
            }
            (
                Request::SubscribePattern { pattern },
                ServerMessage::SubscribePatternRes {
                    pattern: p,
                    channels,
                },
            ) => {
                if p != pattern {
                    return Err(format!("answer names pattern {p}"));
                }
                if book.patterns.get(pattern) != Some(id) {
                    return Ok(());
                }
                book.answered_patterns.insert(pattern.clone());
                for c in channels {
                    if !pattern.matches(&c.channel) {
                        return Err(format!(
                            "answer lists {}, which {pattern} does not match",
                            c.channel
                        ));
                    }
                    let generation = self.truth.generation(&c.epoch)?;
                    let head = self.truth.head(generation, &c.channel);
                    if c.offset > head {
                        return Err(format!(
                            "{}: offset {} ahead of the channel ({head})",
                            c.channel, c.offset
                        ));
                    }
                    let track = book.channels.entry(c.channel.clone()).or_default();
                    if c.recovered == Some(true) && track.last.is_none() {
                        // A channel the client had no position in: its whole history follows, from offset 1.
                        track.last = Some((generation, 0));
                    } else if c.recovered != Some(true) {
                        track.last = match track.last {
                            Some((g, o)) if g == generation => Some((g, o.max(c.offset))),
                            _ => Some((generation, c.offset)),
                        };
                    }
                }
                Ok(())
            }
            (Request::Unsubscribe { channel }, ServerMessage::UnsubscribeRes { channel: c })
            | (Request::Serve { channel }, ServerMessage::ServeRes { channel: c }) => {
                same(channel, c)
            }
            (
                Request::GetState { channel },
                ServerMessage::GetStateRes {
                    channel: c,
                    epoch,
                    offset,
                    state,
                },
            ) => {
                same(channel, c)?;
                let generation = self.truth.generation(epoch)?;
                let head = self.truth.head(generation, channel);
                if *offset > head {
                    return Err(format!(
                        "get_state_res offset {offset} ahead of the channel ({head})"
                    ));
                }
                let want = self.truth.retained_at(generation, channel, *offset);
                let got = if state.is_null() {
                    None
                } else {
                    Some(
                        tag_of(state)
                            .ok_or_else(|| format!("state is not an event: {state}"))?
                            .0,
                    )
                };
                if got == want {
                    Ok(())
                } else {
                    Err(format!(
                        "state at offset {offset} is #{got:?}, the last retained event is #{want:?}"
                    ))
                }
            }
            (
                Request::Call { channel, method, n },
                ServerMessage::CallRes {
                    channel: c,
                    method: m,
                    result,
                },
            ) => {
                same(channel, c)?;
                if m != method {
                    return Err(format!("call_res names method {m}"));
                }
                match result.get("echo").and_then(Value::as_u64) {
                    Some(echo) if echo == *n => Ok(()),
                    _ => Err(format!("call_res result {result} does not echo n = {n}")),
                }
            }
            (Request::Ping { timestamp }, ServerMessage::PingRes { timestamp: t, .. }) => {
                if t.as_ref().and_then(Value::as_u64) == Some(*timestamp) {
                    Ok(())
                } else {
                    Err(format!("ping_res echoes {t:?}, not {timestamp}"))
                }
            }
            (Request::CreateSession, ServerMessage::CreateSessionRes { .. }) => Ok(()),
            (
                Request::CloseSession { session_id },
                ServerMessage::CloseSessionRes { session_id: s },
            ) => {
                if s == session_id {
                    Ok(())
                } else {
                    Err(format!("close_session_res names session {s}"))
                }
            }
            (_, other) => Err(format!("answered with {}", other.type_name())),
        }
    }

    fn check_failure(
        &self,
        book: &mut ClientBook,
        id: &MessageId,
        request: &Request,
        reason: &FailReason,
    ) -> Result<(), String> {
        match reason {
            FailReason::TimedOut => {
                book.timed_out.insert(id.clone());
                Ok(())
            }
            FailReason::Disconnected | FailReason::QueueFull => Ok(()),
            FailReason::Closed if book.closing => Ok(()),
            FailReason::Closed => Err(String::from(
                "failed as Closed, but nobody closed the client",
            )),
            FailReason::Error {
                code,
                message,
                details,
            } => {
                if !request.allowed_errors(self.storage_fails).contains(code) {
                    return Err(format!("unexpected error {code}: {message}"));
                }
                if *code == ErrorCode::InternalError {
                    // Only a handler's own refusal, passed on.
                    let original = details
                        .as_ref()
                        .and_then(|d| d.get("code"))
                        .and_then(Value::as_str);
                    if original != Some(REFUSAL_CODE) {
                        return Err(format!("INTERNAL_ERROR: {message} ({details:?})"));
                    }
                }
                if let Request::Subscribe { channel } = request {
                    // A refused subscribe may drop the channel: no more promises about it.
                    book.let_go(channel);
                }
                Ok(())
            }
            other => Err(format!("unknown failure {other:?}")),
        }
    }

    fn check_delivery(
        &self,
        book: &mut ClientBook,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
        event: &Value,
    ) -> Result<(), String> {
        let generation = self.truth.generation(epoch)?;
        if !book.channels.contains_key(channel) && book.pattern_follows(channel) {
            // A channel a pattern reached that its answer did not list: made since, so it starts at offset 1. (When
            // the application never saw the answer — its subscribe timed out and the machine subscribed again on
            // its own — where the channel starts is the machine's business.)
            let answered = book.answered_patterns.iter().any(|p| p.matches(channel));
            book.channels.insert(
                channel.clone(),
                Track {
                    last: answered.then_some((generation, 0)),
                    ..Track::default()
                },
            );
        }
        let Some(track) = book.channels.get_mut(channel) else {
            return Err(String::from(
                "event on a channel the application never subscribed to",
            ));
        };
        let tag = tag_of(event).map(|(t, _)| t);
        let published = self.truth.tag_at(generation, channel, offset);
        if published.is_none() || tag != published {
            return Err(format!(
                "event #{offset} of epoch {epoch} carries tag {tag:?}, the hub published {published:?} there"
            ));
        }
        match track.last {
            Some((g, o)) if g == generation && offset <= o => {
                return Err(format!(
                    "offset {offset} delivered after {o} in the same epoch (duplicate or out of order)"
                ));
            }
            Some((g, o)) if g == generation && offset != o + 1 && !track.excused => {
                return Err(format!(
                    "gap: offset {offset} delivered after {o} without a Resync (missed {}..={})",
                    o + 1,
                    offset - 1
                ));
            }
            Some((g, o)) if g != generation && !track.excused => {
                return Err(format!(
                    "event #{offset} of a new epoch (generation {generation}) after #{o} of generation {g} \
                     without a Resync"
                ));
            }
            _ => {}
        }
        track.last = Some((generation, offset));
        track.excused = false;
        Ok(())
    }

    /// No subscriber ever gets, under an (epoch, offset) some subscriber already saw, a different event: checked
    /// against the deliveries themselves, not the truth, so a hub that forgot an event and reused its position
    /// (a restart losing acknowledged data) is caught even where the truth could not tell.
    fn check_same_event(
        &mut self,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
        event: &Value,
    ) -> Result<(), String> {
        let tag = tag_of(event).map_or(u64::MAX, |(t, _)| t);
        match self
            .seen
            .entry((String::from(epoch), channel.clone(), offset))
        {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(tag);
                Ok(())
            }
            std::collections::btree_map::Entry::Occupied(o) if *o.get() == tag => {
                self.redeliveries_checked += 1;
                Ok(())
            }
            std::collections::btree_map::Entry::Occupied(o) => Err(format!(
                "{channel}: {epoch}#{offset} delivered as #{tag}, a subscriber got #{} there before",
                o.get()
            )),
        }
    }

    /// Every channel the application holds confirmed must still be subscribed by the machine.
    pub fn check_subscriptions<'a>(
        &self,
        book: &ClientBook,
        subscribed: impl Iterator<Item = &'a ChannelName>,
    ) -> Result<(), String> {
        let subscribed: Vec<&ChannelName> = subscribed.collect();
        for channel in book.confirmed() {
            if !subscribed.contains(&channel) {
                return Err(format!(
                    "the client dropped its subscription to {channel} without telling the application"
                ));
            }
        }
        Ok(())
    }

    /// The hub sent a server request asking for `n`, which must end by `deadline`.
    pub fn hub_request_sent(
        &mut self,
        generation: u32,
        id: MessageId,
        conn: ConnId,
        n: u64,
        deadline: Timestamp,
    ) -> Result<(), String> {
        self.hub_deadlines.insert((deadline, id.clone()));
        match self
            .hub_open
            .insert(id.clone(), (generation, conn, n, deadline))
        {
            None => Ok(()),
            Some(_) => Err(format!(
                "send_request returned the id {id} of a request still open"
            )),
        }
    }

    /// Checks one event of the hub.
    pub fn hub_event(&mut self, generation: u32, event: &HubEvent) -> Result<(), String> {
        let HubEvent::RequestCompleted { conn, id, outcome } = event else {
            return Ok(());
        };
        let Some((g, target, n, deadline)) = self.hub_open.remove(id) else {
            return Err(format!(
                "server request {id} completed, but it is not open (completed twice, or never sent)"
            ));
        };
        self.hub_deadlines.remove(&(deadline, id.clone()));
        if g != generation || target != *conn {
            return Err(format!(
                "server request {id} to {target} (hub {g}) completed for {conn} (hub {generation})"
            ));
        }
        match outcome {
            Ok(data) if data.get("n").and_then(Value::as_u64) == Some(n) => Ok(()),
            Ok(data) => Err(format!(
                "server request {id} asked for n = {n}, the answer is {data:?}"
            )),
            Err(RequestFailure::Error { code, .. }) if code == REFUSAL_CODE => Ok(()),
            Err(RequestFailure::Timeout | RequestFailure::Cancelled) => Ok(()),
            Err(other) => Err(format!(
                "server request {id} failed unexpectedly: {other:?}"
            )),
        }
    }

    /// A hub generation is gone without a shutdown (a crash): its server requests can never end, and the
    /// application would learn that from the process dying, not from the hub.
    pub fn hub_crashed(&mut self, generation: u32) {
        let lost: Vec<MessageId> = self
            .hub_open
            .iter()
            .filter(|(_, (g, ..))| *g == generation)
            .map(|(id, _)| id.clone())
            .collect();
        for id in lost {
            if let Some((_, _, _, deadline)) = self.hub_open.remove(&id) {
                self.hub_deadlines.remove(&(deadline, id));
            }
        }
    }

    /// No request may be open past its deadline: each machine's own timer ends it exactly then.
    pub fn check_deadlines(&self, now: Timestamp) -> Result<(), String> {
        if let Some((deadline, slot, id)) = self.deadlines.first()
            && *deadline < now
        {
            return Err(format!(
                "client {slot}'s request {id} is still open {:?} after its deadline",
                now - *deadline
            ));
        }
        if let Some((deadline, id)) = self.hub_deadlines.first()
            && *deadline < now
        {
            return Err(format!(
                "server request {id} is still open {:?} after its deadline",
                now - *deadline
            ));
        }
        Ok(())
    }

    /// How many hub server requests are open.
    pub fn hub_open_requests(&self) -> usize {
        self.hub_open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    fn id(s: &str) -> MessageId {
        MessageId::new(s).unwrap()
    }

    fn event(channel: &str, epoch: &str, offset: u64, tag: u64) -> ClientEvent {
        ClientEvent::ChannelEvent {
            channel: ch(channel),
            epoch: String::from(epoch),
            offset,
            event: json!({"tag": tag, "retain": false}),
        }
    }

    fn checker_with_events(n: u64) -> Checker {
        let mut c = Checker::default();
        assert_eq!(c.truth.id("e0"), Ok(0));
        assert_eq!(c.truth.id("e1"), Ok(1));
        for offset in 1..=n {
            let payload = json!({"tag": offset, "retain": offset == 2});
            c.truth.published(0, &ch("a"), offset, &payload).unwrap();
            let payload = json!({"tag": 100 + offset, "retain": false});
            c.truth.published(1, &ch("a"), offset, &payload).unwrap();
        }
        c
    }

    fn subscribed(c: &mut Checker, book: &mut ClientBook) {
        let now = Timestamp::ZERO;
        c.issued(
            book,
            0,
            id("s"),
            Request::Subscribe { channel: ch("a") },
            now,
        )
        .unwrap();
    }

    #[test]
    fn a_gap_without_resync_is_caught_and_a_resync_excuses_it() {
        let mut c = checker_with_events(6);
        let mut book = ClientBook::default();
        subscribed(&mut c, &mut book);
        c.client_event(&mut book, 0, &event("a", "e0", 1, 1))
            .unwrap();
        c.client_event(&mut book, 0, &event("a", "e0", 2, 2))
            .unwrap();
        let gap = c.client_event(&mut book, 0, &event("a", "e0", 4, 4));
        assert!(gap.unwrap_err().contains("gap"));
        let dup = c.client_event(&mut book, 0, &event("a", "e0", 2, 2));
        assert!(dup.unwrap_err().contains("duplicate"));
        c.client_event(&mut book, 0, &ClientEvent::Resync { channel: ch("a") })
            .unwrap();
        c.client_event(&mut book, 0, &event("a", "e0", 5, 5))
            .unwrap();
        // A new epoch needs a Resync too.
        let new_epoch = c.client_event(&mut book, 0, &event("a", "e1", 1, 101));
        assert!(new_epoch.unwrap_err().contains("without a Resync"));
        c.client_event(&mut book, 0, &ClientEvent::Resync { channel: ch("a") })
            .unwrap();
        c.client_event(&mut book, 0, &event("a", "e1", 1, 101))
            .unwrap();
    }

    #[test]
    fn delivered_events_must_be_what_was_published() {
        let mut c = checker_with_events(3);
        let mut book = ClientBook::default();
        subscribed(&mut c, &mut book);
        assert!(
            c.client_event(&mut book, 0, &event("a", "e0", 2, 3))
                .is_err()
        );
        assert!(
            c.client_event(&mut book, 0, &event("a", "e0", 9, 9))
                .is_err()
        );
        assert!(
            c.client_event(&mut book, 0, &event("a", "nope", 1, 1))
                .is_err()
        );
        assert!(
            c.client_event(&mut book, 0, &event("b", "e0", 1, 1))
                .is_err(),
            "never subscribed"
        );
    }

    #[test]
    fn requests_end_exactly_once_and_by_their_deadline() {
        let mut c = Checker::default();
        let mut book = ClientBook::default();
        let deadline = Timestamp::from_millis(10);
        c.issued(
            &mut book,
            0,
            id("p"),
            Request::Ping { timestamp: 7 },
            deadline,
        )
        .unwrap();
        assert!(c.check_deadlines(Timestamp::from_millis(10)).is_ok());
        assert!(c.check_deadlines(Timestamp::from_millis(11)).is_err());
        let answer = ClientEvent::Response {
            id: id("p"),
            message: ServerMessage::PingRes {
                timestamp: Some(json!(7)),
                server_time: 0,
            },
        };
        c.client_event(&mut book, 0, &answer).unwrap();
        assert!(c.check_deadlines(Timestamp::from_millis(11)).is_ok());
        assert!(c.client_event(&mut book, 0, &answer).is_err(), "twice");
        let failed = ClientEvent::RequestFailed {
            id: id("p"),
            reason: FailReason::TimedOut,
        };
        assert!(
            c.client_event(&mut book, 0, &failed).is_err(),
            "after its answer"
        );
    }

    #[test]
    fn answers_must_match_their_requests() {
        let mut c = checker_with_events(3);
        let mut book = ClientBook::default();
        let t = Timestamp::ZERO;
        c.issued(
            &mut book,
            0,
            id("g"),
            Request::GetState { channel: ch("a") },
            t,
        )
        .unwrap();
        let state = |offset, state| ClientEvent::Response {
            id: id("g"),
            message: ServerMessage::GetStateRes {
                channel: ch("a"),
                epoch: String::from("e0"),
                offset,
                state,
            },
        };
        // Offset 2 was retained; at offset 1 nothing was.
        assert!(
            c.client_event(&mut book, 0, &state(1, json!({"tag": 2, "retain": true})))
                .is_err()
        );
        c.issued(
            &mut book,
            0,
            id("g"),
            Request::GetState { channel: ch("a") },
            t,
        )
        .unwrap();
        c.client_event(&mut book, 0, &state(3, json!({"tag": 2, "retain": true})))
            .unwrap();
        c.issued(
            &mut book,
            0,
            id("c"),
            Request::Call {
                channel: ch("svc"),
                method: String::from("m"),
                n: 5,
            },
            t,
        )
        .unwrap();
        let wrong = ClientEvent::Response {
            id: id("c"),
            message: ServerMessage::CallRes {
                channel: ch("svc"),
                method: String::from("m"),
                result: json!({"echo": 6}),
            },
        };
        assert!(c.client_event(&mut book, 0, &wrong).is_err());
    }
}
