//! [`RedisClient`]: a pipelined connection for commands.

use futures_channel::{mpsc, oneshot};
use switchboard_protocol::redis::{Command, Mode, RedisError, Reply};

use super::driver::{Driver, Op};
use super::link_status::LinkStatus;
use super::options::RedisOptions;
use crate::Runtime;

/// A connection to Redis for commands, shared by cloning. Commands from every clone go out in the order they were
/// asked, pipelined (many in flight at once); the connection reconnects by itself.
#[derive(Debug, Clone)]
pub struct RedisClient {
    ops: mpsc::UnboundedSender<Op>,
    status: LinkStatus,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Op")
    }
}

impl RedisClient {
    /// Starts the connection's task on `runtime` (it dials at once; commands wait for it).
    pub fn start<R: Runtime>(runtime: R, options: RedisOptions) -> RedisClient {
        let (ops, receiver) = mpsc::unbounded();
        let status = LinkStatus::new(runtime.now());
        let driver = Driver::new(
            runtime.clone(),
            options,
            Mode::Commands,
            receiver,
            None,
            status.clone(),
        );
        runtime.spawn(Box::pin(driver.run()));
        RedisClient { ops, status }
    }

    /// Whether the connection is up (logged in) right now.
    pub fn is_up(&self) -> bool {
        self.status.is_up()
    }

    /// Since when the connection has been down (before its first connection: since it started), or `None` while
    /// it is up.
    pub fn down_since(&self) -> Option<switchboard_protocol::time::Timestamp> {
        self.status.down_since()
    }

    /// Sends `command` and waits for its reply. An error reply is [`RedisError::Refused`].
    pub async fn request(&self, command: Command) -> Result<Reply, RedisError> {
        let (sender, receiver) = oneshot::channel();
        self.ops
            .unbounded_send(Op::Request(command, sender))
            .map_err(|_| RedisError::Closed)?;
        receiver.await.unwrap_or(Err(RedisError::Closed))
    }

    /// Closes the connection; commands not yet answered get [`RedisError::Lost`] or [`RedisError::Closed`].
    pub async fn close(&self) {
        let (sender, receiver) = oneshot::channel();
        if self.ops.unbounded_send(Op::Close(sender)).is_ok() {
            let _ = receiver.await;
        }
    }
}
