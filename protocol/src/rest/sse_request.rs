//! What a Server-Sent Events request must carry, decided before its response starts (PROTOCOL §8): the token
//! (header, `?token=`, or the [`STREAM_TOKEN_COOKIE`] cookie, since `EventSource` cannot set headers), the
//! channels, where to resume, the grants on every channel, the CORS answer, and the response head.
//!
//! Everything that can refuse the request does so here, as an ordinary JSON error answer: once the `200` head is
//! written, the only thing left to say is an `event: error` and the end of the stream.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::server::{Action, Permissions, SseOpen, SseResume, SseTarget};
use crate::wire::ChannelName;
use crate::wire::sse_event_id::SseEventId;

use super::error_reply::ErrorReply;
use super::read_error::RequestReadError;
use super::request_head::RequestHead;
use super::route::Route;

/// The cookie a stream's token may come in (after the `Authorization` header and `?token=`). Only the stream
/// routes read it: they change nothing, so a cookie sent along by a cross-site page can do no more than read
/// what the token may read, and CORS keeps that page from seeing it.
pub const STREAM_TOKEN_COOKIE: &str = "switchboard_token";

/// The token of a stream request: `Authorization: Bearer`, then `?token=`, then the [`STREAM_TOKEN_COOKIE`].
pub fn stream_token(head: &RequestHead) -> Result<Option<String>, RequestReadError> {
    if let Some(token) = head.bearer_token()? {
        return Ok(Some(token));
    }
    Ok(head.header("cookie").and_then(|cookies| {
        cookies.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == STREAM_TOKEN_COOKIE && !value.trim().is_empty())
                .then(|| value.trim().to_owned())
        })
    }))
}

/// The stream a request asks for: its channels (or project) and where it resumes.
///
/// `Last-Event-ID` wins over `?since=` (a reconnecting browser sends the header and repeats the URL's `since`).
/// An unreadable `Last-Event-ID` resumes nowhere ([`SseResume::Unreadable`]: every channel gets a `resync`); an
/// unreadable `since` is a 400. On `/api/v1/sse` the channels are the `channel` parameters, in order, at least
/// one, none twice.
pub fn stream_open(route: &Route, head: &RequestHead) -> Result<SseOpen, ErrorReply> {
    let target = match route {
        Route::ChannelStream { channel } => SseTarget::Channels(alloc::vec![channel.clone()]),
        Route::ProjectStream { project_id, .. } => SseTarget::Project(project_id.clone()),
        Route::ChannelsStream => SseTarget::Channels(query_channels(head)?),
        _ => return Err(ErrorReply::not_found()),
    };
    let last_event_id = head
        .header("last-event-id")
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let resume = match last_event_id {
        Some(id) => match SseEventId::decode(id) {
            Ok(id) => SseResume::From(id),
            Err(_) => SseResume::Unreadable,
        },
        None => match head.query_param("since")? {
            Some(since) if !since.is_empty() => {
                let id = SseEventId::decode(&since)
                    .map_err(|e| ErrorReply::validation(format!("bad since: {e}")))?;
                let wanted = match &target {
                    SseTarget::Channels(channels) => channels.len(),
                    SseTarget::Project(_) => 1,
                };
                if id.0.len() != wanted {
                    return Err(ErrorReply::validation(format!(
                        "since has {} positions for {wanted} channels",
                        id.0.len()
                    )));
                }
                SseResume::From(id)
            }
            _ => SseResume::Fresh,
        },
    };
    Ok(SseOpen { target, resume })
}

fn query_channels(head: &RequestHead) -> Result<Vec<ChannelName>, ErrorReply> {
    let mut channels: Vec<ChannelName> = Vec::new();
    for (key, value) in head.query()? {
        if key != "channel" {
            continue;
        }
        let channel = ChannelName::new(&value)
            .map_err(|e| ErrorReply::invalid_channel(format!("bad channel name {value:?}: {e}")))?;
        if channels.contains(&channel) {
            return Err(ErrorReply::validation(format!(
                "channel {channel} is named twice"
            )));
        }
        channels.push(channel);
    }
    if channels.is_empty() {
        return Err(ErrorReply::validation(
            "name at least one channel: /api/v1/sse?channel=a&channel=b",
        ));
    }
    Ok(channels)
}

/// Refuses a stream of more than `max_channels` channels (400) or one with a channel the permissions do not let
/// it read (403), before the stream starts.
pub fn check_stream(
    open: &SseOpen,
    permissions: &Permissions,
    max_channels: usize,
) -> Result<(), ErrorReply> {
    let channels: Vec<ChannelName> = match &open.target {
        SseTarget::Channels(channels) => channels.clone(),
        SseTarget::Project(id) => alloc::vec![
            crate::wire::project_stream::project_channel(id)
                .map_err(|e| ErrorReply::invalid_channel(format!("bad project id {id:?}: {e}")))?
        ],
    };
    if channels.len() > max_channels {
        return Err(ErrorReply::validation(format!(
            "a stream carries at most {max_channels} channels"
        )));
    }
    match channels
        .iter()
        .find(|c| !permissions.allows(Action::Subscribe, c))
    {
        Some(denied) => Err(ErrorReply::forbidden(format!(
            "the token does not allow Subscribe on {denied}"
        ))),
        None => Ok(()),
    }
}

/// The request's `Origin` when it is one of `allowed` (the `--allowed-origin` list), for
/// `Access-Control-Allow-Origin`. An empty list allows no cross-origin reads (the same-origin dashboard needs
/// none).
pub fn cors_origin<'h>(allowed: &[String], head: &'h RequestHead) -> Option<&'h str> {
    let origin = head.header("origin")?.trim();
    let bare = origin.trim_end_matches('/');
    allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(bare))
        .then_some(origin)
}

/// The head of a stream's `200`: `text/event-stream`, not cached, not buffered by proxies, and delimited by the
/// end of the connection (no length, no chunking), with the CORS headers for an allowed origin.
pub fn stream_head(allow_origin: Option<&str>) -> Vec<u8> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\n",
    );
    if let Some(origin) = allow_origin {
        head.push_str("Access-Control-Allow-Origin: ");
        head.push_str(origin);
        head.push_str("\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::request_head::head;
    use crate::rest::route::route;
    use crate::wire::sse_event_id::SsePosition;

    fn ch(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    #[test]
    fn token_from_header_query_or_cookie() {
        let h = head(
            "GET",
            "/",
            1,
            &[("Cookie", "a=1; switchboard_token=c1 ; b=2")],
        );
        assert_eq!(stream_token(&h).unwrap().as_deref(), Some("c1"));
        let h = head("GET", "/?token=q", 1, &[("Cookie", "switchboard_token=c1")]);
        assert_eq!(stream_token(&h).unwrap().as_deref(), Some("q"));
        let h = head("GET", "/", 1, &[("Cookie", "switchboard_token=")]);
        assert_eq!(stream_token(&h).unwrap(), None);
    }

    #[test]
    fn channels_and_resume_points() {
        let r = route("GET", "/api/v1/sse").unwrap();
        let open = stream_open(
            &r,
            &head("GET", "/api/v1/sse?channel=a&channel=b%2Fc", 1, &[]),
        )
        .unwrap();
        assert_eq!(
            open.target,
            SseTarget::Channels(alloc::vec![ch("a"), ch("b/c")])
        );
        assert_eq!(open.resume, SseResume::Fresh);
        for bad in [
            "/api/v1/sse",
            "/api/v1/sse?channel=a&channel=a",
            "/api/v1/sse?channel=a%20b",
        ] {
            assert_eq!(
                stream_open(&r, &head("GET", bad, 1, &[]))
                    .unwrap_err()
                    .status,
                400,
                "{bad}"
            );
        }
        let one = route("GET", "/api/v1/channels/a/sse").unwrap();
        let since = stream_open(&one, &head("GET", "/x?since=e:4", 1, &[])).unwrap();
        assert_eq!(since.resume, SseResume::From(SseEventId::single("e", 4)));
        let bare = stream_open(&one, &head("GET", "/x?since=4", 1, &[])).unwrap();
        assert_eq!(
            bare.resume,
            SseResume::From(SseEventId(alloc::vec![SsePosition {
                epoch: String::new(),
                offset: 4
            }]))
        );
        assert_eq!(
            stream_open(&one, &head("GET", "/x?since=e:x", 1, &[]))
                .unwrap_err()
                .code,
            "VALIDATION_ERROR"
        );
        assert_eq!(
            stream_open(&one, &head("GET", "/x?since=e:1,:2", 1, &[]))
                .unwrap_err()
                .status,
            400
        );
        // The header wins over since; an unreadable header resumes nowhere rather than failing.
        let h = head("GET", "/x?since=e:4", 1, &[("Last-Event-ID", "e:9")]);
        assert_eq!(
            stream_open(&one, &h).unwrap().resume,
            SseResume::From(SseEventId::single("e", 9))
        );
        let h = head("GET", "/x?since=e:4", 1, &[("Last-Event-ID", "garbage:")]);
        assert_eq!(stream_open(&one, &h).unwrap().resume, SseResume::Unreadable);
    }

    #[test]
    fn grants_and_channel_count_are_checked_first() {
        let open = SseOpen {
            target: SseTarget::Channels(alloc::vec![ch("a"), ch("b")]),
            resume: SseResume::Fresh,
        };
        assert!(check_stream(&open, &Permissions::allow_all(), 2).is_ok());
        assert_eq!(
            check_stream(&open, &Permissions::allow_all(), 1)
                .unwrap_err()
                .status,
            400
        );
        let only_a = Permissions::from_patterns(
            alloc::vec!["a".into()],
            alloc::vec![],
            alloc::vec![],
            alloc::vec![],
        );
        assert_eq!(check_stream(&open, &only_a, 2).unwrap_err().status, 403);
        let project = SseOpen {
            target: SseTarget::Project("a b".into()),
            resume: SseResume::Fresh,
        };
        assert_eq!(
            check_stream(&project, &Permissions::allow_all(), 2)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn cors_and_head() {
        let allowed = alloc::vec!["https://app.example/".to_owned()];
        let h = head("GET", "/", 1, &[("Origin", "https://app.example")]);
        assert_eq!(cors_origin(&allowed, &h), Some("https://app.example"));
        let other = head("GET", "/", 1, &[("Origin", "https://evil.example")]);
        assert_eq!(cors_origin(&allowed, &other), None);
        assert_eq!(cors_origin(&[], &h), None);
        let text = String::from_utf8(stream_head(Some("https://app.example"))).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"));
        assert!(text.contains("Access-Control-Allow-Origin: https://app.example\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
        assert!(
            !String::from_utf8(stream_head(None))
                .unwrap()
                .contains("Access-Control")
        );
    }
}
