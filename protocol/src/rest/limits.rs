//! The REST API's page limits: the one definition the server clamps to and the SDK's pagination asks for.

/// Most events one history page holds; a larger `limit` is clamped to it.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Events per history page when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Most app ids listed by `/api/connections`.
pub const MAX_LISTED_APPS: usize = 1000;
