//! What goes wrong, and when: each seed draws which faults it injects and how often (some seeds are calm, some
//! are storms), and the [`world`](super::world) applies them.
//!
//! - **Cut**: one connection dies mid-flight. Each end hears of it (close code 1006) after its own delay, or never
//!   and must find out by its heartbeat; what was in flight is lost.
//! - **Stall**: one client stops reading for a while. Its frames pile up in the hub's outbound accounting (nothing
//!   is acknowledged with `handle_sent`), so with a small `max_queued_bytes` the hub closes it as a slow consumer
//!   (1013) and it must recover what it missed when it reconnects.
//! - **Listener restart**: the server's sockets all drop and it refuses connections for a while, but the hub (and
//!   so every channel's history and epoch) survives: clients must recover without a resync.
//! - **Hub restart**: a new hub. Graceful (`shutdown`: every connection closed with 1001, every server request
//!   cancelled) or a crash (connections just die). Over the memory store it has a new epoch (history starts
//!   afresh) and clients must resync; over the durable store the disk crashes too and the new hub is restored from
//!   its files, keeping the epoch and every acknowledged event ([`world`](super::world)'s `storage`).
//!
//! Dials that fail or hang are the network's own faults ([`NetConfig`](super::network::NetConfig)).

use std::time::Duration;

use switchboard_protocol::rng::Rng;

use super::workload::exponential;

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Cut a random connection. Each end is told after its delay, or never.
    Cut {
        /// When the client end hears of it.
        client_notice: Option<Duration>,
        /// When the hub end hears of it.
        hub_notice: Option<Duration>,
    },
    /// A random client stops reading for this long.
    Stall {
        /// How long.
        stall: Duration,
    },
    /// Every connection drops; the listener refuses dials for `down`; the hub survives.
    ListenerRestart {
        /// How long dials are refused.
        down: Duration,
    },
    /// A new hub with a new epoch; dials are refused for `down`.
    HubRestart {
        /// `shutdown` first, rather than a crash.
        graceful: bool,
        /// How long dials are refused.
        down: Duration,
    },
}

/// The faults of one seed.
#[derive(Debug)]
pub struct Faults {
    rng: Rng,
    mean_gap: Duration,
    /// Weights of cut, stall, listener restart, hub restart.
    weights: [u32; 4],
    /// Chance that an end of a cut connection is never told.
    silent: f64,
}

impl Faults {
    /// Draws a seed's faults.
    pub fn draw(mut rng: Rng) -> Faults {
        let calm = rng.chance(0.1);
        let mut weight = |base: u64, off: f64| {
            if rng.chance(off) {
                0
            } else {
                rng.range_inclusive(1, base) as u32
            }
        };
        let weights = [
            weight(20, 0.05),
            weight(8, 0.3),
            weight(3, 0.4),
            weight(3, 0.4),
        ];
        Faults {
            mean_gap: if calm {
                Duration::from_secs(60)
            } else {
                Duration::from_millis(rng.range_inclusive(300, 8_000))
            },
            silent: [0.0, 0.2, 0.5][rng.below_inclusive(2) as usize],
            weights,
            rng,
        }
    }

    /// How long until the next fault.
    pub fn next_gap(&mut self) -> Duration {
        exponential(&mut self.rng, self.mean_gap)
    }

    /// The next fault; `None` when this seed injects none of the kinds.
    pub fn next_fault(&mut self) -> Option<Fault> {
        let total: u32 = self.weights.iter().sum();
        if total == 0 {
            return None;
        }
        let mut pick = self.rng.below_inclusive(u64::from(total) - 1) as u32;
        let mut kind = 0;
        for (i, &w) in self.weights.iter().enumerate() {
            if pick < w {
                kind = i;
                break;
            }
            pick -= w;
        }
        let ms = |rng: &mut Rng, lo, hi| Duration::from_millis(rng.range_inclusive(lo, hi));
        Some(match kind {
            0 => {
                let notice = |rng: &mut Rng| (!rng.chance(self.silent)).then(|| ms(rng, 0, 500));
                Fault::Cut {
                    client_notice: notice(&mut self.rng),
                    hub_notice: notice(&mut self.rng),
                }
            }
            1 => Fault::Stall {
                stall: ms(&mut self.rng, 500, 15_000),
            },
            2 => Fault::ListenerRestart {
                down: ms(&mut self.rng, 0, 5_000),
            },
            _ => Fault::HubRestart {
                graceful: self.rng.chance(0.5),
                down: ms(&mut self.rng, 0, 5_000),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_but_each_is_reproducible() {
        let faults = |seed| {
            let mut f = Faults::draw(Rng::from_seed(seed));
            (0..50).map(|_| f.next_fault()).collect::<Vec<_>>()
        };
        assert_eq!(faults(1), faults(1));
        assert_ne!(faults(1), faults(2));
        let kinds: std::collections::HashSet<_> = (0..40)
            .flat_map(faults)
            .flatten()
            .map(|f| std::mem::discriminant(&f))
            .collect();
        assert_eq!(kinds.len(), 4, "every kind of fault shows up");
    }
}
