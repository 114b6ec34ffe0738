//! Which routes need a token and which permission: the REST API's auth rule, one place.
//!
//! With no verifier configured every route is open. With one, the channel routes need a token whose permissions
//! cover the channel (publish for `POST …/events`, subscribe for reading events and state), the WebSocket
//! endpoints need a token (its permissions then go with the connection and the hub checks them on every
//! operation), and health, info, connections and metrics stay open.

use alloc::format;

use crate::auth::AuthError as TokenError;
use crate::server::{Action, CallerFacts, Permissions, Trust};
use crate::wire::ChannelName;

use super::error_reply::ErrorReply;
use super::route::Route;

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
            Route::ListEvents { channel } | Route::ChannelState { channel } => AuthRule::Allowed {
                action: Action::Subscribe,
                channel,
            },
            Route::NativeSocket | Route::ProjectSocket { .. } | Route::ChannelPayloadSocket => {
                AuthRule::Token
            }
            Route::Health
            | Route::Live
            | Route::Ready
            | Route::Info
            | Route::Connections
            | Route::Metrics
            | Route::ProjectConnections { .. } => AuthRule::Open,
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
            ("GET", "/api/v1/projects/p/connections", None, 200, 200, 200),
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
                    assert_eq!((a, channel.as_str()), (want, "a/b"), "{method} {path}");
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
}
