//! What the REST routes read from the query and the body, checked: the publish body, the history page's
//! `since` and `limit`, and the project stream's `since`.

use alloc::format;
use alloc::vec::Vec;

use serde_json::Value;

use super::error_reply::ErrorReply;
use super::limits::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use super::request_head::RequestHead;
use crate::wire::{IdempotencyKey, MAX_BATCH_EVENTS};

/// A publish request's body: `{"event": …, "retain": bool?, "idempotency_key": string?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishBody {
    /// The event (present and not null).
    pub event: Value,
    /// Whether it becomes the channel's retained state (default false).
    pub retain: bool,
    /// The body's `idempotency_key` (see [`idempotency_key`] for the header).
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Parses `{event, retain?}`: a JSON object whose `event` is present and not null, and whose `retain` is a
/// boolean when present.
pub fn publish_body(body: &[u8]) -> Result<PublishBody, ErrorReply> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ErrorReply::invalid_json(format!("the body is not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ErrorReply::invalid_json("the body must be a JSON object"));
    };
    one_event(obj)
}

fn one_event(
    mut obj: serde_json::Map<alloc::string::String, Value>,
) -> Result<PublishBody, ErrorReply> {
    let event = match obj.remove("event") {
        None | Some(Value::Null) => return Err(ErrorReply::validation("event is required")),
        Some(e) => e,
    };
    let retain = match obj.remove("retain") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ErrorReply::validation("retain must be a boolean")),
    };
    let idempotency_key = body_key(&mut obj)?;
    Ok(PublishBody {
        event,
        retain,
        idempotency_key,
    })
}

/// The body's `idempotency_key`: absent (or null), or a string of 1 to 128 bytes without control characters.
fn body_key(
    obj: &mut serde_json::Map<alloc::string::String, Value>,
) -> Result<Option<IdempotencyKey>, ErrorReply> {
    match obj.remove("idempotency_key") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(key)) => IdempotencyKey::new(key)
            .map(Some)
            .map_err(|e| ErrorReply::validation(format!("idempotency_key is invalid: {e}"))),
        Some(_) => Err(ErrorReply::validation("idempotency_key must be a string")),
    }
}

/// A publish's idempotency key: the `Idempotency-Key` header's, or the body's (`body_key`); both may be given
/// only when they are the same key.
pub fn idempotency_key(
    head: &RequestHead,
    body_key: Option<IdempotencyKey>,
) -> Result<Option<IdempotencyKey>, ErrorReply> {
    let Some(header) = head.header("idempotency-key") else {
        return Ok(body_key);
    };
    let header = IdempotencyKey::new(header).map_err(|e| {
        ErrorReply::validation(format!("the Idempotency-Key header is invalid: {e}"))
    })?;
    match body_key {
        Some(body) if body != header => Err(ErrorReply::validation(
            "idempotency_key differs from the Idempotency-Key header",
        )),
        _ => Ok(Some(header)),
    }
}

/// A batch publish's body: `{"events": [...], "retain_last": bool?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchBody {
    /// The events, in order: 1 to [`MAX_BATCH_EVENTS`], none null.
    pub events: Vec<Value>,
    /// Whether the last becomes the channel's retained state (default false).
    pub retain_last: bool,
    /// The body's `idempotency_key`, one for the whole batch.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// What a `POST …/events` body asks for: one event, or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum PublishRequest {
    /// `{event, retain?}`.
    One(PublishBody),
    /// `{events, retain_last?}`.
    Batch(BatchBody),
}

/// Parses a publish body: a batch when it has `events` ([`BatchBody`]: an array of 1 to [`MAX_BATCH_EVENTS`]
/// events, none null, no `event` beside it, `retain_last` a boolean when present; a null element is refused
/// with its index in `error.index` and the message), else one event as [`publish_body`] reads it.
pub fn publish_request(body: &[u8]) -> Result<PublishRequest, ErrorReply> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ErrorReply::invalid_json(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(ErrorReply::invalid_json("the body must be a JSON object"));
    };
    let events = match obj.remove("events") {
        None | Some(Value::Null) => return one_event(obj).map(PublishRequest::One),
        Some(Value::Array(events)) => events,
        Some(_) => return Err(ErrorReply::validation("events must be an array")),
    };
    if !matches!(obj.get("event"), None | Some(Value::Null)) {
        return Err(ErrorReply::validation(
            "give either event or events, not both",
        ));
    }
    if events.is_empty() || events.len() > MAX_BATCH_EVENTS {
        return Err(ErrorReply::validation(format!(
            "events must hold from 1 to {MAX_BATCH_EVENTS} events, not {}",
            events.len()
        )));
    }
    if let Some(index) = events.iter().position(Value::is_null) {
        return Err(ErrorReply::validation(format!(
            "events[{index}]: a channel event must not be null"
        ))
        .at_index(Some(index)));
    }
    let retain_last = match obj.remove("retain_last") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ErrorReply::validation("retain_last must be a boolean")),
    };
    let idempotency_key = body_key(&mut obj)?;
    Ok(PublishRequest::Batch(BatchBody {
        events,
        retain_last,
        idempotency_key,
    }))
}

/// A history page request: events after `since`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// The offset after which events are listed (0: from the oldest kept).
    pub since: u64,
    /// Most events on the page, from 1 to [`MAX_PAGE_LIMIT`].
    pub limit: u32,
}

/// Reads `since` (default 0) and `limit` (default [`DEFAULT_PAGE_LIMIT`], clamped to [`MAX_PAGE_LIMIT`]; 0 or
/// not a number is refused).
pub fn history_query(head: &RequestHead) -> Result<PageQuery, ErrorReply> {
    let since = match head.query_param("since")? {
        None => 0,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| ErrorReply::validation("since must be a non-negative integer"))?,
    };
    let limit = match head.query_param("limit")? {
        None => DEFAULT_PAGE_LIMIT,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n >= 1 => {
                u32::try_from(n.min(u64::from(MAX_PAGE_LIMIT))).unwrap_or(MAX_PAGE_LIMIT)
            }
            _ => {
                return Err(ErrorReply::validation(format!(
                    "limit must be an integer from 1 to {MAX_PAGE_LIMIT}"
                )));
            }
        },
    };
    Ok(PageQuery { since, limit })
}

/// The project stream upgrade's `since`: absent or empty is `None` (live only), else a non-negative offset.
pub fn stream_since(head: &RequestHead) -> Result<Option<u64>, ErrorReply> {
    match head.query_param("since")? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ErrorReply::validation("since must be a non-negative integer offset")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::request_head::head;
    use serde_json::json;

    #[test]
    fn publish_bodies() {
        assert_eq!(
            publish_body(br#"{"event":{"a":1},"retain":true}"#).unwrap(),
            PublishBody {
                event: json!({"a": 1}),
                retain: true,
                idempotency_key: None,
            }
        );
        assert_eq!(
            publish_body(br#"{"event":3,"retain":null}"#).unwrap(),
            PublishBody {
                event: json!(3),
                retain: false,
                idempotency_key: None,
            }
        );
        let code = |b: &[u8]| publish_body(b).unwrap_err().code;
        assert_eq!(code(b"nope"), "INVALID_JSON");
        assert_eq!(code(b"[1]"), "INVALID_JSON");
        assert_eq!(code(b"{}"), "VALIDATION_ERROR");
        assert_eq!(code(br#"{"event":null}"#), "VALIDATION_ERROR");
        assert_eq!(code(br#"{"event":1,"retain":"yes"}"#), "VALIDATION_ERROR");
    }

    #[test]
    fn idempotency_keys_from_the_body_and_the_header() {
        let key = |k: &str| Some(IdempotencyKey::new(k).unwrap());
        let Ok(PublishRequest::Batch(batch)) =
            publish_request(br#"{"events":[1],"idempotency_key":"b-1"}"#)
        else {
            panic!("a batch");
        };
        assert_eq!(batch.idempotency_key, key("b-1"));
        let one = publish_body(br#"{"event":1,"idempotency_key":"k"}"#).unwrap();
        assert_eq!(one.idempotency_key, key("k"));
        for bad in [
            &br#"{"event":1,"idempotency_key":""}"#[..],
            br#"{"event":1,"idempotency_key":7}"#,
            br#"{"events":[1],"idempotency_key":false}"#,
        ] {
            let e = publish_request(bad).unwrap_err();
            assert_eq!(e.code, "VALIDATION_ERROR");
            assert!(e.message.starts_with("idempotency_key"), "{}", e.message);
        }
        let long = "k".repeat(129);
        let with = |v: &str| head("POST", "/", 1, &[("Idempotency-Key", v)]);
        let none = head("POST", "/", 1, &[]);
        assert_eq!(idempotency_key(&none, key("b")), Ok(key("b")));
        assert_eq!(idempotency_key(&with("h"), None), Ok(key("h")));
        assert_eq!(idempotency_key(&with("h"), key("h")), Ok(key("h")));
        for (head, body) in [(with("h"), key("b")), (with(&long), None), (with(""), None)] {
            let e = idempotency_key(&head, body).unwrap_err();
            assert_eq!(e.code, "VALIDATION_ERROR");
            assert!(e.message.contains("dempotency"), "{}", e.message);
        }
    }

    #[test]
    fn batch_bodies() {
        assert_eq!(
            publish_request(br#"{"events":[{"a":1},2],"retain_last":true}"#).unwrap(),
            PublishRequest::Batch(BatchBody {
                events: alloc::vec![json!({"a": 1}), json!(2)],
                retain_last: true,
                idempotency_key: None,
            })
        );
        assert_eq!(
            publish_request(br#"{"event":3}"#).unwrap(),
            PublishRequest::One(PublishBody {
                event: json!(3),
                retain: false,
                idempotency_key: None,
            })
        );
        let null = publish_request(br#"{"events":[1,2,3,null]}"#).unwrap_err();
        assert_eq!((null.code, null.index), ("VALIDATION_ERROR", Some(3)));
        assert!(null.message.starts_with("events[3]: "), "{}", null.message);
        assert_eq!(null.body()["error"]["index"], json!(3));
        let code = |b: &[u8]| publish_request(b).unwrap_err();
        assert_eq!(code(br#"{"events":[]}"#).code, "VALIDATION_ERROR");
        assert_eq!(code(br#"{"events":{}}"#).code, "VALIDATION_ERROR");
        assert_eq!(
            code(br#"{"events":[1],"event":1}"#).code,
            "VALIDATION_ERROR"
        );
        assert_eq!(
            code(br#"{"events":[1],"retain_last":1}"#).code,
            "VALIDATION_ERROR"
        );
        let too_many = alloc::format!("{{\"events\":[{}1]}}", "1,".repeat(MAX_BATCH_EVENTS));
        let e = code(too_many.as_bytes());
        assert_eq!((e.code, e.index), ("VALIDATION_ERROR", None));
        assert!(e.message.contains("from 1 to 1000"), "{}", e.message);
        let mut max = alloc::format!("{{\"events\":[{}1]}}", "1,".repeat(MAX_BATCH_EVENTS - 1));
        assert!(publish_request(max.as_bytes()).is_ok());
        max.clear();
    }

    #[test]
    fn history_queries_default_clamp_and_refuse() {
        let q = |target: &str| history_query(&head("GET", target, 1, &[]));
        assert_eq!(
            q("/"),
            Ok(PageQuery {
                since: 0,
                limit: 100
            })
        );
        assert_eq!(q("/?since=7&limit=5"), Ok(PageQuery { since: 7, limit: 5 }));
        assert_eq!(
            q("/?limit=1000"),
            Ok(PageQuery {
                since: 0,
                limit: 1000
            })
        );
        assert_eq!(
            q("/?limit=1001"),
            Ok(PageQuery {
                since: 0,
                limit: MAX_PAGE_LIMIT
            })
        );
        assert_eq!(
            q("/?limit=99999999999999999999").unwrap_err().code,
            "VALIDATION_ERROR",
            "beyond u64 is not a number"
        );
        for bad in [
            "/?limit=0",
            "/?limit=-1",
            "/?limit=x",
            "/?since=-1",
            "/?since=1.5",
        ] {
            let e = q(bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, "VALIDATION_ERROR"), "{bad}");
        }
        assert_eq!(
            q("/?limit=0").unwrap_err().message,
            "limit must be an integer from 1 to 1000"
        );
        assert_eq!(q("/?since=%zz").unwrap_err().code, "BAD_REQUEST");
    }

    #[test]
    fn stream_since_is_optional() {
        let s = |target: &str| stream_since(&head("GET", target, 1, &[]));
        assert_eq!(s("/"), Ok(None));
        assert_eq!(s("/?since="), Ok(None));
        assert_eq!(s("/?since=12"), Ok(Some(12)));
        assert_eq!(s("/?since=x").unwrap_err().code, "VALIDATION_ERROR");
    }
}
