//! [`EngineError`]: why an engine operation has no answer.

use switchboard_protocol::redis::engine::EngineReplyError;

use crate::redis::RedisError;

/// Why an [`Engine`](super::Engine) operation has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Redis could not be reached or refused the command.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// Redis answered something the engine's scripts do not return.
    #[error(transparent)]
    Reply(#[from] EngineReplyError),
}
