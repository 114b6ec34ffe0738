//! The webhook sender: one task drives the protocol's [`DeliveryScheduler`]: it feeds it the hub's publishes,
//! reads the events it asks for from the hub's history, sends its requests (each on a task of its own, so up to
//! `max_concurrent` are in flight), feeds back their answers, and sleeps until its next retry time.
//!
//! On a node of a cluster the sender is not told the hub's publishes (every node hears every event from the
//! engine's feed, and all would send it) but this node's own, from the engine's answers to them, and reads their
//! events from [`OwnEvents`] instead of the history: each event's webhook goes out once in the cluster, from the
//! node that took the publish.
//!
//! Over a data directory the sender also keeps its place: once per channel it records the position it starts
//! from, and after each event it is done with (delivered, given up on or skipped) the event's offset, as the hub's
//! cursor `webhook:<url>`. At start it resumes every channel whose cursor is behind the channel's last offset, so
//! delivery carries on across a restart, at least once and in offset order.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures_channel::mpsc;
use futures_lite::future::or;
use futures_util::StreamExt;
use serde_json::json;
use switchboard_protocol::auth::sign_webhook;
use switchboard_protocol::auth::webhook::SIGNATURE_HEADER;
use switchboard_protocol::http_client::{Method, Outcome, RequestParts};
use switchboard_protocol::webhook::{DeliveryOutput, DeliveryScheduler};
use switchboard_protocol::wire::ChannelName;

use super::WebhookConfig;
use super::own_events::{OwnEvent, OwnEvents};
use crate::Runtime;
use crate::sdk::{Endpoint, H1Transport, HttpTransport};
use crate::server::hub::driver::cluster_link::PublishTap;
use crate::server::hub::driver::{HubHandle, PublishObserver};

/// How one request went.
enum Answer {
    /// A 2xx.
    Delivered,
    /// Anything the retry policy may retry, with a text for the log.
    Failed(Outcome, String),
    /// The request could not be made (a failure no retry fixes), with a text for the log.
    Unsendable(String),
}

/// What the sender task waits on.
enum Wake {
    Published(ChannelName, u64),
    Answered(ChannelName, Answer),
    Timer,
    Gone,
}

/// The webhook delivery of one server: the scheduler (behind a mutex so `/metrics` can read its counters) and
/// what sending needs.
pub(crate) struct WebhookSender<R: Runtime> {
    config: WebhookConfig,
    endpoint: Endpoint,
    transport: H1Transport<R>,
    scheduler: Mutex<DeliveryScheduler>,
    /// The hub cursor the sender keeps its place in, when the store keeps it across restarts.
    cursor: Option<String>,
    /// On a node of a cluster: this node's published events, which the sender delivers instead of the history.
    own: Option<Arc<Mutex<OwnEvents>>>,
}

/// How a sender learns of publishes: from the hub (one node), or from the engine's answers to this node's
/// publishes (a node of a cluster).
pub(crate) enum Intake {
    /// Give it to the hub's driver.
    Observer(PublishObserver),
    /// Give it to the cluster link.
    Tap(PublishTap),
}

impl<R: Runtime> fmt::Debug for WebhookSender<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The publish side of a sender: the hub's driver calls it for every publish.
pub(crate) struct Publishes(mpsc::UnboundedReceiver<(ChannelName, u64)>);

impl<R: Runtime> WebhookSender<R> {
    /// A sender and how it learns of publishes; start it with [`WebhookSender::run`]. `cluster`: on a node of a
    /// cluster, how many of its own events to hold per channel at most.
    pub fn new(
        runtime: R,
        config: WebhookConfig,
        endpoint: Endpoint,
        seed: u64,
        keep_place: bool,
        cluster: Option<usize>,
    ) -> (Arc<WebhookSender<R>>, Intake, Publishes) {
        let (tx, rx) = mpsc::unbounded();
        let scheduler =
            DeliveryScheduler::new(config.scheduler_config(seed ^ 0x7765_6268_6f6f_6b73));
        let own = cluster.map(|per_channel| Arc::new(Mutex::new(OwnEvents::new(per_channel))));
        let intake = match &own {
            Some(own) => {
                let own = own.clone();
                let config = config.clone();
                Intake::Tap(PublishTap::new(move |channel, epoch, first, events| {
                    if !config.matches(channel.as_str()) {
                        return;
                    }
                    let epoch: Arc<str> = epoch.into();
                    let mut own = own.lock().unwrap_or_else(|e| e.into_inner());
                    for (offset, event) in (first..).zip(events) {
                        let number = own.push(
                            channel,
                            OwnEvent {
                                epoch: epoch.clone(),
                                offset,
                                event: event.clone(),
                            },
                        );
                        let _ = tx.unbounded_send((channel.clone(), number));
                    }
                }))
            }
            // Only a note on a queue: the hub's lock is held.
            None => Intake::Observer(Box::new(move |channel, offset| {
                let _ = tx.unbounded_send((channel.clone(), offset));
            })),
        };
        let sender = Arc::new(WebhookSender {
            endpoint,
            transport: H1Transport::new(runtime),
            scheduler: Mutex::new(scheduler),
            cursor: keep_place.then(|| format!("webhook:{}", config.url)),
            config,
            own,
        });
        (sender, intake, Publishes(rx))
    }

    fn own(&self) -> Option<MutexGuard<'_, OwnEvents>> {
        self.own
            .as_ref()
            .map(|own| own.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn lock(&self) -> MutexGuard<'_, DeliveryScheduler> {
        self.scheduler.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the webhook metrics in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let (c, backlog) = {
            let s = self.lock();
            (s.counters(), s.backlog())
        };
        let rows = [
            (
                "switchboard_webhook_deliveries_total",
                "counter",
                "Events delivered to the webhook (2xx).",
                c.delivered,
            ),
            (
                "switchboard_webhook_failures_total",
                "counter",
                "Events given up on after the retry policy's attempts or a non-retryable answer.",
                c.abandoned,
            ),
            (
                "switchboard_webhook_skipped_total",
                "counter",
                "Events that left the history before they could be delivered.",
                c.skipped,
            ),
            (
                "switchboard_webhook_retries_total",
                "counter",
                "Webhook requests sent again after a failed attempt.",
                c.retries,
            ),
            (
                "switchboard_webhook_backlog",
                "gauge",
                "Events published on webhook channels and not yet delivered or given up on.",
                backlog,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }

    /// The sender task: runs until the hub is gone (the server dropped).
    pub async fn run(self: Arc<Self>, hub: Weak<HubHandle<R>>, publishes: Publishes) {
        let runtime = self.transport_runtime(&hub);
        let Some(runtime) = runtime else { return };
        let mut publishes = publishes.0;
        let (answers_tx, mut answers) = mpsc::unbounded::<(ChannelName, Answer)>();
        // Per channel under way: the request body read from the history, and the last failure for the log.
        let mut bodies: HashMap<ChannelName, String> = HashMap::new();
        let mut last_failure: HashMap<ChannelName, String> = HashMap::new();
        // Channels whose place is already recorded (with a cursor).
        let mut placed = self.resume(&hub, &runtime);
        loop {
            let deadline = {
                let mut s = self.lock();
                self.drain(
                    &mut s,
                    &hub,
                    &runtime,
                    &answers_tx,
                    &mut bodies,
                    &mut last_failure,
                )
            };
            let Some(deadline) = deadline else { return };
            let wake = or(
                async {
                    match publishes.next().await {
                        Some((c, o)) => Wake::Published(c, o),
                        None => Wake::Gone,
                    }
                },
                or(
                    async {
                        match answers.next().await {
                            Some((c, a)) => Wake::Answered(c, a),
                            None => Wake::Gone,
                        }
                    },
                    async {
                        runtime.sleep_until(deadline).await;
                        Wake::Timer
                    },
                ),
            )
            .await;
            let now = runtime.now();
            let mut s = self.lock();
            match wake {
                Wake::Published(channel, offset) => {
                    if self.cursor.is_some()
                        && self.config.matches(channel.as_str())
                        && !placed.contains(&channel)
                    {
                        // The first event of a channel: record where delivery starts, so a crash before it
                        // resumes there.
                        self.place(&hub, &channel, offset.saturating_sub(1), true);
                        placed.insert(channel.clone());
                    }
                    s.handle_published(now, &channel, offset)
                }
                Wake::Answered(channel, Answer::Delivered) => s.handle_delivered(now, &channel),
                Wake::Answered(channel, Answer::Failed(outcome, why)) => {
                    tracing::debug!(%channel, %why, "webhook attempt failed");
                    last_failure.insert(channel.clone(), why);
                    s.handle_failed(now, &channel, outcome);
                }
                Wake::Answered(channel, Answer::Unsendable(why)) => {
                    last_failure.insert(channel.clone(), why);
                    s.handle_unsendable(now, &channel);
                }
                Wake::Timer => s.handle_timeout(now),
                Wake::Gone => return,
            }
        }
    }

    /// Hands the scheduler every channel whose recorded place is behind its last offset; returns the channels
    /// with a recorded place.
    fn resume(&self, hub: &Weak<HubHandle<R>>, runtime: &R) -> HashSet<ChannelName> {
        let (Some(name), Some(hub)) = (&self.cursor, hub.upgrade()) else {
            return HashSet::new();
        };
        let behind: Vec<(ChannelName, u64, u64)> = hub.read(|core, _| {
            core.hub
                .cursors(name)
                .into_iter()
                .map(|(channel, done)| {
                    let last = core.hub.state(&channel).offset;
                    (channel, done, last)
                })
                .collect()
        });
        let now = runtime.now();
        let mut s = self.lock();
        let mut placed = HashSet::new();
        for (channel, done, last) in behind {
            if last > done {
                tracing::info!(%channel, from = done + 1, to = last, "webhook delivery resumes");
                // A channel new to the scheduler starts just before the offset it is told of; the second call
                // moves its newest offset up to the channel's last.
                s.handle_published(now, &channel, done + 1);
                s.handle_published(now, &channel, last);
            }
            placed.insert(channel);
        }
        placed
    }

    /// Records that delivery of `channel` is done up to `offset` (`only_if_unset`: unless a place is recorded).
    fn place(
        &self,
        hub: &Weak<HubHandle<R>>,
        channel: &ChannelName,
        offset: u64,
        only_if_unset: bool,
    ) {
        let (Some(name), Some(hub)) = (&self.cursor, hub.upgrade()) else {
            return;
        };
        hub.with(|core, _| {
            if !only_if_unset || core.hub.cursor(name, channel).is_none() {
                core.hub.set_cursor(name, channel, offset);
            }
        });
    }

    fn transport_runtime(&self, hub: &Weak<HubHandle<R>>) -> Option<R> {
        hub.upgrade().map(|h| h.runtime.clone())
    }

    /// Carries out every output; gives the next deadline, or `None` when the hub is gone.
    fn drain(
        &self,
        s: &mut DeliveryScheduler,
        hub: &Weak<HubHandle<R>>,
        runtime: &R,
        answers: &mpsc::UnboundedSender<(ChannelName, Answer)>,
        bodies: &mut HashMap<ChannelName, String>,
        last_failure: &mut HashMap<ChannelName, String>,
    ) -> Option<switchboard_protocol::time::Timestamp> {
        loop {
            match s.poll_output() {
                DeliveryOutput::Fetch { channel, after } => {
                    let hub = hub.upgrade()?;
                    // The number the scheduler knows the event by, and the event.
                    let next = match self.own() {
                        Some(mut own) => own.take(&channel, after),
                        None => hub.read(|core, now| {
                            let page = core.hub.history(now, &channel, Some(after), 1);
                            let epoch: Arc<str> = page.epoch.as_str().into();
                            page.events.into_iter().next().map(|(offset, event)| {
                                (
                                    offset,
                                    OwnEvent {
                                        epoch,
                                        offset,
                                        event,
                                    },
                                )
                            })
                        }),
                    };
                    let number = next.map(|(number, event)| {
                        let body = json!({
                            "type": "channel_event",
                            "channel": channel.as_str(),
                            "epoch": &*event.epoch,
                            "offset": event.offset,
                            "event": &*event.event,
                        });
                        bodies.insert(channel.clone(), body.to_string());
                        number
                    });
                    s.handle_fetched(runtime.now(), &channel, number);
                }
                DeliveryOutput::Send {
                    channel,
                    offset,
                    attempt,
                } => {
                    let Some(body) = bodies.get(&channel).cloned() else {
                        s.handle_unsendable(runtime.now(), &channel);
                        continue;
                    };
                    tracing::trace!(%channel, offset, attempt, "webhook attempt");
                    let task = send(
                        runtime.clone(),
                        self.transport.clone(),
                        self.endpoint.clone(),
                        self.config.clone(),
                        channel,
                        body,
                        answers.clone(),
                    );
                    runtime.spawn(Box::pin(task));
                }
                DeliveryOutput::Delivered {
                    channel, offset, ..
                } => {
                    bodies.remove(&channel);
                    last_failure.remove(&channel);
                    if let Some(mut own) = self.own() {
                        own.finish(&channel, offset);
                    }
                    self.place(hub, &channel, offset, false);
                }
                DeliveryOutput::Abandoned {
                    channel,
                    offset,
                    reason,
                } => {
                    bodies.remove(&channel);
                    let why = last_failure.remove(&channel).unwrap_or_default();
                    // On a node of a cluster `offset` is the scheduler's number: log the event's offset.
                    let event_offset = match self.own() {
                        Some(mut own) => {
                            let event_offset = own.offset_of(&channel, offset);
                            own.finish(&channel, offset);
                            event_offset
                        }
                        None => Some(offset),
                    };
                    tracing::warn!(%channel, offset = ?event_offset, url = %self.config.url, %why, ?reason, "webhook delivery given up");
                    self.place(hub, &channel, offset, false);
                }
                DeliveryOutput::Skipped { channel, from, to } if self.own.is_some() => {
                    tracing::warn!(%channel, count = to - from + 1, "webhook events dropped from this node's queue before delivery (more than the history size waiting); skipped");
                }
                DeliveryOutput::Skipped { channel, from, to } => {
                    tracing::warn!(%channel, from, to, "webhook events left the history before delivery; skipped");
                    self.place(hub, &channel, to, false);
                }
                DeliveryOutput::Timeout(at) => return Some(at),
                #[allow(unreachable_patterns)]
                other => tracing::warn!(?other, "unknown webhook output ignored"),
            }
        }
    }
}

/// POSTs one attempt, signed now, and reports how it went.
async fn send<R: Runtime>(
    runtime: R,
    transport: H1Transport<R>,
    endpoint: Endpoint,
    config: WebhookConfig,
    channel: ChannelName,
    body: String,
    answers: mpsc::UnboundedSender<(ChannelName, Answer)>,
) {
    let t = runtime.now().as_micros() / 1_000_000;
    let target = match endpoint.base_path() {
        "" => "/",
        path => path,
    };
    let request = RequestParts::new(Method::Post, target)
        .with_header(
            SIGNATURE_HEADER,
            sign_webhook(&config.secret, t, body.as_bytes()),
        )
        .with_body("application/json", body.as_bytes());
    let answer = match transport.send(&endpoint, &request, config.timeout).await {
        Ok(response) if (200..300).contains(&response.status) => Answer::Delivered,
        Ok(response) => Answer::Failed(
            Outcome::from_response(response.status, response.header("Retry-After")),
            format!("status {}", response.status),
        ),
        Err(e) if !e.is_retryable() => Answer::Unsendable(e.to_string()),
        Err(e) => Answer::Failed(e.outcome(), e.to_string()),
    };
    let _ = answers.unbounded_send((channel, answer));
}
