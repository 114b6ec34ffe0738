//! The publish script: offsets given in Redis, atomically with the history append, the retained state and the
//! publication to every node.

use alloc::string::String;
use alloc::vec::Vec;

use super::EngineReplyError;
use super::keys::Keys;
use super::script::Script;
use crate::redis::{Command, Reply};
use crate::wire::{ChannelName, IdempotencyKey};

/// `KEYS`: the channel's hash and stream, and for a publish with an idempotency key its dedupe key
/// ([`Keys::dedupe`]). `ARGV`: a fresh epoch (used only if the channel has none; its history then starts empty),
/// the history size, its time-to-live in ms (0: none), the publish time in unix ms, `1` to retain the last event,
/// the pub/sub topic, the dedupe window in ms (used with the third key), then the events (one or more, JSON). Returns `{epoch, first offset, last
/// offset}`. The retained event's stream entry has the field `r`, and its publication the flag `r` (the others
/// `-`): every node keeps the channel's state from the live feed alone.
///
/// With a dedupe key the check and the publish are one step: a key holding `"{epoch} {first} {last}"` of the
/// channel's current epoch publishes nothing and returns `{epoch, first, last, 1}`; otherwise the events are
/// published and the key is set to their range for the window. A key of an earlier epoch (the channel was lost
/// from Redis since) does not answer.
pub const PUBLISH_SCRIPT: &str = r#"
local meta, history, dedupe = KEYS[1], KEYS[2], KEYS[3]
local size, ttl, now, retain, topic = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local epoch = redis.call('HGET', meta, 'epoch')
if dedupe and epoch then
  local seen = redis.call('GET', dedupe)
  if seen then
    local e, f, l = string.match(seen, '^(%S+) (%d+) (%d+)$')
    if e == epoch then
      return {epoch, tonumber(f), tonumber(l), 1}
    end
  end
end
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', meta, 'epoch', epoch)
  redis.call('DEL', history)
end
local count = #ARGV - 7
local last = redis.call('HINCRBY', meta, 'offset', count)
local first = last - count + 1
for i = 1, count do
  local offset = string.format('%d', first + i - 1)
  local event = ARGV[7 + i]
  local flag = '-'
  if retain == '1' and i == count then
    flag = 'r'
    redis.call('XADD', history, 'MAXLEN', size, offset .. '-0', 't', now, 'e', event, 'r', '1')
  else
    redis.call('XADD', history, 'MAXLEN', size, offset .. '-0', 't', now, 'e', event)
  end
  redis.call('PUBLISH', topic, epoch .. ' ' .. offset .. ' ' .. flag .. ' ' .. event)
end
if ttl > 0 then
  redis.call('PEXPIRE', history, ttl)
end
if retain == '1' then
  redis.call('HSET', meta, 'state', ARGV[#ARGV], 'state_offset', last)
end
if dedupe then
  redis.call('SET', dedupe, epoch .. ' ' .. first .. ' ' .. last, 'PX', ARGV[7])
end
return {epoch, first, last}
"#;

/// One publish of one or more events to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest<'a> {
    /// The channel.
    pub channel: &'a ChannelName,
    /// The events, as JSON text, in order (at least one).
    pub events: &'a [Vec<u8>],
    /// Keep the last event as the channel's state.
    pub retain_last: bool,
    /// The epoch the channel gets if it has none (drawn by the caller from its seeded RNG).
    pub fresh_epoch: &'a str,
    /// Events the stream keeps.
    pub history_size: usize,
    /// How long history lives after the last publish, in ms (0: forever).
    pub history_ttl_ms: u64,
    /// The publish time, unix ms.
    pub now_ms: u64,
    /// The publish's idempotency key, if any.
    pub idempotency_key: Option<&'a IdempotencyKey>,
    /// How long Redis keeps the key, in ms (at least 1).
    pub dedupe_window_ms: u64,
}

impl PublishRequest<'_> {
    /// The `EVALSHA`/`EVAL` command.
    pub fn command(&self, script: &Script, keys: &Keys) -> Command {
        let mut command = match self.idempotency_key {
            Some(key) => script
                .invoke(3)
                .arg(keys.meta(self.channel))
                .arg(keys.history(self.channel))
                .arg(keys.dedupe(self.channel, key)),
            None => script
                .invoke(2)
                .arg(keys.meta(self.channel))
                .arg(keys.history(self.channel)),
        }
        .arg(self.fresh_epoch)
        .uint(self.history_size as u64)
        .uint(self.history_ttl_ms)
        .uint(self.now_ms)
        .arg(if self.retain_last { "1" } else { "0" })
        .arg(keys.topic(self.channel))
        .uint(self.dedupe_window_ms.max(1));
        for event in self.events {
            command = command.arg(event);
        }
        command
    }
}

/// What the publish script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The channel's epoch.
    pub epoch: String,
    /// The first event's offset.
    pub first_offset: u64,
    /// The last event's offset.
    pub last_offset: u64,
    /// The idempotency key was set in this epoch: nothing was published, the offsets are the original's.
    pub duplicate: bool,
}

impl Published {
    /// Reads the script's reply.
    pub fn parse(reply: &Reply) -> Result<Published, EngineReplyError> {
        let bad = EngineReplyError::Shape {
            what: "the publish script",
        };
        let (epoch, first, last, duplicate) = match reply.as_array().ok_or(bad.clone())? {
            [epoch, first, last] => (epoch, first, last, false),
            [epoch, first, last, flag] if flag.as_int() == Some(1) => (epoch, first, last, true),
            _ => return Err(bad),
        };
        let epoch = epoch
            .as_bytes()
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .ok_or(bad.clone())?;
        let offset = |reply: &Reply| {
            reply
                .as_int()
                .and_then(|n| u64::try_from(n).ok())
                .filter(|&n| n > 0)
        };
        let (Some(first_offset), Some(last_offset)) = (offset(first), offset(last)) else {
            return Err(bad);
        };
        if first_offset > last_offset {
            return Err(bad);
        }
        Ok(Published {
            epoch: epoch.into(),
            first_offset,
            last_offset,
            duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn parses_the_reply_and_refuses_other_shapes() {
        let reply = Reply::Array(vec![
            Reply::Bulk(b"00ff".to_vec()),
            Reply::Integer(3),
            Reply::Integer(5),
        ]);
        assert_eq!(
            Published::parse(&reply),
            Ok(Published {
                epoch: "00ff".into(),
                first_offset: 3,
                last_offset: 5,
                duplicate: false,
            })
        );
        let duplicate = Reply::Array(vec![
            Reply::Bulk(b"00ff".to_vec()),
            Reply::Integer(3),
            Reply::Integer(5),
            Reply::Integer(1),
        ]);
        assert_eq!(Published::parse(&duplicate).map(|p| p.duplicate), Ok(true));
        for bad in [
            Reply::Integer(1),
            Reply::Array(vec![Reply::Bulk(b"e".to_vec()), Reply::Integer(1)]),
            Reply::Array(vec![
                Reply::Bulk(b"e".to_vec()),
                Reply::Integer(1),
                Reply::Integer(1),
                Reply::Integer(0),
            ]),
            Reply::Array(vec![Reply::Nil, Reply::Integer(1), Reply::Integer(1)]),
            Reply::Array(vec![
                Reply::Bulk(b"e".to_vec()),
                Reply::Integer(0),
                Reply::Integer(1),
            ]),
            Reply::Array(vec![
                Reply::Bulk(b"e".to_vec()),
                Reply::Integer(2),
                Reply::Integer(1),
            ]),
        ] {
            assert!(Published::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
