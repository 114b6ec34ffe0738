//! The scenarios, each `async fn name<R: Runtime>(runtime: R)`, run by `server_e2e.rs` on every runtime.

mod app_api;
mod batch_publish;
mod dashboard;
mod dialects;
mod event_streams;
mod forgetting;
mod heartbeat;
mod http_routes;
mod idempotent_publish;
mod lifecycle;
mod native;
mod presence;
mod protocol_violations;
mod reserved_channels;
mod rest_edges;
mod trust;

pub use app_api::*;
pub use batch_publish::*;
pub use dashboard::*;
pub use dialects::*;
pub use event_streams::*;
pub use forgetting::*;
pub use heartbeat::*;
pub use http_routes::*;
pub use idempotent_publish::*;
pub use lifecycle::*;
pub use native::*;
pub use presence::*;
pub use protocol_violations::*;
pub use reserved_channels::*;
pub use rest_edges::*;
pub use trust::*;

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_protocol::server::HubConfig;
use switchboard_runtime::{Runtime, Server, ServerConfig};

/// A test configuration: fixed seed, small HTTP body limit (4 KiB), short timeouts.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            seed: 7,
            ..HubConfig::default()
        },
        max_body_bytes: 4 * 1024,
        close_timeout: Duration::from_secs(3),
        shutdown_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

/// Binds a server on 127.0.0.1, port 0.
pub async fn start<R: Runtime>(runtime: &R, config: ServerConfig) -> (Server<R>, SocketAddr) {
    let server = Server::bind(runtime.clone(), "127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("bind a loopback port");
    let addr = server.local_addr().expect("a bound address");
    (server, addr)
}
