//! The REST API's page limits: the one definition the server clamps to and the SDK's pagination asks for.

/// Most events one history page holds; a larger `limit` is clamped to it.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Bytes of events after which a history page ends, whatever its `limit`: the event that reaches it is the page's
/// last, and `next_since` goes on from there. A page is thus at most this plus one event (and always holds at least
/// one, so paging always progresses), so a reader's memory per page does not grow with `limit`.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Events per history page when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Most app ids listed by `/api/connections`.
pub const MAX_LISTED_APPS: usize = 1000;
