//! The seeded fake network between the clients and the hub.
//!
//! A [`NetLink`] is one WebSocket connection: two directions, each delivering its packets **in order** (like TCP),
//! after a per-link latency plus per-packet jitter. Dials take a random time and sometimes fail or hang. A link can
//! be closed by either end (the close travels behind the frames already sent, like a close frame), cut (everything
//! in flight is lost; each end hears of it after its own delay, or never, and must notice by its heartbeat), or
//! stalled towards its client (a client that stops reading: frames pile up undelivered and unacknowledged, which is
//! what makes the hub see a slow consumer).
//!
//! The network **refuses delivery to an end that is closed**: a frame for a client whose side of the link is gone,
//! or for the hub after it closed the connection, is dropped and counted, never handed over. That, with the
//! driver's checks on what each machine emits, is how the simulation guarantees that nothing reaches a connection
//! after it closed.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::ConnId;
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::CloseCode;

use super::clock::Agenda;

/// Names one link for the whole run (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(usize);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

/// What travels in one direction of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<F> {
    /// One text frame.
    Frame(F),
    /// A close frame: the sender's end is gone.
    Close {
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: String,
    },
}

/// Which way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToHub,
    ToClient,
}

/// Knobs of the network, drawn per seed.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// A new link's base latency is drawn from this range, once per link.
    pub latency: (Duration, Duration),
    /// Every packet waits its link's latency plus up to this much more (but never overtakes an earlier one).
    pub jitter: Duration,
    /// How long a dial takes to succeed or fail.
    pub dial_time: (Duration, Duration),
    /// Chance that a dial fails (refused, reset, TLS error…).
    pub dial_failure: f64,
    /// Chance that a dial never answers (the client's connect timeout must save it).
    pub dial_hang: f64,
}

/// One WebSocket connection between a client slot and the hub.
#[derive(Debug, Clone)]
pub struct NetLink {
    /// The client slot at the client end.
    pub client: usize,
    /// Which client machine of that slot (slots get a new machine when a client leaves and another joins).
    pub incarnation: u32,
    /// Which hub (a restart makes a new one) holds the other end.
    pub hub_generation: u32,
    /// The hub's name for this connection.
    pub conn: ConnId,
    /// The client end still reads and writes.
    pub client_open: bool,
    /// The hub end still reads and writes.
    pub hub_open: bool,
    /// Cut: everything sent on it is lost.
    cut: bool,
    latency: Duration,
    to_hub: VecDeque<Packet<String>>,
    to_client: VecDeque<Packet<Arc<str>>>,
    last_to_hub: Timestamp,
    last_to_client: Timestamp,
    stalled_until: Timestamp,
}

impl NetLink {
    /// Whether frames towards the client are held back (the client stopped reading) at `now`.
    pub fn is_stalled(&self, now: Timestamp) -> bool {
        now < self.stalled_until
    }

    /// Whether either end still considers the link open.
    pub fn is_live(&self) -> bool {
        self.client_open || self.hub_open
    }

    /// Whether the link was cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

/// Something the network does at an instant.
#[derive(Debug, Clone)]
enum Due {
    /// The next packet of one direction of a link arrives.
    Deliver(LinkId, Dir),
    /// A dial answers.
    Dial {
        client: usize,
        incarnation: u32,
        attempt: u64,
        failure: Option<String>,
    },
    /// One end of a cut link finds out.
    CutSeen(LinkId, Dir),
}

/// What the network hands the driver.
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// A dial answered: `Ok` means the TCP and WebSocket handshakes went through as far as the network is
    /// concerned (the driver still needs a listening hub).
    DialDone {
        /// The dialing client slot.
        client: usize,
        /// Its machine.
        incarnation: u32,
        /// Which of its dials.
        attempt: u64,
        /// How it went.
        result: Result<(), String>,
    },
    /// A packet reached the hub end of an open link.
    AtHub {
        /// The link.
        link: LinkId,
        /// The hub's connection.
        conn: ConnId,
        /// Which hub.
        hub_generation: u32,
        /// What arrived.
        packet: Packet<String>,
    },
    /// A packet reached the client end of an open link.
    AtClient {
        /// The link.
        link: LinkId,
        /// The client slot.
        client: usize,
        /// Its machine.
        incarnation: u32,
        /// The hub's connection (for `handle_sent`).
        conn: ConnId,
        /// Which hub sent it.
        hub_generation: u32,
        /// What arrived.
        packet: Packet<Arc<str>>,
    },
    /// The client end of a cut link found out (a reset: close code 1006).
    CutSeenByClient {
        /// The link.
        link: LinkId,
        /// The client slot.
        client: usize,
        /// Its machine.
        incarnation: u32,
    },
    /// The hub end of a cut link found out.
    CutSeenByHub {
        /// The link.
        link: LinkId,
        /// The hub's connection.
        conn: ConnId,
        /// Which hub.
        hub_generation: u32,
    },
}

/// Counters of what the network did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Packets handed to an end.
    pub delivered: u64,
    /// Packets dropped: sent on a cut link, or refused by an end that had closed.
    pub dropped: u64,
    /// Dials that failed or hung.
    pub failed_dials: u64,
    /// Links cut.
    pub cuts: u64,
}

/// The network: every link of the run and what is in flight.
#[derive(Debug)]
pub struct Network {
    rng: Rng,
    config: NetConfig,
    links: Vec<NetLink>,
    agenda: Agenda<Due>,
    /// What the network did.
    pub stats: NetStats,
}

impl Network {
    /// An empty network drawing its randomness from `rng`.
    pub fn new(rng: Rng, config: NetConfig) -> Network {
        Network {
            rng,
            config,
            links: Vec::new(),
            agenda: Agenda::default(),
            stats: NetStats::default(),
        }
    }

    /// When the next thing happens on the network; [`Timestamp::MAX`] when nothing is in flight.
    pub fn next_at(&self) -> Timestamp {
        self.agenda.next_at()
    }

    /// A link.
    pub fn link(&self, id: LinkId) -> &NetLink {
        &self.links[id.0]
    }

    /// Every link either end still considers open, oldest first.
    pub fn live_links(&self) -> Vec<LinkId> {
        (0..self.links.len())
            .map(LinkId)
            .filter(|&id| self.link(id).is_live())
            .collect()
    }

    /// Starts a dial for a client. It answers after the dial time, unless it hangs.
    pub fn dial(&mut self, now: Timestamp, client: usize, incarnation: u32, attempt: u64) {
        if self.rng.chance(self.config.dial_hang) {
            self.stats.failed_dials += 1;
            return;
        }
        let failure = self
            .rng
            .chance(self.config.dial_failure)
            .then(|| String::from("connection refused"));
        if failure.is_some() {
            self.stats.failed_dials += 1;
        }
        let (lo, hi) = self.config.dial_time;
        let at = now + self.rng.duration_between(lo, hi);
        self.agenda.schedule(
            at,
            Due::Dial {
                client,
                incarnation,
                attempt,
                failure,
            },
        );
    }

    /// Makes the link of an accepted dial.
    pub fn open_link(
        &mut self,
        now: Timestamp,
        client: usize,
        incarnation: u32,
        hub_generation: u32,
        conn: ConnId,
    ) -> LinkId {
        let (lo, hi) = self.config.latency;
        let latency = self.rng.duration_between(lo, hi);
        self.links.push(NetLink {
            client,
            incarnation,
            hub_generation,
            conn,
            client_open: true,
            hub_open: true,
            cut: false,
            latency,
            to_hub: VecDeque::new(),
            to_client: VecDeque::new(),
            last_to_hub: now,
            last_to_client: now,
            stalled_until: Timestamp::ZERO,
        });
        LinkId(self.links.len() - 1)
    }

    /// The client writes a frame. `false` when it is lost (the link was cut).
    pub fn send_to_hub(&mut self, now: Timestamp, id: LinkId, frame: String) -> bool {
        self.push_to_hub(now, id, Packet::Frame(frame))
    }

    /// The hub writes a frame. `false` when it is lost (the link was cut, or the client end is gone).
    pub fn send_to_client(&mut self, now: Timestamp, id: LinkId, frame: Arc<str>) -> bool {
        if !self.links[id.0].client_open {
            self.stats.dropped += 1;
            return false;
        }
        self.push_to_client(now, id, Packet::Frame(frame))
    }

    /// The client closes its end: it reads nothing more, and its close frame follows what it already wrote.
    pub fn close_by_client(&mut self, now: Timestamp, id: LinkId, code: CloseCode, reason: &str) {
        let link = &mut self.links[id.0];
        link.client_open = false;
        let lost = link.to_client.len();
        link.to_client.clear();
        self.stats.dropped += lost as u64;
        let close = Packet::Close {
            code,
            reason: String::from(reason),
        };
        self.push_to_hub(now, id, close);
    }

    /// The hub closes its end: it reads nothing more, and its close frame follows what it already wrote, unless the
    /// client had stopped reading, in which case the hub drops the socket and what was still queued is lost.
    pub fn close_by_hub(&mut self, now: Timestamp, id: LinkId, code: CloseCode, reason: &str) {
        let link = &mut self.links[id.0];
        link.hub_open = false;
        let mut lost = link.to_hub.len();
        link.to_hub.clear();
        if link.is_stalled(now) {
            lost += link.to_client.len();
            link.to_client.clear();
            link.stalled_until = now;
        }
        self.stats.dropped += lost as u64;
        let close = Packet::Close {
            code,
            reason: String::from(reason),
        };
        self.push_to_client(now, id, close);
    }

    /// Cuts a link: everything in flight is lost, and each end finds out after its delay (`None`: never; it must
    /// notice by itself).
    pub fn cut(
        &mut self,
        now: Timestamp,
        id: LinkId,
        client_notice: Option<Duration>,
        hub_notice: Option<Duration>,
    ) {
        let link = &mut self.links[id.0];
        if link.cut {
            return;
        }
        link.cut = true;
        let lost = link.to_hub.len() + link.to_client.len();
        link.to_hub.clear();
        link.to_client.clear();
        self.stats.dropped += lost as u64;
        self.stats.cuts += 1;
        if let Some(after) = client_notice {
            self.agenda
                .schedule(now + after, Due::CutSeen(id, Dir::ToClient));
        }
        if let Some(after) = hub_notice {
            self.agenda
                .schedule(now + after, Due::CutSeen(id, Dir::ToHub));
        }
    }

    /// The client of `id` stops reading until `until`: frames for it wait, undelivered and unacknowledged.
    pub fn stall(&mut self, id: LinkId, until: Timestamp) {
        let link = &mut self.links[id.0];
        link.stalled_until = link.stalled_until.max(until);
    }

    /// The network heals for good: every client reads again, and dials neither fail nor hang any more.
    pub fn heal(&mut self, now: Timestamp) {
        self.config.dial_failure = 0.0;
        self.config.dial_hang = 0.0;
        for link in &mut self.links {
            link.stalled_until = link.stalled_until.min(now);
        }
    }

    /// The next thing due at `now`, skipping deliveries the network refuses.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<NetEvent> {
        while let Some(due) = self.agenda.pop_due(now) {
            match due {
                Due::Dial {
                    client,
                    incarnation,
                    attempt,
                    failure,
                } => {
                    return Some(NetEvent::DialDone {
                        client,
                        incarnation,
                        attempt,
                        result: failure.map_or(Ok(()), Err),
                    });
                }
                Due::Deliver(id, dir) => {
                    if let Some(event) = self.deliver(now, id, dir) {
                        return Some(event);
                    }
                }
                Due::CutSeen(id, Dir::ToClient) => {
                    let link = &mut self.links[id.0];
                    if link.client_open {
                        link.client_open = false;
                        return Some(NetEvent::CutSeenByClient {
                            link: id,
                            client: link.client,
                            incarnation: link.incarnation,
                        });
                    }
                }
                Due::CutSeen(id, Dir::ToHub) => {
                    let link = &mut self.links[id.0];
                    if link.hub_open {
                        link.hub_open = false;
                        return Some(NetEvent::CutSeenByHub {
                            link: id,
                            conn: link.conn,
                            hub_generation: link.hub_generation,
                        });
                    }
                }
            }
        }
        None
    }

    /// Queues a packet for the hub behind the others and schedules its arrival. `false` when the link is cut.
    fn push_to_hub(&mut self, now: Timestamp, id: LinkId, packet: Packet<String>) -> bool {
        let Some(at) = self.arrival(now, id, Dir::ToHub) else {
            return false;
        };
        self.links[id.0].to_hub.push_back(packet);
        self.agenda.schedule(at, Due::Deliver(id, Dir::ToHub));
        true
    }

    /// Queues a packet for the client behind the others and schedules its arrival. `false` when the link is cut.
    fn push_to_client(&mut self, now: Timestamp, id: LinkId, packet: Packet<Arc<str>>) -> bool {
        let Some(at) = self.arrival(now, id, Dir::ToClient) else {
            return false;
        };
        self.links[id.0].to_client.push_back(packet);
        self.agenda.schedule(at, Due::Deliver(id, Dir::ToClient));
        true
    }

    /// When a packet sent now arrives: latency plus jitter, but never before the one sent before it. `None` (and
    /// the packet counted as dropped) when the link is cut.
    fn arrival(&mut self, now: Timestamp, id: LinkId, dir: Dir) -> Option<Timestamp> {
        let jitter = self
            .rng
            .duration_between(Duration::ZERO, self.config.jitter);
        let link = &mut self.links[id.0];
        if link.cut {
            self.stats.dropped += 1;
            return None;
        }
        let arrival = now + link.latency + jitter;
        let last = match dir {
            Dir::ToHub => &mut link.last_to_hub,
            Dir::ToClient => &mut link.last_to_client,
        };
        *last = (*last).max(arrival);
        Some(*last)
    }

    /// Hands over the next packet of one direction, unless the receiving end is gone or the client is not reading.
    fn deliver(&mut self, now: Timestamp, id: LinkId, dir: Dir) -> Option<NetEvent> {
        let link = &mut self.links[id.0];
        match dir {
            Dir::ToHub => {
                let packet = link.to_hub.pop_front()?;
                if !link.hub_open || link.cut {
                    self.stats.dropped += 1;
                    return None;
                }
                if matches!(packet, Packet::Close { .. }) {
                    link.hub_open = false;
                }
                self.stats.delivered += 1;
                Some(NetEvent::AtHub {
                    link: id,
                    conn: link.conn,
                    hub_generation: link.hub_generation,
                    packet,
                })
            }
            Dir::ToClient => {
                if link.to_client.is_empty() {
                    return None;
                }
                if link.is_stalled(now) {
                    // Wait for the client to read again; order is kept because a delivery always takes the front.
                    let at = link.stalled_until;
                    self.agenda.schedule(at, Due::Deliver(id, dir));
                    return None;
                }
                let packet = link.to_client.pop_front()?;
                if !link.client_open || link.cut {
                    self.stats.dropped += 1;
                    return None;
                }
                if matches!(packet, Packet::Close { .. }) {
                    link.client_open = false;
                }
                self.stats.delivered += 1;
                Some(NetEvent::AtClient {
                    link: id,
                    client: link.client,
                    incarnation: link.incarnation,
                    conn: link.conn,
                    hub_generation: link.hub_generation,
                    packet,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::clock::ORIGIN;

    fn net() -> Network {
        Network::new(
            Rng::from_seed(7),
            NetConfig {
                latency: (Duration::from_millis(5), Duration::from_millis(50)),
                jitter: Duration::from_millis(40),
                dial_time: (Duration::from_millis(1), Duration::from_millis(2)),
                dial_failure: 0.0,
                dial_hang: 0.0,
            },
        )
    }

    fn drain(n: &mut Network) -> Vec<NetEvent> {
        let mut out = Vec::new();
        while n.next_at() != Timestamp::MAX {
            let at = n.next_at();
            while let Some(e) = n.pop_due(at) {
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn each_direction_delivers_in_order_despite_jitter() {
        let mut n = net();
        let l = n.open_link(ORIGIN, 0, 0, 0, ConnId::from_u64(1));
        for i in 0..50 {
            let at = ORIGIN + Duration::from_millis(i);
            n.send_to_hub(at, l, format!("{i}"));
            n.send_to_client(at, l, Arc::from(format!("{i}")));
        }
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for e in drain(&mut n) {
            match e {
                NetEvent::AtHub {
                    packet: Packet::Frame(f),
                    ..
                } => up.push(f.parse::<u32>().unwrap()),
                NetEvent::AtClient {
                    packet: Packet::Frame(f),
                    ..
                } => down.push(f.parse::<u32>().unwrap()),
                other => panic!("unexpected {other:?}"),
            }
        }
        let want: Vec<u32> = (0..50).collect();
        assert_eq!(up, want);
        assert_eq!(down, want);
    }

    #[test]
    fn nothing_reaches_a_closed_or_cut_end() {
        let mut n = net();
        let l = n.open_link(ORIGIN, 0, 0, 0, ConnId::from_u64(1));
        n.send_to_client(ORIGIN, l, Arc::from("a"));
        n.send_to_hub(ORIGIN, l, String::from("b"));
        n.close_by_client(ORIGIN, l, CloseCode::Normal, "bye");
        assert!(!n.send_to_client(ORIGIN, l, Arc::from("c")));
        let events = drain(&mut n);
        // "b", then the close, reach the hub; nothing reaches the closed client end.
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(
            &events[1],
            NetEvent::AtHub {
                packet: Packet::Close { .. },
                ..
            }
        ));
        assert!(!n.link(l).is_live());

        let l = n.open_link(ORIGIN, 1, 0, 0, ConnId::from_u64(2));
        n.send_to_client(ORIGIN, l, Arc::from("lost"));
        n.cut(ORIGIN, l, Some(Duration::from_millis(3)), None);
        assert!(!n.send_to_hub(ORIGIN, l, String::from("lost too")));
        let events = drain(&mut n);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(
            events[0],
            NetEvent::CutSeenByClient { client: 1, .. }
        ));
        assert!(n.link(l).hub_open, "the hub end was never told");
    }

    #[test]
    fn a_stalled_client_gets_its_frames_later_or_loses_them_to_a_close() {
        let mut n = net();
        let l = n.open_link(ORIGIN, 0, 0, 0, ConnId::from_u64(1));
        n.stall(l, ORIGIN + Duration::from_secs(10));
        n.send_to_client(ORIGIN, l, Arc::from("late"));
        let at = n.next_at();
        assert!(n.pop_due(at).is_none(), "held back");
        assert_eq!(n.next_at(), ORIGIN + Duration::from_secs(10));
        n.close_by_hub(
            ORIGIN + Duration::from_secs(1),
            l,
            CloseCode::TryAgainLater,
            "slow",
        );
        let events = drain(&mut n);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(
            &events[0],
            NetEvent::AtClient {
                packet: Packet::Close {
                    code: CloseCode::TryAgainLater,
                    ..
                },
                ..
            }
        ));
    }
}
