//! The hub's driver: the sans-IO hub behind one lock ([`driver`]), the WebSocket session that feeds it
//! ([`session`]: its outbound queue [`outbound`], the frames the server writes itself [`ws_frame`], the reading
//! end [`reader`], the writing end [`frame_writer`] and the stream tungstenite reads through [`read_side`]) and what a failed read tells the
//! peer ([`read_failure`]), the application API over it ([`app_api`]), its metrics ([`metrics`]) and the map of open connections
//! ([`conn_map`]).

pub mod app_api;
pub(crate) mod conn_map;
pub(crate) mod driver;
pub(crate) mod frame_writer;
pub(crate) mod metrics;
pub(crate) mod outbound;
pub(crate) mod read_failure;
pub(crate) mod read_side;
pub(crate) mod reader;
pub(crate) mod session;
pub(crate) mod ws_frame;
