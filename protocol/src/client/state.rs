//! The connection lifecycle as one table: [`step`] maps (what the machine expects next, what happened) to what it does.
//! Every state change of the [`ClientMachine`](super::ClientMachine) goes through it, so it reads like h11's
//! `_state.py`.
//!
//! ```text
//!  new ──► ExpectConnect ──transport up──► ExpectConnected ──greeting──► Open
//!             │  ▲                              │                          │
//!   failed /  │  │ delay over          dropped /│               dropped /  │
//!   timed out ▼  │                    timed out ▼               silent     ▼
//!            Backoff ◄─────────────────────────┴──────────────────────────┘
//!   1008, rejected, retries exhausted ──► GaveUp          close() from anywhere ──► Closed
//! ```

use alloc::string::String;

use crate::wire::CloseCode;

/// What the machine is waiting for next (named after rustls's `ExpectServerHello`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// [`Output::Connect`](super::Output::Connect) is out: waiting for the driver to report the transport up or
    /// failed.
    ExpectConnect,
    /// The transport is up: waiting for the server's `connected` greeting.
    ExpectConnected,
    /// Greeted: requests flow both ways.
    Open,
    /// Waiting out a reconnect delay.
    Backoff,
    /// Closed by the application. Terminal.
    Closed,
    /// Gave up reconnecting. Terminal.
    GaveUp,
}

/// Why a connection attempt failed, as the driver reports it to
/// [`ClientMachine::handle_connect_failed`](super::ClientMachine::handle_connect_failed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// Worth retrying: DNS, refused, reset, TLS, a timeout, an HTTP 5xx or 429 on the upgrade. The machine backs
    /// off and tries again.
    Transient(String),
    /// Retrying cannot help: the server answered the upgrade with 401, 403 or 404 (a bad token, a wrong URL). The
    /// machine gives up, like a 1008 close.
    Rejected(String),
}

/// Something that happened to the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Happening<'a> {
    /// The driver reports the transport up.
    TransportUp,
    /// The driver reports the attempt failed.
    ConnectFailed(&'a ConnectFailure),
    /// The server's `connected` greeting arrived.
    Greeting,
    /// The driver reports the connection closed.
    TransportDown {
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: &'a str,
    },
    /// The connect timer or the heartbeat timer ran out: the attempt or the connection is dead.
    Silent,
    /// The reconnect delay is over.
    BackoffElapsed,
    /// The application called `close`.
    CloseRequested,
}

/// What the [`ClientMachine`](super::ClientMachine) does about a [`Happening`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing: the report does not apply now (it is stale, e.g. about a connection the machine already closed).
    Ignore,
    /// → `ExpectConnected`.
    AwaitGreeting,
    /// → `Open`: announce, resubscribe, re-serve, flush the offline queue.
    Open,
    /// The attempt or connection is lost: close it first if `abort` (the machine ends it), report `Disconnected` if
    /// it was open, fail what was in flight, then → `Backoff` (or `GaveUp` when the schedule is exhausted).
    Lose {
        /// The machine ends the connection itself ([`Output::Close`](super::Output::Close)).
        abort: bool,
        /// The application had seen `Connected` for it.
        was_open: bool,
    },
    /// Lost, and retrying cannot help: → `GaveUp`.
    GiveUp {
        /// The application had seen `Connected` for it.
        was_open: bool,
    },
    /// → `ExpectConnect`: ask the driver to connect.
    Dial,
    /// → `Closed`, closing the transport or abandoning the attempt first if `abort`.
    Shut {
        /// A transport or attempt exists.
        abort: bool,
    },
}

/// The transition table.
pub(crate) fn step(state: State, happening: &Happening<'_>) -> Step {
    use Happening as H;
    use State as S;
    let policy = |code: &CloseCode| *code == CloseCode::PolicyViolation;
    match (state, happening) {
        (S::Closed | S::GaveUp, _) => Step::Ignore,
        (S::ExpectConnect | S::ExpectConnected | S::Open, H::CloseRequested) => {
            Step::Shut { abort: true }
        }
        (S::Backoff, H::CloseRequested) => Step::Shut { abort: false },

        (S::ExpectConnect, H::TransportUp) => Step::AwaitGreeting,
        (S::ExpectConnect, H::ConnectFailed(ConnectFailure::Rejected(_))) => {
            Step::GiveUp { was_open: false }
        }
        (S::ExpectConnect, H::ConnectFailed(_)) => Step::Lose {
            abort: false,
            was_open: false,
        },
        (S::ExpectConnect | S::ExpectConnected, H::Silent) => Step::Lose {
            abort: true,
            was_open: false,
        },

        (S::ExpectConnected, H::Greeting) => Step::Open,
        (S::ExpectConnected, H::TransportDown { code, .. }) if policy(code) => {
            Step::GiveUp { was_open: false }
        }
        (S::ExpectConnected, H::TransportDown { .. }) => Step::Lose {
            abort: false,
            was_open: false,
        },

        (S::Open, H::TransportDown { code, .. }) if policy(code) => Step::GiveUp { was_open: true },
        (S::Open, H::TransportDown { .. }) => Step::Lose {
            abort: false,
            was_open: true,
        },
        (S::Open, H::Silent) => Step::Lose {
            abort: true,
            was_open: true,
        },

        (S::Backoff, H::BackoffElapsed) => Step::Dial,

        // Everything else is a stale or out-of-order report: a transport reported up while not dialing, a
        // disconnect while dialing or waiting, a second greeting, a timer for a state already left.
        _ => Step::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: [State; 6] = [
        State::ExpectConnect,
        State::ExpectConnected,
        State::Open,
        State::Backoff,
        State::Closed,
        State::GaveUp,
    ];

    #[test]
    fn terminal_states_ignore_everything() {
        let failed = ConnectFailure::Transient("x".into());
        for s in [State::Closed, State::GaveUp] {
            for h in [
                Happening::TransportUp,
                Happening::ConnectFailed(&failed),
                Happening::Greeting,
                Happening::TransportDown {
                    code: CloseCode::Abnormal,
                    reason: "",
                },
                Happening::Silent,
                Happening::BackoffElapsed,
                Happening::CloseRequested,
            ] {
                assert_eq!(step(s, &h), Step::Ignore, "{s:?} {h:?}");
            }
        }
    }

    #[test]
    fn close_codes_decide_between_retry_and_give_up() {
        for code in [1000, 1001, 1006, 1011, 1013, 4008, 4321] {
            let h = Happening::TransportDown {
                code: CloseCode::from_u16(code),
                reason: "bye",
            };
            assert_eq!(
                step(State::Open, &h),
                Step::Lose {
                    abort: false,
                    was_open: true
                },
                "{code}"
            );
        }
        let policy = Happening::TransportDown {
            code: CloseCode::PolicyViolation,
            reason: "auth",
        };
        assert_eq!(step(State::Open, &policy), Step::GiveUp { was_open: true });
        assert_eq!(
            step(State::ExpectConnected, &policy),
            Step::GiveUp { was_open: false }
        );
        // A disconnect report while dialing or waiting is about an old connection.
        assert_eq!(step(State::ExpectConnect, &policy), Step::Ignore);
        assert_eq!(step(State::Backoff, &policy), Step::Ignore);
    }

    #[test]
    fn only_the_expected_happening_moves_forward() {
        let forward = [
            (
                State::ExpectConnect,
                Happening::TransportUp,
                Step::AwaitGreeting,
            ),
            (State::ExpectConnected, Happening::Greeting, Step::Open),
            (State::Backoff, Happening::BackoffElapsed, Step::Dial),
        ];
        for (s, h, want) in forward {
            for other in STATES {
                let got = step(other, &h);
                if other == s {
                    assert_eq!(got, want);
                } else {
                    assert_eq!(got, Step::Ignore, "{other:?} {h:?}");
                }
            }
        }
    }

    #[test]
    fn connect_failures() {
        let transient = ConnectFailure::Transient("refused".into());
        let rejected = ConnectFailure::Rejected("401".into());
        assert_eq!(
            step(State::ExpectConnect, &Happening::ConnectFailed(&transient)),
            Step::Lose {
                abort: false,
                was_open: false
            }
        );
        assert_eq!(
            step(State::ExpectConnect, &Happening::ConnectFailed(&rejected)),
            Step::GiveUp { was_open: false }
        );
        assert_eq!(
            step(State::Open, &Happening::ConnectFailed(&transient)),
            Step::Ignore
        );
        assert_eq!(
            step(State::Backoff, &Happening::CloseRequested),
            Step::Shut { abort: false }
        );
        assert_eq!(
            step(State::ExpectConnect, &Happening::CloseRequested),
            Step::Shut { abort: true }
        );
    }
}
