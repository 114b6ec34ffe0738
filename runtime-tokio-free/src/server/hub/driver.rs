//! The hub's driver: the sans-IO [`Hub`] behind one mutex ([`HubHandle`]), fed by every connection task, the timer
//! task, the REST routes and the app API.
//!
//! Every input goes through [`HubHandle::with`]: lock, call the hub, then drain `poll_output()` until `Timeout` while
//! still holding the lock, so the frames of one connection reach its writer queue in exactly the order the hub
//! produced them, whichever task drained them. Routing never blocks: each frame is framed once as WebSocket bytes
//! (a fan-out's subscribers of one dialect share them: [`FrameCache`]) and goes to the connection's unbounded
//! [`Outbound`] queue (the hub bounds it with `max_queued_bytes` and closes slow consumers with 1013), a close goes
//! to the same queue behind them, completed server requests go to their waiter, other events go to the event task
//! (which runs application callbacks outside the lock), publishes are also told to the publish observer (the
//! webhook sender's queue), and the deadline goes to the one timer task. The writers whose queues went from empty
//! to non-empty are woken once each, after the lock is let go.
//!
//! With a data directory the hub runs over the durable store: its writes and snapshots go to the storage
//! [`Writer`] (a thread of its own), whose reports come back through [`HubHandle::with`] like any other input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Waker;
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_lite::future::or;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use switchboard_protocol::server::{
    ConnId, Hub, HubConfig, HubError, HubEvent, HubOutput, Publish, PublishTicket, RequestFailure,
    StorageError,
};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, CloseCode, IdempotencyKey, MessageId};

pub(crate) mod cluster_counts;
pub(crate) mod cluster_link;

use self::cluster_link::ClusterLink;
use super::conn_map::ConnMap;
use super::outbound::{Out, Outbound};
use super::ws_frame::FrameCache;
use crate::Runtime;
use crate::redis::engine::{Engine, Members};
use crate::server::storage::report::Report;
use crate::server::storage::writer::{Job, Writer};
use crate::server::storage::{DataDirError, Durable};

/// Which listener a connection came in through (`None`: [`Server::serve_stream`](crate::server::Server::serve_stream)).
pub(crate) type ListenerId = u64;

/// What the driver keeps for one open WebSocket connection.
#[derive(Debug)]
pub(crate) struct ConnLink {
    /// The writer's queue: frames, then the close.
    pub outbound: Arc<Outbound>,
    /// The listener it came through.
    pub listener: Option<ListenerId>,
    /// A connection that is no WebSocket (an event stream, the HTTP call route): the hub's frames go to it as
    /// they are, and its close to its slot; `outbound` is then unused.
    pub raw: Option<RawLink>,
}

/// The writer of a connection that is no WebSocket: the hub's frames as text, and the close.
#[derive(Debug)]
pub(crate) struct RawLink {
    /// The writer's frame queue.
    pub frames: mpsc::UnboundedSender<Arc<str>>,
    /// The writer's close slot; taken when the hub closes the connection.
    pub close: Option<oneshot::Sender<(CloseCode, String)>>,
}

/// A `send_request` waiting for its `RequestCompleted`.
pub(crate) type Waiter = oneshot::Sender<Result<Map<String, Value>, RequestFailure>>;

/// Where a publish (REST, app API) was kept: its first and last offsets (equal for one event), and whether it was
/// an earlier publish with the same idempotency key (nothing was published this time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The (first) event's offset.
    pub first: u64,
    /// The last event's offset.
    pub last: u64,
    /// The idempotency key was seen within the dedupe window: these are the original's offsets.
    pub duplicate: bool,
}

/// A publish waiting for the store: how many events it has (the hub reports the first offset only), and who
/// waits.
#[derive(Debug)]
struct PublishWaiter {
    count: u64,
    tx: oneshot::Sender<Result<Stored, StorageError>>,
}

/// The answer now, or the receiver it comes on.
type StoredOrWait = Result<Stored, oneshot::Receiver<Result<Stored, StorageError>>>;

impl Core {
    /// What [`Hub::publish_keyed`] (or its batch form, of `count` events) said, as an answer now or a wait.
    fn stored_or_wait(&mut self, publish: Publish, count: u64) -> StoredOrWait {
        match publish {
            Publish::Done(first) => Ok(Stored {
                first,
                last: first + count.saturating_sub(1),
                duplicate: false,
            }),
            Publish::Duplicate {
                first_offset,
                last_offset,
            } => Ok(Stored {
                first: first_offset,
                last: last_offset,
                duplicate: true,
            }),
            Publish::Pending(ticket) => {
                let (tx, rx) = oneshot::channel();
                self.publish_waiters
                    .insert(ticket, PublishWaiter { count, tx });
                Err(rx)
            }
        }
    }
}

/// Everything behind the driver's mutex.
#[derive(Debug)]
pub(crate) struct Core {
    /// The sans-IO hub.
    pub hub: Hub,
    /// Open WebSocket connections.
    pub conns: ConnMap<ConnLink>,
    /// Server requests the app API waits on, by connection and request id.
    pub waiters: HashMap<(ConnId, MessageId), Waiter>,
    /// Publishes (REST, app API) waiting for the store, by ticket.
    publish_waiters: HashMap<PublishTicket, PublishWaiter>,
    /// The hub's current deadline (what the timer task sleeps until).
    deadline: Timestamp,
    /// Wakes the timer task when the deadline moves earlier (capacity one: wake-ups coalesce).
    timer_wake: mpsc::Sender<()>,
    /// The durable store's file IO (with a data directory).
    pub writer: Option<Writer>,
    /// The frames built in the current drain, by the hub's text.
    frames: FrameCache,
    /// Writers to wake once the lock is let go.
    wake: Vec<Waker>,
}

/// Called for every publish the hub reports, with the hub locked: it must only note the event and never block.
pub(crate) type PublishObserver = Box<dyn Fn(&ChannelName, u64) + Send + Sync>;

/// The hub behind its mutex, with what draining its outputs needs: the event task's queue, the publish
/// observer, and the timer task's wake-up. Every task that feeds the hub holds one of these.
pub(crate) struct HubHandle<R: Runtime> {
    /// The runtime tasks and timers come from.
    pub runtime: R,
    core: Mutex<Core>,
    events: mpsc::UnboundedSender<HubEvent>,
    on_published: Option<PublishObserver>,
    /// A node of a cluster: where the hub's [`HubOutput::Engine`] commands go.
    cluster: Option<ClusterLink>,
    /// This handle, for the tasks that report back to it (an engine publish's answer).
    me: OnceLock<Weak<HubHandle<R>>>,
}

impl<R: Runtime> std::fmt::Debug for HubHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubHandle").finish_non_exhaustive()
    }
}

impl<R: Runtime> HubHandle<R> {
    /// Makes the hub (over the durable store of `durable`, with its writer thread, or in memory) and starts its
    /// timer task. The hub's events (other than the completions of awaited server requests) come out of the
    /// returned receiver, in order.
    pub fn start(
        runtime: R,
        config: HubConfig,
        on_published: Option<PublishObserver>,
        durable: Option<Durable>,
        cluster: Option<ClusterLink>,
    ) -> Result<(Arc<HubHandle<R>>, mpsc::UnboundedReceiver<HubEvent>), DataDirError> {
        // The writer reports to the handle made below; it has nothing to report before the handle exists.
        let link: Arc<OnceLock<Weak<HubHandle<R>>>> = Arc::new(OnceLock::new());
        let (hub, writer) = match durable {
            Some(Durable { store, dir }) => {
                let path = dir.path().to_owned();
                let to_hub = link.clone();
                let writer = Writer::start(
                    dir,
                    Arc::new(move |report| {
                        if let Some(handle) = to_hub.get().and_then(Weak::upgrade) {
                            handle.with(|core, now| core.apply(now, report));
                        }
                    }),
                )
                .map_err(DataDirError::io(path, "start the writer thread"))?;
                (Hub::with_store(config, store), Some(writer))
            }
            None if cluster.is_some() => (Hub::clustered(config), None),
            None => (Hub::new(config), None),
        };
        let (events_tx, events_rx) = mpsc::unbounded();
        let (timer_tx, timer_rx) = mpsc::channel(1);
        let handle = Arc::new(HubHandle {
            runtime: runtime.clone(),
            core: Mutex::new(Core {
                hub,
                conns: ConnMap::default(),
                waiters: HashMap::new(),
                publish_waiters: HashMap::new(),
                deadline: Timestamp::MAX,
                timer_wake: timer_tx,
                writer,
                frames: FrameCache::default(),
                wake: Vec::new(),
            }),
            events: events_tx,
            on_published,
            cluster,
            me: OnceLock::new(),
        });
        let _ = link.set(Arc::downgrade(&handle));
        let _ = handle.me.set(Arc::downgrade(&handle));
        // Settle the hub's first deadline before the timer task looks at it.
        handle.with(|_, _| ());
        runtime.spawn(Box::pin(timer_task(Arc::downgrade(&handle), timer_rx)));
        Ok((handle, events_rx))
    }

    /// The engine, on a node of a cluster.
    pub fn engine(&self) -> Option<&Engine> {
        self.cluster.as_ref().map(|link| &link.engine)
    }

    /// The cluster's members, on a node of a cluster.
    pub fn members(&self) -> Option<&Members> {
        self.cluster.as_ref().map(|link| &link.members)
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|poisoned| {
            tracing::error!("the hub's mutex was poisoned by a panic; carrying on");
            poisoned.into_inner()
        })
    }

    /// Runs `f` on the hub at the current time, then drains and routes every output.
    pub fn with<T>(&self, f: impl FnOnce(&mut Core, Timestamp) -> T) -> T {
        self.with_at(self.runtime.now(), f)
    }

    /// [`with`](Self::with) at `now`, read by the caller (who needed it before taking the lock).
    pub fn with_at<T>(&self, now: Timestamp, f: impl FnOnce(&mut Core, Timestamp) -> T) -> T {
        let mut core = self.lock();
        let out = f(&mut core, now);
        self.drain(&mut core);
        core.frames.clear();
        let wake = std::mem::take(&mut core.wake);
        drop(core);
        for waker in wake {
            waker.wake();
        }
        out
    }

    /// Reads the hub without feeding it anything (queries).
    pub fn read<T>(&self, f: impl FnOnce(&Core, Timestamp) -> T) -> T {
        let now = self.runtime.now();
        let core = self.lock();
        f(&core, now)
    }

    /// Publishes through the hub and waits until the store has kept the event: where it was kept, or why the store
    /// could not keep it. The hub's own refusals (a null or oversized event) are the outer error. With `key`, a
    /// publish whose key the channel saw within the dedupe window publishes nothing and gives the original's
    /// offsets, marked [`Stored::duplicate`].
    pub async fn publish(
        &self,
        channel: &ChannelName,
        event: Value,
        retain: bool,
        key: Option<IdempotencyKey>,
    ) -> Result<Result<Stored, StorageError>, HubError> {
        let waiting = self.with(|core, now| {
            let publish = core.hub.publish_keyed(now, channel, event, retain, key)?;
            Ok::<_, HubError>(core.stored_or_wait(publish, 1))
        })?;
        Ok(match waiting {
            Ok(stored) => Ok(stored),
            // A dropped sender means the hub went away with the publish still waiting: it was not kept.
            Err(rx) => rx.await.unwrap_or(Err(StorageError::WriteFailed)),
        })
    }

    /// Publishes `events` at consecutive offsets, all or none, like [`publish`](Self::publish) (one key for the
    /// whole batch): the refusal, or once the store has kept (or failed to keep) the last of them, the offsets of
    /// the first and last.
    pub async fn publish_batch(
        &self,
        channel: &ChannelName,
        events: Vec<Value>,
        retain_last: bool,
        key: Option<IdempotencyKey>,
    ) -> Result<Result<Stored, StorageError>, HubError> {
        let count = events.len() as u64;
        let waiting = self.with(|core, now| {
            let publish = core
                .hub
                .publish_batch_keyed(now, channel, events, retain_last, key)?;
            Ok::<_, HubError>(core.stored_or_wait(publish, count))
        })?;
        Ok(match waiting {
            Ok(stored) => Ok(stored),
            Err(rx) => rx.await.unwrap_or(Err(StorageError::WriteFailed)),
        })
    }

    fn drain(&self, core: &mut Core) {
        loop {
            match core.hub.poll_output() {
                HubOutput::Transmit { conn, frame } => {
                    if let Some(raw) = core.conns.get(&conn).and_then(|l| l.raw.as_ref()) {
                        // A closed queue means the writer is gone; the hub hears of it from its teardown.
                        let _ = raw.frames.unbounded_send(frame);
                    } else if let Some(link) = core.conns.get(&conn) {
                        let item = Out::Data {
                            frame: core.frames.framed(&frame),
                            text_len: frame.len(),
                        };
                        let (waker, written) = link.outbound.push(item);
                        core.wake.extend(waker);
                        // What the writer wrote since the hub last heard, told while the lock is held anyway.
                        if written > 0 {
                            core.hub.handle_sent(conn, written);
                        }
                    }
                }
                HubOutput::Close { conn, code, reason } => {
                    if let Some(raw) = core.conns.get_mut(&conn).and_then(|l| l.raw.as_mut()) {
                        if let Some(close) = raw.close.take() {
                            let _ = close.send((code, reason));
                        }
                    } else if let Some(link) = core.conns.get(&conn) {
                        let waker = link.outbound.close(code.as_u16(), &reason);
                        core.wake.extend(waker);
                    }
                }
                HubOutput::Event(HubEvent::RequestCompleted { conn, id, outcome }) => {
                    match core.waiters.remove(&(conn, id.clone())) {
                        Some(waiter) => {
                            let _ = waiter.send(outcome);
                        }
                        None => {
                            let _ = self.events.unbounded_send(HubEvent::RequestCompleted {
                                conn,
                                id,
                                outcome,
                            });
                        }
                    }
                }
                HubOutput::Event(HubEvent::PublishDone { ticket, outcome }) => {
                    if let Some(waiter) = core.publish_waiters.remove(&ticket) {
                        let stored = outcome.map(|first| Stored {
                            first,
                            last: first + waiter.count.saturating_sub(1),
                            duplicate: false,
                        });
                        let _ = waiter.tx.send(stored);
                    }
                }
                HubOutput::Event(HubEvent::PublishDuplicate {
                    ticket,
                    first_offset,
                    last_offset,
                }) => {
                    if let Some(waiter) = core.publish_waiters.remove(&ticket) {
                        let _ = waiter.tx.send(Ok(Stored {
                            first: first_offset,
                            last: last_offset,
                            duplicate: true,
                        }));
                    }
                }
                HubOutput::Event(event) => {
                    if let (
                        Some(observer),
                        HubEvent::Published {
                            channel, offset, ..
                        },
                    ) = (&self.on_published, &event)
                    {
                        observer(channel, *offset);
                    }
                    let _ = self.events.unbounded_send(event);
                }
                HubOutput::Timeout(at) => {
                    let earlier = at < core.deadline;
                    if earlier {
                        tracing::trace!(reason = ?core.hub.last_timeout_reason(), "hub deadline moved earlier");
                    }
                    core.deadline = at;
                    if earlier {
                        // Full means a wake-up is already pending: the timer task re-reads the deadline anyway.
                        let _ = core.timer_wake.try_send(());
                    }
                    return;
                }
                HubOutput::Persist(write) => {
                    let batch = write.batch;
                    if !core.submit(Job::Write(write)) {
                        core.hub.handle_store_failed(self.runtime.now(), batch);
                    }
                }
                HubOutput::Engine(command) => match &self.cluster {
                    Some(link) => {
                        let me = self.me.get().cloned().unwrap_or_default();
                        cluster_link::carry_out(&self.runtime, link, me, command);
                    }
                    None => tracing::error!(?command, "an engine command without an engine"),
                },
                HubOutput::Snapshot(job) => {
                    let covers = job.covers;
                    if !core.submit(Job::Snapshot(job)) {
                        core.hub.handle_snapshot_failed(self.runtime.now(), covers);
                    }
                }
                #[allow(unreachable_patterns)]
                other => tracing::warn!(?other, "unknown hub output ignored"),
            }
        }
    }
}

impl Core {
    /// Hands a job to the storage writer; `false` when there is none or it is closed (the job failed).
    fn submit(&self, job: Job) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|writer| writer.submit(job))
    }

    /// Feeds the writer's report to the hub.
    fn apply(&mut self, now: Timestamp, report: Report) {
        match report {
            Report::Written { batch } => self.hub.handle_store_written(now, batch),
            Report::WriteFailed { batch } => self.hub.handle_store_failed(now, batch),
            Report::SnapshotWritten { covers, bytes } => {
                self.hub.handle_snapshot_written(now, covers, bytes)
            }
            Report::SnapshotFailed { covers } => self.hub.handle_snapshot_failed(now, covers),
        }
    }

    /// Whether the writer has finished a log write (or failed one) since it started: the store's first segment,
    /// with its epoch, is on disk. True without a writer.
    pub fn first_write_done(&self) -> bool {
        self.writer.as_ref().is_none_or(|w| {
            let state = w.state();
            state.log_bytes.load(std::sync::atomic::Ordering::SeqCst) > 0
                || state
                    .write_failures
                    .load(std::sync::atomic::Ordering::SeqCst)
                    > 0
        })
    }

    /// Whether the store has nothing left to write: no publish waits for a write and the writer is idle.
    pub fn storage_settled(&self) -> bool {
        self.hub.stats().pending_publishes == 0 && self.writer.as_ref().is_none_or(Writer::is_idle)
    }
}

/// The one timer task: sleeps until the hub's deadline (or until woken because it moved earlier), then feeds
/// `handle_timeout`. Ends when the server is dropped.
async fn timer_task<R: Runtime>(shared: Weak<HubHandle<R>>, mut wake: mpsc::Receiver<()>) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let runtime = strong.runtime.clone();
        let deadline = strong.read(|core, _| core.deadline);
        let now = runtime.now();
        if now >= deadline {
            strong.with(|core, now| core.hub.handle_timeout(now));
            let after = strong.read(|core, _| core.deadline);
            drop(strong);
            if after <= now {
                // The hub asked to be woken in the past again: give it a millisecond rather than spin.
                runtime.sleep_until(now + Duration::from_millis(1)).await;
            }
            continue;
        }
        drop(strong);
        let sleep = runtime.sleep_until(deadline);
        let woken = or(async { wake.next().await.is_some() }, async {
            sleep.await;
            true
        })
        .await;
        if !woken {
            return;
        }
    }
}
