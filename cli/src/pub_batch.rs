//! `switchboard pub --batch`: JSON lines from stdin published in batches. A batch is whatever has arrived by the
//! time the previous one is acknowledged (at most [`MAX_EVENTS`] events and about [`MAX_BYTES`] of JSON), so a
//! burst goes out in a few large publishes and a trickle (`tail -f`) one event at a time, without waiting.

use futures_lite::future::poll_once;
use futures_lite::io::AsyncBufReadExt;
use futures_lite::{AsyncBufRead, StreamExt};
use serde_json::Value;
use switchboard_runtime::client::{Client, RequestError};

use crate::connect::explained;
use crate::error::CliError;
use crate::idempotency::random_key;

/// Most events in one batch (the server's limit).
pub const MAX_EVENTS: usize = 1000;
/// JSON bytes past which a batch is sent: half the server's default message limit, room for the envelope.
pub const MAX_BYTES: usize = 512 * 1024;

/// Publishes every line of `input` to `channel` (blank lines skipped); the last event is retained when `retain`,
/// so each event waits for the next (or the end) before it goes out. Prints `FIRST-LAST` per batch. A line that is
/// not JSON (or is `null`) stops it with an error naming the line, after what came before it is published.
pub async fn publish_lines(
    client: &Client,
    channel: &str,
    retain: bool,
    input: impl AsyncBufRead + Unpin,
) -> Result<(), CliError> {
    let mut lines = input.lines();
    let mut number = 0usize;
    let mut held: Option<Value> = None;
    let mut ended = false;
    let mut failure = None;
    while !ended {
        let mut batch: Vec<Value> = held.take().into_iter().collect();
        let mut bytes = 0usize;
        let mut read = 0usize;
        // Wait for the first new line; then take only what is already there.
        while batch.len() < MAX_EVENTS && bytes < MAX_BYTES {
            let next = if read == 0 {
                Some(lines.next().await)
            } else {
                poll_once(lines.next()).await
            };
            let Some(next) = next else { break };
            let Some(line) = next else {
                ended = true;
                break;
            };
            number += 1;
            read += 1;
            let parsed = match line {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => parse(line.trim()).map(|event| (line.len(), event)),
                Err(e) => Err(format!("reading stdin: {e}")),
            };
            match parsed {
                Ok((len, event)) => {
                    bytes += len;
                    batch.push(event);
                }
                // What came before it still goes out.
                Err(e) => {
                    failure = Some(CliError::Usage(format!("line {number}: {e}")));
                    ended = true;
                    break;
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        // The last event of the input is the one retained: hold one back until the input ends or more arrives.
        if retain && !ended {
            held = batch.pop();
            if batch.is_empty() {
                continue;
            }
        }
        let retain_last = retain && failure.is_none();
        let offsets = explained(client, keyed(client, channel, batch, retain_last)).await?;
        println!("{}-{}", offsets.start(), offsets.end());
    }
    failure.map_or(Ok(()), Err)
}

/// Publishes one batch under a fresh idempotency key, sent once more under it when the connection drops or the
/// answer times out (it is then unknown whether the batch landed): it lands once either way.
async fn keyed(
    client: &Client,
    channel: &str,
    batch: Vec<Value>,
    retain_last: bool,
) -> Result<std::ops::RangeInclusive<u64>, RequestError> {
    let key = random_key();
    let mut resent = false;
    loop {
        let sent = client
            .publish_batch_with_key(channel, batch.clone(), retain_last, key.clone())
            .await;
        match sent {
            Err(RequestError::Disconnected | RequestError::TimedOut) if !resent => resent = true,
            other => return other.map(|published| published.offsets),
        }
    }
}

fn parse(line: &str) -> Result<Value, String> {
    match serde_json::from_str(line) {
        Ok(Value::Null) => Err("an event may not be null".to_owned()),
        Ok(event) => Ok(event),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}
