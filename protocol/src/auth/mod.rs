//! Authentication at the handshake (PROTOCOL §1) and webhook signatures: pure checks, no IO, no clock.
//!
//! Every function here takes the time as unix seconds from the caller and reads no clock, draws no randomness and
//! keeps no state between calls, so the same inputs always give the same answer.
//!
//! | file | what it owns |
//! |---|---|
//! | [`grants`] | [`ChannelGrants`]: which channel patterns a credential may subscribe, publish, serve and call |
//! | [`jwt`] | [`Hs256Key`]: HS256 JSON Web Tokens, verified and minted; [`Claims`] |
//! | [`api_keys`] | [`ApiKeys`]: static keys, each with its grants, compared in constant time |
//! | [`verifier`] | [`Authenticator`]: a JWT key and API keys together, token in, [`Identity`] out |
//! | [`webhook`] | `X-Switchboard-Signature` headers: [`sign_webhook`] and [`WebhookVerifier`] |
//! | [`error`] | [`AuthError`] (one generic text for clients) and [`AuthFailure`] (the reason, for logs) |
//!
//! The server turns an [`Identity`]'s grants into its permission checks; matching a channel against a pattern is
//! the server's job, not this module's.

pub mod api_keys;
pub mod error;
pub mod grants;
pub mod jwt;
mod mac;
pub mod verifier;
pub mod webhook;

pub use api_keys::{ApiKeyError, ApiKeys};
pub use error::{AuthError, AuthFailure, SecretError};
pub use grants::{ChannelGrants, GrantAction, GrantsError, PatternError, validate_pattern};
pub use jwt::{Claims, Hs256Key};
pub use verifier::{Authenticator, CredentialKind, Identity, bearer_token};
pub use webhook::{WebhookError, WebhookVerifier, sign_webhook, sign_webhook_rotating};
