//! The cluster's live feeds under faults: 2 or 3 nodes, each with a real
//! `LiveFeed`, over a simulated engine.
//!
//! The engine model does what the Redis scripts do (`protocol::redis::engine::{publish, read}`): per channel an
//! epoch (a fresh one on the first publish, or on a read that places a feed, when the channel has none), an offset
//! counter, a stream of (offset, published ms, retained, event) trimmed to the history size and expired whole after
//! the history's time-to-live without a publish, and the retained state. Each node has a pub/sub link that can be
//! cut: what is published while it is down is lost to that node, and when it comes back every followed channel's
//! subscription is confirmed again (`handle_subscribed`). Reads are served by the engine a latency after they are
//! asked (from its state at that instant), answered a latency later, and sometimes fail. The engine also loses a
//! channel now and then (a flush or an eviction): the next publish starts a new epoch.
//!
//! The driver does for each feed what `runtime-tokio-free/src/redis/engine/feed_task.rs` does: follow subscribes
//! the topic, confirmations and publications go in, `Read` outputs become reads (with a fresh epoch when they
//! place the feed), deadlines are kept. The checker sees every output:
//!
//! - a `Deliver` before the feed is placed, or of another event than the engine published at that (epoch, offset),
//!   is a violation; so is one that does not follow the last delivered offset of the same epoch (a **gap** or a
//!   **duplicate**) unless a `Resync` placed the feed since;
//! - every node delivers the same event under an (epoch, offset) as every other node;
//! - a `Resync` only when the events the node missed are really gone (trimmed, expired or the channel lost);
//! - after the run settles (links back, no more faults, one last publish per channel), every node following a
//!   channel is at the engine's newest position for it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde_json::Value;
use switchboard_protocol::redis::engine::{
    ChannelRead, FeedConfig, FeedOutput, LiveFeed, StoredEvent,
};
use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::{
    ConnId, Dialect, EngineCommand, EngineFailure, EngineTicket, Hub, HubConfig, HubOutput, Intake,
    Permissions, Trust,
};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::ChannelName;

/// What one cluster seed did, and the first violation it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterReport {
    /// The seed.
    pub seed: u64,
    /// The `SIM_STEPS` it ran under (it runs a quarter of them, see [`run`]).
    pub sim_steps: u64,
    /// Steps run.
    pub steps: u64,
    /// Events delivered by all feeds.
    pub delivered: u64,
    /// Resyncs reported by all feeds.
    pub resyncs: u64,
    /// Links cut.
    pub cuts: u64,
    /// Channels the engine lost.
    pub losses: u64,
    /// Nodes crashed (and started again empty, their clients reconnecting anywhere).
    pub crashes: u64,
    /// Reads that filled a gap or followed a confirmation (after the placing read).
    pub reads: u64,
    /// The first violation.
    pub violation: Option<String>,
}

impl ClusterReport {
    /// The command that replays this seed.
    pub fn replay_command(&self) -> String {
        let (features, test) = if cfg!(feature = "_internal_planted_feed_fault") {
            (
                " --features _internal_planted_feed_fault",
                "planted_feed_fault_is_caught",
            )
        } else {
            ("", "cluster_feeds_find_no_violation")
        };
        format!(
            "SIM_SEED={} SIM_STEPS={} SIM_TRACE=1 cargo test -p switchboard-tests --release{features} --test simulation -- --exact {test} --nocapture",
            self.seed, self.sim_steps
        )
    }
}

#[derive(Debug)]
struct EngineChannel {
    epoch: Option<String>,
    offset: u64,
    stream: VecDeque<StoredEvent>,
    stream_expires_ms: u64,
    state: Option<(u64, Vec<u8>)>,
}

/// The engine: what the publish and read scripts keep in Redis.
#[derive(Debug)]
struct Engine {
    channels: BTreeMap<ChannelName, EngineChannel>,
    history_size: usize,
    ttl_ms: u64,
}

impl Engine {
    fn entry(&mut self, now_ms: u64, channel: &ChannelName) -> &mut EngineChannel {
        let ttl = self.ttl_ms;
        let c = self
            .channels
            .entry(channel.clone())
            .or_insert(EngineChannel {
                epoch: None,
                offset: 0,
                stream: VecDeque::new(),
                stream_expires_ms: u64::MAX,
                state: None,
            });
        if ttl > 0 && now_ms >= c.stream_expires_ms {
            c.stream.clear();
            c.stream_expires_ms = u64::MAX;
        }
        c
    }

    fn publish(
        &mut self,
        now_ms: u64,
        channel: &ChannelName,
        fresh_epoch: String,
        retained: bool,
        event: Vec<u8>,
    ) -> (String, u64) {
        let size = self.history_size;
        let ttl = self.ttl_ms;
        let c = self.entry(now_ms, channel);
        let epoch = c.epoch.get_or_insert(fresh_epoch).clone();
        c.offset += 1;
        c.stream.push_back(StoredEvent {
            offset: c.offset,
            published_ms: now_ms,
            retained,
            event: event.clone(),
        });
        while c.stream.len() > size {
            c.stream.pop_front();
        }
        if ttl > 0 {
            c.stream_expires_ms = now_ms + ttl;
        }
        if retained {
            c.state = Some((c.offset, event));
        }
        (epoch, c.offset)
    }

    fn read(
        &mut self,
        now_ms: u64,
        channel: &ChannelName,
        after: Option<u64>,
        limit: usize,
        fresh_epoch: Option<String>,
    ) -> ChannelRead {
        let c = self.entry(now_ms, channel);
        if c.epoch.is_none()
            && let Some(fresh) = fresh_epoch
        {
            c.epoch = Some(fresh);
        }
        let events = c
            .stream
            .iter()
            .filter(|e| after.is_none_or(|after| e.offset > after))
            .take(limit)
            .cloned()
            .collect();
        ChannelRead {
            epoch: c.epoch.clone(),
            offset: c.offset,
            state: c.state.clone(),
            events,
        }
    }

    /// Whether every event of `epoch` after `after` up to the newest is still readable and within the time-to-live.
    fn holds_after(&mut self, now_ms: u64, channel: &ChannelName, epoch: &str, after: u64) -> bool {
        let ttl = self.ttl_ms;
        let c = self.entry(now_ms, channel);
        if c.epoch.as_deref() != Some(epoch) || after > c.offset {
            return false;
        }
        if after == c.offset {
            return true;
        }
        let oldest = now_ms.saturating_sub(ttl);
        c.stream.front().is_some_and(|e| e.offset <= after + 1)
            && (ttl == 0
                || c.stream
                    .iter()
                    .filter(|e| e.offset > after)
                    .all(|e| e.published_ms >= oldest))
    }
}

#[derive(Debug, Clone)]
enum Ev {
    Workload,
    Fault,
    /// The engine registers `node`'s subscription to `channel`'s topic (if the link is still the same).
    SubscribeServed {
        node: usize,
        link: u64,
        channel: ChannelName,
    },
    /// The confirmation reaches the node.
    Subscribed {
        node: usize,
        link: u64,
        channel: ChannelName,
    },
    Message {
        node: usize,
        link: u64,
        channel: ChannelName,
        epoch: String,
        offset: u64,
        retained: bool,
        event: Vec<u8>,
    },
    LinkBack {
        node: usize,
    },
    ReadServed {
        node: usize,
        channel: ChannelName,
        after: Option<u64>,
        limit: usize,
        fresh: Option<String>,
    },
    ReadAnswered {
        node: usize,
        channel: ChannelName,
        answer: Option<ChannelRead>,
    },
    /// A hub's publish reaches the engine.
    PublishServed {
        node: usize,
        ticket: EngineTicket,
        channel: ChannelName,
        events: Vec<Vec<u8>>,
        retain_last: bool,
        fresh: String,
    },
    /// A hub's `Follow` (`true`) or `Unfollow` reaches its feed (through a queue, as in the runtime).
    FeedOp {
        node: usize,
        channel: ChannelName,
        follow: bool,
    },
    /// The engine's answer reaches the hub.
    PublishAnswered {
        node: usize,
        ticket: EngineTicket,
        outcome: Result<(u64, u64), EngineFailure>,
    },
}

/// Who holds a hub connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Publisher,
    Subscriber(usize),
}

/// A subscriber: a connection to one node, its channels and, per channel, the (epoch, offset) it is at.
#[derive(Debug)]
struct Subscriber {
    node: usize,
    conn: ConnId,
    channels: BTreeMap<ChannelName, Option<(String, u64)>>,
    /// Subscribes not answered yet: message id → the position sent as `since`.
    pending: BTreeMap<String, Option<(String, u64)>>,
    /// Channels unsubscribed whose `unsubscribe_res` has not come yet (events may still come until it does).
    leaving: BTreeSet<ChannelName>,
    next_id: u64,
}

#[derive(Debug)]
struct Node {
    /// Bumped by a crash: what was on its way to or from the node before it is dropped.
    incarnation: u64,
    feed: LiveFeed,
    deadline: Timestamp,
    link_up: bool,
    link: u64,
    /// Topics the engine delivers to this node.
    topics: BTreeSet<ChannelName>,
    /// Pub/sub messages arrive in order: none before this instant.
    last_message_us: u64,
    /// Reads go over one command connection: served, and answered, in the order asked.
    last_read_served_us: u64,
    last_read_answered_us: u64,
    /// The checker's view: (epoch, last offset) per followed channel once placed.
    position: BTreeMap<ChannelName, (Option<String>, u64)>,
    /// The node's hub (`Hub::clustered`); its `Follow` and `Unfollow` drive the feed.
    hub: Hub,
    hub_deadline: Timestamp,
    intakes: BTreeMap<ConnId, Intake>,
    owners: BTreeMap<ConnId, Owner>,
    publisher: Option<ConnId>,
}

impl Node {
    fn fresh(
        hub_config: &HubConfig,
        feed_config: &FeedConfig,
        seed: u64,
        incarnation: u64,
        link: u64,
    ) -> Node {
        Node {
            incarnation,
            hub: Hub::clustered(HubConfig {
                seed,
                ..hub_config.clone()
            }),
            hub_deadline: Timestamp::ZERO,
            intakes: BTreeMap::new(),
            owners: BTreeMap::new(),
            publisher: None,
            feed: LiveFeed::new(feed_config.clone()),
            deadline: Timestamp::MAX,
            link_up: true,
            link,
            topics: BTreeSet::new(),
            last_message_us: 0,
            last_read_served_us: 0,
            last_read_answered_us: 0,
            position: BTreeMap::new(),
        }
    }
}

/// The node an agenda item concerns and its incarnation when the item was made.
type NodeTag = Option<(usize, u64)>;

/// The node an agenda item concerns.
fn node_of(ev: &Ev) -> Option<usize> {
    match ev {
        Ev::Workload | Ev::Fault => None,
        Ev::SubscribeServed { node, .. }
        | Ev::Subscribed { node, .. }
        | Ev::Message { node, .. }
        | Ev::LinkBack { node }
        | Ev::ReadServed { node, .. }
        | Ev::ReadAnswered { node, .. }
        | Ev::PublishServed { node, .. }
        | Ev::FeedOp { node, .. }
        | Ev::PublishAnswered { node, .. } => Some(*node),
    }
}

/// One cluster seed's world.
#[derive(Debug)]
pub struct ClusterWorld {
    seed: u64,
    rng: Rng,
    now_us: u64,
    seq: u64,
    /// Each item with the node (and its incarnation) it concerns, if any.
    agenda: BTreeMap<(u64, u64), (NodeTag, Ev)>,
    engine: Engine,
    hub_config: HubConfig,
    feed_config: FeedConfig,
    nodes: Vec<Node>,
    channels: Vec<ChannelName>,
    /// Everything the engine published: (channel, epoch, offset) → event.
    truth: BTreeMap<(ChannelName, String, u64), Vec<u8>>,
    /// What any node delivered under (channel, epoch, offset).
    seen: BTreeMap<(ChannelName, String, u64), Vec<u8>>,
    settling: bool,
    latency_us: (u64, u64),
    read_failure: f64,
    cut_chance: f64,
    loss_chance: f64,
    crash_chance: f64,
    report: ClusterReport,
    verbose: bool,
    subscribers: Vec<Subscriber>,
    next_publish_id: u64,
}

impl ClusterWorld {
    /// The world of `seed`: its size, configurations and fault rates drawn from it.
    pub fn new(seed: u64, verbose: bool) -> ClusterWorld {
        let mut rng = Rng::from_seed(seed ^ 0xc1u64.rotate_left(56));
        let node_count = rng.range_inclusive(2, 3) as usize;
        let history_size = rng.range_inclusive(3, 40) as usize;
        let ttl_ms = if rng.chance(0.3) {
            rng.range_inclusive(200, 5000)
        } else {
            0
        };
        let config = FeedConfig {
            read_batch: rng.range_inclusive(1, 8) as usize,
            load_events: history_size,
            retry_after: Duration::from_millis(rng.range_inclusive(5, 200)),
            max_held: rng.range_inclusive(1, 20) as usize,
            history_ttl: Duration::from_millis(ttl_ms),
        };
        let hub_config = HubConfig {
            heartbeat: Duration::ZERO,
            rate_per_sec: 0,
            history_size,
            history_ttl: Duration::from_millis(ttl_ms),
            ..HubConfig::default()
        };
        let nodes = (0..node_count)
            .map(|_| Node::fresh(&hub_config, &config, rng.next_u64(), 0, 0))
            .collect();
        let channels = (0..rng.range_inclusive(1, 4))
            .map(|i| ChannelName::new(&format!("c{i}")).expect("a valid channel name"))
            .collect();
        let slow = rng.range_inclusive(1, 30) * 1000;
        let mut world = ClusterWorld {
            seed,
            now_us: 1_700_000_000_000_000,
            seq: 0,
            agenda: BTreeMap::new(),
            engine: Engine {
                channels: BTreeMap::new(),
                history_size,
                ttl_ms,
            },
            hub_config,
            feed_config: config,
            nodes,
            channels,
            truth: BTreeMap::new(),
            seen: BTreeMap::new(),
            settling: false,
            latency_us: (100, slow),
            read_failure: [0.0, 0.02, 0.2][rng.below_inclusive(2) as usize],
            cut_chance: [0.02, 0.1, 0.3][rng.below_inclusive(2) as usize],
            loss_chance: [0.0, 0.02, 0.1][rng.below_inclusive(2) as usize],
            crash_chance: [0.0, 0.01, 0.05][rng.below_inclusive(2) as usize],
            rng,
            report: ClusterReport {
                seed,
                ..ClusterReport::default()
            },
            verbose,
            subscribers: Vec::new(),
            next_publish_id: 0,
        };
        for node in 0..world.nodes.len() {
            let conn = world.open(node, Owner::Publisher);
            world.nodes[node].publisher = Some(conn);
        }
        for i in 0..world.rng.range_inclusive(2, 5) as usize {
            let node = world.rng.below_inclusive(world.nodes.len() as u64 - 1) as usize;
            let conn = world.open(node, Owner::Subscriber(i));
            world.subscribers.push(Subscriber {
                node,
                conn,
                channels: BTreeMap::new(),
                pending: BTreeMap::new(),
                leaving: BTreeSet::new(),
                next_id: 0,
            });
        }
        world.at(0, Ev::Workload);
        world.at(1000, Ev::Fault);
        world
    }

    fn at(&mut self, delay_us: u64, ev: Ev) {
        self.seq += 1;
        let tag = node_of(&ev).map(|node| (node, self.nodes[node].incarnation));
        self.agenda
            .insert((self.now_us + delay_us, self.seq), (tag, ev));
    }

    /// `node` crashes: its hub, feed, links and connections are gone; it starts again empty (a new incarnation),
    /// what was on its way to or from it is dropped, and its clients reconnect to any node, resuming from where
    /// they were.
    fn crash(&mut self, node: usize) {
        self.report.crashes += 1;
        self.log(|| format!("node {node} crashes"));
        let old = &self.nodes[node];
        let (incarnation, link) = (old.incarnation + 1, old.link + 1);
        let seed = self.rng.next_u64();
        self.nodes[node] =
            Node::fresh(&self.hub_config, &self.feed_config, seed, incarnation, link);
        let conn = self.open(node, Owner::Publisher);
        self.nodes[node].publisher = Some(conn);
        for i in 0..self.subscribers.len() {
            if self.subscribers[i].node == node {
                self.reconnect(i);
            }
        }
    }

    fn latency(&mut self) -> u64 {
        self.rng
            .range_inclusive(self.latency_us.0, self.latency_us.1)
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.now_us)
    }

    fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }

    fn fail(&mut self, what: String) {
        if self.report.violation.is_none() {
            self.report.violation = Some(format!(
                "step {} t={}ms: {what}",
                self.report.steps,
                self.now_ms()
            ));
        }
    }

    /// Runs `steps` steps, then settles and checks every feed reached the engine's head.
    pub fn run(mut self, steps: u64) -> ClusterReport {
        while self.report.steps < steps && self.report.violation.is_none() {
            if !self.step() {
                break;
            }
        }
        if self.report.violation.is_none() {
            self.settle();
        }
        self.report
    }

    fn settle(&mut self) {
        self.settling = true;
        self.agenda
            .retain(|_, (_, ev)| !matches!(ev, Ev::Workload | Ev::Fault));
        for node in 0..self.nodes.len() {
            if !self.nodes[node].link_up {
                self.link_back(node);
            }
        }
        let channels = self.channels.clone();
        for channel in channels {
            self.publish(&channel);
        }
        let end = self.now_us + 60_000_000;
        let mut budget = 1_000_000u64;
        while budget > 0
            && self.report.violation.is_none()
            && self.next_time() <= end
            && self.step()
        {
            budget -= 1;
        }
        if self.report.violation.is_some() {
            return;
        }
        for node in 0..self.nodes.len() {
            for (channel, (epoch, offset)) in self.nodes[node].position.clone() {
                let head = self
                    .engine
                    .channels
                    .get(&channel)
                    .map(|c| (c.epoch.clone(), c.offset));
                if head.as_ref() != Some(&(epoch.clone(), offset)) {
                    self.fail(format!(
                        "settled: node {node} is at {epoch:?}:{offset} on {channel}, the engine at {head:?}"
                    ));
                    return;
                }
            }
        }
        for i in 0..self.subscribers.len() {
            for (channel, at) in self.subscribers[i].channels.clone() {
                let head = self
                    .engine
                    .channels
                    .get(&channel)
                    .and_then(|c| Some((c.epoch.clone()?, c.offset)));
                if at != head {
                    self.fail(format!(
                        "settled: subscriber {i} (node {}) is at {at:?} on {channel}, the engine at {head:?}",
                        self.subscribers[i].node
                    ));
                    return;
                }
            }
        }
    }

    /// When the next step is due (`u64::MAX`: nothing is).
    fn next_time(&self) -> u64 {
        let deadlines = self
            .nodes
            .iter()
            .flat_map(|n| [n.deadline.as_micros(), n.hub_deadline.as_micros()]);
        let agenda = self.agenda.first_key_value().map(|((t, _), _)| *t);
        deadlines.chain(agenda).min().unwrap_or(u64::MAX)
    }

    /// One step: the earliest of a feed deadline and an agenda item. False when nothing is left.
    fn step(&mut self) -> bool {
        let deadline = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                [
                    (n.deadline.as_micros(), i, false),
                    (n.hub_deadline.as_micros(), i, true),
                ]
            })
            .min();
        let next = self.agenda.first_key_value().map(|(k, _)| *k);
        let due = match (next, deadline) {
            (None, Some((d, _, _))) if d == u64::MAX => return false,
            (Some((t, _)), Some((d, node, hub))) if d < t => Some((d, node, hub)),
            (None, Some((d, node, hub))) => Some((d, node, hub)),
            _ => None,
        };
        match due {
            Some((d, node, hub)) => {
                self.now_us = self.now_us.max(d);
                let now = self.now();
                if hub {
                    self.nodes[node].hub.handle_timeout(now);
                    self.drain_hub(node);
                } else {
                    self.nodes[node].feed.handle_timeout(now);
                    self.drain(node);
                }
            }
            _ => {
                let Some(((t, _), (tag, ev))) = self.agenda.pop_first() else {
                    return false;
                };
                self.now_us = self.now_us.max(t);
                match tag {
                    Some((node, incarnation)) if self.nodes[node].incarnation != incarnation => {
                        self.log(|| format!("dropped (node {node} crashed since): {ev:?}"));
                    }
                    _ => self.handle(ev),
                }
            }
        }
        self.report.steps += 1;
        true
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if self.verbose {
            eprintln!(
                "[cluster seed {} step {} t={}ms] {}",
                self.seed,
                self.report.steps,
                self.now_ms(),
                line()
            );
        }
    }

    fn handle(&mut self, ev: Ev) {
        self.log(|| format!("{ev:?}"));
        let now = self.now();
        match ev {
            Ev::Workload => {
                let channel = self.pick_channel();
                let node = self.rng.below_inclusive(self.nodes.len() as u64 - 1) as usize;
                match self.rng.below_inclusive(13) {
                    0..=2 => self.publish(&channel),
                    3..=6 => self.publish_through_hub(node, &channel),
                    7..=9 => self.subscribe(channel),
                    10 => self.unsubscribe(channel),
                    11 => {
                        let i =
                            self.rng.below_inclusive(self.subscribers.len() as u64 - 1) as usize;
                        let conn = self.subscribers[i].conn;
                        let node = self.subscribers[i].node;
                        self.nodes[node].intakes.remove(&conn);
                        self.nodes[node].owners.remove(&conn);
                        self.nodes[node].hub.handle_transport_closed(now, conn);
                        self.drain_hub(node);
                        self.reconnect(i);
                    }
                    _ => self.subscribe(channel),
                }
                let gap = self.rng.range_inclusive(100, 20_000);
                self.at(gap, Ev::Workload);
            }
            Ev::Fault => {
                let node = self.rng.below_inclusive(self.nodes.len() as u64 - 1) as usize;
                if self.rng.chance(self.cut_chance) && self.nodes[node].link_up {
                    self.report.cuts += 1;
                    let n = &mut self.nodes[node];
                    n.link_up = false;
                    n.link += 1;
                    n.topics.clear();
                    let back = self.rng.range_inclusive(1_000, 2_000_000);
                    self.at(back, Ev::LinkBack { node });
                }
                if self.rng.chance(self.loss_chance) {
                    let channel = self.pick_channel();
                    if self.engine.channels.remove(&channel).is_some() {
                        self.report.losses += 1;
                    }
                }
                if self.rng.chance(self.crash_chance) {
                    let node = self.rng.below_inclusive(self.nodes.len() as u64 - 1) as usize;
                    self.crash(node);
                }
                let gap = self.rng.range_inclusive(10_000, 500_000);
                self.at(gap, Ev::Fault);
            }
            Ev::LinkBack { node } => self.link_back(node),
            Ev::SubscribeServed {
                node,
                link,
                channel,
            } => {
                if self.nodes[node].link == link && self.nodes[node].link_up {
                    self.nodes[node].topics.insert(channel.clone());
                    let lat = self.latency();
                    self.at(
                        lat,
                        Ev::Subscribed {
                            node,
                            link,
                            channel,
                        },
                    );
                }
            }
            Ev::Subscribed {
                node,
                link,
                channel,
            } => {
                if self.nodes[node].link == link {
                    self.nodes[node].feed.handle_subscribed(now, &channel);
                    self.drain(node);
                }
            }
            Ev::Message {
                node,
                link,
                channel,
                epoch,
                offset,
                retained,
                event,
            } => {
                if self.nodes[node].link == link {
                    self.nodes[node]
                        .feed
                        .handle_publication(now, &channel, &epoch, offset, &event, retained);
                    self.drain(node);
                }
            }
            Ev::ReadServed {
                node,
                channel,
                after,
                limit,
                fresh,
            } => {
                let answer = if !self.settling && self.rng.chance(self.read_failure) {
                    None
                } else {
                    Some(
                        self.engine
                            .read(self.now_ms(), &channel, after, limit, fresh),
                    )
                };
                let at = (self.now_us + self.latency()).max(self.nodes[node].last_read_answered_us);
                self.nodes[node].last_read_answered_us = at;
                self.at(
                    at - self.now_us,
                    Ev::ReadAnswered {
                        node,
                        channel,
                        answer,
                    },
                );
            }
            Ev::PublishServed {
                node,
                ticket,
                channel,
                events,
                retain_last,
                fresh,
            } => {
                let outcome = if !self.settling && self.rng.chance(self.read_failure) {
                    Err(EngineFailure::Unavailable)
                } else {
                    let count = events.len();
                    let mut first = 0;
                    let mut last = 0;
                    for (i, event) in events.into_iter().enumerate() {
                        let retained = retain_last && i + 1 == count;
                        last = self.engine_publish(&channel, fresh.clone(), retained, event);
                        if i == 0 {
                            first = last;
                        }
                    }
                    // Published, but the answer may be lost on its way back.
                    if !self.settling && self.rng.chance(self.read_failure) {
                        Err(EngineFailure::Unavailable)
                    } else {
                        Ok((first, last))
                    }
                };
                let lat = self.latency();
                self.at(
                    lat,
                    Ev::PublishAnswered {
                        node,
                        ticket,
                        outcome,
                    },
                );
            }
            Ev::FeedOp {
                node,
                channel,
                follow: true,
            } => self.follow(node, channel),
            Ev::FeedOp {
                node,
                channel,
                follow: false,
            } => {
                let n = &mut self.nodes[node];
                n.feed.unfollow(now, &channel);
                n.topics.remove(&channel);
                n.position.remove(&channel);
            }
            Ev::PublishAnswered {
                node,
                ticket,
                outcome,
            } => {
                self.nodes[node]
                    .hub
                    .handle_engine_published(now, ticket, outcome);
                self.drain_hub(node);
            }
            Ev::ReadAnswered {
                node,
                channel,
                answer,
            } => {
                match answer {
                    Some(read) => self.nodes[node].feed.handle_read(now, &channel, &read),
                    None => self.nodes[node].feed.handle_read_failed(now, &channel),
                }
                self.drain(node);
            }
        }
    }

    fn pick_channel(&mut self) -> ChannelName {
        let i = self.rng.below_inclusive(self.channels.len() as u64 - 1) as usize;
        self.channels[i].clone()
    }

    fn follow(&mut self, node: usize, channel: ChannelName) {
        if self.nodes[node].feed.follows(&channel) {
            return;
        }
        let now = self.now();
        self.nodes[node].feed.follow(now, channel.clone());
        if self.nodes[node].link_up {
            let link = self.nodes[node].link;
            let lat = self.latency();
            self.at(
                lat,
                Ev::SubscribeServed {
                    node,
                    link,
                    channel,
                },
            );
        }
        self.drain(node);
    }

    fn link_back(&mut self, node: usize) {
        self.nodes[node].link_up = true;
        let link = self.nodes[node].link;
        let followed: Vec<ChannelName> = self
            .channels
            .iter()
            .filter(|c| self.nodes[node].feed.follows(c))
            .cloned()
            .collect();
        for channel in followed {
            let lat = self.latency();
            self.at(
                lat,
                Ev::SubscribeServed {
                    node,
                    link,
                    channel,
                },
            );
        }
    }

    fn publish(&mut self, channel: &ChannelName) {
        let retained = self.rng.chance(0.2);
        let fresh = format!("{:016x}", self.rng.next_u64());
        let event = format!("{{\"n\":{}}}", self.rng.next_u64()).into_bytes();
        self.engine_publish(channel, fresh, retained, event);
    }

    /// The publish script: one event, its offset returned; every node subscribed to the topic hears it.
    fn engine_publish(
        &mut self,
        channel: &ChannelName,
        fresh: String,
        retained: bool,
        event: Vec<u8>,
    ) -> u64 {
        let (epoch, offset) =
            self.engine
                .publish(self.now_ms(), channel, fresh, retained, event.clone());
        self.truth
            .insert((channel.clone(), epoch.clone(), offset), event.clone());
        for node in 0..self.nodes.len() {
            if !self.nodes[node].link_up || !self.nodes[node].topics.contains(channel) {
                continue;
            }
            let arrive = (self.now_us + self.latency()).max(self.nodes[node].last_message_us);
            self.nodes[node].last_message_us = arrive;
            let link = self.nodes[node].link;
            self.at(
                arrive - self.now_us,
                Ev::Message {
                    node,
                    link,
                    channel: channel.clone(),
                    epoch: epoch.clone(),
                    offset,
                    retained,
                    event: event.clone(),
                },
            );
        }
        offset
    }

    /// Drains `node`'s feed, as the feed task does, checking each output.
    fn drain(&mut self, node: usize) {
        loop {
            let output = self.nodes[node].feed.poll_output();
            if !matches!(output, FeedOutput::Timeout(_)) {
                self.log(|| format!("node {node}: {output:?}"));
            }
            match output {
                FeedOutput::Timeout(at) => {
                    self.nodes[node].deadline = at;
                    return;
                }
                FeedOutput::Read {
                    channel,
                    after,
                    limit,
                } => {
                    if after.is_some() {
                        self.report.reads += 1;
                    }
                    let fresh = after
                        .is_none()
                        .then(|| format!("{:016x}", self.rng.next_u64()));
                    let at =
                        (self.now_us + self.latency()).max(self.nodes[node].last_read_served_us);
                    self.nodes[node].last_read_served_us = at;
                    self.at(
                        at - self.now_us,
                        Ev::ReadServed {
                            node,
                            channel,
                            after,
                            limit,
                            fresh,
                        },
                    );
                }
                FeedOutput::Positioned {
                    channel,
                    epoch,
                    offset,
                    events,
                    state,
                } => {
                    for e in &events {
                        if let Some(epoch) = &epoch {
                            self.check_event(node, &channel, epoch, e.offset, &e.event);
                        }
                    }
                    self.nodes[node]
                        .position
                        .insert(channel.clone(), (epoch.clone(), offset));
                    let now = self.now();
                    self.nodes[node]
                        .hub
                        .handle_engine_following(now, &channel, epoch, offset, state, events);
                    self.drain_hub(node);
                }
                FeedOutput::Resync {
                    channel,
                    epoch,
                    offset,
                    state,
                } => {
                    self.report.resyncs += 1;
                    if let Some((Some(old), at)) = self.nodes[node].position.get(&channel).cloned()
                        && self.engine.holds_after(self.now_ms(), &channel, &old, at)
                    {
                        self.fail(format!(
                            "node {node} resynced {channel} at {old}:{at} though the engine still holds every event after it"
                        ));
                    }
                    self.nodes[node]
                        .position
                        .insert(channel.clone(), (epoch.clone(), offset));
                    let now = self.now();
                    self.nodes[node]
                        .hub
                        .handle_engine_resync(now, &channel, epoch, offset, state);
                    self.drain_hub(node);
                }
                FeedOutput::Deliver {
                    channel,
                    epoch,
                    offset,
                    event,
                    retained,
                } => {
                    self.report.delivered += 1;
                    match self.nodes[node].position.get(&channel).cloned() {
                        None => self.fail(format!(
                            "node {node} delivered {channel} {epoch}:{offset} before its feed was placed"
                        )),
                        Some((at_epoch, at)) => {
                            let follows = match &at_epoch {
                                Some(e) => *e == epoch && offset == at + 1,
                                None => offset == 1,
                            };
                            if !follows {
                                let what = if at_epoch.as_deref() == Some(epoch.as_str())
                                    && offset <= at
                                {
                                    "duplicate"
                                } else {
                                    "gap without resync"
                                };
                                self.fail(format!(
                                    "{what}: node {node} delivered {channel} {epoch}:{offset} after {at_epoch:?}:{at}"
                                ));
                            }
                        }
                    }
                    self.check_event(node, &channel, &epoch, offset, &event);
                    self.nodes[node]
                        .position
                        .insert(channel.clone(), (Some(epoch.clone()), offset));
                    let now = self.now();
                    self.nodes[node]
                        .hub
                        .handle_engine_delivery(now, &channel, &epoch, offset, retained, &event);
                    self.drain_hub(node);
                }
            }
        }
    }

    fn check_event(
        &mut self,
        node: usize,
        channel: &ChannelName,
        epoch: &str,
        offset: u64,
        event: &[u8],
    ) {
        let key = (channel.clone(), epoch.to_owned(), offset);
        if self.truth.get(&key).map(Vec::as_slice) != Some(event) {
            self.fail(format!(
                "node {node} has {channel} {epoch}:{offset} = {:?}, not what the engine published",
                String::from_utf8_lossy(event)
            ));
        }
        match self.seen.get(&key) {
            Some(other) if other.as_slice() != event => self.fail(format!(
                "node {node} has {channel} {epoch}:{offset} differently from another node"
            )),
            Some(_) => {}
            None => {
                self.seen.insert(key, event.to_vec());
            }
        }
    }
}

/// Runs the cluster world of every seed of `seeds`, `steps` steps each, on the calling thread.
pub fn run_seeds(seeds: &[u64], steps: u64, verbose: bool) -> Vec<ClusterReport> {
    seeds
        .iter()
        .map(|&seed| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ClusterWorld::new(seed, verbose).run(steps)
            }))
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                ClusterReport {
                    seed,
                    violation: Some(format!("panicked: {message}")),
                    ..ClusterReport::default()
                }
            })
        })
        .collect()
}

/// Runs the cluster world of every seed of `settings`, spread over its threads, in seed order. A cluster seed runs
/// a quarter of `settings.steps` (a cluster step does more than a single-hub one: a delivery is a feed output, a
/// hub input and its fan-out), which keeps the whole simulation run within the time CI gives it.
pub fn run(settings: &super::Settings) -> Vec<ClusterReport> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::with_capacity(settings.seeds.len()));
    std::thread::scope(|scope| {
        for _ in 0..settings.threads.min(settings.seeds.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = settings.seeds.get(i) else {
                        break;
                    };
                    let mut report =
                        run_seeds(&[seed], (settings.steps / 4).max(1), settings.verbose).remove(0);
                    report.sim_steps = settings.steps;
                    if let Some(v) = &report.violation {
                        eprintln!(
                            "sim: cluster seed {seed} FAILED at {v}\nsim:   replay: {}",
                            report.replay_command()
                        );
                    }
                    reports
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.seed);
    reports
}

impl ClusterWorld {
    /// Opens a connection to `node`'s hub for `owner`.
    fn open(&mut self, node: usize, owner: Owner) -> ConnId {
        let now = self.now();
        let n = &mut self.nodes[node];
        let (conn, intake) = n.hub.handle_open(
            now,
            Dialect::Native,
            Permissions::allow_all(),
            Trust::Untrusted,
        );
        n.intakes.insert(conn, intake);
        n.owners.insert(conn, owner);
        self.drain_hub(node);
        conn
    }

    /// A text frame from a client to `node`'s hub.
    fn send(&mut self, node: usize, conn: ConnId, text: &str) {
        self.log(|| format!("node {node} {conn:?} -> {text}"));
        let now = self.now();
        let n = &mut self.nodes[node];
        if let Some(intake) = n.intakes.get_mut(&conn) {
            let inbound = intake.text(now, text);
            n.hub.handle_inbound(now, conn, inbound);
        }
        self.drain_hub(node);
    }

    fn publish_through_hub(&mut self, node: usize, channel: &ChannelName) {
        let Some(conn) = self.nodes[node].publisher else {
            return;
        };
        self.next_publish_id += 1;
        let retain = if self.rng.chance(0.2) {
            ",\"retain\":true"
        } else {
            ""
        };
        let text = format!(
            r#"{{"type":"publish","message_id":"p{}","data":{{"channel":"{channel}","event":{{"n":{}}}{retain}}}}}"#,
            self.next_publish_id,
            self.rng.next_u64()
        );
        self.send(node, conn, &text);
    }

    fn subscribe_frame(&mut self, i: usize, channel: &ChannelName) -> String {
        let sub = &mut self.subscribers[i];
        sub.next_id += 1;
        let position = sub.channels.get(channel).cloned().flatten();
        let since = match &position {
            Some((epoch, offset)) => {
                format!(r#","since":{{"epoch":"{epoch}","offset":{offset}}}"#)
            }
            None => String::new(),
        };
        sub.pending.insert(format!("s{}", sub.next_id), position);
        format!(
            r#"{{"type":"subscribe","message_id":"s{}","data":{{"channel":"{channel}"{since}}}}}"#,
            sub.next_id
        )
    }

    fn subscribe(&mut self, channel: ChannelName) {
        let i = self.rng.below_inclusive(self.subscribers.len() as u64 - 1) as usize;
        if self.subscribers[i].channels.contains_key(&channel) {
            return;
        }
        self.subscribers[i].channels.insert(channel.clone(), None);
        let text = self.subscribe_frame(i, &channel);
        let (node, conn) = (self.subscribers[i].node, self.subscribers[i].conn);
        self.send(node, conn, &text);
    }

    fn unsubscribe(&mut self, channel: ChannelName) {
        let i = self.rng.below_inclusive(self.subscribers.len() as u64 - 1) as usize;
        let sub = &mut self.subscribers[i];
        if !sub.channels.contains_key(&channel) || !sub.leaving.insert(channel.clone()) {
            return;
        }
        sub.next_id += 1;
        let text = format!(
            r#"{{"type":"unsubscribe","message_id":"u{}","data":{{"channel":"{channel}"}}}}"#,
            sub.next_id
        );
        let (node, conn) = (sub.node, sub.conn);
        self.send(node, conn, &text);
    }

    /// Subscriber `i` connects to a random node and subscribes to its channels again, each from where it is.
    fn reconnect(&mut self, i: usize) {
        let node = self.rng.below_inclusive(self.nodes.len() as u64 - 1) as usize;
        let conn = self.open(node, Owner::Subscriber(i));
        self.subscribers[i].node = node;
        self.subscribers[i].conn = conn;
        self.subscribers[i].pending.clear();
        let leaving = std::mem::take(&mut self.subscribers[i].leaving);
        for channel in leaving {
            self.subscribers[i].channels.remove(&channel);
        }
        let channels: Vec<ChannelName> = self.subscribers[i].channels.keys().cloned().collect();
        for channel in channels {
            let text = self.subscribe_frame(i, &channel);
            self.send(node, conn, &text);
        }
    }

    /// Drains `node`'s hub, as the runtime's hub driver and `server/cluster.rs` do.
    fn drain_hub(&mut self, node: usize) {
        loop {
            let output = self.nodes[node].hub.poll_output();
            match output {
                HubOutput::Timeout(at) => {
                    self.nodes[node].hub_deadline = at;
                    return;
                }
                HubOutput::Transmit { conn, frame } => {
                    self.nodes[node].hub.handle_sent(conn, frame.len());
                    if let Some(Owner::Subscriber(i)) = self.nodes[node].owners.get(&conn).copied()
                    {
                        self.subscriber_frame(i, &frame);
                    }
                }
                HubOutput::Close { conn, code, .. } => {
                    let now = self.now();
                    self.log(|| format!("node {node} closes {conn:?} with {}", code.as_u16()));
                    self.nodes[node].intakes.remove(&conn);
                    let owner = self.nodes[node].owners.remove(&conn);
                    self.nodes[node].hub.handle_transport_closed(now, conn);
                    match owner {
                        Some(Owner::Subscriber(i)) => self.reconnect(i),
                        Some(Owner::Publisher) => {
                            let conn = self.open(node, Owner::Publisher);
                            self.nodes[node].publisher = Some(conn);
                        }
                        None => {}
                    }
                }
                HubOutput::Engine(command) => match command {
                    EngineCommand::Follow { channel } => self.at(
                        0,
                        Ev::FeedOp {
                            node,
                            channel,
                            follow: true,
                        },
                    ),
                    EngineCommand::Unfollow { channel } => self.at(
                        0,
                        Ev::FeedOp {
                            node,
                            channel,
                            follow: false,
                        },
                    ),
                    EngineCommand::Publish {
                        ticket,
                        channel,
                        events,
                        retain_last,
                        fresh_epoch,
                        ..
                    } => {
                        let events = events
                            .iter()
                            .map(|e| serde_json::to_vec(&**e).expect("an event is JSON"))
                            .collect();
                        let lat = self.latency();
                        self.at(
                            lat,
                            Ev::PublishServed {
                                node,
                                ticket,
                                channel,
                                events,
                                retain_last,
                                fresh: fresh_epoch,
                            },
                        );
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    /// What subscriber `i`'s connection reads: each event must be the engine's, and follow the last one.
    fn subscriber_frame(&mut self, i: usize, frame: &str) {
        self.log(|| format!("subscriber {i} <- {frame}"));
        let Ok(value) = serde_json::from_str::<Value>(frame) else {
            self.fail(format!("subscriber {i} got invalid JSON {frame}"));
            return;
        };
        let data = &value["data"];
        let Some(channel) = data["channel"]
            .as_str()
            .and_then(|c| ChannelName::new(c).ok())
        else {
            return;
        };
        let Some(at) = self.subscribers[i].channels.get(&channel).cloned() else {
            return;
        };
        let epoch = data["epoch"].as_str().unwrap_or_default().to_owned();
        let offset = data["offset"].as_u64().unwrap_or_default();
        match value["type"].as_str() {
            Some("unsubscribe_res") => {
                self.subscribers[i].leaving.remove(&channel);
                self.subscribers[i].channels.remove(&channel);
            }
            Some("subscribe_res") => {
                let id = value["message_id"].as_str().unwrap_or_default();
                let since = self.subscribers[i].pending.remove(id).flatten();
                if data["recovered"] == Value::Bool(true) {
                    if since.as_ref().map(|(e, _)| e.as_str()) != Some(epoch.as_str()) {
                        self.fail(format!(
                            "subscriber {i} recovered {channel} into epoch {epoch} from {since:?}"
                        ));
                    }
                    self.subscribers[i].channels.insert(channel, since);
                } else {
                    self.subscribers[i]
                        .channels
                        .insert(channel, Some((epoch, offset)));
                }
            }
            Some("event") => {
                let follows = match &at {
                    Some((e, o)) => (*e == epoch && offset == o + 1) || (*o == 0 && offset == 1),
                    None => false,
                };
                if !follows {
                    self.fail(format!(
                        "subscriber {i} (node {}) gap without resync: {channel} {epoch}:{offset} after {at:?}",
                        self.subscribers[i].node
                    ));
                }
                let truth = self
                    .truth
                    .get(&(channel.clone(), epoch.clone(), offset))
                    .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok());
                if truth.as_ref() != Some(&data["event"]) {
                    self.fail(format!(
                        "subscriber {i} got {channel} {epoch}:{offset} = {}, not what the engine published",
                        data["event"]
                    ));
                }
                self.subscribers[i]
                    .channels
                    .insert(channel, Some((epoch, offset)));
            }
            _ => {}
        }
    }
}
