//! Who serves a channel across nodes: a registration per channel in Redis, `{prefix}:s:{channel}` holding
//! `{node} {registration}`, with a time-to-live its node refreshes.
//!
//! The newest registration wins, as on one node: [`Registration::register`] overwrites and returns the one it
//! replaced (so that node can tell its server it was replaced). A node refreshes only registrations that are still
//! its own ([`Registration::refresh`]); one that dies stops refreshing, and its registrations expire, after which a
//! call finds nobody ([`Registration::lookup`] answers `None`) and gets `NO_HANDLER`. Removing is also conditional,
//! so a node can never remove a newer registration of another.

use alloc::string::String;
use alloc::vec::Vec;

use super::EngineReplyError;
use super::keys::Keys;
use super::script::Script;
use crate::redis::{Command, Reply};
use crate::wire::ChannelName;

/// `KEYS[i]`: registrations; `ARGV[1]`: the time-to-live in ms; `ARGV[i + 1]`: the value each must still hold.
/// Extends the ones that do; returns how many.
pub const REFRESH_SCRIPT: &str = r#"
local kept = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    kept = kept + 1
  end
end
return kept
"#;

/// `KEYS[1]`: a registration; `ARGV[1]`: the value it must still hold. Deletes it if so; returns 1 or 0.
pub const REMOVE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// One node's registration to serve a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The node that holds the serving connection.
    pub node: String,
    /// Which registration on that node (a node numbers them, so a newer one on the same node is told apart).
    pub id: u64,
}

impl Registration {
    /// The value stored: `{node} {id}`.
    pub fn value(&self) -> Vec<u8> {
        alloc::format!("{} {}", self.node, self.id).into_bytes()
    }

    /// Reads a stored value.
    pub fn parse(value: &[u8]) -> Result<Registration, EngineReplyError> {
        let bad = || EngineReplyError::Shape {
            what: "a registration",
        };
        let text = core::str::from_utf8(value).map_err(|_| bad())?;
        let (node, id) = text.rsplit_once(' ').ok_or_else(bad)?;
        if node.is_empty() || node.contains(' ') {
            return Err(bad());
        }
        Ok(Registration {
            node: node.into(),
            id: id.parse().map_err(|_| bad())?,
        })
    }

    /// `SET key value PX ttl GET`: registers, and answers the registration it replaced (Redis 6.2 or newer).
    pub fn register(&self, keys: &Keys, channel: &ChannelName, ttl_ms: u64) -> Command {
        Command::new("SET")
            .arg(keys.server(channel))
            .arg(self.value())
            .arg("PX")
            .uint(ttl_ms.max(1))
            .arg("GET")
    }

    /// The registration `register` replaced, from its reply.
    pub fn replaced(reply: &Reply) -> Result<Option<Registration>, EngineReplyError> {
        match reply {
            Reply::Nil => Ok(None),
            Reply::Bulk(value) => Registration::parse(value).map(Some),
            _ => Err(EngineReplyError::Shape {
                what: "SET … GET"
            }),
        }
    }

    /// Extends every one of `registrations` that still holds, by `ttl_ms`; the reply is how many did.
    pub fn refresh(
        script: &Script,
        keys: &Keys,
        registrations: &[(ChannelName, Registration)],
        ttl_ms: u64,
    ) -> Command {
        let mut command = script.invoke(registrations.len());
        for (channel, _) in registrations {
            command = command.arg(keys.server(channel));
        }
        command = command.uint(ttl_ms.max(1));
        for (_, registration) in registrations {
            command = command.arg(registration.value());
        }
        command
    }

    /// Removes this registration of `channel` if it still holds.
    pub fn remove(&self, script: &Script, keys: &Keys, channel: &ChannelName) -> Command {
        script.invoke(1).arg(keys.server(channel)).arg(self.value())
    }

    /// `GET`: who serves `channel` now.
    pub fn lookup(keys: &Keys, channel: &ChannelName) -> Command {
        Command::new("GET").arg(keys.server(channel))
    }

    /// The registration `lookup` found, from its reply.
    pub fn found(reply: &Reply) -> Result<Option<Registration>, EngineReplyError> {
        Registration::replaced(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_foreign_ones_are_refused() {
        let registration = Registration {
            node: "node-a7".into(),
            id: 42,
        };
        assert_eq!(registration.value(), b"node-a7 42");
        assert_eq!(Registration::parse(b"node-a7 42"), Ok(registration.clone()));
        assert_eq!(
            Registration::replaced(&Reply::Bulk(b"node-a7 42".to_vec())),
            Ok(Some(registration))
        );
        assert_eq!(Registration::found(&Reply::Nil), Ok(None));
        for bad in [&b""[..], b"node", b" 1", b"a b 1", b"node x", b"\xff 1"] {
            assert!(Registration::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Registration::replaced(&Reply::Integer(1)).is_err());
    }
}
