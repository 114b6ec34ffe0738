//! Which routes need a token and which permission: the REST API's auth rule, one place.
//!
//! With no verifier configured every route is open. With one, the channel routes need a token whose permissions
//! cover the channel (publish for `POST …/events`, subscribe for reading events and state), a project's connection
//! count needs subscribe on the project's channel (it tells who watches the project), the WebSocket endpoints need
//! a token (its permissions then go with the connection and the hub checks them on every operation), and health,
//! info, connections and metrics stay open (server-wide counts, no channel named).
//!
//! The token is checked before a name in the path is ([`unrouted`]): a caller without a valid token gets the same
//! 401 whatever the name, and learns nothing of the naming rules or of which names exist.

use alloc::format;

use crate::auth::AuthError as TokenError;
use crate::server::{Action, CallerFacts, Permissions, Trust};
use crate::wire::ChannelName;

use super::error_reply::ErrorReply;
use super::route::{NoRoute, Route};

/// What a route asks of the request's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRule<'a> {
    /// No token is looked at.
    Open,
    /// A valid token is needed; its permissions go with the WebSocket connection.
    Token,
    /// A valid token whose permissions allow `action` on `channel`.
    Allowed {
        /// The action the route performs.
        action: Action,
        /// The channel it performs it on.
        channel: &'a ChannelName,
    },
}

impl Route {
    /// The route's [`AuthRule`].
    pub fn auth_rule(&self) -> AuthRule<'_> {
        match self {
            Route::PublishEvent { channel } => AuthRule::Allowed {
                action: Action::Publish,
                channel,
            },
            Route::ListEvents { channel }
            | Route::ChannelState { channel }
            | Route::ChannelPresence { channel }
            | Route::ProjectConnections { channel, .. } => AuthRule::Allowed {
                action: Action::Subscribe,
                channel,
            },
            // A stream's grants are checked channel by channel before it starts (`sse_request`).
            Route::NativeSocket
            | Route::ProjectSocket { .. }
            | Route::ChannelPayloadSocket
            | Route::ChannelStream { .. }
            | Route::ChannelsStream
            | Route::ProjectStream { .. } => AuthRule::Token,
            Route::CallChannel { channel } => AuthRule::Allowed {
                action: Action::Call,
                channel,
            },
            // The list is filtered by the token's subscribe grants (`channel_list`).
            Route::ListChannels => AuthRule::Token,
            Route::Dashboard
            | Route::Health
            | Route::Live
            | Route::Ready
            | Route::Info
            | Route::Connections
            | Route::Metrics => AuthRule::Open,
        }
    }
}

/// What the server's token verifier said about the request's token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenCheck {
    /// No verifier is configured: everyone has every permission.
    NoVerifier,
    /// The token is valid and gives these permissions.
    Accepted(Permissions),
    /// No token was presented and one is required.
    Missing,
    /// The token was refused (unknown, malformed, expired). Why stays in the server's log.
    Refused,
}

impl TokenCheck {
    /// The [`Trust`] of a request with this check from a peer that is (or is not) on a loopback address: the
    /// runtime picks the request's rate limit with it, before [`authorize`] (so a flood of refused requests is
    /// refused with 429 without a token check each).
    pub fn trust(&self, loopback: bool) -> Trust {
        Trust::of(&CallerFacts {
            auth_required: !matches!(self, TokenCheck::NoVerifier),
            credential: match self {
                TokenCheck::Accepted(permissions) => Some(permissions),
                _ => None,
            },
            loopback,
        })
    }
}

/// The permissions a request has under `rule`, or its 401/403 answer. A refused token is answered with the same
/// public text whatever the reason, so a client learns nothing about which tokens exist.
pub fn authorize(rule: AuthRule<'_>, check: TokenCheck) -> Result<Permissions, ErrorReply> {
    let permissions = match check {
        TokenCheck::NoVerifier => Permissions::allow_all(),
        TokenCheck::Accepted(p) => p,
        TokenCheck::Missing => return Err(ErrorReply::unauthorized("a token is required")),
        TokenCheck::Refused => return Err(ErrorReply::unauthorized(TokenError::PUBLIC_MESSAGE)),
    };
    match rule {
        AuthRule::Open | AuthRule::Token => Ok(permissions),
        AuthRule::Allowed { action, channel } if permissions.allows(action, channel) => {
            Ok(permissions)
        }
        AuthRule::Allowed { action, channel } => Err(ErrorReply::forbidden(format!(
            "the token does not allow {action:?} on {channel}"
        ))),
    }
}

/// The answer to a request that matched no route. A bad name in a route that needs a token is told only to a caller
/// whose token is valid (or to anyone when no verifier is configured); every other caller gets the 401 a good name
/// would have got.
pub fn unrouted(no_route: NoRoute, check: TokenCheck) -> ErrorReply {
    match no_route {
        NoRoute::BadName(bad_name) => match authorize(AuthRule::Token, check) {
            Ok(_) => bad_name,
            Err(unauthorized) => unauthorized,
        },
        other => other.into_reply(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::route::route;
    use alloc::string::String;
    use alloc::vec;

    fn reader_of(pattern: &str) -> Permissions {
        Permissions::from_patterns(vec![String::from(pattern)], vec![], vec![], vec![])
    }

    /// Per route: the rule, and the status with no token, with a refused token, with a token that may only read
    /// `a/*`, for channel `a/b` (or the route's own target).
    #[test]
    fn table_of_routes_and_tokens() {
        type Case = (&'static str, &'static str, Option<Action>, u16, u16, u16);
        let cases: &[Case] = &[
            ("GET", "/health", None, 200, 200, 200),
            ("GET", "/health/ready", None, 200, 200, 200),
            ("GET", "/api/info", None, 200, 200, 200),
            ("GET", "/api/connections", None, 200, 200, 200),
            ("GET", "/metrics", None, 200, 200, 200),
            (
                "GET",
                "/api/v1/projects/p/connections",
                Some(Action::Subscribe),
                401,
                401,
                403,
            ),
            (
                "POST",
                "/api/v1/channels/a%2Fb/events",
                Some(Action::Publish),
                401,
                401,
                403,
            ),
            (
                "GET",
                "/api/v1/channels/a%2Fb/events",
                Some(Action::Subscribe),
                401,
                401,
                200,
            ),
            (
                "HEAD",
                "/api/v1/channels/a%2Fb/state",
                Some(Action::Subscribe),
                401,
                401,
                200,
            ),
            ("GET", "/api/ws", None, 401, 401, 200),
            ("GET", "/ws", None, 401, 401, 200),
            ("GET", "/api/v1/ws/projects/p/stream", None, 401, 401, 200),
        ];
        let status = |r: Result<Permissions, ErrorReply>| r.map_or_else(|e| e.status, |_| 200);
        for &(method, path, action, missing, refused, reader) in cases {
            let route = route(method, path).unwrap();
            let rule = route.auth_rule();
            match (rule, action) {
                (AuthRule::Allowed { action: a, channel }, Some(want)) => {
                    let target = if path.contains("/projects/") {
                        "projects/p"
                    } else {
                        "a/b"
                    };
                    assert_eq!((a, channel.as_str()), (want, target), "{method} {path}");
                }
                (AuthRule::Allowed { .. }, None) => {
                    panic!("{method} {path} should not name a channel")
                }
                (_, Some(_)) => panic!("{method} {path} should name a channel"),
                _ => {}
            }
            let open = rule == AuthRule::Open;
            assert_eq!(open, missing == 200, "{method} {path}");
            // Open routes never consult the verifier; the runtime passes NoVerifier for them.
            let check = |c: TokenCheck| if open { TokenCheck::NoVerifier } else { c };
            assert_eq!(
                status(authorize(rule, check(TokenCheck::Missing))),
                missing,
                "{method} {path}"
            );
            assert_eq!(
                status(authorize(rule, check(TokenCheck::Refused))),
                refused,
                "{method} {path}"
            );
            assert_eq!(
                status(authorize(
                    rule,
                    check(TokenCheck::Accepted(reader_of("a/*")))
                )),
                reader,
                "{method} {path}"
            );
            assert_eq!(
                status(authorize(rule, TokenCheck::NoVerifier)),
                200,
                "{method} {path}"
            );
        }
    }

    /// A request's trust follows its token check: publish rights with auth on, loopback with auth off.
    #[test]
    fn token_checks_earn_trust() {
        let writer = Permissions::from_patterns(vec![], vec![String::from("a/*")], vec![], vec![]);
        for loopback in [false, true] {
            assert_eq!(
                TokenCheck::Accepted(writer.clone()).trust(loopback),
                Trust::Trusted
            );
            assert_eq!(
                TokenCheck::Accepted(reader_of("a/*")).trust(loopback),
                Trust::Untrusted
            );
            assert_eq!(TokenCheck::Missing.trust(loopback), Trust::Untrusted);
            assert_eq!(TokenCheck::Refused.trust(loopback), Trust::Untrusted);
        }
        assert_eq!(TokenCheck::NoVerifier.trust(true), Trust::Trusted);
        assert_eq!(TokenCheck::NoVerifier.trust(false), Trust::Untrusted);
    }

    #[test]
    fn refusals_say_nothing_about_the_token_and_ask_for_bearer() {
        let rule = AuthRule::Token;
        let refused = authorize(rule, TokenCheck::Refused).unwrap_err();
        assert_eq!(refused.message, TokenError::PUBLIC_MESSAGE);
        assert_eq!(refused.body()["error"]["code"], "UNAUTHORIZED");
        assert_eq!(
            refused.headers,
            vec![("WWW-Authenticate", String::from("Bearer"))]
        );
        let missing = authorize(rule, TokenCheck::Missing).unwrap_err();
        assert_eq!(missing.message, "a token is required");
        let channel = ChannelName::new("x/y").unwrap();
        let forbidden = authorize(
            AuthRule::Allowed {
                action: Action::Publish,
                channel: &channel,
            },
            TokenCheck::Accepted(reader_of("x/*")),
        )
        .unwrap_err();
        assert_eq!((forbidden.status, forbidden.code), (403, "FORBIDDEN"));
        assert_eq!(forbidden.message, "the token does not allow Publish on x/y");
    }

    /// A bad name is told only to a caller with a valid token; without a verifier, to anyone.
    #[test]
    fn a_bad_name_waits_for_the_token() {
        let bad =
            || crate::rest::route::match_route("GET", "/api/v1/channels/a%20b/events").unwrap_err();
        let status = |check| unrouted(bad(), check).status;
        assert_eq!(status(TokenCheck::Missing), 401);
        assert_eq!(status(TokenCheck::Refused), 401);
        assert_eq!(unrouted(bad(), TokenCheck::Missing).code, "UNAUTHORIZED");
        assert_eq!(status(TokenCheck::Accepted(reader_of("x/*"))), 400);
        assert_eq!(
            unrouted(bad(), TokenCheck::NoVerifier).code,
            "INVALID_CHANNEL"
        );
        let unknown = crate::rest::route::match_route("GET", "/nope").unwrap_err();
        assert_eq!(unrouted(unknown, TokenCheck::Missing).status, 404);
    }
}
