#![no_std]
//! # switchboard-protocol
//!
//! The sans-IO core of Switchboard. **It does no IO, reads no clock and draws no OS randomness**: bytes, time
//! ([`time::Timestamp`]) and seeds ([`rng::Rng`]) come in from the caller, and every decision the protocol makes —
//! framing, correlation, subscriptions, history and recovery, heartbeats, reconnection and retry timing, limits —
//! comes out as data. The same inputs always give the same outputs, so every run can be replayed.
//!
//! `#![no_std]` with `alloc`; no `unsafe`. Network input never panics anything.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

#[cfg(test)]
extern crate std;

pub mod auth;
pub mod backoff;
pub mod calls;
pub mod client;
#[cfg(feature = "_internal_test_exports")]
pub mod fuzzing;
pub mod http_client;
pub mod redis;
pub mod rest;
pub mod rng;
pub mod server;
pub mod time;
pub mod timer;
pub mod token_bucket;
pub mod webhook;
pub mod wire;
