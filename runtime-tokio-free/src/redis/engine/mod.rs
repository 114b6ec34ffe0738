//! [`Engine`]: Switchboard's channels kept in Redis, for several nodes to share — publishing with offsets given in
//! Redis, reading history and state, and a live feed of every followed channel in offset order with no gap and no
//! duplicate, whatever pub/sub loses (the protocol crate's [`LiveFeed`] decides; the engine's feed task drives
//! it).
//!
//! [`LiveFeed`]: switchboard_protocol::redis::engine::LiveFeed

mod error;
mod feed_task;
mod members;
mod reads;
mod registry;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use futures_channel::mpsc;
use switchboard_protocol::redis::engine::{
    ChannelRead, FeedConfig, Keys, PUBLISH_SCRIPT, PublishRequest, Published, READ_SCRIPT,
    ReadRequest,
};
use switchboard_protocol::wire::{ChannelName, IdempotencyKey};

pub use error::EngineError;
pub use feed_task::EngineEvent;
pub use members::Members;
pub use registry::{REGISTRATION_TTL, Registry};

use self::feed_task::{FeedOp, FeedTask};
use self::reads::read_channel;
use self::scripts::SharedScript;
use super::link_status::LinkStatus;
use super::{RedisClient, RedisOptions, RedisSubscriber};
use crate::Runtime;

/// How channels are kept in Redis.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The Redis to use.
    pub redis: RedisOptions,
    /// The prefix of every key and topic (several deployments can share a Redis).
    pub prefix: String,
    /// Events each channel's history keeps.
    pub history_size: usize,
    /// How long history lives after a channel's last publish (zero: forever).
    pub history_ttl: std::time::Duration,
    /// How the live feed reads and holds back.
    pub feed: FeedConfig,
}

/// A node's handle on the channels in Redis; clones share the connections.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    commands: RedisClient,
    keys: Keys,
    publish: SharedScript,
    read: SharedScript,
    history_size: usize,
    history_ttl_ms: u64,
    feed: mpsc::UnboundedSender<FeedOp>,
    /// The pub/sub connection's [`RedisSubscriber::is_up`] (the feed task owns the connection).
    feed_up: LinkStatus,
}

impl Engine {
    /// Connects (one connection for commands, one for pub/sub, each reconnecting by itself) and starts the feed
    /// task. Its [`EngineEvent`]s come out of the receiver.
    pub fn start<R: Runtime>(
        runtime: R,
        options: EngineOptions,
    ) -> (Engine, mpsc::UnboundedReceiver<EngineEvent>) {
        let commands = RedisClient::start(runtime.clone(), options.redis.clone());
        let (subscriber, heard) = RedisSubscriber::start(runtime.clone(), options.redis.clone());
        let feed_up = subscriber.status();
        let keys = Keys::new(&options.prefix);
        let read = SharedScript::new(READ_SCRIPT);
        let (feed, ops) = mpsc::unbounded();
        let (events, delivered) = mpsc::unbounded();
        let task = FeedTask::new(
            runtime.clone(),
            options.feed.clone(),
            keys.clone(),
            commands.clone(),
            read.clone(),
            subscriber,
            heard,
            ops,
            events,
            options.redis.seed ^ 0x9e37_79b9_7f4a_7c15,
        );
        runtime.spawn(Box::pin(task.run()));
        let engine = Engine {
            inner: Arc::new(Inner {
                commands,
                keys,
                publish: SharedScript::new(PUBLISH_SCRIPT),
                read,
                history_size: options.history_size,
                history_ttl_ms: u64::try_from(options.history_ttl.as_millis()).unwrap_or(u64::MAX),
                feed,
                feed_up,
            }),
        };
        (engine, delivered)
    }

    /// Whether both connections to Redis (commands, and the pub/sub of the live feed) are up right now: while
    /// either is down, publishes fail and live delivery waits.
    pub fn is_connected(&self) -> bool {
        self.inner.commands.is_up() && self.inner.feed_up.is_up()
    }

    /// Since when the connection for commands (publishes, reads) has been down, or `None` while it is up.
    pub fn commands_down_since(&self) -> Option<switchboard_protocol::time::Timestamp> {
        self.inner.commands.down_since()
    }

    /// Publishes `events` (JSON text, at least one) on `channel`, at consecutive offsets given in Redis, and keeps
    /// the last as the channel's state when `retain_last`. `fresh_epoch` is the epoch the channel gets if it has
    /// none; `now_ms` the publish time.
    pub async fn publish(
        &self,
        channel: &ChannelName,
        events: &[Vec<u8>],
        retain_last: bool,
        fresh_epoch: &str,
        now_ms: u64,
    ) -> Result<Published, EngineError> {
        self.publish_keyed(channel, events, retain_last, fresh_epoch, now_ms, None)
            .await
    }

    /// [`publish`](Self::publish) with an idempotency key kept for `window` in Redis: when the channel holds the
    /// key in its current epoch, nothing is published and the answer is the original's offsets, marked
    /// [`Published::duplicate`]; the check and the publish are one script, so two nodes cannot both publish it.
    pub async fn publish_keyed(
        &self,
        channel: &ChannelName,
        events: &[Vec<u8>],
        retain_last: bool,
        fresh_epoch: &str,
        now_ms: u64,
        key: Option<(&IdempotencyKey, Duration)>,
    ) -> Result<Published, EngineError> {
        let inner = &self.inner;
        let request = PublishRequest {
            channel,
            events,
            retain_last,
            fresh_epoch,
            history_size: inner.history_size,
            history_ttl_ms: inner.history_ttl_ms,
            now_ms,
            idempotency_key: key.map(|(key, _)| key),
            dedupe_window_ms: key.map_or(0, |(_, window)| {
                u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
            }),
        };
        let reply = inner
            .publish
            .run(&inner.commands, |script| {
                request.command(script, &inner.keys)
            })
            .await?;
        Ok(Published::parse(&reply)?)
    }

    /// Reads `channel`: its position, at most `limit` events after `after` (from the oldest kept when `None`), and
    /// its retained state when `with_state`.
    pub async fn read(
        &self,
        channel: &ChannelName,
        after: Option<u64>,
        limit: usize,
        with_state: bool,
    ) -> Result<ChannelRead, EngineError> {
        let inner = &self.inner;
        let request = ReadRequest {
            channel,
            after,
            limit,
            with_state,
            fresh_epoch: None,
        };
        read_channel(&inner.commands, &inner.read, &inner.keys, &request).await
    }

    /// Follows `channel`: from the position Redis has when its subscription is confirmed, every event published to
    /// it comes out as [`EngineEvent::Deliver`], in order, once.
    pub fn follow(&self, channel: &ChannelName) {
        let _ = self
            .inner
            .feed
            .unbounded_send(FeedOp::Follow(channel.clone()));
    }

    /// Listens on the pub/sub topic `topic` (a node's inbox): its messages come out as
    /// [`EngineEvent::Inbox`].
    pub(crate) fn listen(&self, topic: Vec<u8>) {
        let _ = self.inner.feed.unbounded_send(FeedOp::Listen(topic));
    }

    /// Stops following `channel`.
    pub fn unfollow(&self, channel: &ChannelName) {
        let _ = self
            .inner
            .feed
            .unbounded_send(FeedOp::Unfollow(channel.clone()));
    }
}
