//! Presence: who is on a channel — the connections that subscribe to or serve it — and whether anyone serves it
//! (a routed `call` would reach a handler), as the native `presence` request and the REST presence route answer it;
//! and the `join`/`leave` notifications for subscribers that asked with `subscribe {presence: true}`.
//!
//! A member is described by `{app_id, sub?, dialect, serving}`. `join` says "this member is now as described": it is
//! sent when a connection becomes a member (subscribes or serves) and when a member starts or stops serving while
//! staying one. `leave` says "this connection is gone from the channel" (unsubscribed and not serving, its serving
//! taken over while not subscribed, or disconnected); its `serving` is whether it served until then, so a leave
//! with `serving: true` is the worker going away. A connection never hears about itself.
//!
//! Cost: every hook first looks at the channel's watcher set; a channel nobody watches builds nothing.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::Value;

use super::Hub;
use super::channel::Channel;
use super::conn_table::ConnId;
use super::connection::Connection;
use crate::wire::{
    Caller, ChannelName, Member, MessageId, PRESENCE_JOIN, PRESENCE_LEAVE, ServerFrame,
    ServerMessage,
};

/// A channel's presence at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Presence {
    /// How many connections subscribe to or serve the channel.
    pub count: usize,
    /// Whether a connection that is not closing serves it.
    pub serving: bool,
    /// The members, at most [`HubConfig::max_presence_members`](super::HubConfig::max_presence_members), in
    /// connection order.
    pub members: Vec<Member>,
}

/// What one connection is on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Role {
    member: bool,
    serving: bool,
}

impl Role {
    fn of(channel: Option<&Channel>, conn: ConnId) -> Role {
        let Some(ch) = channel else {
            return Role {
                member: false,
                serving: false,
            };
        };
        let serving = ch.server == Some(conn);
        Role {
            member: serving || ch.subscribers.contains_key(&conn),
            serving,
        }
    }

    /// The notification a change from `self` to `after` calls for: its type and the member's `serving`.
    fn change_to(self, after: Role) -> Option<(&'static str, bool)> {
        if self == after {
            None
        } else if after.member {
            Some((PRESENCE_JOIN, after.serving))
        } else if self.member {
            Some((PRESENCE_LEAVE, self.serving))
        } else {
            None
        }
    }
}

/// `conn`'s role on `name` before a change, when someone watches the channel's presence; `None` (nothing to tell
/// anyone) otherwise. Takes the channel table, not the hub, so it can be read while a connection is borrowed.
pub(crate) fn role_before(
    channels: &BTreeMap<ChannelName, Channel>,
    name: &ChannelName,
    conn: ConnId,
) -> Option<Role> {
    let ch = channels.get(name)?;
    if ch.watchers.is_empty() {
        return None;
    }
    Some(Role::of(Some(ch), conn))
}

fn member_of(c: &Connection, serving: bool) -> Member {
    let principal = c.permissions.principal();
    Member::new(
        Caller::new(
            alloc::string::String::from(&*c.app_id),
            principal.sub.clone(),
            None,
        ),
        c.kind().as_str(),
        serving,
    )
}

impl Hub {
    /// `channel`'s members and whether anyone serves it (the REST presence route; the native `presence` request).
    pub fn presence(&self, channel: &ChannelName) -> Presence {
        let Some(ch) = self.channels.get(channel) else {
            return Presence {
                count: 0,
                serving: false,
                members: Vec::new(),
            };
        };
        let server = ch.server;
        let unsubscribed_server = server.filter(|s| !ch.subscribers.contains_key(s));
        let count = ch.subscribers.len() + usize::from(unsubscribed_server.is_some());
        // The server is listed whatever the cap: it is what a reader most wants to see.
        let mut ids: Vec<ConnId> = server
            .into_iter()
            .chain(
                ch.subscribers
                    .keys()
                    .copied()
                    .filter(|&id| Some(id) != server),
            )
            .take(self.config.max_presence_members.max(1))
            .collect();
        ids.sort();
        let members = ids
            .into_iter()
            .filter_map(|id| self.conns.get(id).map(|c| member_of(c, server == Some(id))))
            .collect();
        Presence {
            count,
            serving: server.is_some_and(|s| self.conns.get(s).is_some_and(|c| !c.closing)),
            members,
        }
    }

    /// The answer to a native `presence` request (the caller's permission already checked).
    pub(super) fn presence_res(&self, channel: ChannelName) -> ServerMessage {
        let p = self.presence(&channel);
        ServerMessage::PresenceRes {
            channel,
            count: u64::try_from(p.count).unwrap_or(u64::MAX),
            serving: p.serving,
            members: p.members,
        }
    }

    /// Starts or stops `join`/`leave` notifications of `name` for its subscriber `conn`.
    pub(super) fn watch_presence(&mut self, conn: ConnId, name: &ChannelName, watch: bool) {
        let Some(ch) = self.channels.get_mut(name) else {
            return;
        };
        if watch && ch.subscribers.contains_key(&conn) {
            ch.watchers.insert(conn);
        } else {
            ch.watchers.remove(&conn);
        }
    }

    /// After `conn`'s role on `name` may have changed from `before` ([`role_before`]): tells the watchers.
    pub(super) fn presence_changed(
        &mut self,
        name: &ChannelName,
        conn: ConnId,
        before: Option<Role>,
    ) {
        let Some(before) = before else {
            return;
        };
        let Some((kind, serving)) = before.change_to(Role::of(self.channels.get(name), conn))
        else {
            return;
        };
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let member = member_of(c, serving);
        self.tell_watchers(name, conn, kind, &member);
    }

    /// `conn` (already removed from the table) disconnected: a `leave` on each watched channel it was on.
    pub(super) fn presence_gone(
        &mut self,
        conn: ConnId,
        c: &Connection,
        was: &[(ChannelName, Role)],
    ) {
        for (name, before) in was {
            if let Some((kind, serving)) = before.change_to(Role::of(self.channels.get(name), conn))
            {
                let member = member_of(c, serving);
                self.tell_watchers(name, conn, kind, &member);
            }
        }
    }

    /// Where a disconnecting connection was watched, before its subscriptions and registrations are dropped.
    pub(super) fn presence_roles(&self, conn: ConnId, c: &Connection) -> Vec<(ChannelName, Role)> {
        // A channel it both subscribes to and serves is one membership: one `leave`.
        let names: BTreeSet<&ChannelName> = c.subscriptions.iter().chain(&c.serving).collect();
        names
            .into_iter()
            .filter_map(|name| Some((name.clone(), role_before(&self.channels, name, conn)?)))
            .collect()
    }

    /// One notification, encoded once, to every watcher of `name` but `subject`. A watcher whose queue overflows is
    /// closed by the send and cleaned up by the caller's next reap.
    fn tell_watchers(&mut self, name: &ChannelName, subject: ConnId, kind: &str, member: &Member) {
        let Some(ch) = self.channels.get(name) else {
            return;
        };
        let recipients: Vec<ConnId> = ch
            .watchers
            .iter()
            .copied()
            .filter(|&w| w != subject)
            .collect();
        if recipients.is_empty() {
            return;
        }
        let mut data = member.to_value();
        if let Value::Object(m) = &mut data {
            m.insert("channel".into(), Value::String(name.as_str().into()));
        }
        let frame: Arc<str> = Arc::from(
            ServerFrame {
                message_id: Some(MessageId::random(&mut self.rng)),
                message: ServerMessage::Notification {
                    notification_type: kind.into(),
                    message: None,
                    additional_data: Some(data),
                },
            }
            .encode(),
        );
        for w in recipients {
            self.send_frame(w, Arc::clone(&frame));
        }
    }
}
