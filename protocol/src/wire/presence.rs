//! Presence (PROTOCOL §2.2 `presence`, §2.3 `join`/`leave`): who is on a channel — the connections that subscribe to
//! or serve it — as [`Member`]s, and the cap on how many one answer lists.

use alloc::borrow::ToOwned;
use alloc::string::String;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::caller::Caller;

/// Most members one `presence_res` (or the REST presence route) lists by default (`--max-presence-members`);
/// `count` is always the true number.
pub const PRESENCE_MEMBERS_MAX: usize = 100;

/// `notification_type` of the notification sent when a connection joins a channel, or a member's `serving` changes.
pub const PRESENCE_JOIN: &str = "join";

/// `notification_type` of the notification sent when a connection stops subscribing to and serving a channel.
pub const PRESENCE_LEAVE: &str = "leave";

/// One connection on a channel: `{app_id, sub?, dialect, serving}` on the wire. Its identity is the same as a routed
/// call's [`Caller`], without the API key's name (members are shown to every reader of the channel).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Member {
    /// The connection's `app_id` and the `sub` of its token (`key` is always `None` here).
    pub caller: Caller,
    /// The dialect it speaks: `native`, `project_stream` or `channel_payload`.
    pub dialect: String,
    /// Whether it serves the channel (routed `call`s reach it).
    pub serving: bool,
}

impl Member {
    /// A member; the caller's `key` is dropped.
    pub fn new(caller: Caller, dialect: impl Into<String>, serving: bool) -> Member {
        Member {
            caller: Caller::new(caller.app_id, caller.sub, None),
            dialect: dialect.into(),
            serving,
        }
    }

    /// The wire form, `{app_id, sub?, dialect, serving}`.
    pub fn to_value(&self) -> Value {
        let mut m = match Caller::new(self.caller.app_id.clone(), self.caller.sub.clone(), None)
            .to_value()
        {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        m.insert("dialect".to_owned(), Value::String(self.dialect.clone()));
        m.insert("serving".to_owned(), Value::Bool(self.serving));
        Value::Object(m)
    }

    /// Reads the wire form; `None` without a string `app_id`. A missing `dialect` reads as empty, a missing
    /// `serving` as `false`.
    pub fn from_value(value: &Value) -> Option<Member> {
        let Value::Object(m) = value else {
            return None;
        };
        let caller = Caller::from_value(value)?;
        let dialect = m
            .get("dialect")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let serving = m.get("serving").and_then(Value::as_bool).unwrap_or(false);
        Some(Member::new(caller, dialect, serving))
    }
}

impl Serialize for Member {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Member, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Member::from_value(&value)
            .ok_or_else(|| serde::de::Error::custom("a member needs a string `app_id`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_form_round_trips_without_the_key() {
        let keyed = Caller::new("a1", Some("alice".into()), Some("api-key:0".into()));
        let m = Member::new(keyed, "native", true);
        assert_eq!(
            m.to_value(),
            json!({"app_id": "a1", "sub": "alice", "dialect": "native", "serving": true})
        );
        assert_eq!(Member::from_value(&m.to_value()), Some(m));
        assert_eq!(Member::from_value(&json!({"dialect": "native"})), None);
        assert_eq!(Member::from_value(&json!("a1")), None);
        let read: Member =
            serde_json::from_value(json!({"app_id": "a2", "dialect": "native"})).unwrap();
        assert!(!read.serving);
        assert!(serde_json::from_value::<Member>(json!({"sub": "x"})).is_err());
    }
}
