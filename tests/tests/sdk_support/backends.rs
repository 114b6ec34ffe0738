//! The SDK backends the suite runs against: the ureq-proto transport on smol and on async-std, and the same
//! transport behind surf (`SurfTransport` over a `surf::Client` whose `HttpClient` is `UreqBackend`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard_async_std::AsyncStdRuntime;
use switchboard_async_std::surf_backend::SurfTransport;
use switchboard_runtime::Runtime;
use switchboard_runtime::sdk::{ApiClient, ApiConfig, H1Config, H1Transport, HttpTransport};
use switchboard_smol::SmolRuntime;

use super::server::FakeServer;

/// Every test ends within this, pass or fail.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// One way of running the SDK.
pub trait Backend: 'static {
    /// The runtime.
    type R: Runtime;
    /// A new runtime.
    fn runtime() -> Self::R;
    /// The transport the client uses, built over the ureq-proto transport `h1`.
    fn transport(h1: H1Transport<Self::R>) -> Arc<dyn HttpTransport>;
    /// Runs a future to completion on this runtime's executor.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// Runs a test body on a fresh runtime, failing it if it takes longer than [`TEST_LIMIT`].
    fn run<F, Fut>(body: F)
    where
        F: FnOnce(Self::R) -> Fut,
        Fut: Future<Output = ()>,
    {
        let rt = Self::runtime();
        let limit = rt.sleep_until(rt.now().saturating_add(TEST_LIMIT));
        Self::block_on(futures_lite::future::or(body(rt), async {
            limit.await;
            panic!("the test took longer than {TEST_LIMIT:?}");
        }));
    }
}

/// ureq-proto over smol.
pub struct UreqSmol;
/// ureq-proto over async-std.
pub struct UreqAsyncStd;
/// surf (its `HttpClient` being ureq-proto) over async-std.
pub struct SurfAsyncStd;

impl Backend for UreqSmol {
    type R = SmolRuntime;
    fn runtime() -> SmolRuntime {
        SmolRuntime::new()
    }
    fn transport(h1: H1Transport<SmolRuntime>) -> Arc<dyn HttpTransport> {
        Arc::new(h1)
    }
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}

impl Backend for UreqAsyncStd {
    type R = AsyncStdRuntime;
    fn runtime() -> AsyncStdRuntime {
        AsyncStdRuntime::new()
    }
    fn transport(h1: H1Transport<AsyncStdRuntime>) -> Arc<dyn HttpTransport> {
        Arc::new(h1)
    }
    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

impl Backend for SurfAsyncStd {
    type R = AsyncStdRuntime;
    fn runtime() -> AsyncStdRuntime {
        AsyncStdRuntime::new()
    }
    fn transport(h1: H1Transport<AsyncStdRuntime>) -> Arc<dyn HttpTransport> {
        Arc::new(SurfTransport::over_ureq(h1))
    }
    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

/// A client of `server` on backend `B`, from [`ApiConfig::testing`] changed by `tweak`; also returns the ureq-proto
/// transport underneath (for its connection counts).
pub fn client<B: Backend>(
    rt: &B::R,
    server: &FakeServer,
    h1_config: H1Config,
    tweak: impl FnOnce(&mut ApiConfig),
) -> (ApiClient<B::R>, H1Transport<B::R>) {
    let h1 = H1Transport::with_config(rt.clone(), h1_config);
    (client_over::<B>(rt, &server.url(), h1.clone(), tweak), h1)
}

/// A client of `url` on backend `B` over the ureq-proto transport `h1`, from [`ApiConfig::testing`] changed by
/// `tweak`.
pub fn client_over<B: Backend>(
    rt: &B::R,
    url: &str,
    h1: H1Transport<B::R>,
    tweak: impl FnOnce(&mut ApiConfig),
) -> ApiClient<B::R> {
    let mut config = ApiConfig::testing().with_base_url(url);
    tweak(&mut config);
    ApiClient::with_shared_transport(rt.clone(), config, B::transport(h1))
        .expect("valid test config")
}
