//! The one-shot commands: `pub` prints the offset, `call` the result, `state` the channel's state — each on one
//! line of stdout.

use serde_json::json;

use crate::args::{CallArgs, PubArgs, StateArgs};
use crate::connect::{Patience, client, one_shot};
use crate::error::CliError;

/// `switchboard pub URL CHANNEL JSON [--retain]`, or `--batch` from stdin.
pub async fn publish(args: PubArgs) -> Result<(), CliError> {
    let client = client(&args.url, &args.connection, Patience::OneShot)?;
    let Some(event) = args.event else {
        let stdin = smol::io::BufReader::new(smol::Unblock::new(std::io::stdin()));
        let outcome =
            crate::pub_batch::publish_lines(&client, &args.channel, args.retain, stdin).await;
        client.close().await;
        return outcome;
    };
    let offset = one_shot(&client, client.publish(&args.channel, event, args.retain)).await?;
    println!("{offset}");
    Ok(())
}

/// `switchboard call URL CHANNEL METHOD [JSON]`.
pub async fn call(args: CallArgs) -> Result<(), CliError> {
    let client = client(&args.url, &args.connection, Patience::OneShot)?;
    let result = one_shot(
        &client,
        client.call(&args.channel, &args.method, args.params),
    )
    .await?;
    println!("{result}");
    Ok(())
}

/// `switchboard state URL CHANNEL`.
pub async fn state(args: StateArgs) -> Result<(), CliError> {
    let client = client(&args.url, &args.connection, Patience::OneShot)?;
    let state = one_shot(&client, client.get_state(&args.channel)).await?;
    let line = json!({
        "channel": state.channel,
        "epoch": state.epoch,
        "offset": state.offset,
        "state": state.state,
    });
    println!("{line}");
    Ok(())
}
