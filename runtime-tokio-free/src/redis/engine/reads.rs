//! Reading a channel with the read script (for the engine's callers and for the feed's gap fills).

use switchboard_protocol::redis::engine::{ChannelRead, Keys, ReadRequest};

use super::error::EngineError;
use super::scripts::SharedScript;
use crate::redis::RedisClient;

/// Reads a channel as `request` says.
pub(crate) async fn read_channel(
    client: &RedisClient,
    script: &SharedScript,
    keys: &Keys,
    request: &ReadRequest<'_>,
) -> Result<ChannelRead, EngineError> {
    let reply = script
        .run(client, |script| request.command(script, keys))
        .await?;
    Ok(ChannelRead::parse(reply)?)
}
