//! Receiving webhooks: [`WebhookHandler`] checks the `X-Switchboard-Signature` header with the core's
//! [`WebhookVerifier`], then dispatches the JSON body to the handlers registered for its event type.
//!
//! The order is fixed: **verify, then parse, then dispatch**. Nothing about an unauthenticated body is looked at,
//! so a forged request can neither reach a handler nor probe the JSON parser. The event type is the body's
//! `event_type` field (the name pipeline events carry, PROTOCOL §5), or else its `type` field.
//!
//! The handler does no IO: hand it the header, the raw body exactly as received (the signature covers the bytes,
//! not a re-serialisation) and the current unix time, from whatever HTTP server receives the webhook.
//!
//! ```
//! use switchboard_protocol::auth::{WebhookVerifier, sign_webhook};
//! use switchboard_runtime::sdk::WebhookHandler;
//!
//! let mut handler = WebhookHandler::new(WebhookVerifier::new(b"secret").unwrap());
//! handler.on("pipeline_completed", |event| println!("done: {}", event.payload["data"]));
//!
//! let body = br#"{"event_type":"pipeline_completed","data":{"run":7}}"#;
//! let header = sign_webhook(b"secret", 1_700_000_000, body);
//! let dispatch = handler.handle(Some(&header), body, 1_700_000_010).unwrap();
//! assert_eq!((dispatch.event_type.as_str(), dispatch.handlers), ("pipeline_completed", 1));
//! ```

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;
use switchboard_protocol::auth::webhook::SIGNATURE_HEADER;
use switchboard_protocol::auth::{WebhookError, WebhookVerifier};

/// A verified webhook event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WebhookEvent {
    /// Its type (`event_type`, or `type`).
    pub event_type: String,
    /// The whole JSON body.
    pub payload: Value,
}

/// What [`WebhookHandler::handle`] did with a verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dispatch {
    /// The event's type.
    pub event_type: String,
    /// Handlers called: those for the type, then the catch-all ones. 0 means nobody listens for it.
    pub handlers: usize,
}

/// Why a webhook was refused. Answer 400 (or 401 for the signature errors) and do not retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookHandlerError {
    /// The request has no signature header.
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingSignature,
    /// The signature does not verify (forged, altered, or too old or new).
    #[error(transparent)]
    Signature(#[from] WebhookError),
    /// Authentic, but not a JSON object.
    #[error("webhook body is not a JSON object: {0}")]
    InvalidBody(String),
    /// Authentic JSON, but with no string `event_type` or `type`.
    #[error("webhook body has no event_type or type field")]
    MissingEventType,
}

type Handler = Box<dyn Fn(&WebhookEvent) + Send + Sync>;

/// Verifies and dispatches webhooks (see the [module docs](self)).
pub struct WebhookHandler {
    verifier: WebhookVerifier,
    by_type: HashMap<String, Vec<Handler>>,
    any: Vec<Handler>,
}

impl fmt::Debug for WebhookHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut types: Vec<_> = self.by_type.keys().collect();
        types.sort();
        f.debug_struct("WebhookHandler")
            .field("verifier", &self.verifier)
            .field("types", &types)
            .field("catch_all", &self.any.len())
            .finish()
    }
}

impl WebhookHandler {
    /// A handler checking signatures with `verifier`, with no listeners yet.
    pub fn new(verifier: WebhookVerifier) -> Self {
        WebhookHandler {
            verifier,
            by_type: HashMap::new(),
            any: Vec::new(),
        }
    }

    /// Calls `handler` for every verified event of `event_type` (in registration order).
    pub fn on(
        &mut self,
        event_type: impl Into<String>,
        handler: impl Fn(&WebhookEvent) + Send + Sync + 'static,
    ) -> &mut Self {
        self.by_type
            .entry(event_type.into())
            .or_default()
            .push(Box::new(handler));
        self
    }

    /// Calls `handler` for every verified event, after the handlers for its type.
    pub fn on_any(&mut self, handler: impl Fn(&WebhookEvent) + Send + Sync + 'static) -> &mut Self {
        self.any.push(Box::new(handler));
        self
    }

    /// Verifies `signature` (the `X-Switchboard-Signature` value) over `body` at `now_unix_secs`, then dispatches.
    pub fn handle(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now_unix_secs: u64,
    ) -> Result<Dispatch, WebhookHandlerError> {
        let signature = signature.ok_or(WebhookHandlerError::MissingSignature)?;
        self.verifier.verify(signature, body, now_unix_secs)?;
        let payload: Value = serde_json::from_slice(body)
            .map_err(|e| WebhookHandlerError::InvalidBody(e.to_string()))?;
        if !payload.is_object() {
            return Err(WebhookHandlerError::InvalidBody("not an object".into()));
        }
        let event_type = ["event_type", "type"]
            .iter()
            .find_map(|k| payload.get(*k).and_then(Value::as_str))
            .ok_or(WebhookHandlerError::MissingEventType)?
            .to_owned();
        let event = WebhookEvent {
            event_type,
            payload,
        };
        let typed = self
            .by_type
            .get(&event.event_type)
            .map_or(&[][..], Vec::as_slice);
        for handler in typed.iter().chain(&self.any) {
            handler(&event);
        }
        Ok(Dispatch {
            handlers: typed.len() + self.any.len(),
            event_type: event.event_type,
        })
    }

    /// [`handle`](Self::handle) taking the request's header fields, from which it picks the signature header
    /// (name compared case-insensitively).
    pub fn handle_request(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now_unix_secs: u64,
    ) -> Result<Dispatch, WebhookHandlerError> {
        let signature = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER))
            .map(|(_, value)| value.as_str());
        self.handle(signature, body, now_unix_secs)
    }
}
