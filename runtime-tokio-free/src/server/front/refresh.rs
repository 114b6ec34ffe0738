//! The hub's check of a `refresh` token: the same [`TokenVerifier`] as the handshake, so a fresh token is held to
//! exactly the rules the first one was, and gives permissions (and an expiry) the same way.
//!
//! The verifier sees the request head of a native WebSocket upgrade carrying the token as `Authorization: Bearer`,
//! which is what a handshake with that token would have looked like.

use std::sync::Arc;

use switchboard_protocol::rest::RequestHead;
use switchboard_protocol::server::{Permissions, RefreshCheck};
use switchboard_protocol::time::Timestamp;

use super::verifier::TokenVerifier;

/// The check the hub runs on `refresh` tokens, over the server's verifier.
pub(crate) fn refresh_check(verifier: Arc<dyn TokenVerifier>) -> Box<dyn RefreshCheck> {
    Box::new(move |_now: Timestamp, token: &str| -> Option<Permissions> {
        let head = RequestHead {
            method: "GET".to_owned(),
            path: "/api/ws".to_owned(),
            raw_query: String::new(),
            minor_version: 1,
            headers: vec![("authorization".to_owned(), format!("Bearer {token}"))],
        };
        match verifier.verify(Some(token), &head) {
            Ok(permissions) => Some(permissions),
            Err(e) => {
                tracing::debug!(error = %e, "refresh token refused");
                None
            }
        }
    })
}
