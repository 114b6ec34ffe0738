//! The answers of the routes whose bodies depend only on what the hub returned: health, readiness, a publish, a
//! history page, a channel's state, and a refused publish.

use alloc::string::String;
use core::fmt::Write as _;

use serde_json::{Value, json};

use crate::server::{HubError, LimitError, Presence, StorageError};
use crate::wire::ChannelName;

use super::error_reply::ErrorReply;
use super::limits::MAX_PAGE_BYTES;
use super::reply::Reply;

/// `GET /health`: the server's `version`.
pub fn health(version: &str) -> Reply {
    Reply::json(200, &json!({"status": "healthy", "version": version}))
}

/// `GET /health/live`.
pub fn live() -> Reply {
    Reply::json(200, &json!({"status": "alive"}))
}

/// Why `GET /health/ready` answers 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotReady {
    /// The server drains (a graceful shutdown).
    ShuttingDown,
    /// A node of a cluster has lost its connection to Redis: publishes fail and live delivery waits until it is
    /// back.
    StorageUnavailable,
}

impl NotReady {
    /// The `reason` in the body.
    pub fn reason(self) -> &'static str {
        match self {
            NotReady::ShuttingDown => "shutting_down",
            NotReady::StorageUnavailable => "storage_unavailable",
        }
    }
}

/// `GET /health/ready`: 200 with the counts, or 503 with why the server is not ready.
pub fn ready(not_ready: Option<NotReady>, connections: usize, channels: usize) -> Reply {
    if let Some(why) = not_ready {
        Reply::json(
            503,
            &json!({"status": "not_ready", "reason": why.reason(), "connections": connections, "channels": channels}),
        )
    } else {
        Reply::json(
            200,
            &json!({"status": "ready", "connections": connections, "channels": channels}),
        )
    }
}

/// `GET /api/v1/projects/{id}/connections`.
pub fn project_connections(project_id: &str, subscribers: usize) -> Reply {
    Reply::json(
        200,
        &json!({"project_id": project_id, "active_connections": subscribers}),
    )
}

/// `POST /api/v1/channels/{channel}/events` once the store has kept (or failed to keep) the event: 201 with the
/// offset, or 503 `STORAGE_UNAVAILABLE`.
pub fn stored(
    channel: &ChannelName,
    outcome: Result<u64, StorageError>,
) -> Result<Reply, ErrorReply> {
    match outcome {
        Ok(offset) => published(channel, Ok(offset)),
        Err(e) => Err(ErrorReply::storage_unavailable(
            alloc::string::ToString::to_string(&e),
        )),
    }
}

/// `POST /api/v1/channels/{channel}/events`: 201 with the offset, or the hub's refusal (413 for a limit, else 400).
pub fn published(
    channel: &ChannelName,
    outcome: Result<u64, HubError>,
) -> Result<Reply, ErrorReply> {
    match outcome {
        Ok(offset) => Ok(Reply::json(
            201,
            &json!({"channel": channel, "offset": offset}),
        )),
        Err(e) => Err(refused(e)),
    }
}

/// A publish whose idempotency key the channel saw within the dedupe window: 200 (not 201: this request created
/// nothing) with the original's offset and `duplicate: true`.
pub fn duplicate(channel: &ChannelName, offset: u64) -> Reply {
    Reply::json(
        200,
        &json!({"channel": channel, "offset": offset, "duplicate": true}),
    )
}

/// A batch publish whose idempotency key the channel saw within the dedupe window: 200 with the original's first
/// and last offsets and `duplicate: true`.
pub fn duplicate_batch(channel: &ChannelName, first: u64, last: u64) -> Reply {
    Reply::json(
        200,
        &json!({"channel": channel, "first_offset": first, "last_offset": last, "duplicate": true}),
    )
}

/// A publish the hub refused: 507 for the channel limit, 413 for another limit, else 400.
fn refused(e: HubError) -> ErrorReply {
    match e {
        HubError::Limit(l @ LimitError::ChannelLimit { .. }) => {
            ErrorReply::channel_limit(alloc::string::ToString::to_string(&l))
        }
        HubError::Limit(l) => ErrorReply::payload_too_large(alloc::string::ToString::to_string(&l)),
        other => ErrorReply::validation(alloc::string::ToString::to_string(&other)),
    }
}

/// A batch `POST /api/v1/channels/{channel}/events` once the store has kept (or failed to keep) its `count`
/// events, the first at `outcome`'s offset: 201 `{channel, first_offset, last_offset}`, or 503
/// `STORAGE_UNAVAILABLE`.
pub fn stored_batch(
    channel: &ChannelName,
    count: usize,
    outcome: Result<u64, StorageError>,
) -> Result<Reply, ErrorReply> {
    match outcome {
        Ok(first) => published_batch(channel, count, Ok(first)),
        Err(e) => Err(ErrorReply::storage_unavailable(
            alloc::string::ToString::to_string(&e),
        )),
    }
}

/// A batch `POST /api/v1/channels/{channel}/events` of `count` events, the first at `outcome`'s offset: 201
/// `{channel, first_offset, last_offset}`, or the hub's refusal (413 for a limit, else 400), with `error.index`
/// naming the event at fault when one was.
pub fn published_batch(
    channel: &ChannelName,
    count: usize,
    outcome: Result<u64, HubError>,
) -> Result<Reply, ErrorReply> {
    match outcome {
        Ok(first) => {
            let last = first + (count as u64).saturating_sub(1);
            Ok(Reply::json(
                201,
                &json!({"channel": channel, "first_offset": first, "last_offset": last}),
            ))
        }
        Err(e) => {
            let index = e.batch_index();
            Err(refused(e).at_index(index))
        }
    }
}

/// `GET /api/v1/channels/{channel}/events`: the page's events with their offsets, and where the next page starts.
///
/// Each event is written straight into the body (no copy of the page is built first). The page ends early, at the
/// first event that takes the events past [`MAX_PAGE_BYTES`], and `next_since` is then that event's offset; else it
/// is the store's `next_since`.
pub fn history_page<'a>(
    channel: &ChannelName,
    epoch: &str,
    events: impl IntoIterator<Item = (u64, &'a Value)>,
    next_since: Option<u64>,
) -> Reply {
    bounded_history_page(channel, epoch, events, next_since, MAX_PAGE_BYTES)
}

fn bounded_history_page<'a>(
    channel: &ChannelName,
    epoch: &str,
    events: impl IntoIterator<Item = (u64, &'a Value)>,
    mut next_since: Option<u64>,
    max_bytes: usize,
) -> Reply {
    let mut body = String::from("{\"channel\":");
    push_json(&mut body, channel.as_str());
    body.push_str(",\"epoch\":");
    push_json(&mut body, epoch);
    body.push_str(",\"events\":[");
    let start = body.len();
    let mut events = events.into_iter().peekable();
    while let Some((offset, event)) = events.next() {
        if body.len() > start {
            body.push(',');
        }
        // Writing a `Value` cannot fail: its map keys are strings.
        let _ = write!(body, "{{\"offset\":{offset},\"event\":{event}}}");
        if body.len() - start >= max_bytes && events.peek().is_some() {
            next_since = Some(offset);
            break;
        }
    }
    body.push_str("],\"next_since\":");
    match next_since {
        Some(offset) => {
            let _ = write!(body, "{offset}");
        }
        None => body.push_str("null"),
    }
    body.push('}');
    Reply::json_text(200, body)
}

/// Writes `text` as a JSON string.
fn push_json(body: &mut String, text: &str) {
    let _ = write!(body, "{}", Value::from(text));
}

/// `GET /api/v1/channels/{channel}/state`: the retained state (`null` when none) and the channel's last offset.
pub fn channel_state(
    channel: &ChannelName,
    epoch: &str,
    offset: u64,
    state: Option<&Value>,
) -> Reply {
    Reply::json(
        200,
        &json!({"channel": channel, "epoch": epoch, "offset": offset, "state": state}),
    )
}

/// `GET /api/v1/channels/{channel}/presence`: how many connections subscribe to or serve the channel, whether one
/// serves it, and at most [`PRESENCE_MEMBERS_MAX`](crate::wire::PRESENCE_MEMBERS_MAX) of them.
pub fn presence(channel: &ChannelName, presence: &Presence) -> Reply {
    Reply::json(
        200,
        &json!({
            "channel": channel,
            "count": presence.count,
            "serving": presence.serving,
            "members": presence.members,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Hub, HubConfig, Publish};
    use crate::time::Timestamp;
    use alloc::vec::Vec;

    /// The offset of a publish over the memory store (always done at once).
    fn done(p: Publish) -> u64 {
        match p {
            Publish::Done(offset) => offset,
            Publish::Pending(t) => panic!("the memory store kept {t:?} pending"),
            Publish::Duplicate { .. } => panic!("no key, no duplicate"),
        }
    }

    fn body(r: &Reply) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn health_and_readiness() {
        let r = health("1.2.3");
        assert_eq!(
            (r.status, body(&r)),
            (200, json!({"status": "healthy", "version": "1.2.3"}))
        );
        assert_eq!(body(&live()), json!({"status": "alive"}));
        let r = ready(None, 2, 3);
        assert_eq!(
            (r.status, body(&r)),
            (
                200,
                json!({"status": "ready", "connections": 2, "channels": 3})
            )
        );
        let r = ready(Some(NotReady::ShuttingDown), 2, 3);
        assert_eq!(
            (r.status, body(&r)),
            (
                503,
                json!({"status": "not_ready", "reason": "shutting_down", "connections": 2, "channels": 3})
            )
        );
        let r = ready(Some(NotReady::StorageUnavailable), 2, 3);
        assert_eq!(
            (r.status, body(&r)),
            (
                503,
                json!({"status": "not_ready", "reason": "storage_unavailable", "connections": 2, "channels": 3})
            )
        );
        let r = project_connections("p1", 4);
        assert_eq!(
            body(&r),
            json!({"project_id": "p1", "active_connections": 4})
        );
    }

    #[test]
    fn publish_answers_and_refusals() {
        let channel = ChannelName::new("a/b").unwrap();
        let d = duplicate(&channel, 7);
        assert_eq!(d.status, 200);
        assert_eq!(
            body(&d),
            json!({"channel": "a/b", "offset": 7, "duplicate": true})
        );
        let d = duplicate_batch(&channel, 7, 9);
        assert_eq!(
            (d.status, &body(&d)["last_offset"], &body(&d)["duplicate"]),
            (200, &json!(9), &json!(true))
        );
        let r = published(&channel, Ok(7)).unwrap();
        assert_eq!(
            (r.status, body(&r)),
            (201, json!({"channel": "a/b", "offset": 7}))
        );
        let mut hub = Hub::new(HubConfig {
            max_message_bytes: 16,
            ..HubConfig::default()
        });
        let too_big = hub.publish(
            Timestamp::ZERO,
            &channel,
            json!({"x": "0123456789abcdef"}),
            false,
        );
        let e = published(&channel, too_big.map(done)).unwrap_err();
        assert_eq!((e.status, e.code), (413, "PAYLOAD_TOO_LARGE"));
        let null = hub.publish(Timestamp::ZERO, &channel, Value::Null, false);
        let e = published(&channel, null.map(done)).unwrap_err();
        assert_eq!((e.status, e.code), (400, "VALIDATION_ERROR"));
    }

    #[test]
    fn pages_and_state() {
        let channel = ChannelName::new("a/b").unwrap();
        let (one, two) = (json!({"n": 1}), json!({"n": 2}));
        let r = history_page(&channel, "e1", [(1, &one), (2, &two)], Some(3));
        assert_eq!(
            body(&r),
            json!({"channel": "a/b", "epoch": "e1", "events": [{"offset": 1, "event": {"n": 1}}, {"offset": 2, "event": {"n": 2}}], "next_since": 3})
        );
        let r = channel_state(&channel, "e1", 2, Some(&two));
        assert_eq!(
            body(&r),
            json!({"channel": "a/b", "epoch": "e1", "offset": 2, "state": {"n": 2}})
        );
        let r = channel_state(&channel, "e1", 0, None);
        assert_eq!(body(&r)["state"], Value::Null);
    }

    #[test]
    fn a_page_ends_at_the_event_that_reaches_the_byte_bound() {
        let channel = ChannelName::new("a").unwrap();
        let events: Vec<Value> = (0..5).map(|n| json!(n)).collect();
        let offsets = || (1..).zip(events.iter());
        // `{"offset":N,"event":N}` is 22 bytes, and a comma separates events.
        let page = |max: usize, next: Option<u64>| {
            body(&bounded_history_page(&channel, "e", offsets(), next, max))
        };
        let all = page(1000, None);
        assert_eq!(all["events"].as_array().unwrap().len(), 5);
        assert_eq!(all["next_since"], Value::Null);
        assert_eq!(page(1000, Some(9))["next_since"], 9, "the store's cursor");
        let two = page(23, None);
        assert_eq!(
            two,
            json!({"channel": "a", "epoch": "e", "events": [{"offset": 1, "event": 0}, {"offset": 2, "event": 1}], "next_since": 2})
        );
        let one = page(22, None);
        assert_eq!(one["events"].as_array().unwrap().len(), 1);
        assert_eq!(one["next_since"], 1);
        let at_least_one = page(0, None);
        assert_eq!(at_least_one["events"].as_array().unwrap().len(), 1);
        assert_eq!(at_least_one["next_since"], 1);
        // Reaching the bound with the last event: the page is complete, the store's cursor stands.
        assert_eq!(page(22 * 5 + 4, None)["next_since"], Value::Null);
        let empty = body(&bounded_history_page(&channel, "e", [], Some(3), 0));
        assert_eq!(
            empty,
            json!({"channel": "a", "epoch": "e", "events": [], "next_since": 3})
        );
    }

    /// Eight events of 300 KB read through the hub at `limit` 1000: each page stays within the byte bound plus one
    /// event, and following `next_since` gives every event once, in order.
    #[test]
    fn big_events_page_by_bytes_and_every_event_comes_once() {
        let channel = ChannelName::new("big").unwrap();
        let mut hub = Hub::new(HubConfig {
            max_message_bytes: 400_000,
            ..HubConfig::default()
        });
        let now = Timestamp::ZERO;
        for n in 0..8u8 {
            let filler = String::from_utf8(alloc::vec![b'a' + n; 300_000]).unwrap();
            done(
                hub.publish(now, &channel, json!({"n": n, "filler": filler}), false)
                    .unwrap(),
            );
        }
        let mut since = None;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = hub.history(now, &channel, since, 1000);
            let reply = history_page(
                &channel,
                &page.epoch,
                page.events.iter().map(|(o, e)| (*o, &**e)),
                page.next_since,
            );
            assert!(
                reply.body.len() <= MAX_PAGE_BYTES + 300_100,
                "a page of {} bytes",
                reply.body.len()
            );
            let b = body(&reply);
            for e in b["events"].as_array().unwrap() {
                seen.push((
                    e["offset"].as_u64().unwrap(),
                    e["event"]["n"].as_u64().unwrap(),
                ));
            }
            pages += 1;
            match b["next_since"].as_u64() {
                Some(next) => since = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (1..=8).zip(0..8).collect::<Vec<_>>());
        assert_eq!(
            pages, 2,
            "the fourth event of 300 KB reaches 1 MiB: two pages of four"
        );
    }
}
