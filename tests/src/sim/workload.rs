//! What the applications do: publishers and subscribers on a few channels, subscribers joining and leaving,
//! `get_state`, pings, sessions, routed calls (some clients serve a channel, others call it), and the server side's
//! own work (publishes, server requests with [`Hub::send_request`], notifications). Each seed draws its own mix
//! ("swarm testing"): some seeds are publish storms, some are mostly calls, some churn subscriptions.
//!
//! The workload only decides; the [`world`](super::world) carries the decisions out and records them in the
//! ledgers. Published events are tagged (`{"tag": n, "retain": bool}`) so the checker can tell exactly which
//! publish a delivered event came from.
//!
//! [`Hub::send_request`]: switchboard_protocol::server::Hub::send_request

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_protocol::client::HandlerError;
use switchboard_protocol::rng::Rng;
use switchboard_protocol::wire::ChannelName;

use super::invariants::REFUSAL_CODE;

/// One thing an application does.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadAction {
    /// A client publishes on a channel.
    Publish {
        /// The client slot.
        client: usize,
        /// The channel.
        channel: ChannelName,
        /// Whether the event becomes the channel's state.
        retain: bool,
    },
    /// A client subscribes.
    Subscribe {
        /// The client slot.
        client: usize,
        /// The channel.
        channel: ChannelName,
    },
    /// A client subscribes to a pattern (PROTOCOL §3.2).
    SubscribePattern {
        /// The client slot.
        client: usize,
        /// The pattern.
        pattern: String,
    },
    /// A client unsubscribes.
    Unsubscribe {
        /// The client slot.
        client: usize,
        /// The channel.
        channel: ChannelName,
    },
    /// A client asks for a channel's state.
    GetState {
        /// The client slot.
        client: usize,
        /// The channel.
        channel: ChannelName,
    },
    /// A client calls a service channel.
    Call {
        /// The client slot.
        client: usize,
        /// The service channel.
        channel: ChannelName,
    },
    /// A client starts serving a service channel.
    Serve {
        /// The client slot.
        client: usize,
        /// The service channel.
        channel: ChannelName,
    },
    /// A client pings.
    Ping {
        /// The client slot.
        client: usize,
    },
    /// A client opens a session.
    CreateSession {
        /// The client slot.
        client: usize,
    },
    /// A client closes one of its sessions.
    CloseSession {
        /// The client slot.
        client: usize,
    },
    /// A client leaves for good, and a new one joins in its place.
    Replace {
        /// The client slot.
        client: usize,
    },
    /// The server application publishes.
    HubPublish {
        /// The channel.
        channel: ChannelName,
        /// Whether the event becomes the channel's state.
        retain: bool,
    },
    /// The server application asks a connected client something (`send_request`).
    HubRequest,
    /// The server application notifies everyone.
    HubNotify,
}

/// The kinds of [`WorkloadAction`], for the per-seed mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Publish,
    Subscribe,
    Unsubscribe,
    GetState,
    Call,
    Serve,
    Ping,
    CreateSession,
    CloseSession,
    Replace,
    HubPublish,
    HubRequest,
    HubNotify,
}

const KINDS: [Kind; 13] = [
    Kind::Publish,
    Kind::Subscribe,
    Kind::Unsubscribe,
    Kind::GetState,
    Kind::Call,
    Kind::Serve,
    Kind::Ping,
    Kind::CreateSession,
    Kind::CloseSession,
    Kind::Replace,
    Kind::HubPublish,
    Kind::HubRequest,
    Kind::HubNotify,
];

/// What one application remembers between actions.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// Sessions it opened and has not closed.
    pub sessions: Vec<String>,
}

/// How an application answers a routed call or a server request: after `delay`, with `answer`.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerReply {
    /// How long the handler takes.
    pub delay: Duration,
    /// What it answers.
    pub answer: Result<Value, HandlerError>,
}

/// The applications of one seed.
#[derive(Debug)]
pub struct Workload {
    rng: Rng,
    /// Draws what pattern subscriptions add (who subscribes by pattern, publishes to channels only patterns
    /// follow), apart from `rng` so that every other draw of a seed stays what it was before they existed.
    side: Rng,
    /// Whether this seed's clients subscribe by pattern.
    patterns_on: bool,
    /// The event channels.
    pub channels: Vec<ChannelName>,
    /// The service channels (served and called).
    pub services: Vec<ChannelName>,
    /// Channels only published to: followed by pattern subscribers alone, and made whenever their first publish
    /// comes, long after the subscriptions.
    pub pattern_only: Vec<ChannelName>,
    weights: [u32; KINDS.len()],
    mean_gap: Duration,
    /// Chance that a handler never answers.
    silence: f64,
    /// Chance that a handler refuses.
    refusal: f64,
    next_tag: u64,
    next_n: u64,
    /// Chance that a publish retains its event: none in some seeds, so that channels left alone keep nothing
    /// and are forgotten.
    retain_share: f64,
    /// Per client slot.
    pub apps: Vec<App>,
}

impl Workload {
    /// Draws a seed's applications for `clients` client slots.
    pub fn draw(mut rng: Rng, clients: usize) -> Workload {
        let channel_count = rng.range_inclusive(1, 4) as usize;
        let channels = (0..channel_count)
            .map(|i| ChannelName::new(&format!("news/{i}")).expect("a valid channel name"))
            .collect();
        let services = (0..rng.range_inclusive(1, 2))
            .map(|i| ChannelName::new(&format!("svc/{i}")).expect("a valid channel name"))
            .collect();
        // Every kind is on in most seeds, at a weight of its own; a few kinds are off in each.
        let mut weights = [0u32; KINDS.len()];
        for (kind, w) in KINDS.iter().zip(&mut weights) {
            let base = match kind {
                Kind::Publish => 30,
                Kind::HubPublish => 10,
                Kind::Subscribe | Kind::Unsubscribe => 8,
                Kind::Call => 8,
                Kind::Replace => 1,
                _ => 4,
            };
            *w = if rng.chance(0.15) {
                0
            } else {
                rng.range_inclusive(1, 2 * base) as u32
            };
        }
        let retain_share = if rng.chance(0.4) { 0.0 } else { 0.3 };
        let mean_gap = Duration::from_millis(rng.range_inclusive(10, 200));
        let silence = if rng.chance(0.5) { 0.05 } else { 0.0 };
        let refusal = if rng.chance(0.5) { 0.1 } else { 0.0 };
        let mut side = Rng::from_seed(rng.clone().next_u64() ^ 0x7061_7474_6572_6e73);
        // Half the seeds use patterns; the others run exactly as they did before patterns existed.
        let patterns_on = side.chance(0.5);
        let pattern_only = (0..if patterns_on {
            side.range_inclusive(0, 3)
        } else {
            0
        })
            .map(|i| ChannelName::new(&format!("news/late{i}")).expect("a valid channel name"))
            .collect();
        Workload {
            retain_share,
            pattern_only,
            patterns_on,
            side,
            channels,
            services,
            weights,
            mean_gap,
            silence,
            refusal,
            next_tag: 1,
            next_n: 1,
            apps: vec![App::default(); clients],
            rng,
        }
    }

    /// How long until the next action (exponentially distributed around the seed's mean).
    pub fn next_gap(&mut self) -> Duration {
        exponential(&mut self.rng, self.mean_gap)
    }

    /// What every client does first: subscribe to some channels; some serve a service.
    pub fn opening(&mut self) -> Vec<WorkloadAction> {
        let mut actions = Vec::new();
        for client in 0..self.apps.len() {
            actions.extend(self.joining(client));
        }
        actions
    }

    /// What a client that just joined does first.
    pub fn joining(&mut self, client: usize) -> Vec<WorkloadAction> {
        let mut actions = Vec::new();
        for channel in self.channels.clone() {
            if self.rng.chance(0.6) {
                actions.push(WorkloadAction::Subscribe { client, channel });
            }
        }
        if self.rng.chance(0.3) {
            let channel = self.pick(&self.services.clone());
            actions.push(WorkloadAction::Serve { client, channel });
        }
        if self.patterns_on && self.side.chance(0.4) {
            let pattern = String::from(if self.side.chance(0.5) {
                "news/*"
            } else {
                "**"
            });
            actions.push(WorkloadAction::SubscribePattern { client, pattern });
        }
        actions
    }

    /// The next action.
    pub fn next_action(&mut self) -> WorkloadAction {
        let total: u64 = self.weights.iter().map(|&w| u64::from(w)).sum();
        let mut pick = self.rng.below_inclusive(total.max(1) - 1);
        let mut kind = Kind::Publish;
        for (k, &w) in KINDS.iter().zip(&self.weights) {
            if pick < u64::from(w) {
                kind = *k;
                break;
            }
            pick -= u64::from(w);
        }
        let client = self.rng.below_inclusive(self.apps.len() as u64 - 1) as usize;
        let channel = self.pick(&self.channels.clone());
        let service = self.pick(&self.services.clone());
        match kind {
            Kind::Publish => {
                let retain = self.rng.chance(self.retain_share);
                let channel = if !self.pattern_only.is_empty() && self.side.chance(0.25) {
                    let i = self
                        .side
                        .below_inclusive(self.pattern_only.len() as u64 - 1)
                        as usize;
                    self.pattern_only[i].clone()
                } else {
                    channel
                };
                WorkloadAction::Publish {
                    client,
                    channel,
                    retain,
                }
            }
            Kind::Subscribe => WorkloadAction::Subscribe { client, channel },
            Kind::Unsubscribe => WorkloadAction::Unsubscribe { client, channel },
            Kind::GetState => WorkloadAction::GetState { client, channel },
            Kind::Call => WorkloadAction::Call {
                client,
                channel: service,
            },
            Kind::Serve => WorkloadAction::Serve {
                client,
                channel: service,
            },
            Kind::Ping => WorkloadAction::Ping { client },
            Kind::CreateSession => WorkloadAction::CreateSession { client },
            Kind::CloseSession => WorkloadAction::CloseSession { client },
            Kind::Replace => WorkloadAction::Replace { client },
            Kind::HubPublish => WorkloadAction::HubPublish {
                channel,
                retain: self.rng.chance(self.retain_share),
            },
            Kind::HubRequest => WorkloadAction::HubRequest,
            Kind::HubNotify => WorkloadAction::HubNotify,
        }
    }

    /// A fresh event for a publish: `{"tag": n, "retain": retain}`; returns the tag too.
    pub fn event(&mut self, retain: bool) -> (u64, Value) {
        let tag = self.next_tag;
        self.next_tag += 1;
        (tag, json!({"tag": tag, "retain": retain}))
    }

    /// A fresh number for a call's or server request's parameters, which the answer must carry back.
    pub fn number(&mut self) -> u64 {
        let n = self.next_n;
        self.next_n += 1;
        n
    }

    /// How a serving client answers a call with these params: the echo of `n`, a refusal, or nothing at all.
    pub fn answer_call(&mut self, params: &Value) -> Option<HandlerReply> {
        let n = params.get("n").cloned().unwrap_or(Value::Null);
        self.reply(json!({ "echo": n }))
    }

    /// How a client answers a server request with this data: `n` back, a refusal, or nothing at all.
    pub fn answer_request(
        &mut self,
        data: &serde_json::Map<String, Value>,
    ) -> Option<HandlerReply> {
        let n = data.get("n").cloned().unwrap_or(Value::Null);
        self.reply(json!({ "n": n }))
    }

    fn reply(&mut self, ok: Value) -> Option<HandlerReply> {
        if self.rng.chance(self.silence) {
            return None;
        }
        let delay = exponential(&mut self.rng, Duration::from_millis(300));
        let answer = if self.rng.chance(self.refusal) {
            Err(HandlerError::new(
                REFUSAL_CODE,
                "the simulated handler refuses",
            ))
        } else {
            Ok(ok)
        };
        Some(HandlerReply { delay, answer })
    }

    /// Picks a random element.
    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from[self.rng.below_inclusive(from.len() as u64 - 1) as usize].clone()
    }

    /// A random index below `len` (which must not be 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.rng.below_inclusive(len as u64 - 1) as usize
    }

    /// How long a server request may wait for its answer: the hub's default, or one of its own.
    pub fn request_timeout(&mut self) -> Option<Duration> {
        self.rng
            .chance(0.5)
            .then(|| Duration::from_millis(self.rng.range_inclusive(100, 5_000)))
    }
}

/// A duration drawn from an exponential distribution with this mean (capped at 20 means).
pub fn exponential(rng: &mut Rng, mean: Duration) -> Duration {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u = 1.0 - rng.next_f64();
    mean.mul_f64((-u.ln()).min(20.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_workload() {
        let mut a = Workload::draw(Rng::from_seed(3), 4);
        let mut b = Workload::draw(Rng::from_seed(3), 4);
        for _ in 0..100 {
            assert_eq!(a.next_action(), b.next_action());
            assert_eq!(a.next_gap(), b.next_gap());
        }
    }

    #[test]
    fn every_kind_shows_up_across_seeds() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..20 {
            let mut w = Workload::draw(Rng::from_seed(seed), 3);
            for _ in 0..200 {
                seen.insert(std::mem::discriminant(&w.next_action()));
            }
        }
        assert_eq!(seen.len(), KINDS.len());
    }
}
