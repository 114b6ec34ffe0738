//! What a seed draws before anything runs: how many clients, the machines' configurations and the network's quality.
//! Short timers, so that a few thousand steps see many reconnects, heartbeats and timeouts; and in some seeds small
//! limits (history, outbound queue, offline queue, rate), so that their edges are crossed.

use std::time::Duration;

use switchboard_protocol::backoff::BackoffConfig;
use switchboard_protocol::client::ClientConfig;
use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::HubConfig;

use super::network::NetConfig;

/// The machines' configurations and the network's, drawn from the seed.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// How many client slots.
    pub clients: usize,
    /// Every client's configuration (each machine gets its own seed).
    pub client: ClientConfig,
    /// The hub's configuration (each hub generation gets its own seed).
    pub hub: HubConfig,
    /// The network's.
    pub net: NetConfig,
}

impl Scenario {
    /// Draws a scenario: short timers so a few thousand steps see many reconnects, heartbeats and timeouts, and
    /// small limits (history, outbound queue, offline queue, rate) in some seeds so their edges are crossed.
    pub fn draw(rng: &mut Rng) -> Scenario {
        let ms = |rng: &mut Rng, lo, hi| Duration::from_millis(rng.range_inclusive(lo, hi));
        let mut client = ClientConfig::with_seed(0);
        client.backoff = BackoffConfig {
            first_delay: ms(rng, 50, 500),
            max_delay: ms(rng, 1_000, 8_000),
            reset_after: ms(rng, 1_000, 10_000),
            ..BackoffConfig::default()
        };
        client.request_timeout = ms(rng, 2_000, 15_000);
        client.connect_timeout = ms(rng, 1_000, 5_000);
        client.heartbeat_timeout = ms(rng, 1_000, 5_000);
        client.ping_interval = rng.chance(0.3).then(|| ms(rng, 1_000, 10_000));
        if rng.chance(0.3) {
            client.max_queued_messages = rng.range_inclusive(1, 16) as usize;
            client.max_queued_bytes = rng.range_inclusive(200, 4_000) as usize;
        }
        let small_outbound = rng.chance(0.5);
        let tight_rate = rng.chance(0.15);
        let hub = HubConfig {
            heartbeat: ms(rng, 2_000, 10_000),
            heartbeat_timeout: ms(rng, 1_000, 5_000),
            history_size: rng.range_inclusive(1, 64) as usize,
            // Short in some seeds, so that channels nobody subscribes to are forgotten and published to again.
            history_ttl: if rng.chance(0.25) {
                ms(rng, 200, 3_000)
            } else {
                ms(rng, 5_000, 120_000)
            },
            request_timeout: ms(rng, 1_000, 10_000),
            rate_per_sec: if tight_rate { 5 } else { 200 },
            rate_burst: if tight_rate { 10 } else { 400 },
            max_queued_bytes: if small_outbound {
                rng.range_inclusive(2_000, 16_000) as usize
            } else {
                HubConfig::default().max_queued_bytes
            },
            max_sessions: rng.range_inclusive(1, 4) as usize,
            ..HubConfig::default()
        };
        let latency_lo = rng.range_inclusive(0, 50);
        let net = NetConfig {
            latency: (
                Duration::from_millis(latency_lo),
                Duration::from_millis(latency_lo + rng.range_inclusive(0, 100)),
            ),
            jitter: ms(rng, 0, 50),
            dial_time: (Duration::from_millis(1), ms(rng, 1, 300)),
            dial_failure: [0.0, 0.05, 0.3][rng.below_inclusive(2) as usize],
            dial_hang: [0.0, 0.0, 0.05][rng.below_inclusive(2) as usize],
        };
        Scenario {
            clients: rng.range_inclusive(3, 8) as usize,
            client,
            hub,
            net,
        }
    }
}
