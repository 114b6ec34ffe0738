//! Reading a channel with the read script (for the engine's callers and for the feed's gap fills).

use switchboard_protocol::redis::engine::{ChannelRead, Keys, ReadRequest};
use switchboard_protocol::wire::ChannelName;

use super::error::EngineError;
use super::scripts::SharedScript;
use crate::redis::RedisClient;

/// Reads `channel`'s position, at most `limit` events after `after`, and its state when `with_state`.
pub(crate) async fn read_channel(
    client: &RedisClient,
    script: &SharedScript,
    keys: &Keys,
    channel: &ChannelName,
    after: Option<u64>,
    limit: usize,
    with_state: bool,
) -> Result<ChannelRead, EngineError> {
    let request = ReadRequest {
        channel,
        after,
        limit,
        with_state,
    };
    let reply = script
        .run(client, |script| request.command(script, keys))
        .await?;
    Ok(ChannelRead::parse(reply)?)
}
