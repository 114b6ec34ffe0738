//! The `notification_type`s the server itself sends (PROTOCOL §2.3) and the client machine acts on; any other type
//! is the embedding application's.

/// The connection's token expires soon; `additional_data: {expires_in_ms}`. Answer with a `refresh`, or the
/// connection is closed with 4401 when it expires.
pub const TOKEN_EXPIRING: &str = "token_expiring";

/// The server ended one of the connection's subscriptions or `serve` registrations (a `refresh` narrowed its
/// grants); `additional_data: {channel, kind: "subscribe" | "serve", code: "FORBIDDEN"}`.
pub const SUBSCRIPTION_ENDED: &str = "subscription_ended";
