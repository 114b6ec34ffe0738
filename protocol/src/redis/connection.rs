//! [`RedisConnection`]: one connection to Redis as a sans-IO state machine.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::mem;
use core::time::Duration;

use super::command::Command;
use super::decode::{Decoder, RespError, RespLimits};
use super::reply::Reply;
use super::url::RedisUrl;
use crate::backoff::{Backoff, BackoffConfig};
use crate::rng::Rng;
use crate::time::Timestamp;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ordinary commands, pipelined.
    Commands,
    /// Subscriptions only: RESP2 allows nothing else on a subscribed connection.
    PubSub,
}

/// How a connection logs in and how patient it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionConfig {
    /// What the connection is for.
    pub mode: Mode,
    /// The ACL user for `AUTH`, when there is one.
    pub username: Option<String>,
    /// The password for `AUTH`; no `AUTH` without one.
    pub password: Option<String>,
    /// The database to `SELECT` (not sent when 0, nor on a pub/sub connection: channels span databases).
    pub db: u32,
    /// The name given with `CLIENT SETNAME` (shown by `CLIENT LIST`), when set. Spaces are not allowed.
    pub client_name: Option<String>,
    /// A dial that has not connected after this long is abandoned (and retried after the backoff).
    pub connect_timeout: Duration,
    /// While a reply is due, nothing read for this long means the server is gone: the connection is closed.
    pub reply_timeout: Duration,
    /// An idle connection sends `PING` after this long without traffic.
    pub ping_interval: Duration,
    /// Commands that may wait for a connection; past it a command is answered [`RedisError::Backlog`].
    pub max_waiting: usize,
    /// How long a command waits for a connection before it is answered [`RedisError::Unavailable`].
    pub waiting_timeout: Duration,
    /// Delays between connection attempts.
    pub backoff: BackoffConfig,
    /// Bounds on what Redis may make the decoder hold.
    pub limits: RespLimits,
}

impl ConnectionConfig {
    /// The defaults, logging in as `url` says.
    pub fn new(url: &RedisUrl, mode: Mode) -> ConnectionConfig {
        ConnectionConfig {
            mode,
            username: url.username.clone(),
            password: url.password.clone(),
            db: url.db,
            client_name: None,
            connect_timeout: Duration::from_secs(5),
            reply_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(2),
            max_waiting: 100_000,
            waiting_timeout: Duration::from_secs(5),
            backoff: BackoffConfig {
                first_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(5),
                reset_after: Duration::from_secs(5),
                ..BackoffConfig::default()
            },
            limits: RespLimits::default(),
        }
    }
}

/// Names one [`request`](RedisConnection::request); its answer comes back as [`Event::Reply`] with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Dial the server (abandoning nothing: a previous socket was closed by an earlier [`Output::Close`]).
    Connect,
    /// Write these bytes to the socket.
    Transmit(Vec<u8>),
    /// Close the socket, or abandon the dial in progress.
    Close,
    /// Something happened that the connection's users care about.
    Event(Event),
    /// Nothing more until this time (or new input): call [`handle_timeout`](RedisConnection::handle_timeout) then.
    Timeout(Timestamp),
}

/// What the connection's users hear.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Logged in; commands flow (and, on a pub/sub connection, subscriptions are being restored).
    Up,
    /// The connection is gone; the machine will dial again after its backoff.
    Down(DownReason),
    /// The answer to a request.
    Reply {
        /// The request.
        id: RequestId,
        /// Its reply, or why there is none.
        result: Result<Reply, RedisError>,
    },
    /// Redis confirmed a subscription: from here on, every message published to `channel` arrives (until the
    /// next [`Event::Down`]).
    Subscribed {
        /// The channel.
        channel: Vec<u8>,
    },
    /// A message published to a subscribed channel.
    Message {
        /// The channel.
        channel: Vec<u8>,
        /// What was published.
        payload: Vec<u8>,
    },
}

/// Why a request has no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// Redis answered with an error (a script's error, a wrong type, an out-of-memory refusal).
    #[error("redis refused the command: {0}")]
    Refused(String),
    /// The connection dropped after the command was written and before its reply: it may or may not have run.
    #[error("the connection to redis dropped before the reply came; the command may have run")]
    Lost,
    /// No connection to Redis came up while the command waited.
    #[error("no connection to redis within {0:?}")]
    Unavailable(Duration),
    /// Too many commands already wait for a connection.
    #[error("{0} commands already wait for a connection to redis")]
    Backlog(usize),
    /// The connection was closed for good ([`RedisConnection::close`]), or the command does not belong on it.
    #[error("the redis connection is closed or does not take this command")]
    Closed,
}

/// Why a connection went down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownReason {
    /// The dial failed.
    #[error("could not connect: {0}")]
    ConnectFailed(String),
    /// The dial did not finish in time.
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// The peer closed the connection, or reading or writing failed.
    #[error("connection closed: {0}")]
    Closed(String),
    /// Redis refused the handshake (`AUTH`, `SELECT`, `CLIENT SETNAME`).
    #[error("redis refused the handshake: {0}")]
    Handshake(String),
    /// A reply was due and nothing came.
    #[error("no reply from redis within {0:?}")]
    NoReply(Duration),
    /// The bytes were not RESP.
    #[error("redis sent something that is not RESP: {0}")]
    Protocol(RespError),
    /// A reply that answers nothing that was asked.
    #[error("redis sent a reply nobody asked for")]
    Unexpected,
}

/// What a written command's reply answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    User(RequestId),
    Handshake,
    Ping,
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
}

#[derive(Debug)]
struct Waiting {
    id: RequestId,
    command: Command,
    since: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not connected; dial at this time.
    Idle { retry_at: Timestamp },
    /// Dialing; abandon at this time.
    Connecting { deadline: Timestamp },
    /// Connected; handshake replies due.
    Handshaking,
    /// Logged in.
    Up,
    /// Closed for good.
    Closed,
}

/// One connection to Redis as a sans-IO state machine.
///
/// The machine decides everything about a connection; its driver only dials, moves bytes and sleeps:
///
/// 1. [`poll_output`](RedisConnection::poll_output) until [`Output::Timeout`]: dial on [`Output::Connect`], write
///    [`Output::Transmit`], drop the socket on [`Output::Close`], hand [`Output::Event`]s to whoever waits;
/// 2. report what happened: [`handle_connected`](RedisConnection::handle_connected),
///    [`handle_input`](RedisConnection::handle_input), [`handle_disconnected`](RedisConnection::handle_disconnected),
///    [`handle_timeout`](RedisConnection::handle_timeout) once the deadline has passed;
/// 3. queue work with [`request`](RedisConnection::request) (or, on a [`Mode::PubSub`] connection,
///    [`subscribe`](RedisConnection::subscribe)), and go round again.
///
/// # What it guarantees
///
/// - **Pipelining in order.** Commands are written as soon as the connection is up, without waiting for earlier
///   replies, and every reply is matched to its command by position (RESP2 answers in order).
/// - **A command runs at most once.** A command written to a connection that then drops is answered
///   [`RedisError::Lost`] (it may or may not have run: the caller decides whether repeating it is safe). A command
///   that was never written waits for the next connection, at most [`ConnectionConfig::waiting_timeout`], and is
///   then answered [`RedisError::Unavailable`]; at most [`ConnectionConfig::max_waiting`] wait.
/// - **A silent server is a dead server.** While a reply is due, nothing read for
///   [`ConnectionConfig::reply_timeout`] closes the connection; an idle connection sends `PING` every
///   [`ConnectionConfig::ping_interval`] so a dead peer is found before a command needs it.
/// - **Reconnection** follows the core's [`Backoff`], and the handshake (`AUTH`, `SELECT`, `CLIENT SETNAME`)
///   runs before any queued command is written. On a pub/sub connection every channel asked for is subscribed
///   again, and [`Event::Subscribed`] says when each is live: messages published while the connection was down
///   are lost to pub/sub (it is at-most-once), so a user of it fills that gap from elsewhere after each
///   [`Event::Up`].
#[derive(Debug)]
pub struct RedisConnection {
    config: ConnectionConfig,
    state: State,
    decoder: Decoder,
    backoff: Backoff,
    waiting: VecDeque<Waiting>,
    in_flight: VecDeque<Expect>,
    /// Bytes for the socket, written out at the next [`Output::Transmit`].
    out: Vec<u8>,
    outputs: VecDeque<Output>,
    next_id: u64,
    /// The last time anything was read (or the connection came up).
    last_read: Timestamp,
    /// The last time anything was read or written.
    last_traffic: Timestamp,
    /// Channels asked for, on a pub/sub connection.
    channels: BTreeSet<Vec<u8>>,
}

impl RedisConnection {
    /// A connection that dials at once. `rng` draws the backoff's jitter.
    pub fn new(config: ConnectionConfig, now: Timestamp, rng: Rng) -> RedisConnection {
        RedisConnection {
            decoder: Decoder::new(config.limits),
            backoff: Backoff::new(config.backoff.clone(), rng),
            config,
            state: State::Idle { retry_at: now },
            waiting: VecDeque::new(),
            in_flight: VecDeque::new(),
            out: Vec::new(),
            outputs: VecDeque::new(),
            next_id: 0,
            last_read: now,
            last_traffic: now,
            channels: BTreeSet::new(),
        }
    }

    /// Whether the connection is logged in.
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// Whether [`close`](RedisConnection::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Commands written and not yet answered, handshake and keep-alive included.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Commands waiting for a connection.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Sends `command` (at once when the connection is up, else when it next comes up); its answer comes back as
    /// [`Event::Reply`] with the returned id.
    pub fn request(&mut self, now: Timestamp, command: Command) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let refused = match self.state {
            State::Closed => Some(RedisError::Closed),
            _ if self.config.mode == Mode::PubSub => Some(RedisError::Closed),
            State::Up => None,
            _ if self.waiting.len() >= self.config.max_waiting => {
                Some(RedisError::Backlog(self.config.max_waiting))
            }
            _ => None,
        };
        if let Some(error) = refused {
            self.answer(id, Err(error));
        } else if self.state == State::Up {
            self.write(now, &command, Expect::User(id));
        } else {
            self.waiting.push_back(Waiting {
                id,
                command,
                since: now,
            });
        }
        id
    }

    /// On a [`Mode::PubSub`] connection: receive what is published to `channel`, from the [`Event::Subscribed`]
    /// that confirms it, across reconnections.
    pub fn subscribe(&mut self, now: Timestamp, channel: &[u8]) {
        if self.config.mode != Mode::PubSub || !self.channels.insert(channel.to_vec()) {
            return;
        }
        if self.state == State::Up {
            self.write(
                now,
                &Command::new("SUBSCRIBE").arg(channel),
                Expect::Subscribe(channel.to_vec()),
            );
        }
    }

    /// On a [`Mode::PubSub`] connection: stop receiving `channel`.
    pub fn unsubscribe(&mut self, now: Timestamp, channel: &[u8]) {
        if !self.channels.remove(channel) {
            return;
        }
        if self.state == State::Up {
            self.write(
                now,
                &Command::new("UNSUBSCRIBE").arg(channel),
                Expect::Unsubscribe(channel.to_vec()),
            );
        }
    }

    /// Closes the connection for good: everything unanswered is answered [`RedisError::Closed`] (written commands
    /// [`RedisError::Lost`]).
    pub fn close(&mut self, _now: Timestamp) {
        if self.state == State::Closed {
            return;
        }
        self.fail_in_flight();
        self.fail_waiting(|| RedisError::Closed);
        self.out.clear();
        self.outputs.push_back(Output::Close);
        self.state = State::Closed;
    }

    /// The dial succeeded.
    pub fn handle_connected(&mut self, now: Timestamp) {
        if !matches!(self.state, State::Connecting { .. }) {
            return;
        }
        self.last_read = now;
        self.last_traffic = now;
        self.state = State::Handshaking;
        let mut handshake = Vec::new();
        if let Some(password) = &self.config.password {
            let mut auth = Command::new("AUTH");
            if let Some(user) = &self.config.username {
                auth = auth.arg(user);
            }
            handshake.push(auth.arg(password));
        }
        if self.config.db != 0 && self.config.mode == Mode::Commands {
            handshake.push(Command::new("SELECT").uint(u64::from(self.config.db)));
        }
        if let Some(name) = &self.config.client_name {
            handshake.push(Command::new("CLIENT").arg("SETNAME").arg(name));
        }
        if handshake.is_empty() {
            self.become_up(now);
        } else {
            for command in &handshake {
                self.write(now, command, Expect::Handshake);
            }
        }
    }

    /// The dial failed.
    pub fn handle_connect_failed(&mut self, now: Timestamp, error: &str) {
        if matches!(self.state, State::Connecting { .. }) {
            self.down(now, DownReason::ConnectFailed(error.into()));
        }
    }

    /// The peer closed the connection, or reading or writing failed.
    pub fn handle_disconnected(&mut self, now: Timestamp, error: &str) {
        if matches!(self.state, State::Handshaking | State::Up) {
            self.down(now, DownReason::Closed(error.into()));
        }
    }

    /// Bytes read from the socket.
    pub fn handle_input(&mut self, now: Timestamp, bytes: &[u8]) {
        if !matches!(self.state, State::Handshaking | State::Up) {
            return;
        }
        self.last_read = now;
        self.last_traffic = now;
        self.decoder.feed(bytes);
        loop {
            match self.decoder.next_reply() {
                Ok(Some(reply)) => {
                    if let Err(reason) = self.dispatch(now, reply) {
                        self.down(now, reason);
                        return;
                    }
                }
                Ok(None) => return,
                Err(error) => {
                    self.down(now, DownReason::Protocol(error));
                    return;
                }
            }
        }
    }

    /// Time has reached a deadline given by [`Output::Timeout`] (calling it early does nothing harmful).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.state != State::Up && self.state != State::Closed {
            while let Some(front) = self.waiting.front() {
                if now < front.since.saturating_add(self.config.waiting_timeout) {
                    break;
                }
                if let Some(expired) = self.waiting.pop_front() {
                    let error = RedisError::Unavailable(self.config.waiting_timeout);
                    self.answer(expired.id, Err(error));
                }
            }
        }
        match self.state {
            State::Idle { retry_at } if now >= retry_at => {
                self.state = State::Connecting {
                    deadline: now.saturating_add(self.config.connect_timeout),
                };
                self.outputs.push_back(Output::Connect);
            }
            State::Connecting { deadline } if now >= deadline => {
                self.down(now, DownReason::ConnectTimeout(self.config.connect_timeout));
            }
            State::Handshaking | State::Up => {
                if let Some(deadline) = self.reply_deadline() {
                    if now >= deadline {
                        self.down(now, DownReason::NoReply(self.config.reply_timeout));
                    }
                } else if self.state == State::Up
                    && now >= self.last_traffic.saturating_add(self.config.ping_interval)
                {
                    self.write(now, &Command::new("PING"), Expect::Ping);
                }
            }
            _ => {}
        }
    }

    /// The next thing for the driver to do; ends with [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        if !self.out.is_empty() {
            return Output::Transmit(mem::take(&mut self.out));
        }
        Output::Timeout(self.next_deadline())
    }

    fn next_deadline(&self) -> Timestamp {
        let waiting = match self.state {
            State::Up | State::Closed => None,
            _ => self
                .waiting
                .front()
                .map(|front| front.since.saturating_add(self.config.waiting_timeout)),
        };
        let own = match self.state {
            State::Idle { retry_at } => Some(retry_at),
            State::Connecting { deadline } => Some(deadline),
            State::Handshaking => self.reply_deadline(),
            State::Up => Some(
                self.reply_deadline()
                    .unwrap_or_else(|| self.last_traffic.saturating_add(self.config.ping_interval)),
            ),
            State::Closed => None,
        };
        match (waiting, own) {
            (Some(a), Some(b)) => a.min(b),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => Timestamp::MAX,
        }
    }

    /// While replies are due: the time by which something must have been read.
    fn reply_deadline(&self) -> Option<Timestamp> {
        (!self.in_flight.is_empty())
            .then(|| self.last_read.saturating_add(self.config.reply_timeout))
    }

    fn write(&mut self, now: Timestamp, command: &Command, expect: Expect) {
        if self.in_flight.is_empty() {
            // The wait for this reply starts now, not at the last read of an idle connection.
            self.last_read = now;
        }
        command.encode_into(&mut self.out);
        self.in_flight.push_back(expect);
        self.last_traffic = now;
    }

    fn answer(&mut self, id: RequestId, result: Result<Reply, RedisError>) {
        self.outputs
            .push_back(Output::Event(Event::Reply { id, result }));
    }

    fn become_up(&mut self, now: Timestamp) {
        self.state = State::Up;
        self.backoff.on_connected(now);
        self.outputs.push_back(Output::Event(Event::Up));
        for waiting in mem::take(&mut self.waiting) {
            self.write(now, &waiting.command, Expect::User(waiting.id));
        }
        let channels: Vec<Vec<u8>> = self.channels.iter().cloned().collect();
        for channel in channels {
            self.write(
                now,
                &Command::new("SUBSCRIBE").arg(&channel),
                Expect::Subscribe(channel),
            );
        }
    }

    fn dispatch(&mut self, now: Timestamp, reply: Reply) -> Result<(), DownReason> {
        if self.config.mode == Mode::PubSub
            && let Some((b"message", channel, payload)) = push_message(&reply)
        {
            let event = Event::Message {
                channel: channel.to_vec(),
                payload: payload.to_vec(),
            };
            self.outputs.push_back(Output::Event(event));
            return Ok(());
        }
        let expect = self.in_flight.pop_front().ok_or(DownReason::Unexpected)?;
        match expect {
            Expect::User(id) => {
                let result = match reply {
                    Reply::Error(message) => Err(RedisError::Refused(message)),
                    reply => Ok(reply),
                };
                self.answer(id, result);
            }
            Expect::Handshake => {
                if let Reply::Error(message) = reply {
                    return Err(DownReason::Handshake(message));
                }
                if !self.in_flight.contains(&Expect::Handshake) {
                    self.become_up(now);
                }
            }
            Expect::Ping => match reply {
                Reply::Status(_) => {}
                Reply::Array(items) if first_is(&items, b"pong") => {}
                _ => return Err(DownReason::Unexpected),
            },
            Expect::Subscribe(channel) => match reply {
                Reply::Array(items)
                    if first_is(&items, b"subscribe")
                        && items.get(1).and_then(Reply::as_bytes) == Some(&channel[..]) =>
                {
                    // A channel dropped while its confirmation was on the way is not reported as live.
                    if self.channels.contains(&channel) {
                        let event = Event::Subscribed { channel };
                        self.outputs.push_back(Output::Event(event));
                    }
                }
                _ => return Err(DownReason::Unexpected),
            },
            Expect::Unsubscribe(channel) => match reply {
                Reply::Array(items)
                    if first_is(&items, b"unsubscribe")
                        && items.get(1).and_then(Reply::as_bytes) == Some(&channel[..]) => {}
                _ => return Err(DownReason::Unexpected),
            },
        }
        Ok(())
    }

    fn down(&mut self, now: Timestamp, reason: DownReason) {
        let was_up = self.state == State::Up;
        self.fail_in_flight();
        self.decoder = Decoder::new(self.config.limits);
        self.out.clear();
        self.outputs.push_back(Output::Close);
        self.outputs.push_back(Output::Event(Event::Down(reason)));
        if was_up {
            self.backoff.on_disconnected(now);
        }
        let delay = self
            .backoff
            .next_delay(now)
            .unwrap_or(self.config.backoff.max_delay);
        self.state = State::Idle {
            retry_at: now.saturating_add(delay),
        };
    }

    fn fail_in_flight(&mut self) {
        for expect in mem::take(&mut self.in_flight) {
            if let Expect::User(id) = expect {
                self.answer(id, Err(RedisError::Lost));
            }
        }
    }

    fn fail_waiting(&mut self, error: impl Fn() -> RedisError) {
        for waiting in mem::take(&mut self.waiting) {
            self.answer(waiting.id, Err(error()));
        }
    }
}

/// A pub/sub push: `[kind, channel, payload]`.
fn push_message(reply: &Reply) -> Option<(&[u8], &[u8], &[u8])> {
    match reply.as_array()? {
        [kind, channel, payload] => {
            Some((kind.as_bytes()?, channel.as_bytes()?, payload.as_bytes()?))
        }
        _ => None,
    }
}

fn first_is(items: &[Reply], word: &[u8]) -> bool {
    items
        .first()
        .and_then(Reply::as_bytes)
        .is_some_and(|first| first.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests;
