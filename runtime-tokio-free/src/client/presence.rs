//! Presence as the [`Client`](super::Client) sees it: the answer to [`Client::presence`](super::Client::presence)
//! ([`PresenceReply`]), and the `join`/`leave` [`Notification`]s of a channel subscribed with
//! [`Client::subscribe_with_presence`](super::Client::subscribe_with_presence), read with
//! [`PresenceChange::from_notification`].

use serde_json::Value;
pub use switchboard_protocol::wire::Member;
use switchboard_protocol::wire::{PRESENCE_JOIN, PRESENCE_LEAVE};

use super::Notification;

/// Who is on a channel (`presence_res`).
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceReply {
    /// The channel.
    pub channel: String,
    /// How many connections subscribe to or serve it.
    pub count: u64,
    /// Whether one serves it: a `call` would reach a handler.
    pub serving: bool,
    /// At most [`PRESENCE_MEMBERS_MAX`](switchboard_protocol::wire::PRESENCE_MEMBERS_MAX) of them, the server
    /// always among them.
    pub members: Vec<Member>,
}

/// A `join` or `leave` notification.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PresenceChange {
    /// A connection came onto the channel, or a member started or stopped serving it: it is now as described.
    Join {
        /// The channel.
        channel: String,
        /// The member as it is now.
        member: Member,
    },
    /// A connection left the channel; `member.serving` is whether it served it until then.
    Leave {
        /// The channel.
        channel: String,
        /// The member as it was.
        member: Member,
    },
}

impl PresenceChange {
    /// Reads a notification; `None` for any other kind.
    pub fn from_notification(n: &Notification) -> Option<PresenceChange> {
        let data = n.additional_data.as_ref()?;
        let channel = data.get("channel").and_then(Value::as_str)?.to_owned();
        let member = Member::from_value(data)?;
        match n.notification_type.as_str() {
            PRESENCE_JOIN => Some(PresenceChange::Join { channel, member }),
            PRESENCE_LEAVE => Some(PresenceChange::Leave { channel, member }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_join_and_leave_and_nothing_else() {
        let n = |kind: &str, data: Value| Notification {
            notification_type: kind.into(),
            message: None,
            additional_data: Some(data),
        };
        let data = json!({"app_id": "a1", "channel": "jobs", "dialect": "native", "serving": true});
        let Some(PresenceChange::Leave { channel, member }) =
            PresenceChange::from_notification(&n("leave", data.clone()))
        else {
            panic!("a leave");
        };
        assert_eq!(
            (
                channel.as_str(),
                member.caller.app_id.as_str(),
                member.serving
            ),
            ("jobs", "a1", true)
        );
        assert!(matches!(
            PresenceChange::from_notification(&n("join", data.clone())),
            Some(PresenceChange::Join { .. })
        ));
        assert_eq!(
            PresenceChange::from_notification(&n("maintenance", data)),
            None
        );
        assert_eq!(
            PresenceChange::from_notification(&n("join", json!({"app_id": "a1"}))),
            None
        );
    }
}
