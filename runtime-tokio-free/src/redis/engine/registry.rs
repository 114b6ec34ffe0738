//! [`Registry`]: this node's registrations as the server of channels, kept in Redis for the other nodes to find,
//! and the node's inbox (calls for the connections it serves, answers to the calls it forwarded).
//!
//! Registering and removing go through one task in the order the hub asked, so a `serve` quickly followed by a
//! disconnect never leaves a registration behind. The same task refreshes every registration still this node's
//! every third of its time-to-live; one that another node took over is dropped from the refresh, and a node that
//! dies stops refreshing, so its registrations expire and calls get `NO_HANDLER` instead of waiting on it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_channel::mpsc;
use futures_lite::future::or;
use futures_util::StreamExt;
use switchboard_protocol::redis::engine::{
    InboxMessage, Keys, REFRESH_SCRIPT, REMOVE_SCRIPT, Registration,
};
use switchboard_protocol::redis::{Command, Reply};
use switchboard_protocol::wire::ChannelName;

use super::Engine;
use super::error::EngineError;
use super::scripts::SharedScript;
use crate::Runtime;
use crate::redis::RedisClient;

/// The default time-to-live of a registration: how long calls may still be sent to a node that died.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(15);

/// This node's registrations and its way to the other nodes; clones share the task.
#[derive(Debug, Clone)]
pub struct Registry {
    node: String,
    keys: Keys,
    commands: RedisClient,
    ops: mpsc::UnboundedSender<Op>,
}

#[derive(Debug)]
enum Op {
    Register(ChannelName),
    Unregister(ChannelName),
}

impl Registry {
    /// Starts the registry task of node `node` on `engine`'s connections, and has the engine listen on the node's
    /// inbox (its messages come out as [`EngineEvent::Inbox`](super::EngineEvent::Inbox)).
    pub fn start<R: Runtime>(runtime: R, engine: &Engine, node: String, ttl: Duration) -> Registry {
        let (ops, queue) = mpsc::unbounded();
        let registry = Registry {
            node: node.clone(),
            keys: engine.inner.keys.clone(),
            commands: engine.inner.commands.clone(),
            ops,
        };
        engine.listen(engine.inner.keys.inbox(&node));
        let task = RegistryTask {
            runtime: runtime.clone(),
            node,
            keys: registry.keys.clone(),
            commands: registry.commands.clone(),
            refresh: SharedScript::new(REFRESH_SCRIPT),
            remove: SharedScript::new(REMOVE_SCRIPT),
            ttl,
            next_id: 1,
            held: BTreeMap::new(),
        };
        runtime.spawn(Box::pin(task.run(queue)));
        registry
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Registers this node as the server of `channel` (the newest registration wins).
    pub fn register(&self, channel: &ChannelName) {
        let _ = self.ops.unbounded_send(Op::Register(channel.clone()));
    }

    /// Removes this node's registration of `channel`, if it is still this node's.
    pub fn unregister(&self, channel: &ChannelName) {
        let _ = self.ops.unbounded_send(Op::Unregister(channel.clone()));
    }

    /// The node registered as the server of `channel`, if any.
    pub async fn lookup(&self, channel: &ChannelName) -> Result<Option<String>, EngineError> {
        let reply = self
            .commands
            .request(Registration::lookup(&self.keys, channel))
            .await?;
        Ok(Registration::found(&reply)?.map(|registration| registration.node))
    }

    /// Sends `message` to node `node`'s inbox; `false` when no node listens there (it is gone).
    pub async fn send(&self, node: &str, message: &InboxMessage) -> Result<bool, EngineError> {
        let command = Command::new("PUBLISH")
            .arg(self.keys.inbox(node))
            .arg(message.encode());
        let reply = self.commands.request(command).await?;
        Ok(matches!(reply, Reply::Integer(n) if n > 0))
    }
}

struct RegistryTask<R: Runtime> {
    runtime: R,
    node: String,
    keys: Keys,
    commands: RedisClient,
    refresh: SharedScript,
    remove: SharedScript,
    ttl: Duration,
    next_id: u64,
    /// This node's registrations, as last written.
    held: BTreeMap<ChannelName, Registration>,
}

impl<R: Runtime> RegistryTask<R> {
    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Op>) {
        let period = self.ttl / 3;
        let mut next_refresh = self.runtime.now() + period;
        loop {
            let sleep = self.runtime.sleep_until(next_refresh);
            let op = or(async { Some(queue.next().await) }, async {
                sleep.await;
                None
            })
            .await;
            match op {
                Some(None) => return,
                Some(Some(op)) => self.apply(op).await,
                None => {
                    self.refresh_all().await;
                    next_refresh = self.runtime.now() + period;
                }
            }
        }
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    async fn apply(&mut self, op: Op) {
        match op {
            Op::Register(channel) => {
                let registration = Registration {
                    node: self.node.clone(),
                    id: self.next_id,
                };
                self.next_id += 1;
                let command = registration.register(&self.keys, &channel, self.ttl_ms());
                match self.commands.request(command).await {
                    Ok(reply) => {
                        if let Ok(Some(previous)) = Registration::replaced(&reply)
                            && previous.node != self.node
                        {
                            tracing::info!(%channel, from = %previous.node, "serving taken over from another node");
                        }
                        self.held.insert(channel, registration);
                    }
                    Err(error) => {
                        // Kept anyway: the next refresh cannot bring back what was never written, so write it
                        // then (the refresh below re-registers what it finds missing).
                        tracing::warn!(%channel, %error, "could not register as the channel's server; retried");
                        self.held.insert(channel, registration);
                    }
                }
            }
            Op::Unregister(channel) => {
                if let Some(registration) = self.held.remove(&channel) {
                    let result = self
                        .remove
                        .run(&self.commands, |script| {
                            registration.remove(script, &self.keys, &channel)
                        })
                        .await;
                    if let Err(error) = result {
                        tracing::warn!(%channel, %error, "could not remove the registration; it expires");
                    }
                }
            }
        }
    }

    /// Extends every registration still this node's; writes again the ones Redis does not hold at all (expired
    /// while Redis was unreachable, or never written), and forgets the ones another node holds now.
    async fn refresh_all(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let ttl_ms = self.ttl_ms();
        let held: Vec<(ChannelName, Registration)> = self
            .held
            .iter()
            .map(|(channel, registration)| (channel.clone(), registration.clone()))
            .collect();
        let refreshed = self
            .refresh
            .run(&self.commands, |script| {
                Registration::refresh(script, &self.keys, &held, ttl_ms)
            })
            .await;
        match refreshed {
            Ok(Reply::Integer(n)) if usize::try_from(n).is_ok_and(|n| n == held.len()) => {}
            Ok(_) => {
                for (channel, registration) in held {
                    let now = self
                        .commands
                        .request(Registration::lookup(&self.keys, &channel))
                        .await
                        .ok()
                        .and_then(|reply| Registration::found(&reply).ok());
                    match now {
                        Some(Some(current)) if current == registration => {}
                        Some(Some(_)) => {
                            self.held.remove(&channel);
                        }
                        Some(None) => {
                            let command = registration.register(&self.keys, &channel, ttl_ms);
                            let _ = self.commands.request(command).await;
                        }
                        None => {}
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not refresh the registrations; retried"),
        }
    }
}
