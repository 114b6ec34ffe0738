//! The hub's driver: the sans-IO hub behind one lock ([`driver`]), the WebSocket session that feeds it
//! ([`session`]) and what a failed read tells the peer ([`read_failure`]), the application API over it
//! ([`app_api`]) and its metrics ([`metrics`]).

pub mod app_api;
pub(crate) mod driver;
pub(crate) mod metrics;
pub(crate) mod read_failure;
pub(crate) mod session;
