//! Redis, sans-IO: the RESP2 codec and the connection machine the Redis engine is built on.
//!
//! - [`Command`] encodes a command; [`Decoder`] turns the byte stream back into [`Reply`]s, bounded by
//!   [`RespLimits`].
//! - [`RedisConnection`] is one connection's state machine: handshake (`AUTH`, `SELECT`, `CLIENT SETNAME`),
//!   pipelining with replies matched to requests in order, a reply deadline that declares a silent server dead,
//!   keep-alive `PING`s, reconnection with the core's [`Backoff`](crate::backoff::Backoff), and, on a connection
//!   made for it, pub/sub with its subscriptions restored after every reconnect.
//! - [`RedisUrl`] reads `redis://` and `rediss://` addresses.
//!
//! Like every machine in this crate it does no IO and reads no clock: the driver feeds it bytes and time and
//! carries out its [`Output`]s.

mod command;
mod connection;
mod decode;
mod reply;
mod url;

pub mod engine;

pub use command::Command;
pub use connection::{
    ConnectionConfig, DownReason, Event, Mode, Output, RedisConnection, RedisError, RequestId,
};
pub use decode::{Decoder, RespError, RespLimits};
pub use reply::Reply;
pub use url::{RedisUrl, UrlError};
