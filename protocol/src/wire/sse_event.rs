//! The text of a Server-Sent Events stream (PROTOCOL §8; the format is the HTML standard's "server-sent
//! events"): event blocks (`id:`, `event:`, `data:`, a blank line), the opening block (`retry:` and the starting
//! `id:`, no data, so the browser records the position without dispatching anything), keep-alive comments, and the
//! event name a channel event goes out under.
//!
//! Every `data:` is one line of compact JSON: serde_json escapes line breaks inside strings, so no event can break
//! out of its block.

use alloc::string::String;
use serde_json::Value;

use crate::wire::ChannelName;

/// A keep-alive: a comment line, ignored by the browser, that keeps proxies from timing the stream out.
pub const KEEP_ALIVE: &str = ":\n\n";

/// The event name of a position that could not be resumed (PROTOCOL §8).
pub const RESYNC: &str = "resync";

/// The event name of a refusal or a server error on the stream.
pub const ERROR: &str = "error";

/// Longest event name taken from an event's `event_type`; longer ones go out as `message`.
pub const MAX_EVENT_NAME_BYTES: usize = 64;

/// Names a channel event may not take: the stream's own events, and `open`, which `EventSource` fires itself.
const RESERVED_NAMES: [&str; 3] = [RESYNC, ERROR, "open"];

/// One event block.
pub fn event_block(id: Option<&str>, event: &str, data: &str) -> String {
    let mut out = String::with_capacity(id.map_or(0, str::len) + event.len() + data.len() + 24);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
    out
}

/// The first block of a stream: the reconnect delay and the starting position, with no data (nothing is
/// dispatched; the browser's last event id is set).
pub fn opening_block(retry_ms: u64, id: &str) -> String {
    alloc::format!("retry: {retry_ms}\nid: {id}\n\n")
}

/// The name a channel event goes out under: its `event_type` when that is a string of 1 to
/// [`MAX_EVENT_NAME_BYTES`] printable characters and not one of the stream's own names, else `message`.
pub fn event_name(event: &Value) -> &str {
    match event.get("event_type") {
        Some(Value::String(name))
            if !name.is_empty()
                && name.len() <= MAX_EVENT_NAME_BYTES
                && !name.chars().any(char::is_control)
                && !RESERVED_NAMES.contains(&name.as_str()) =>
        {
            name
        }
        _ => "message",
    }
}

/// The `data:` of a channel event: `{"channel", "offset", "event"}` (the channel tells a many-channel stream's
/// events apart; the offset spares a page from parsing the id).
pub fn channel_event_data(channel: &ChannelName, offset: u64, event: &Value) -> String {
    // Written around the event's own encoding, so the event is not copied into a new tree first.
    let event = serde_json::to_string(event).unwrap_or_default();
    let channel = serde_json::to_string(channel.as_str()).unwrap_or_default();
    alloc::format!("{{\"channel\":{channel},\"offset\":{offset},\"event\":{event}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blocks() {
        assert_eq!(
            event_block(Some("e:1"), "message", "{}"),
            "id: e:1\nevent: message\ndata: {}\n\n"
        );
        assert_eq!(event_block(None, "x", "1"), "event: x\ndata: 1\n\n");
        assert_eq!(opening_block(3000, "e:0"), "retry: 3000\nid: e:0\n\n");
    }

    #[test]
    fn event_names() {
        assert_eq!(
            event_name(&json!({"event_type": "progress_update"})),
            "progress_update"
        );
        for bad in [
            json!({"event_type": "a\nb"}),
            json!({"event_type": ""}),
            json!({"event_type": 3}),
            json!({"event_type": "resync"}),
            json!({"event_type": "error"}),
            json!({"event_type": "open"}),
            json!({"event_type": "x".repeat(65)}),
            json!("text"),
        ] {
            assert_eq!(event_name(&bad), "message", "{bad}");
        }
    }

    #[test]
    fn data_is_one_line() {
        let ch = ChannelName::new("a").unwrap();
        let data = channel_event_data(&ch, 4, &json!({"text": "two\nlines\r"}));
        assert!(!data.contains(['\n', '\r']));
        assert_eq!(
            serde_json::from_str::<Value>(&data).unwrap(),
            json!({"channel": "a", "offset": 4, "event": {"text": "two\nlines\r"}})
        );
    }
}
