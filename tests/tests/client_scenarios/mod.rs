//! The client scenarios, each `async fn name<R: Runtime>(runtime: R)`, run by `client_e2e.rs` on every runtime.

mod auth;
mod calls;
mod lifecycle;
mod patterns;
mod presence;
mod pubsub;
mod requests;
mod token_refresh;

pub use auth::*;
pub use calls::*;
pub use lifecycle::*;
pub use patterns::*;
pub use presence::*;
pub use pubsub::*;
pub use requests::*;
pub use token_refresh::*;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use switchboard_protocol::server::HubConfig;
use switchboard_runtime::client::{
    Client, ClientConfig, ClientOptions, ConnectionState, StateChanges, Subscription,
    SubscriptionItem,
};
use switchboard_runtime::{Runtime, Server, ServerConfig};
use switchboard_tests::{STEP_TIMEOUT, bounded};

/// A server configuration with a fixed seed and short close timeouts.
pub fn server_config() -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            seed: 11,
            ..HubConfig::default()
        },
        close_timeout: Duration::from_secs(2),
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

/// Client options with a fixed seed and a quick reconnect schedule (50 ms first, 500 ms cap), so a test that
/// restarts a listener does not wait out the production backoff.
pub fn options(seed: u64) -> ClientOptions {
    let mut protocol = ClientConfig::with_seed(seed);
    protocol.backoff.first_delay = Duration::from_millis(50);
    protocol.backoff.max_delay = Duration::from_millis(500);
    ClientOptions::with_protocol(protocol)
}

/// A client of the server at `addr`'s native endpoint.
pub fn client<R: Runtime>(runtime: &R, addr: SocketAddr, seed: u64) -> Client {
    Client::connect(
        runtime.clone(),
        &format!("ws://{addr}/api/ws"),
        options(seed),
    )
    .expect("a valid URL")
}

/// The next item of a stream, failing the test after [`STEP_TIMEOUT`] or if the stream ended.
pub async fn next<R: Runtime, S: Stream + Unpin>(runtime: &R, stream: &mut S) -> S::Item {
    bounded(runtime, STEP_TIMEOUT, stream.next())
        .await
        .expect("the stream ended")
}

/// Waits for `Connected` on a state feed and returns the connection's `app_id`.
pub async fn connected<R: Runtime>(runtime: &R, states: &mut StateChanges) -> String {
    loop {
        if let ConnectionState::Connected { app_id } = next(runtime, states).await {
            return app_id;
        }
    }
}

/// The next event of a subscription as `(offset, event)`, failing on anything else.
pub async fn next_event<R: Runtime>(
    runtime: &R,
    subscription: &mut Subscription,
) -> (u64, serde_json::Value) {
    match next(runtime, subscription).await {
        SubscriptionItem::Event(e) => (e.offset, e.event),
        other => panic!("expected an event, got {other:?}"),
    }
}
