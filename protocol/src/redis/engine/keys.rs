//! [`Keys`]: the names of a channel's keys in Redis.

use alloc::string::String;
use alloc::vec::Vec;

use crate::wire::{ChannelName, IdempotencyKey};

/// The key names of every channel, under one prefix (several deployments can share a Redis by prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (`switchboard` by default in `serve`).
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The hash of a channel's position and retained state.
    pub fn meta(&self, channel: &ChannelName) -> Vec<u8> {
        self.key(b'm', channel)
    }

    /// The stream of a channel's history.
    pub fn history(&self, channel: &ChannelName) -> Vec<u8> {
        self.key(b'h', channel)
    }

    /// Who serves the channel ([`Registration`](super::registry::Registration)).
    pub fn server(&self, channel: &ChannelName) -> Vec<u8> {
        self.key(b's', channel)
    }

    /// Where a publish's idempotency key is kept for the dedupe window. The channel name's length comes first, so
    /// no channel and key pair (both may hold `:`) names the key of another.
    pub fn dedupe(&self, channel: &ChannelName, key: &IdempotencyKey) -> Vec<u8> {
        let name = alloc::format!(
            "{}:{}:{}",
            channel.as_str().len(),
            channel.as_str(),
            key.as_str()
        );
        let mut out = Vec::with_capacity(self.prefix.len() + 3 + name.len());
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b":k:");
        out.extend_from_slice(name.as_bytes());
        out
    }

    /// The pub/sub channel its publications go out on.
    pub fn topic(&self, channel: &ChannelName) -> Vec<u8> {
        self.key(b'p', channel)
    }

    /// A node's inbox topic, where other nodes send it calls for the connections it serves and their answers.
    pub fn inbox(&self, node: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 3 + node.len());
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(b":n:");
        key.extend_from_slice(node.as_bytes());
        key
    }

    /// A node's counts ([`NodeCounts`](super::node_counts::NodeCounts)): a string with a time-to-live.
    pub fn counts(&self, node: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 3 + node.len());
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(b":c:");
        key.extend_from_slice(node.as_bytes());
        key
    }

    /// The sorted set of the nodes with counts, scored with the time their entries expire (unix ms).
    pub fn nodes(&self) -> Vec<u8> {
        let mut key = self.prefix.as_bytes().to_vec();
        key.extend_from_slice(b":nodes");
        key
    }

    /// The channel a topic name belongs to, if it is one of ours.
    pub fn channel_of_topic(&self, topic: &[u8]) -> Option<ChannelName> {
        let rest = topic
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(b":p:")?;
        ChannelName::new(core::str::from_utf8(rest).ok()?).ok()
    }

    fn key(&self, kind: u8, channel: &ChannelName) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 3 + channel.as_str().len());
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(&[b':', kind, b':']);
        key.extend_from_slice(channel.as_str().as_bytes());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_reads_back() {
        let keys = Keys::new("sb");
        let channel = ChannelName::new("projects/p1").unwrap();
        assert_eq!(keys.meta(&channel), b"sb:m:projects/p1");
        assert_eq!(keys.history(&channel), b"sb:h:projects/p1");
        assert_eq!(keys.topic(&channel), b"sb:p:projects/p1");
        assert_eq!(keys.server(&channel), b"sb:s:projects/p1");
        let key = |k: &str| IdempotencyKey::new(k).unwrap();
        assert_eq!(
            keys.dedupe(&channel, &key("k:1")),
            b"sb:k:11:projects/p1:k:1"
        );
        let (a, b) = (
            ChannelName::new("a:b").unwrap(),
            ChannelName::new("a").unwrap(),
        );
        assert_ne!(keys.dedupe(&a, &key("c")), keys.dedupe(&b, &key("b:c")));
        assert_eq!(keys.channel_of_topic(b"sb:p:projects/p1"), Some(channel));
        assert_eq!(keys.channel_of_topic(b"sb:m:projects/p1"), None);
        assert_eq!(keys.channel_of_topic(b"other:p:projects/p1"), None);
        assert_eq!(keys.channel_of_topic(b"sb:p:"), None);
    }
}
