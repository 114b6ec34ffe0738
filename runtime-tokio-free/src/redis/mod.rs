//! Redis over the runtime: the drivers of the protocol crate's [`RedisConnection`] machine.
//!
//! - [`RedisClient`]: one pipelined connection for commands: [`request`](RedisClient::request) from any task, in
//!   order, many in flight at once.
//! - [`RedisSubscriber`]: one connection for pub/sub, whose [`PubSubEvent`]s say when each channel is live, what is
//!   published to it, and when the connection went down (pub/sub loses what is published meanwhile, so a user
//!   fills that gap from a stream after each [`PubSubEvent::Up`]).
//!
//! - [`engine::Engine`]: channels kept in Redis for several nodes: publish, read, and a gap-free live feed.
//!
//! Both connections reconnect by themselves with the machine's backoff; neither needs tokio. `rediss://` runs over the same
//! TLS as the rest of the runtime (feature `tls`).
//!
//! [`RedisConnection`]: switchboard_protocol::redis::RedisConnection

mod client;
mod dial;
mod driver;
pub mod engine;
mod link_status;
mod options;
mod pub_sub_event;
mod subscriber;

pub use client::RedisClient;
pub use options::RedisOptions;
pub use pub_sub_event::PubSubEvent;
pub use subscriber::RedisSubscriber;
pub use switchboard_protocol::redis::{Command, RedisError, RedisUrl, Reply};
