//! # switchboard-runtime
//!
//! Async drivers for the Switchboard protocol core, over `futures-io` and the small [`Runtime`] trait. No executor
//! of its own and no tokio: the run loops wait on a socket, a timer or a command channel, feed the sans-IO machines
//! of `switchboard-protocol`, drain their outputs and write. Adapters supply the runtime (`switchboard-smol`,
//! `switchboard-async-std`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod runtime;

pub use client::{Client, ClientOptions};
pub use runtime::{BoxFuture, Clock, Runtime, TcpListen};
