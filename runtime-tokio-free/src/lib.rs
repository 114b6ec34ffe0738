//! # switchboard-runtime
//!
//! Async drivers for the Switchboard protocol core, over `futures-io` and the small [`Runtime`] trait. No executor
//! of its own and no tokio: the run loops wait on a socket, a timer or a command channel, feed the sans-IO machines
//! of `switchboard-protocol`, drain their outputs and write. Adapters supply the runtime (`switchboard-smol`,
//! `switchboard-async-std`).
//!
//! - [`client`]: the async [`Client`]: connects, reconnects and resubscribes in the background.
//! - [`memory`]: an in-memory duplex transport for tests.
//! - [`redis`]: a pipelined Redis client and a pub/sub subscriber that reconnect by themselves.
//! - [`server`]: the [`Server`]: HTTP front (its REST decisions are `switchboard_protocol::rest`'s), WebSocket
//!   dialects, the hub's driver, the app messaging API, webhook delivery.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod deadline;
#[cfg(feature = "_internal_test_exports")]
pub mod fuzzing;
pub mod memory;
pub mod redis;
pub mod runtime;
pub mod sdk;
pub mod server;
pub mod signal;
#[cfg(feature = "_internal_test_exports")]
#[doc(hidden)]
pub mod write_path;

pub use client::{Client, ClientOptions};
pub use runtime::{BoxFuture, Clock, Runtime, TcpListen};
pub use sdk::{ApiClient, ApiConfig, BlockingClient, ChannelsApi, HttpTransport};
pub use server::{Server, ServerConfig};
