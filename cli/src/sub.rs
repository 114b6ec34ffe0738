//! `switchboard sub`: follows channels (and patterns: an argument with `*` is a pattern, PROTOCOL §3.2) until
//! interrupted, printing each event — as text, as JSON lines, or as progress bars. Reconnecting and resuming after
//! the last event seen (per channel, for a pattern) is the client's job.

use futures_util::StreamExt;
use futures_util::stream::select_all;
use serde_json::json;
use switchboard_runtime::client::{
    ChannelEvent, Client, PatternItem, PatternSubscription, RequestError, StateChanges,
    Subscription, SubscriptionItem,
};

use crate::args::SubArgs;
use crate::connect::{Patience, client, gave_up};
use crate::error::CliError;
use crate::progress::Board;
use crate::signals::Shutdown;

/// How events are printed.
enum Printer {
    Text,
    Json,
    Progress(Board),
}

/// One item of a channel's or a pattern's stream.
enum Item {
    Event(ChannelEvent),
    /// Events of this channel were lost.
    Resync(String),
    Lost(RequestError),
    Other(String),
}

/// Runs until SIGINT/SIGTERM (exit 0), or until the client gives up (exit 1).
pub async fn sub(args: SubArgs) -> Result<(), CliError> {
    let client = client(&args.url, &args.connection, Patience::LongRunning)?;
    let mut shutdown = Shutdown::install()?;
    let printer = if args.progress {
        Printer::Progress(Board::new())
    } else if args.json {
        Printer::Json
    } else {
        Printer::Text
    };
    let outcome = futures_lite::future::or(follow(&client, &args.channels, printer), async {
        shutdown.wait().await;
        Ok(())
    })
    .await;
    client.close().await;
    outcome
}

async fn follow(
    client: &Client,
    channels: &[String],
    mut printer: Printer,
) -> Result<(), CliError> {
    let mut states = client.state_changes();
    let mut streams = Vec::new();
    for channel in channels {
        let named = channel.clone();
        if channel.contains('*') {
            let subscription = subscribe_pattern(client, channel, &mut states).await?;
            streams.push(
                subscription
                    .map(move |item| {
                        let item = match item {
                            PatternItem::Event(e) => Item::Event(e),
                            PatternItem::Resync { channel } => Item::Resync(channel),
                            PatternItem::Lost(e) => Item::Lost(e),
                            other => Item::Other(format!("{other:?}")),
                        };
                        (named.clone(), item)
                    })
                    .boxed(),
            );
        } else {
            let subscription = subscribe(client, channel, &mut states).await?;
            streams.push(
                subscription
                    .map(move |item| {
                        let item = match item {
                            SubscriptionItem::Event(e) => Item::Event(e),
                            SubscriptionItem::Resync => Item::Resync(named.clone()),
                            SubscriptionItem::Lost(e) => Item::Lost(e),
                            other => Item::Other(format!("{other:?}")),
                        };
                        (named.clone(), item)
                    })
                    .boxed(),
            );
        }
    }
    let mut items = select_all(streams);
    while let Some((followed, item)) = items.next().await {
        match item {
            Item::Event(e) => match &mut printer {
                Printer::Text => println!("{} #{} {}", e.channel, e.offset, e.event),
                Printer::Json => {
                    let line = json!({"channel": e.channel, "offset": e.offset, "event": e.event});
                    println!("{line}");
                }
                Printer::Progress(board) => board.show(&e.channel, &e.event),
            },
            Item::Resync(channel) => tracing::warn!(
                %channel,
                "some events were lost to this client (history no longer covers the gap); live events continue"
            ),
            Item::Lost(e) => tracing::error!(%followed, %e, "the subscription was lost"),
            Item::Other(other) => tracing::debug!(%other, "unknown subscription item"),
        }
    }
    // Every stream ended: the client stopped.
    Err(gave_up(&mut states)
        .unwrap_or_else(|| CliError::Failed("every subscription ended".to_owned())))
}

/// Subscribes, asking again while the server cannot be reached (a subscribe waiting offline times out).
async fn subscribe(
    client: &Client,
    channel: &str,
    states: &mut StateChanges,
) -> Result<Subscription, CliError> {
    loop {
        match client.subscribe(channel).await {
            Ok(subscription) => {
                tracing::info!(%channel, "subscribed");
                return Ok(subscription);
            }
            Err(RequestError::TimedOut) => {
                tracing::warn!(%channel, "no answer yet; subscribing again");
            }
            Err(RequestError::Closed) => {
                return Err(gave_up(states).unwrap_or_else(|| RequestError::Closed.into()));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// [`subscribe`] for a pattern.
async fn subscribe_pattern(
    client: &Client,
    pattern: &str,
    states: &mut StateChanges,
) -> Result<PatternSubscription, CliError> {
    loop {
        match client.subscribe_pattern(pattern).await {
            Ok(subscription) => {
                tracing::info!(%pattern, "subscribed to the pattern");
                return Ok(subscription);
            }
            Err(RequestError::TimedOut) => {
                tracing::warn!(%pattern, "no answer yet; subscribing again");
            }
            Err(RequestError::Closed) => {
                return Err(gave_up(states).unwrap_or_else(|| RequestError::Closed.into()));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
