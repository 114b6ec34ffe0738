//! A connection's timers: its next `server_ping`, its silence check (close 4008) and, for a connection whose
//! permissions lapse, the expiry warning and the expiry itself (close 4401), kept in the same
//! [`TimerTable`](crate::timer::TimerTable) the client uses.
//!
//! A native connection's first `server_ping` comes at a random point in `[heartbeat/2, heartbeat]` after open (as
//! Centrifugo does, so a mass reconnect does not make every ping of the server fire at once), then every
//! `heartbeat`. A connection is closed with 4008 once nothing has arrived from it for its silence limit:
//! `heartbeat + heartbeat_timeout` for native connections, [`HubConfig::edge_idle_timeout`] for the others (off by
//! default: they get no `server_ping`, which their clients would not understand).
//!
//! The silence check is armed lazily: it may fire early, find that the peer spoke since, and re-arm at the real
//! deadline, so receiving a frame never touches a timer.
//!
//! [`HubConfig::edge_idle_timeout`]: super::HubConfig::edge_idle_timeout

use core::time::Duration;

use super::config::HubConfig;
use super::dialect::DialectKind;
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::timer::{TimerKind, TimerTable};

/// A connection's timers. Of two due at the same instant, the ping goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnTimer {
    /// The next `server_ping`.
    Ping,
    /// The silence check.
    Idle,
    /// The `token_expiring` notification.
    ExpiryWarning,
    /// The permissions lapse.
    Expiry,
}

impl TimerKind for ConnTimer {
    const ALL: &'static [Self] = &[
        ConnTimer::Ping,
        ConnTimer::Idle,
        ConnTimer::ExpiryWarning,
        ConnTimer::Expiry,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// What a due timer asks of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send a `server_ping` (the next one is armed already).
    Ping,
    /// The peer was silent for too long: close it with 4008.
    Silent,
    /// The permissions lapse soon: warn the peer, which may `refresh`.
    Expiring,
    /// The permissions lapsed: close it with 4401.
    Expired,
}

/// A connection's timers and what arms them.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    timers: TimerTable<ConnTimer, 4>,
    /// How often a `server_ping` goes out; `None`: never (edge dialects, or heartbeats off).
    ping_every: Option<Duration>,
    /// How long the peer may stay silent; `None`: forever.
    silence_limit: Option<Duration>,
}

impl Heartbeat {
    /// The timers of a connection of `kind` (nothing armed yet).
    pub(crate) fn new(config: &HubConfig, kind: DialectKind) -> Heartbeat {
        let heartbeat = Some(config.heartbeat).filter(|h| !h.is_zero());
        let (ping_every, silence_limit) = match kind {
            DialectKind::Native => (
                heartbeat,
                heartbeat.map(|h| h.saturating_add(config.heartbeat_timeout)),
            ),
            // A stream's keep-alive comment goes out every heartbeat; its client never speaks, so it is never
            // closed for silence (a dead one is found when a write fails).
            DialectKind::Sse | DialectKind::ProjectSse => (heartbeat, None),
            _ => (None, config.edge_idle_timeout.filter(|d| !d.is_zero())),
        };
        Heartbeat {
            timers: TimerTable::new(),
            ping_every,
            silence_limit,
        }
    }

    /// Arms the first ping (native, with the random spread) and the silence check of a connection opened at `now`.
    pub(crate) fn arm(&mut self, now: Timestamp, rng: &mut Rng) {
        if let Some(every) = self.ping_every {
            let first = rng.duration_between(every / 2, every);
            self.timers.set(ConnTimer::Ping, now + first);
        }
        if let Some(limit) = self.silence_limit {
            self.timers.set(ConnTimer::Idle, now + limit);
        }
    }

    /// Arms the expiry of permissions granted at `now` that lapse at `expires_at` (disarms it for `None`), with
    /// the warning `warning` ahead of it, or halfway through what is left when that is shorter.
    pub(crate) fn arm_expiry(
        &mut self,
        now: Timestamp,
        expires_at: Option<Timestamp>,
        warning: Duration,
    ) {
        // A refresh to the same expiry (a client handed the token it had) is not warned about twice: warning
        // halfway through what is left each time would warn ever more often.
        let warned = self.timers.get(ConnTimer::ExpiryWarning).is_none()
            && expires_at.is_some_and(|at| self.timers.get(ConnTimer::Expiry) == Some(at));
        self.timers.stop(ConnTimer::ExpiryWarning);
        self.timers.stop(ConnTimer::Expiry);
        let Some(at) = expires_at else {
            return;
        };
        let left = at.saturating_duration_since(now);
        let ahead = warning.min(left / 2);
        if !ahead.is_zero() && !warned {
            self.timers
                .set(ConnTimer::ExpiryWarning, at.saturating_sub(ahead));
        }
        self.timers.set(ConnTimer::Expiry, at.max(now));
    }

    /// The earliest armed timer.
    pub(crate) fn next(&self) -> Option<(Timestamp, ConnTimer)> {
        self.timers.next()
    }

    /// Disarms everything (on close).
    pub(crate) fn stop(&mut self) {
        self.timers.stop_all();
    }

    /// Takes the next due timer and re-arms it as needed, given when the peer last spoke; `None` when nothing
    /// (more) is due at `now`.
    pub(crate) fn poll(&mut self, now: Timestamp, last_activity: Timestamp) -> Option<Due> {
        loop {
            match self.timers.pop_expired(now)? {
                ConnTimer::Ping => {
                    if let Some(every) = self.ping_every {
                        self.timers.set(ConnTimer::Ping, now + every);
                    }
                    return Some(Due::Ping);
                }
                ConnTimer::Idle => {
                    let Some(limit) = self.silence_limit else {
                        continue;
                    };
                    let deadline = last_activity + limit;
                    if deadline <= now {
                        return Some(Due::Silent);
                    }
                    self.timers.set(ConnTimer::Idle, deadline);
                }
                ConnTimer::ExpiryWarning => return Some(Due::Expiring),
                ConnTimer::Expiry => return Some(Due::Expired),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    #[test]
    fn pings_then_closes_a_silent_peer() {
        let config = HubConfig {
            heartbeat: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(5),
            ..HubConfig::default()
        };
        let mut h = Heartbeat::new(&config, DialectKind::Native);
        h.arm(ms(0), &mut Rng::from_seed(1));
        let (first, kind) = h.next().expect("armed");
        assert_eq!(kind, ConnTimer::Ping);
        assert!(first >= ms(5_000) && first <= ms(10_000), "{first}");
        assert_eq!(h.poll(first, ms(0)), Some(Due::Ping));
        assert_eq!(
            h.timers.get(ConnTimer::Ping),
            Some(first + config.heartbeat)
        );
        // The peer spoke at 12 s, so the silence deadline (15 s) moves to 27 s: the check at 15 s re-arms.
        assert_eq!(h.timers.get(ConnTimer::Idle), Some(ms(15_000)));
        let mut dues = alloc::vec::Vec::new();
        while let Some(due) = h.poll(ms(15_000), ms(12_000)) {
            dues.push(due);
        }
        assert_eq!(h.timers.get(ConnTimer::Idle), Some(ms(27_000)));
        assert!(!dues.contains(&Due::Silent));
        let mut silent = false;
        while let Some(due) = h.poll(ms(27_000), ms(12_000)) {
            silent |= due == Due::Silent;
        }
        assert!(silent, "silent for 15 s");
    }

    #[test]
    fn expiry_warns_ahead_or_halfway_and_once_per_expiry() {
        let config = HubConfig::default();
        let mut h = Heartbeat::new(&config, DialectKind::ChannelPayload);
        let warning = Duration::from_secs(60);
        h.arm_expiry(ms(0), Some(ms(600_000)), warning);
        assert_eq!(h.next(), Some((ms(540_000), ConnTimer::ExpiryWarning)));
        // Shorter than twice the warning: halfway.
        h.arm_expiry(ms(0), Some(ms(4_000)), warning);
        assert_eq!(h.next(), Some((ms(2_000), ConnTimer::ExpiryWarning)));
        assert_eq!(h.poll(ms(2_000), ms(0)), Some(Due::Expiring));
        // Refreshed to the same expiry after the warning: no second warning, the expiry stays.
        h.arm_expiry(ms(2_500), Some(ms(4_000)), warning);
        assert_eq!(h.next(), Some((ms(4_000), ConnTimer::Expiry)));
        // A later expiry is warned about again.
        h.arm_expiry(ms(2_500), Some(ms(6_500)), warning);
        assert_eq!(h.next(), Some((ms(4_500), ConnTimer::ExpiryWarning)));
        assert_eq!(h.poll(ms(4_500), ms(0)), Some(Due::Expiring));
        assert_eq!(h.poll(ms(6_500), ms(0)), Some(Due::Expired));
        h.arm_expiry(ms(7_000), None, warning);
        assert_eq!(h.next(), None);
    }

    #[test]
    fn edge_dialects_get_no_ping_and_no_check_by_default() {
        let mut h = Heartbeat::new(&HubConfig::default(), DialectKind::ChannelPayload);
        h.arm(ms(0), &mut Rng::from_seed(1));
        assert_eq!(h.next(), None);
        let off = HubConfig {
            heartbeat: Duration::ZERO,
            ..HubConfig::default()
        };
        let mut h = Heartbeat::new(&off, DialectKind::Native);
        h.arm(ms(0), &mut Rng::from_seed(1));
        assert_eq!(h.next(), None, "heartbeats off");
    }
}
