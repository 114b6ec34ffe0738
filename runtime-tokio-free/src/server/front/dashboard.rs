//! The dashboard page at `/` and `/ui` (PROTOCOL §7): one HTML file with its script and style inline, compiled into
//! the binary, with no build step and nothing fetched from elsewhere. It reads the channels route, follows a channel
//! over Server-Sent Events, and makes calls through the call route. Its Content Security Policy allows only its own
//! inline blocks ([`switchboard_protocol::rest::page`]).

use std::sync::OnceLock;

use switchboard_protocol::rest::Reply;
use switchboard_protocol::rest::page::page_reply;

/// The page.
pub(crate) const DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// The page's answer (its policy hashed once).
pub(crate) fn reply() -> Reply {
    static REPLY: OnceLock<Reply> = OnceLock::new();
    REPLY.get_or_init(|| page_reply(DASHBOARD_HTML)).clone()
}
