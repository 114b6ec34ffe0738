//! The server's REST decisions (PROTOCOL §5–§7), none of its IO: which route a request names, what it must carry,
//! which permission it needs, how many events a page holds, and the exact bytes of every answer.
//!
//! The runtime's HTTP front tokenizes a request head (with `httparse`) into a [`RequestHead`], reads the body as
//! [`RequestHead::body_framing`] says, and then only feeds this module and executes what it decides:
//!
//! 1. [`route()`] the method and path → a [`Route`], or the 404/405/400 [`ErrorReply`].
//! 2. [`Route::auth_rule`] says whether a token is needed and which permission; [`authorize`] turns the verifier's
//!    answer into permissions or a 401/403.
//! 3. [`validate`](mod@validate) reads the query and body: [`publish_body`], [`history_query`], [`stream_since`].
//! 4. The runtime runs the action on the hub; [`answer`](mod@answer) formats its result into a [`Reply`].
//! 5. [`Reply::to_bytes`] (or [`Reply::head_bytes`] for `HEAD`) is written.
//!
//! Choices where the contract is silent: the channel routes need a token when a verifier is configured (401
//! without, 403 when its permissions do not cover the channel: publish for `POST …/events`, subscribe for
//! reading); health, info, connections and metrics are open. `limit` defaults to [`DEFAULT_PAGE_LIMIT`] and is
//! clamped to [`MAX_PAGE_LIMIT`]; `since` defaults to 0 (the oldest kept event).

pub mod answer;
pub mod auth_rule;
pub mod call_route;
pub mod error_reply;
pub mod limits;
pub mod page;
pub mod query;
pub mod read_error;
pub mod reply;
pub mod request_head;
pub mod route;
pub mod sse_request;
pub mod validate;

pub use auth_rule::{AuthRule, TokenCheck, authorize, unrouted};
pub use error_reply::ErrorReply;
pub use limits::{DEFAULT_PAGE_LIMIT, MAX_LISTED_APPS, MAX_PAGE_BYTES, MAX_PAGE_LIMIT};
pub use query::{parse_query, percent_decode};
pub use read_error::RequestReadError;
pub use reply::{Reply, reason_phrase};
pub use request_head::{BodyFraming, MAX_HEADERS, RequestHead};
pub use route::{NoRoute, Route, channel_from_path, match_route, project_from_path, route};
pub use sse_request::{
    STREAM_TOKEN_COOKIE, check_stream, cors_origin, stream_head, stream_open, stream_token,
};
pub use validate::{
    BatchBody, PageQuery, PublishBody, PublishRequest, history_query, idempotency_key,
    publish_body, publish_request, stream_since,
};
