//! A token's lifetime on an open connection: the native `refresh` request that replaces a connection's
//! permissions with a fresh token's, the `token_expiring` warning ahead of the expiry, and the end of what the new
//! permissions no longer allow.
//!
//! The hub does not know tokens: the driver installs a [`RefreshCheck`] that verifies one exactly as the handshake
//! does and turns it into [`Permissions`] (with [`Permissions::with_expiry`] for a token that expires). Without
//! one, the server checks no tokens (authentication off): a `refresh` is answered `refresh_res` and changes
//! nothing.
//!
//! On success the new permissions replace the old ones whole, expiry included: a connection opened with an API key
//! that refreshes with a JWT takes the JWT's expiry, and one that refreshes with an API key has none any more.
//! Every subscription the new permissions do not allow ends, and so does every `serve` registration; each is told
//! with a `subscription_ended` notification naming the channel and the code `FORBIDDEN`. A refused token changes
//! nothing and is answered `FORBIDDEN`; the connection stays open.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde_json::json;

use super::Hub;
use super::conn_table::ConnId;
use super::dialect::DialectKind;
use super::permissions::{Action, Permissions};
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::{
    ChannelName, ChannelPattern, ErrorCode, MessageId, SUBSCRIPTION_ENDED, ServerMessage,
    TOKEN_EXPIRING,
};

/// Verifies the token of a `refresh`, by the handshake's rules. Installed with [`Hub::set_refresh_check`].
pub trait RefreshCheck: Send {
    /// The permissions `token` grants at `now` (with their expiry, if it has one), or `None` when it is refused.
    /// The reason is the driver's to log; the client only learns `FORBIDDEN`.
    fn check(&self, now: Timestamp, token: &str) -> Option<Permissions>;
}

impl<F> RefreshCheck for F
where
    F: Fn(Timestamp, &str) -> Option<Permissions> + Send,
{
    fn check(&self, now: Timestamp, token: &str) -> Option<Permissions> {
        self(now, token)
    }
}

/// The installed check, printable for the hub's `Debug`.
pub(crate) struct InstalledCheck(pub(crate) alloc::boxed::Box<dyn RefreshCheck>);

impl fmt::Debug for InstalledCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshCheck")
    }
}

impl Hub {
    /// Installs the check `refresh` requests go through. Without one (authentication off), a `refresh` is answered
    /// `refresh_res` and changes nothing. With one, an accepted token's permissions replace the connection's whole
    /// (expiry included), and every subscription and `serve` registration they do not allow ends with a
    /// `subscription_ended` notification; a refused one is answered `FORBIDDEN` and changes nothing.
    pub fn set_refresh_check(&mut self, check: alloc::boxed::Box<dyn RefreshCheck>) {
        self.refresh_check = Some(InstalledCheck(check));
    }

    /// A `refresh` from `conn`: answered `refresh_res` or `FORBIDDEN`, then the ends of what is no longer allowed.
    pub(super) fn refresh(&mut self, now: Timestamp, conn: ConnId, id: MessageId, token: &str) {
        let granted = match &self.refresh_check {
            None => None,
            Some(InstalledCheck(check)) => match check.check(now, token) {
                Some(permissions) => Some(permissions),
                None => {
                    let refusal = Refusal::new(ErrorCode::Forbidden, "invalid or expired token");
                    self.send_refusal(now, conn, Some(id), refusal);
                    return;
                }
            },
        };
        let warning = self.config.token_expiry_warning;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        self.counters.token_refreshes += 1;
        if let Some(permissions) = granted {
            c.permissions = permissions;
            c.arm_expiry(now, warning);
        }
        let expires_in_ms = c.expires_at().map(|at| {
            u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
        });
        let lost_subscriptions: Vec<ChannelName> = c
            .subscriptions
            .iter()
            .filter(|name| !c.permissions.allows(Action::Subscribe, name))
            .cloned()
            .collect();
        let lost_patterns: Vec<ChannelPattern> = c
            .patterns
            .iter()
            .filter(|p| !c.permissions.allows_pattern(Action::Subscribe, p))
            .cloned()
            .collect();
        let lost_serving: Vec<ChannelName> = c
            .serving
            .iter()
            .filter(|name| !c.permissions.allows(Action::Serve, name))
            .cloned()
            .collect();
        self.refile(conn);
        self.send_native(conn, Some(id), ServerMessage::RefreshRes { expires_in_ms });
        for name in lost_subscriptions {
            if let Some(c) = self.conns.get_mut(conn) {
                c.subscriptions.remove(&name);
            }
            if let Some(ch) = self.channels.get_mut(&name) {
                ch.unsubscribe(conn);
            }
            self.forget_if_unused(&name);
            self.send_ended(conn, &name, "subscribe");
        }
        for pattern in lost_patterns {
            if self.unsubscribe_pattern(conn, &pattern).is_ok() {
                self.send_pattern_ended(conn, &pattern);
            }
        }
        for name in lost_serving {
            if let Some(c) = self.conns.get_mut(conn) {
                c.serving.remove(&name);
            }
            if let Some(ch) = self.channels.get_mut(&name)
                && ch.server == Some(conn)
            {
                ch.server = None;
                self.cluster_unregister(&name);
            }
            self.forget_if_unused(&name);
            self.send_ended(conn, &name, "serve");
        }
        self.reap(now);
    }

    /// `subscription_ended` for `channel`: what ended (`subscribe` or `serve`) and why (`FORBIDDEN`).
    fn send_ended(&mut self, conn: ConnId, channel: &ChannelName, what: &str) {
        let message = ServerMessage::Notification {
            notification_type: String::from(SUBSCRIPTION_ENDED),
            message: Some(alloc::format!("no longer allowed to {what} {channel}")),
            additional_data: Some(json!({
                "channel": channel,
                "kind": what,
                "code": ErrorCode::Forbidden.as_str(),
            })),
        };
        self.send_native(conn, None, message);
    }

    /// `subscription_ended` for a pattern the narrowed grants no longer cover.
    fn send_pattern_ended(&mut self, conn: ConnId, pattern: &ChannelPattern) {
        let message = ServerMessage::Notification {
            notification_type: String::from(SUBSCRIPTION_ENDED),
            message: Some(alloc::format!("no longer allowed to subscribe {pattern}")),
            additional_data: Some(json!({
                "pattern": pattern,
                "kind": "subscribe",
                "code": ErrorCode::Forbidden.as_str(),
            })),
        };
        self.send_native(conn, None, message);
    }

    /// `token_expiring` to a native connection whose permissions lapse soon.
    pub(super) fn warn_expiry(&mut self, now: Timestamp, conn: ConnId) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.kind() != DialectKind::Native {
            return;
        }
        let Some(at) = c.expires_at() else {
            return;
        };
        let expires_in_ms =
            u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX);
        let message = ServerMessage::Notification {
            notification_type: String::from(TOKEN_EXPIRING),
            message: Some(String::from("the token expires soon: send a refresh")),
            additional_data: Some(json!({ "expires_in_ms": expires_in_ms })),
        };
        self.send_native(conn, None, message);
    }
}
