//! [`TokenProvider`]: where a [`Client`](super::Client) gets a fresh token, so a connection outlives any one token.
//!
//! The client asks it when the server warns that the connection's token expires soon (then it sends the answer as
//! a `refresh`) and before every reconnect (the upgrade carries the newest token). Both happen on the client's
//! task, so the callback must return quickly: hand out a token fetched ahead of time rather than fetch one here.

use std::fmt;
use std::sync::Arc;

/// Gives the newest token; `None` keeps the one the client has.
#[derive(Clone)]
pub struct TokenProvider(Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl TokenProvider {
    /// A provider over `f`.
    pub fn new(f: impl Fn() -> Option<String> + Send + Sync + 'static) -> TokenProvider {
        TokenProvider(Arc::new(f))
    }

    /// The newest token, if the callback has one.
    pub(crate) fn fetch(&self) -> Option<String> {
        (self.0)()
    }
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenProvider")
    }
}
