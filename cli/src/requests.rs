//! The one-shot commands: `pub` prints the offset, `call` the result, `state` the channel's state — each on one
//! line of stdout.

use serde_json::json;
use switchboard_runtime::client::RequestError;

use crate::args::{CallArgs, PubArgs, StateArgs};
use crate::connect::{Patience, client, one_shot};
use crate::error::CliError;
use crate::idempotency::random_key;

/// `switchboard pub URL CHANNEL JSON [--retain] [--idempotency-key KEY]`, or `--batch` from stdin. The publish
/// carries an idempotency key (a random one unless given): when the connection drops or the answer times out, it
/// is not known whether the event landed, so it is sent once more under the same key, and lands once either way.
pub async fn publish(args: PubArgs) -> Result<(), CliError> {
    let client = client(&args.url, &args.connection, Patience::OneShot)?;
    let Some(event) = args.event else {
        let stdin = smol::io::BufReader::new(smol::Unblock::new(std::io::stdin()));
        let outcome =
            crate::pub_batch::publish_lines(&client, &args.channel, args.retain, stdin).await;
        client.close().await;
        return outcome;
    };
    let key = args.idempotency_key.unwrap_or_else(random_key);
    let attempts = async {
        let mut resent = false;
        loop {
            let sent = client
                .publish_with_key(&args.channel, event.clone(), args.retain, key.clone())
                .await;
            match sent {
                Err(RequestError::Disconnected | RequestError::TimedOut) if !resent => {
                    resent = true;
                }
                other => return other,
            }
        }
    };
    let published = one_shot(&client, attempts).await?;
    if published.duplicate {
        eprintln!("duplicate: the key was seen within the dedupe window; nothing was published");
    }
    println!("{}", published.offset);
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
