//! The read script: a channel's epoch, last offset, retained state and a range of its history from one atomic
//! snapshot, and the replay rule applied to it.

use alloc::string::String;
use alloc::vec::Vec;

use super::EngineReplyError;
use super::keys::Keys;
use super::script::Script;
use crate::redis::{Command, Reply};
use crate::wire::ChannelName;

/// `KEYS`: the channel's hash and stream. `ARGV`: the first stream id to read (`-`, or `(N-0` for "after N"), how
/// many entries at most (0: none), `1` to include the retained state, and an epoch to give the channel if it has
/// none (empty: none). Returns `{epoch, offset, state, state_offset, entries}` (missing values are nil).
pub const READ_SCRIPT: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'state', 'state_offset')
if not meta[1] and ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[4])
  redis.call('DEL', KEYS[2])
  meta[1] = ARGV[4]
end
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])
end
if ARGV[3] ~= '1' then
  meta[3] = false
  meta[4] = false
end
return {meta[1], meta[2], meta[3], meta[4], entries}
"#;

/// One read of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest<'a> {
    /// The channel.
    pub channel: &'a ChannelName,
    /// Read the events after this offset (`None`: from the oldest kept).
    pub after: Option<u64>,
    /// At most this many events (0: only the position and state).
    pub limit: usize,
    /// Include the retained state.
    pub with_state: bool,
    /// Give the channel this epoch if it has none yet: a node that starts following a channel nobody published to
    /// tells its subscribers the epoch the channel's first publish will keep, so they see no epoch change.
    pub fresh_epoch: Option<&'a str>,
}

impl ReadRequest<'_> {
    /// The `EVALSHA`/`EVAL` command.
    pub fn command(&self, script: &Script, keys: &Keys) -> Command {
        let start = match self.after {
            None => String::from("-"),
            Some(after) => alloc::format!("({after}-0"),
        };
        script
            .invoke(2)
            .arg(keys.meta(self.channel))
            .arg(keys.history(self.channel))
            .arg(start)
            .uint(self.limit as u64)
            .arg(if self.with_state { "1" } else { "0" })
            .arg(self.fresh_epoch.unwrap_or(""))
    }
}

/// An event read from a channel's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its offset.
    pub offset: u64,
    /// When it was published, unix ms.
    pub published_ms: u64,
    /// It became the channel's retained state when published.
    pub retained: bool,
    /// The event, as JSON text.
    pub event: Vec<u8>,
}

/// What the read script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRead {
    /// The channel's epoch; `None` when the channel has no data in Redis (never published, or lost).
    pub epoch: Option<String>,
    /// The last offset given (0 before the first).
    pub offset: u64,
    /// The retained event and its offset, when asked for and present.
    pub state: Option<(u64, Vec<u8>)>,
    /// The events read, in offset order.
    pub events: Vec<StoredEvent>,
}

/// Whether a read answers a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay<'a> {
    /// Every event after the position, oldest first (none when the position is the newest).
    Events(&'a [StoredEvent]),
    /// The position is not in this epoch, or history no longer reaches back to it: resynchronise.
    Gone,
    /// The read stopped at its limit before the newest event: read on after the last one.
    Truncated,
}

impl ChannelRead {
    /// Reads the script's reply.
    pub fn parse(reply: Reply) -> Result<ChannelRead, EngineReplyError> {
        let bad = || EngineReplyError::Shape {
            what: "the read script",
        };
        let items = reply.into_array().ok_or_else(bad)?;
        let [epoch, offset, state, state_offset, entries]: [Reply; 5] =
            items.try_into().map_err(|_| bad())?;
        let epoch = match epoch {
            Reply::Nil => None,
            other => Some(
                core::str::from_utf8(other.as_bytes().ok_or_else(bad)?)
                    .map_err(|_| bad())?
                    .into(),
            ),
        };
        let offset = match offset {
            Reply::Nil => 0,
            other => number(&other).ok_or_else(bad)?,
        };
        let state = match (state, state_offset) {
            (Reply::Bulk(event), at) => Some((number(&at).ok_or_else(bad)?, event)),
            (Reply::Nil, _) => None,
            _ => return Err(bad()),
        };
        let events = entries
            .into_array()
            .ok_or_else(bad)?
            .into_iter()
            .map(|entry| stored_event(entry).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ChannelRead {
            epoch,
            offset,
            state,
            events,
        })
    }

    /// The events after `epoch:after`, when this read holds all of them: the same epoch, nothing missing between
    /// `after` and the newest offset, and none published before `oldest_ms` (history's time-to-live, applied exactly
    /// even before Redis expires the stream).
    pub fn replay(&self, epoch: &str, after: u64, oldest_ms: u64) -> Replay<'_> {
        if after == self.offset
            && (self.epoch.as_deref() == Some(epoch) || self.epoch.is_none() && after == 0)
        {
            return Replay::Events(&[]);
        }
        if self.epoch.as_deref() != Some(epoch) || after > self.offset {
            return Replay::Gone;
        }
        let Some(first) = self.events.first() else {
            return Replay::Gone;
        };
        if first.offset != after + 1 {
            return Replay::Gone;
        }
        if self
            .events
            .iter()
            .any(|event| event.published_ms < oldest_ms)
        {
            return Replay::Gone;
        }
        // Offsets in a stream are consecutive: the last tells whether the read reached the newest.
        match self.events.last() {
            Some(last) if last.offset == self.offset => Replay::Events(&self.events),
            _ => Replay::Truncated,
        }
    }
}

fn number(reply: &Reply) -> Option<u64> {
    reply.as_int().and_then(|n| u64::try_from(n).ok())
}

/// `[id, [field, value, ...]]` with id `{offset}-0` and fields `t`, `e` and, on a retained event, `r`.
fn stored_event(entry: Reply) -> Option<StoredEvent> {
    let [id, fields]: [Reply; 2] = entry.into_array()?.try_into().ok()?;
    let id = core::str::from_utf8(id.as_bytes()?).ok()?;
    let offset = id.strip_suffix("-0")?.parse().ok()?;
    let mut published_ms = None;
    let mut event = None;
    let mut retained = false;
    let mut fields = fields.into_array()?.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match name.as_bytes()? {
            b"t" => published_ms = number(&value),
            b"e" => {
                if let Reply::Bulk(bytes) = value {
                    event = Some(bytes);
                }
            }
            b"r" => retained = true,
            _ => {}
        }
    }
    Some(StoredEvent {
        offset,
        published_ms: published_ms?,
        retained,
        event: event?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn entry(offset: u64, t: u64, event: &str) -> Reply {
        Reply::Array(vec![
            Reply::Bulk(alloc::format!("{offset}-0").into_bytes()),
            Reply::Array(vec![
                Reply::Bulk(b"t".to_vec()),
                Reply::Bulk(alloc::format!("{t}").into_bytes()),
                Reply::Bulk(b"e".to_vec()),
                Reply::Bulk(event.as_bytes().to_vec()),
            ]),
        ])
    }

    fn read(epoch: Option<&str>, offset: u64, entries: Vec<Reply>) -> ChannelRead {
        ChannelRead::parse(Reply::Array(vec![
            epoch.map_or(Reply::Nil, |e| Reply::Bulk(e.as_bytes().to_vec())),
            if offset == 0 {
                Reply::Nil
            } else {
                Reply::Bulk(alloc::format!("{offset}").into_bytes())
            },
            Reply::Nil,
            Reply::Nil,
            Reply::Array(entries),
        ]))
        .unwrap()
    }

    #[test]
    fn parses_positions_state_and_entries() {
        let parsed = ChannelRead::parse(Reply::Array(vec![
            Reply::Bulk(b"ep".to_vec()),
            Reply::Bulk(b"7".to_vec()),
            Reply::Bulk(b"{\"s\":1}".to_vec()),
            Reply::Bulk(b"6".to_vec()),
            Reply::Array(vec![entry(7, 1000, "{}")]),
        ]))
        .unwrap();
        assert_eq!(parsed.epoch.as_deref(), Some("ep"));
        assert_eq!(parsed.offset, 7);
        assert_eq!(parsed.state, Some((6, b"{\"s\":1}".to_vec())));
        assert_eq!(
            parsed.events,
            vec![StoredEvent {
                offset: 7,
                published_ms: 1000,
                retained: false,
                event: b"{}".to_vec()
            }]
        );
        let retained = Reply::Array(vec![
            Reply::Bulk(b"8-0".to_vec()),
            Reply::Array(vec![
                Reply::Bulk(b"t".to_vec()),
                Reply::Bulk(b"1001".to_vec()),
                Reply::Bulk(b"e".to_vec()),
                Reply::Bulk(b"{}".to_vec()),
                Reply::Bulk(b"r".to_vec()),
                Reply::Bulk(b"1".to_vec()),
            ]),
        ]);
        let parsed = ChannelRead::parse(Reply::Array(vec![
            Reply::Bulk(b"ep".to_vec()),
            Reply::Integer(8),
            Reply::Nil,
            Reply::Nil,
            Reply::Array(vec![entry(7, 1000, "{}"), retained]),
        ]))
        .unwrap();
        let flags: Vec<bool> = parsed.events.iter().map(|e| e.retained).collect();
        assert_eq!(
            flags,
            vec![false, true],
            "the `r` field marks the retained event"
        );
        assert!(ChannelRead::parse(Reply::Array(vec![Reply::Nil; 4])).is_err());
        assert!(
            ChannelRead::parse(Reply::Array(vec![
                Reply::Nil,
                Reply::Nil,
                Reply::Nil,
                Reply::Nil,
                Reply::Array(vec![Reply::Integer(1)]),
            ]))
            .is_err()
        );
    }

    #[test]
    fn replay_needs_the_epoch_every_event_and_nothing_expired() {
        let full = read(
            Some("e1"),
            5,
            vec![entry(4, 100, "{}"), entry(5, 200, "{}")],
        );
        assert_eq!(full.replay("e1", 3, 0), Replay::Events(&full.events));
        assert_eq!(full.replay("e1", 5, 0), Replay::Events(&[]));
        assert_eq!(full.replay("e1", 2, 0), Replay::Gone, "offset 3 is trimmed");
        assert_eq!(full.replay("e0", 3, 0), Replay::Gone, "another epoch");
        assert_eq!(
            full.replay("e1", 6, 0),
            Replay::Gone,
            "ahead of the channel"
        );
        assert_eq!(full.replay("e1", 3, 150), Replay::Gone, "offset 4 expired");
        let part = read(
            Some("e1"),
            9,
            vec![entry(4, 100, "{}"), entry(5, 200, "{}")],
        );
        assert_eq!(part.replay("e1", 3, 0), Replay::Truncated);
        let empty = read(None, 0, vec![]);
        assert_eq!(empty.replay("e-new", 0, 0), Replay::Events(&[]));
        assert_eq!(empty.replay("e1", 4, 0), Replay::Gone, "lost from redis");
    }
}
