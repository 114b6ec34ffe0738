//! The route table (PROTOCOL §5, §6, §7): method and path → [`Route`], or the 404/405/400 error.
//!
//! Channel names in paths are percent-encoded (`projects%2Fp1`); an unencoded `/` inside the name is accepted too
//! (`/api/v1/channels/projects/p1/events` is channel `projects/p1`), since the route's fixed suffix (`/events`,
//! `/state`, `/presence`) is matched from the end and a channel name may itself end in `events`, `state` or `presence`. A project id is one
//! segment: `/` in it, encoded or not, makes no project.
//!
//! A route that names a channel or project needs a token when a verifier is configured, so a bad name there is a
//! [`NoRoute::BadName`]: the caller is told about the name only once its token is found valid
//! ([`unrouted`](super::auth_rule::unrouted)). A project-stream upgrade takes its id as given: a bad one is answered
//! on the WebSocket, with an `error` and close 1008, like a project the token may not read.

use alloc::format;
use alloc::string::String;

use crate::wire::ChannelName;
use crate::wire::project_stream::project_channel;

use super::error_reply::ErrorReply;
use super::query::percent_decode;

/// A recognised route.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `GET /health`.
    Health,
    /// `GET /health/live`.
    Live,
    /// `GET /health/ready`.
    Ready,
    /// `GET /api/info`.
    Info,
    /// `GET /api/connections`.
    Connections,
    /// `GET /metrics`.
    Metrics,
    /// `GET /api/v1/projects/{id}/connections`.
    ProjectConnections {
        /// The project id, decoded.
        project_id: String,
        /// The project's channel, `projects/{id}`.
        channel: ChannelName,
    },
    /// `POST /api/v1/channels/{channel}/events`.
    PublishEvent {
        /// The channel.
        channel: ChannelName,
    },
    /// `GET /api/v1/channels/{channel}/events`.
    ListEvents {
        /// The channel.
        channel: ChannelName,
    },
    /// `GET /api/v1/channels/{channel}/state`.
    ChannelState {
        /// The channel.
        channel: ChannelName,
    },
    /// `GET /api/v1/channels/{channel}/presence`.
    ChannelPresence {
        /// The channel.
        channel: ChannelName,
    },
    /// `GET /api/ws`: native dialect upgrade.
    NativeSocket,
    /// `GET /api/v1/ws/projects/{id}/stream` or `GET /api/v1/projects/{id}/stream`: project stream upgrade.
    ProjectSocket {
        /// The project id, decoded; not checked (the hub refuses a bad one on the WebSocket).
        project_id: String,
    },
    /// `GET /ws`: channel payload upgrade.
    ChannelPayloadSocket,
    /// `GET /api/v1/channels/{channel}/sse`: one channel's Server-Sent Events stream.
    ChannelStream {
        /// The channel.
        channel: ChannelName,
    },
    /// `GET /api/v1/sse?channel=a&channel=b`: a stream of several channels (named in the query).
    ChannelsStream,
    /// `GET /api/v1/projects/{id}/sse`: a project's stream, in the project-stream dialect's messages.
    ProjectStream {
        /// The project id, decoded.
        project_id: String,
        /// The project's channel, `projects/{id}`.
        channel: ChannelName,
    },
    /// `GET /` or `GET /ui`: the dashboard page (when the server serves it).
    Dashboard,
    /// `GET /api/v1/channels`: the channels with subscribers or a server, with offsets and subscriber counts.
    ListChannels,
    /// `POST /api/v1/channels/{channel}/call`: a routed call made over HTTP, `{method, params}`.
    CallChannel {
        /// The channel.
        channel: ChannelName,
    },
}

impl Route {
    /// Whether this route is a Server-Sent Events stream (answered by the stream writer, not as a REST reply).
    pub fn is_stream(&self) -> bool {
        matches!(
            self,
            Route::ChannelStream { .. } | Route::ChannelsStream | Route::ProjectStream { .. }
        )
    }

    /// Whether this route is a WebSocket endpoint.
    pub fn is_socket(&self) -> bool {
        matches!(
            self,
            Route::NativeSocket | Route::ProjectSocket { .. } | Route::ChannelPayloadSocket
        )
    }
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoRoute {
    /// No such path, or a method the path does not allow: the same answer whoever asks.
    Unmatched(ErrorReply),
    /// A route that needs a token when a verifier is configured (one naming a channel or project), with a name in
    /// its path that is not valid.
    BadName(ErrorReply),
}

impl NoRoute {
    /// The answer, whoever asks.
    pub fn into_reply(self) -> ErrorReply {
        match self {
            NoRoute::Unmatched(e) | NoRoute::BadName(e) => e,
        }
    }

    /// Whether the request's token is to be checked before the answer is given.
    pub fn needs_token(&self) -> bool {
        matches!(self, NoRoute::BadName(_))
    }
}

/// Matches a request. Unknown paths are 404; known paths with another method are 405 with `Allow`; a bad channel
/// name or project id in the path is 400.
pub fn route(method: &str, raw_path: &str) -> Result<Route, ErrorReply> {
    match_route(method, raw_path).map_err(NoRoute::into_reply)
}

/// Matches a request, telling a bad name apart from an unknown route.
pub fn match_route(method: &str, raw_path: &str) -> Result<Route, NoRoute> {
    let (route, allow): (Route, &[&str]) = match raw_path {
        "/health" => (Route::Health, &["GET", "HEAD"]),
        "/health/live" => (Route::Live, &["GET", "HEAD"]),
        "/health/ready" => (Route::Ready, &["GET", "HEAD"]),
        "/api/info" => (Route::Info, &["GET", "HEAD"]),
        "/api/connections" => (Route::Connections, &["GET", "HEAD"]),
        "/metrics" => (Route::Metrics, &["GET", "HEAD"]),
        "/api/ws" => (Route::NativeSocket, &["GET"]),
        "/ws" => (Route::ChannelPayloadSocket, &["GET"]),
        "/api/v1/sse" => (Route::ChannelsStream, &["GET"]),
        "/" | "/ui" => (Route::Dashboard, &["GET", "HEAD"]),
        "/api/v1/channels" => (Route::ListChannels, &["GET", "HEAD"]),
        path => return route_with_params(method, path),
    };
    check_method(method, allow).map_err(NoRoute::Unmatched)?;
    Ok(route)
}

fn route_with_params(method: &str, path: &str) -> Result<Route, NoRoute> {
    let allowed = |allow: &[&str]| check_method(method, allow).map_err(NoRoute::Unmatched);
    if let Some(rest) = path.strip_prefix("/api/v1/channels/") {
        if let Some(raw) = rest.strip_suffix("/events") {
            allowed(&["GET", "HEAD", "POST"])?;
            let channel = channel_from_path(raw).map_err(NoRoute::BadName)?;
            return Ok(if method == "POST" {
                Route::PublishEvent { channel }
            } else {
                Route::ListEvents { channel }
            });
        }
        if let Some(raw) = rest.strip_suffix("/state") {
            allowed(&["GET", "HEAD"])?;
            return Ok(Route::ChannelState {
                channel: channel_from_path(raw).map_err(NoRoute::BadName)?,
            });
        }
        if let Some(raw) = rest.strip_suffix("/call") {
            allowed(&["POST"])?;
            return Ok(Route::CallChannel {
                channel: channel_from_path(raw).map_err(NoRoute::BadName)?,
            });
        }
        if let Some(raw) = rest.strip_suffix("/sse") {
            allowed(&["GET"])?;
            return Ok(Route::ChannelStream {
                channel: channel_from_path(raw).map_err(NoRoute::BadName)?,
            });
        }
        if let Some(raw) = rest.strip_suffix("/presence") {
            allowed(&["GET", "HEAD"])?;
            return Ok(Route::ChannelPresence {
                channel: channel_from_path(raw).map_err(NoRoute::BadName)?,
            });
        }
        return Err(NoRoute::Unmatched(ErrorReply::not_found()));
    }
    let project = path
        .strip_prefix("/api/v1/ws/projects/")
        .and_then(|r| r.strip_suffix("/stream"))
        .map(|id| (id, Some(true)))
        .or_else(|| {
            let r = path.strip_prefix("/api/v1/projects/")?;
            if let Some(raw_id) = r.strip_suffix("/sse") {
                return Some((raw_id, None));
            }
            r.strip_suffix("/stream")
                .map(|id| (id, Some(true)))
                .or_else(|| r.strip_suffix("/connections").map(|id| (id, Some(false))))
        });
    match project {
        Some((raw_id, None)) => {
            allowed(&["GET"])?;
            let (project_id, channel) = project_from_path(raw_id).map_err(NoRoute::BadName)?;
            Ok(Route::ProjectStream {
                project_id,
                channel,
            })
        }
        Some((raw_id, Some(true))) => {
            allowed(&["GET"])?;
            let project_id =
                percent_decode(raw_id, false).map_err(|e| NoRoute::BadName(ErrorReply::from(e)))?;
            Ok(Route::ProjectSocket { project_id })
        }
        Some((raw_id, Some(false))) => {
            allowed(&["GET", "HEAD"])?;
            let (project_id, channel) = project_from_path(raw_id).map_err(NoRoute::BadName)?;
            Ok(Route::ProjectConnections {
                project_id,
                channel,
            })
        }
        None => Err(NoRoute::Unmatched(ErrorReply::not_found())),
    }
}

fn check_method(method: &str, allow: &[&str]) -> Result<(), ErrorReply> {
    if allow.contains(&method) {
        Ok(())
    } else {
        Err(ErrorReply::method_not_allowed(allow))
    }
}

/// Decodes and validates a channel name taken from a path.
pub fn channel_from_path(raw: &str) -> Result<ChannelName, ErrorReply> {
    let decoded = percent_decode(raw, false).map_err(ErrorReply::from)?;
    ChannelName::new(&decoded)
        .map_err(|e| ErrorReply::invalid_channel(format!("bad channel name {decoded:?}: {e}")))
}

/// Decodes a project id, with the project channel it names ([`project_channel`]).
pub fn project_from_path(raw: &str) -> Result<(String, ChannelName), ErrorReply> {
    let id = percent_decode(raw, false).map_err(ErrorReply::from)?;
    let channel = project_channel(&id)
        .map_err(|e| ErrorReply::invalid_channel(format!("bad project id {id:?}: {e}")))?;
    Ok((id, channel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;
    use alloc::vec;

    fn ch(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    #[test]
    fn fixed_routes() {
        assert_eq!(route("GET", "/health"), Ok(Route::Health));
        assert_eq!(route("HEAD", "/health/live"), Ok(Route::Live));
        assert_eq!(route("GET", "/health/ready"), Ok(Route::Ready));
        assert_eq!(route("GET", "/api/info"), Ok(Route::Info));
        assert_eq!(route("GET", "/api/connections"), Ok(Route::Connections));
        assert_eq!(route("GET", "/metrics"), Ok(Route::Metrics));
        assert_eq!(route("GET", "/api/ws"), Ok(Route::NativeSocket));
        assert_eq!(route("GET", "/ws"), Ok(Route::ChannelPayloadSocket));
        assert!(route("GET", "/api/ws").unwrap().is_socket());
    }

    #[test]
    fn channel_routes_decode_names() {
        assert_eq!(
            route("POST", "/api/v1/channels/projects%2Fp1/events"),
            Ok(Route::PublishEvent {
                channel: ch("projects/p1")
            })
        );
        assert_eq!(
            route("GET", "/api/v1/channels/projects/p1/events"),
            Ok(Route::ListEvents {
                channel: ch("projects/p1")
            })
        );
        assert_eq!(
            route("GET", "/api/v1/channels/a%40b/state"),
            Ok(Route::ChannelState { channel: ch("a@b") })
        );
        assert_eq!(
            route("GET", "/api/v1/channels/a%20b/state")
                .unwrap_err()
                .code,
            "INVALID_CHANNEL"
        );
        assert_eq!(
            route("GET", "/api/v1/channels/%2Fa/state")
                .unwrap_err()
                .code,
            "INVALID_CHANNEL"
        );
        assert_eq!(
            route("GET", "/api/v1/channels/a%zz/state")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            route("GET", "/api/v1/channels/a/nope").unwrap_err().status,
            404
        );
    }

    #[test]
    fn reserved_channel_names_are_refused_on_every_channel_route() {
        for (method, path) in [
            ("POST", "/api/v1/channels/error/events"),
            ("GET", "/api/v1/channels/error/events"),
            ("POST", "/api/v1/channels/subscription/events"),
            ("GET", "/api/v1/channels/%65rror/state"),
        ] {
            let refused = route(method, path).unwrap_err();
            assert_eq!(
                (refused.status, refused.code),
                (400, "INVALID_CHANNEL"),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn project_routes() {
        let p = |s: &str| s.to_owned();
        assert_eq!(
            route("GET", "/api/v1/ws/projects/p1/stream"),
            Ok(Route::ProjectSocket {
                project_id: p("p1")
            })
        );
        assert_eq!(
            route("GET", "/api/v1/projects/p1/stream"),
            Ok(Route::ProjectSocket {
                project_id: p("p1")
            })
        );
        assert_eq!(
            route("GET", "/api/v1/projects/p%2D1/connections"),
            Ok(Route::ProjectConnections {
                project_id: p("p-1"),
                channel: ch("projects/p-1"),
            })
        );
        for bad in ["a%2Fb", "a/b", "a%20b"] {
            let path = format!("/api/v1/projects/{bad}/connections");
            let e = match_route("GET", &path).unwrap_err();
            assert!(e.needs_token(), "{path}");
            assert_eq!(e.into_reply().code, "INVALID_CHANNEL", "{path}");
        }
        // A bad id on the WebSocket is the hub's to refuse, after the upgrade (an `error`, then close 1008).
        assert_eq!(
            route("GET", "/api/v1/projects/a%20b/stream"),
            Ok(Route::ProjectSocket {
                project_id: p("a b")
            })
        );
        assert_eq!(
            route("GET", "/api/v1/ws/projects/a/b/stream"),
            Ok(Route::ProjectSocket {
                project_id: p("a/b")
            })
        );
        let e = match_route("GET", "/api/v1/ws/projects/a%zz/stream").unwrap_err();
        assert!(e.needs_token());
        assert_eq!(e.into_reply().status, 400);
    }

    #[test]
    fn only_bad_names_wait_for_the_token() {
        let bad_channel = match_route("POST", "/api/v1/channels/a%20b/events").unwrap_err();
        assert!(bad_channel.needs_token());
        assert_eq!(bad_channel.into_reply().code, "INVALID_CHANNEL");
        let bad_encoding = match_route("GET", "/api/v1/channels/a%zz/state").unwrap_err();
        assert!(bad_encoding.needs_token());
        for (method, path) in [
            ("GET", "/nope"),
            ("GET", "/api/v1/channels/a/nope"),
            ("PUT", "/api/v1/channels/a%20b/events"),
            ("POST", "/health"),
        ] {
            assert!(
                !match_route(method, path).unwrap_err().needs_token(),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn an_unencoded_slash_is_part_of_the_channel_name() {
        for (path, channel) in [
            ("/api/v1/channels/a/b/events", "a/b"),
            ("/api/v1/channels/a/b/c/events", "a/b/c"),
            ("/api/v1/channels/a%2Fb/events", "a/b"),
            ("/api/v1/channels/a/events/events", "a/events"),
        ] {
            assert_eq!(
                route("GET", path),
                Ok(Route::ListEvents {
                    channel: ch(channel)
                }),
                "{path}"
            );
        }
        assert_eq!(
            route("GET", "/api/v1/channels/jobs/presence/presence"),
            Ok(Route::ChannelPresence {
                channel: ch("jobs/presence")
            })
        );
        assert_eq!(
            route("POST", "/api/v1/channels/a/presence")
                .unwrap_err()
                .status,
            405
        );
        assert_eq!(
            route("GET", "/api/v1/channels/a/state/state"),
            Ok(Route::ChannelState {
                channel: ch("a/state")
            })
        );
        // Still a channel name: no leading or trailing slash.
        for path in ["/api/v1/channels//a/events", "/api/v1/channels/a//events"] {
            assert_eq!(
                route("GET", path).unwrap_err().code,
                "INVALID_CHANNEL",
                "{path}"
            );
        }
    }

    #[test]
    fn stream_routes() {
        assert_eq!(
            route("GET", "/api/v1/channels/projects%2Fp1/sse"),
            Ok(Route::ChannelStream {
                channel: ch("projects/p1")
            })
        );
        assert_eq!(
            route("GET", "/api/v1/channels/a/sse/sse"),
            Ok(Route::ChannelStream {
                channel: ch("a/sse")
            })
        );
        assert_eq!(route("GET", "/api/v1/sse"), Ok(Route::ChannelsStream));
        assert_eq!(
            route("GET", "/api/v1/projects/p1/sse"),
            Ok(Route::ProjectStream {
                project_id: "p1".to_owned(),
                channel: ch("projects/p1"),
            })
        );
        assert!(route("GET", "/api/v1/sse").unwrap().is_stream());
        assert_eq!(route("GET", "/"), Ok(Route::Dashboard));
        assert_eq!(route("HEAD", "/ui"), Ok(Route::Dashboard));
        assert_eq!(route("GET", "/api/v1/channels"), Ok(Route::ListChannels));
        assert_eq!(
            route("POST", "/api/v1/channels/projects/p1/call"),
            Ok(Route::CallChannel {
                channel: ch("projects/p1")
            })
        );
        assert_eq!(
            route("GET", "/api/v1/channels/a/call").unwrap_err().status,
            405
        );
        assert!(!route("GET", "/api/ws").unwrap().is_stream());
        assert_eq!(route("POST", "/api/v1/sse").unwrap_err().status, 405);
        assert_eq!(
            route("POST", "/api/v1/channels/a/sse").unwrap_err().status,
            405
        );
        let bad = match_route("GET", "/api/v1/projects/a%20b/sse").unwrap_err();
        assert!(bad.needs_token());
        assert_eq!(bad.into_reply().code, "INVALID_CHANNEL");
    }

    #[test]
    fn unknown_paths_and_wrong_methods() {
        assert_eq!(route("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(route("GET", "/api/v1/projects/p1").unwrap_err().status, 404);
        let e = route("POST", "/health").unwrap_err();
        assert_eq!(e.status, 405);
        assert_eq!(e.headers, vec![("Allow", "GET, HEAD".to_owned())]);
        let e = route("DELETE", "/api/v1/channels/a/events").unwrap_err();
        assert_eq!(e.headers, vec![("Allow", "GET, HEAD, POST".to_owned())]);
        assert_eq!(route("POST", "/api/ws").unwrap_err().status, 405);
        assert_eq!(
            route("PUT", "/api/v1/projects/p/stream")
                .unwrap_err()
                .status,
            405
        );
    }
}
