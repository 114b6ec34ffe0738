//! The answers of the routes whose bodies depend only on what the hub returned: health, readiness, a publish, a
//! history page, a channel's state, and a refused publish.

use alloc::vec::Vec;

use serde_json::{Value, json};

use crate::server::{HubError, StorageError};
use crate::wire::ChannelName;

use super::error_reply::ErrorReply;
use super::reply::Reply;

/// `GET /health`: the server's `version`.
pub fn health(version: &str) -> Reply {
    Reply::json(200, &json!({"status": "healthy", "version": version}))
}

/// `GET /health/live`.
pub fn live() -> Reply {
    Reply::json(200, &json!({"status": "alive"}))
}

/// `GET /health/ready`: 200 with the counts, or 503 while the server drains.
pub fn ready(draining: bool, connections: usize, channels: usize) -> Reply {
    if draining {
        Reply::json(
            503,
            &json!({"status": "not_ready", "reason": "shutting_down", "connections": connections, "channels": channels}),
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
        Err(HubError::Limit(l)) => Err(ErrorReply::payload_too_large(
            alloc::string::ToString::to_string(&l),
        )),
        Err(other) => Err(ErrorReply::validation(alloc::string::ToString::to_string(
            &other,
        ))),
    }
}

/// `GET /api/v1/channels/{channel}/events`: the page's events with their offsets, and where the next page starts.
pub fn history_page<'a>(
    channel: &ChannelName,
    epoch: &str,
    events: impl IntoIterator<Item = (u64, &'a Value)>,
    next_since: Option<u64>,
) -> Reply {
    let events: Vec<Value> = events
        .into_iter()
        .map(|(offset, event)| json!({"offset": offset, "event": event}))
        .collect();
    Reply::json(
        200,
        &json!({"channel": channel, "epoch": epoch, "events": events, "next_since": next_since}),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Hub, HubConfig, Publish};
    use crate::time::Timestamp;

    /// The offset of a publish over the memory store (always done at once).
    fn done(p: Publish) -> u64 {
        match p {
            Publish::Done(offset) => offset,
            Publish::Pending(t) => panic!("the memory store kept {t:?} pending"),
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
        let r = ready(false, 2, 3);
        assert_eq!(
            (r.status, body(&r)),
            (
                200,
                json!({"status": "ready", "connections": 2, "channels": 3})
            )
        );
        let r = ready(true, 2, 3);
        assert_eq!(
            (r.status, body(&r)),
            (
                503,
                json!({"status": "not_ready", "reason": "shutting_down", "connections": 2, "channels": 3})
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
}
