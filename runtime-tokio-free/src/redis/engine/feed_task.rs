//! The feed task: it drives the protocol crate's [`LiveFeed`] — publications and confirmations from the pub/sub
//! connection in, gap-filling reads over the command connection out, deliveries to the engine's receiver.

use std::future::poll_fn;
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_util::StreamExt;
use switchboard_protocol::redis::engine::{
    ChannelRead, FeedConfig, FeedOutput, Keys, LiveFeed, Publication, ReadRequest, StoredEvent,
};
use switchboard_protocol::rng::Rng;
use switchboard_protocol::wire::ChannelName;

use super::error::EngineError;
use super::reads::read_channel;
use super::scripts::SharedScript;
use crate::Runtime;
use crate::client::alarm::Alarm;
use crate::redis::{PubSubEvent, RedisClient, RedisSubscriber};

/// What an engine's receiver hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// The next event of a followed channel: offsets strictly consecutive per channel and epoch.
    Deliver {
        /// The channel.
        channel: ChannelName,
        /// Its epoch.
        epoch: String,
        /// The event's offset.
        offset: u64,
        /// The event became the channel's retained state.
        retained: bool,
        /// The event, as JSON text.
        event: Vec<u8>,
    },
    /// A followed channel's feed is placed: every event after this position will be delivered. The history and
    /// retained state read with it come along.
    Following {
        /// The channel.
        channel: ChannelName,
        /// Its epoch (`None`: no data in Redis yet).
        epoch: Option<String>,
        /// Its newest offset when read.
        offset: u64,
        /// The retained event and its offset.
        state: Option<(u64, Vec<u8>)>,
        /// Its history, oldest first.
        events: Vec<StoredEvent>,
    },
    /// Events of a followed channel were missed and are no longer in its history: its subscribers resynchronise
    /// to this position.
    Resync {
        /// The channel.
        channel: ChannelName,
        /// Its epoch now (`None`: no data in Redis).
        epoch: Option<String>,
        /// Its newest offset.
        offset: u64,
        /// The retained event and its offset.
        state: Option<(u64, Vec<u8>)>,
    },
    /// A message on this node's inbox (see [`Registry`](super::Registry)), as published.
    Inbox(Vec<u8>),
    /// The pub/sub connection is up.
    Up,
    /// The pub/sub connection is down (why); the feed reads what it missed once it is back.
    Down(String),
}

/// What the engine's handles ask of the task.
#[derive(Debug)]
pub(crate) enum FeedOp {
    Follow(ChannelName),
    Unfollow(ChannelName),
    Listen(Vec<u8>),
}

type ReadDone = (ChannelName, Result<ChannelRead, EngineError>);

pub(crate) struct FeedTask<R: Runtime> {
    runtime: R,
    feed: LiveFeed,
    keys: Keys,
    commands: RedisClient,
    read: SharedScript,
    subscriber: RedisSubscriber,
    heard: mpsc::UnboundedReceiver<PubSubEvent>,
    ops: mpsc::UnboundedReceiver<FeedOp>,
    events: mpsc::UnboundedSender<EngineEvent>,
    reads_sender: mpsc::UnboundedSender<ReadDone>,
    reads: mpsc::UnboundedReceiver<ReadDone>,
    alarm: Alarm,
    rng: Rng,
    /// The node's inbox topic, once listened on.
    inbox: Option<Vec<u8>>,
}

enum Wake {
    Heard(PubSubEvent),
    Op(FeedOp),
    Read(ReadDone),
    Deadline,
    Ended,
}

impl<R: Runtime> FeedTask<R> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        runtime: R,
        config: FeedConfig,
        keys: Keys,
        commands: RedisClient,
        read: SharedScript,
        subscriber: RedisSubscriber,
        heard: mpsc::UnboundedReceiver<PubSubEvent>,
        ops: mpsc::UnboundedReceiver<FeedOp>,
        events: mpsc::UnboundedSender<EngineEvent>,
        seed: u64,
    ) -> FeedTask<R> {
        let (reads_sender, reads) = mpsc::unbounded();
        FeedTask {
            runtime,
            feed: LiveFeed::new(config),
            keys,
            commands,
            read,
            subscriber,
            heard,
            ops,
            events,
            reads_sender,
            reads,
            alarm: Alarm::new(),
            rng: Rng::from_seed(seed),
            inbox: None,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            self.drain();
            match poll_fn(|cx| self.poll_wake(cx)).await {
                Wake::Ended => break,
                wake => self.handle(wake),
            }
        }
        self.subscriber.close().await;
    }

    fn drain(&mut self) {
        loop {
            match self.feed.poll_output() {
                FeedOutput::Deliver {
                    channel,
                    epoch,
                    offset,
                    retained,
                    event,
                } => self.emit(EngineEvent::Deliver {
                    channel,
                    epoch,
                    offset,
                    retained,
                    event,
                }),
                FeedOutput::Resync {
                    channel,
                    epoch,
                    offset,
                    state,
                } => {
                    tracing::warn!(%channel, ?epoch, offset, "events missed and gone from history: resync");
                    self.emit(EngineEvent::Resync {
                        channel,
                        epoch,
                        offset,
                        state,
                    });
                }
                FeedOutput::Positioned {
                    channel,
                    epoch,
                    offset,
                    state,
                    events,
                } => self.emit(EngineEvent::Following {
                    channel,
                    epoch,
                    offset,
                    state,
                    events,
                }),
                FeedOutput::Read {
                    channel,
                    after,
                    limit,
                } => self.start_read(channel, after, limit),
                FeedOutput::Timeout(at) => {
                    self.alarm.set(at);
                    return;
                }
            }
        }
    }

    fn emit(&self, event: EngineEvent) {
        let _ = self.events.unbounded_send(event);
    }

    fn fresh_epoch(&mut self) -> String {
        format!("{:016x}", self.rng.next_u64())
    }

    fn start_read(&mut self, channel: ChannelName, after: Option<u64>, limit: usize) {
        let commands = self.commands.clone();
        let script = self.read.clone();
        let keys = self.keys.clone();
        let done = self.reads_sender.clone();
        // The read that places the feed gives a channel nobody published to its epoch now.
        let fresh_epoch = after.is_none().then(|| self.fresh_epoch());
        self.runtime.spawn(Box::pin(async move {
            // With the state: a read that places the feed loads it, one that finds a gap gone resynchronises to it.
            let request = ReadRequest {
                channel: &channel,
                after,
                limit,
                with_state: true,
                fresh_epoch: fresh_epoch.as_deref(),
            };
            let result = read_channel(&commands, &script, &keys, &request).await;
            let _ = done.unbounded_send((channel, result));
        }));
    }

    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        if let Poll::Ready(op) = self.ops.poll_next_unpin(cx) {
            // Every engine handle is gone: nobody follows anything any more.
            return Poll::Ready(op.map_or(Wake::Ended, Wake::Op));
        }
        if let Poll::Ready(Some(done)) = self.reads.poll_next_unpin(cx) {
            return Poll::Ready(Wake::Read(done));
        }
        if let Poll::Ready(heard) = self.heard.poll_next_unpin(cx) {
            return Poll::Ready(heard.map_or(Wake::Ended, Wake::Heard));
        }
        if self.alarm.poll(cx, &self.runtime).is_ready() {
            return Poll::Ready(Wake::Deadline);
        }
        Poll::Pending
    }

    fn handle(&mut self, wake: Wake) {
        let now = self.runtime.now();
        match wake {
            Wake::Op(FeedOp::Follow(channel)) => {
                if !self.feed.follows(&channel) {
                    self.subscriber.subscribe(&self.keys.topic(&channel));
                    self.feed.follow(now, channel);
                }
            }
            Wake::Op(FeedOp::Listen(topic)) => {
                self.subscriber.subscribe(&topic);
                self.inbox = Some(topic);
            }
            Wake::Op(FeedOp::Unfollow(channel)) => {
                self.subscriber.unsubscribe(&self.keys.topic(&channel));
                self.feed.unfollow(now, &channel);
            }
            Wake::Read((channel, Ok(read))) => self.feed.handle_read(now, &channel, &read),
            Wake::Read((channel, Err(error))) => {
                tracing::debug!(%channel, %error, "a feed read failed; it is retried");
                self.feed.handle_read_failed(now, &channel);
            }
            Wake::Heard(PubSubEvent::Subscribed(topic)) => {
                if let Some(channel) = self.keys.channel_of_topic(&topic) {
                    self.feed.handle_subscribed(now, &channel);
                }
            }
            Wake::Heard(PubSubEvent::Message { channel, payload })
                if self.inbox.as_deref() == Some(&channel[..]) =>
            {
                self.emit(EngineEvent::Inbox(payload));
            }
            Wake::Heard(PubSubEvent::Message { channel, payload }) => {
                let Some(channel) = self.keys.channel_of_topic(&channel) else {
                    return;
                };
                match Publication::parse(&payload) {
                    Ok(publication) => self.feed.handle_publication(
                        now,
                        &channel,
                        publication.epoch,
                        publication.offset,
                        publication.event,
                        publication.retained,
                    ),
                    Err(error) => {
                        tracing::warn!(%channel, %error, "a publication the engine did not write")
                    }
                }
            }
            Wake::Heard(PubSubEvent::Up) => self.emit(EngineEvent::Up),
            Wake::Heard(PubSubEvent::Down(reason)) => self.emit(EngineEvent::Down(reason)),
            Wake::Deadline => self.feed.handle_timeout(now),
            Wake::Ended => {}
        }
    }
}
