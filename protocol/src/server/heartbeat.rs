//! A connection's two timers: its next `server_ping` and its silence check (close 4008), kept in the same
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

use super::connection::Connection;
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::timer::TimerKind;

/// A connection's timers. Of two due at the same instant, the ping goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnTimer {
    /// The next `server_ping`.
    Ping,
    /// The silence check.
    Idle,
}

impl TimerKind for ConnTimer {
    const ALL: &'static [Self] = &[ConnTimer::Ping, ConnTimer::Idle];

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
}

impl Connection {
    /// Arms a new connection's first ping (native, with the random spread) and its silence check.
    pub(crate) fn arm_heartbeat(&mut self, now: Timestamp, rng: &mut Rng) {
        if let Some(every) = self.ping_every {
            let first = rng.duration_between(every / 2, every);
            self.timers.set(ConnTimer::Ping, now + first);
        }
        if let Some(limit) = self.silence_limit {
            self.timers.set(ConnTimer::Idle, now + limit);
        }
    }

    /// Takes the next due timer and re-arms it as needed; `None` when nothing (more) is due at `now`.
    pub(crate) fn poll_timer(&mut self, now: Timestamp) -> Option<Due> {
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
                    let deadline = self.last_activity + limit;
                    if deadline <= now {
                        return Some(Due::Silent);
                    }
                    self.timers.set(ConnTimer::Idle, deadline);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::HubConfig;
    use crate::server::dialect::ConnDialect;
    use crate::server::permissions::Permissions;
    use alloc::string::String;
    use core::time::Duration;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    fn native(config: &HubConfig) -> Connection {
        Connection::new(
            String::from("a"),
            ConnDialect::Native,
            Permissions::allow_all(),
            config,
            ms(0),
        )
    }

    #[test]
    fn pings_then_closes_a_silent_peer() {
        let config = HubConfig {
            heartbeat: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(5),
            ..HubConfig::default()
        };
        let mut c = native(&config);
        c.arm_heartbeat(ms(0), &mut Rng::from_seed(1));
        let (first, kind) = c.timers.next().expect("armed");
        assert_eq!(kind, ConnTimer::Ping);
        assert!(first >= ms(5_000) && first <= ms(10_000), "{first}");
        assert_eq!(c.poll_timer(first), Some(Due::Ping));
        assert_eq!(
            c.timers.get(ConnTimer::Ping),
            Some(first + config.heartbeat)
        );
        // Activity at 12 s pushes the silence deadline (15 s) to 27 s: the check at 15 s re-arms.
        c.touch(ms(12_000));
        assert_eq!(c.timers.get(ConnTimer::Idle), Some(ms(15_000)));
        let mut dues = alloc::vec::Vec::new();
        while let Some(due) = c.poll_timer(ms(15_000)) {
            dues.push(due);
        }
        assert_eq!(c.timers.get(ConnTimer::Idle), Some(ms(27_000)));
        assert!(!dues.contains(&Due::Silent));
        let mut silent = false;
        while let Some(due) = c.poll_timer(ms(27_000)) {
            silent |= due == Due::Silent;
        }
        assert!(silent, "silent for 15 s");
    }

    #[test]
    fn edge_dialects_get_no_ping_and_no_check_by_default() {
        let config = HubConfig::default();
        let mut c = Connection::new(
            String::from("e"),
            ConnDialect::ChannelPayload,
            Permissions::allow_all(),
            &config,
            ms(0),
        );
        c.arm_heartbeat(ms(0), &mut Rng::from_seed(1));
        assert_eq!(c.timers.next(), None);
        let config = HubConfig {
            heartbeat: Duration::ZERO,
            ..HubConfig::default()
        };
        let mut c = native(&config);
        c.arm_heartbeat(ms(0), &mut Rng::from_seed(1));
        assert_eq!(c.timers.next(), None, "heartbeats off");
    }
}
