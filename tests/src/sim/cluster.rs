//! The cluster's live feeds under faults: 2 or 3 nodes, each with a real
//! [`LiveFeed`](switchboard_protocol::redis::engine::LiveFeed), over a simulated engine.
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

use switchboard_protocol::redis::engine::{
    ChannelRead, FeedConfig, FeedOutput, LiveFeed, StoredEvent,
};
use switchboard_protocol::rng::Rng;
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::ChannelName;

/// What one cluster seed did, and the first violation it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterReport {
    /// The seed.
    pub seed: u64,
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
            "SIM_SEED={} SIM_TRACE=1 cargo test -p switchboard-tests --release{features} --test simulation -- --exact {test} --nocapture",
            self.seed
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
}

#[derive(Debug)]
struct Node {
    feed: LiveFeed,
    deadline: Timestamp,
    link_up: bool,
    link: u64,
    /// Topics the engine delivers to this node.
    topics: BTreeSet<ChannelName>,
    /// Pub/sub messages arrive in order: none before this instant.
    last_message_us: u64,
    /// The checker's view: (epoch, last offset) per followed channel once placed.
    position: BTreeMap<ChannelName, (Option<String>, u64)>,
}

/// One cluster seed's world.
#[derive(Debug)]
pub struct ClusterWorld {
    seed: u64,
    rng: Rng,
    now_us: u64,
    seq: u64,
    agenda: BTreeMap<(u64, u64), Ev>,
    engine: Engine,
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
    report: ClusterReport,
    verbose: bool,
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
        let nodes = (0..node_count)
            .map(|_| Node {
                feed: LiveFeed::new(config.clone()),
                deadline: Timestamp::MAX,
                link_up: true,
                link: 0,
                topics: BTreeSet::new(),
                last_message_us: 0,
                position: BTreeMap::new(),
            })
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
            nodes,
            channels,
            truth: BTreeMap::new(),
            seen: BTreeMap::new(),
            settling: false,
            latency_us: (100, slow),
            read_failure: [0.0, 0.02, 0.2][rng.below_inclusive(2) as usize],
            cut_chance: [0.02, 0.1, 0.3][rng.below_inclusive(2) as usize],
            loss_chance: [0.0, 0.02, 0.1][rng.below_inclusive(2) as usize],
            rng,
            report: ClusterReport {
                seed,
                ..ClusterReport::default()
            },
            verbose,
        };
        world.at(0, Ev::Workload);
        world.at(1000, Ev::Fault);
        world
    }

    fn at(&mut self, delay_us: u64, ev: Ev) {
        self.seq += 1;
        self.agenda.insert((self.now_us + delay_us, self.seq), ev);
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
            .retain(|_, ev| !matches!(ev, Ev::Workload | Ev::Fault));
        for node in 0..self.nodes.len() {
            if !self.nodes[node].link_up {
                self.link_back(node);
            }
        }
        let channels = self.channels.clone();
        for channel in channels {
            self.publish(&channel);
        }
        let mut budget = 1_000_000u64;
        while budget > 0 && self.report.violation.is_none() && self.step() {
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
    }

    /// One step: the earliest of a feed deadline and an agenda item. False when nothing is left.
    fn step(&mut self) -> bool {
        let deadline = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.deadline.as_micros(), i))
            .min();
        let next = self.agenda.first_key_value().map(|(k, _)| *k);
        match (next, deadline) {
            (None, Some((d, _))) if d == u64::MAX => return false,
            (Some((t, _)), Some((d, node))) if d < t => {
                self.now_us = self.now_us.max(d);
                let now = self.now();
                self.nodes[node].feed.handle_timeout(now);
                self.drain(node);
            }
            (None, Some((d, node))) => {
                self.now_us = self.now_us.max(d);
                let now = self.now();
                self.nodes[node].feed.handle_timeout(now);
                self.drain(node);
            }
            _ => {
                let Some(((t, _), ev)) = self.agenda.pop_first() else {
                    return false;
                };
                self.now_us = self.now_us.max(t);
                self.handle(ev);
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
                match self.rng.below_inclusive(9) {
                    0..=5 => self.publish(&channel),
                    6..=8 => self.follow(node, channel),
                    _ => {
                        self.nodes[node].feed.unfollow(now, &channel);
                        self.nodes[node].topics.remove(&channel);
                        self.nodes[node].position.remove(&channel);
                    }
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
                let lat = self.latency();
                self.at(
                    lat,
                    Ev::ReadAnswered {
                        node,
                        channel,
                        answer,
                    },
                );
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
                    let lat = self.latency();
                    self.at(
                        lat,
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
                    ..
                } => {
                    for e in &events {
                        if let Some(epoch) = &epoch {
                            self.check_event(node, &channel, epoch, e.offset, &e.event);
                        }
                    }
                    self.nodes[node].position.insert(channel, (epoch, offset));
                }
                FeedOutput::Resync {
                    channel,
                    epoch,
                    offset,
                    ..
                } => {
                    self.report.resyncs += 1;
                    if let Some((Some(old), at)) = self.nodes[node].position.get(&channel).cloned()
                        && self.engine.holds_after(self.now_ms(), &channel, &old, at)
                    {
                        self.fail(format!(
                            "node {node} resynced {channel} at {old}:{at} though the engine still holds every event after it"
                        ));
                    }
                    self.nodes[node].position.insert(channel, (epoch, offset));
                }
                FeedOutput::Deliver {
                    channel,
                    epoch,
                    offset,
                    event,
                    ..
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
                        .insert(channel, (Some(epoch), offset));
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

/// Runs the cluster world of every seed of `settings`, spread over its threads, in seed order.
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
                    let report = run_seeds(&[seed], settings.steps, settings.verbose).remove(0);
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
