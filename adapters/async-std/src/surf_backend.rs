//! surf glue (feature `surf`): surf on the SDK's transport, and the SDK on surf.
//!
//! - [`UreqBackend`] is a surf [`HttpClient`] that sends with the SDK's ureq-proto [`H1Transport`] on async-std.
//!   surf 2.3's own backends are left off: its HTTP/1 ones pull tokio (through deadpool), its curl one libcurl.
//! - [`SurfTransport`] is an SDK [`HttpTransport`] that sends through any `surf::Client`, so an
//!   [`ApiClient`](switchboard_runtime::sdk::ApiClient) can sit on top of surf middleware.
//!
//! [`SurfTransport::over_ureq`] stacks the two. A [`TransportError`] crossing surf travels inside the
//! `surf::Error` and comes out unchanged, so retry decisions are the same on both paths.

use std::io;
use std::str::FromStr;
use std::time::Duration;

use http_client::{Config, HttpClient, async_trait};
use surf::http::headers::{HeaderName, HeaderValue};
use surf::http::{Body, Method as SurfMethod, Request, Response, StatusCode, Url};
use switchboard_protocol::http_client::{Method, RequestParts};
use switchboard_runtime::sdk::{self, Endpoint, H1Transport, HttpTransport, TransportError};
use switchboard_runtime::{BoxFuture, Runtime};

use crate::AsyncStdRuntime;

/// A surf [`HttpClient`] over the SDK's HTTP/1.1 transport (see the [module docs](self)). Honours
/// [`Config::timeout`] (60 s by default); other `Config` fields are kept but the transport's own pool settings
/// apply.
#[derive(Debug, Clone)]
pub struct UreqBackend {
    transport: H1Transport<AsyncStdRuntime>,
    config: Config,
}

impl UreqBackend {
    /// A backend with its own connection pool.
    pub fn new(runtime: AsyncStdRuntime) -> Self {
        UreqBackend::with_transport(H1Transport::new(runtime))
    }

    /// A backend sending with `transport` (a clone shares its pool).
    pub fn with_transport(transport: H1Transport<AsyncStdRuntime>) -> Self {
        UreqBackend {
            transport,
            config: Config::new(),
        }
    }
}

fn surf_error(status: StatusCode, error: impl Into<TransportError>) -> surf::Error {
    surf::Error::new(status, error.into())
}

#[async_trait]
impl HttpClient for UreqBackend {
    async fn send(&self, mut req: Request) -> Result<Response, surf::Error> {
        let invalid =
            |e: String| surf_error(StatusCode::BadRequest, TransportError::InvalidRequest(e));
        let url = req.url();
        let endpoint = Endpoint::parse(&url.origin().ascii_serialization())
            .map_err(|e| invalid(e.to_string()))?;
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let method = Method::from_str(req.method().as_ref()).map_err(|e| invalid(e.to_string()))?;
        let mut parts = RequestParts::new(method, target);
        for (name, values) in req.iter() {
            for value in values {
                parts
                    .headers
                    .push((name.as_str().to_owned(), value.as_str().to_owned()));
            }
        }
        parts.body = req.body_bytes().await?;
        let timeout = self
            .config
            .timeout
            .unwrap_or(Duration::from_secs(u32::MAX.into()));
        let answer = self
            .transport
            .send(&endpoint, &parts, timeout)
            .await
            .map_err(|e| surf_error(StatusCode::BadGateway, e))?;
        let mut response = Response::new(StatusCode::try_from(answer.status)?);
        for (name, value) in &answer.headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_str(name), HeaderValue::from_str(value))
            {
                response.append_header(name, value);
            }
        }
        response.set_body(Body::from_bytes(answer.body));
        Ok(response)
    }

    fn set_config(&mut self, config: Config) -> surf::Result<()> {
        self.config = config;
        Ok(())
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// An SDK transport that sends through a `surf::Client` (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct SurfTransport {
    client: surf::Client,
    runtime: AsyncStdRuntime,
}

impl SurfTransport {
    /// Sends through `client`; `runtime` times the requests out.
    pub fn new(client: surf::Client, runtime: AsyncStdRuntime) -> Self {
        SurfTransport { client, runtime }
    }

    /// Sends through a `surf::Client` whose backend is a [`UreqBackend`] over `transport`.
    pub fn over_ureq(transport: H1Transport<AsyncStdRuntime>) -> Self {
        let runtime = transport.runtime().clone();
        let client = surf::Client::with_http_client(UreqBackend::with_transport(transport));
        SurfTransport::new(client, runtime)
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        request: &RequestParts,
    ) -> Result<sdk::Response, TransportError> {
        let invalid = |e: &dyn std::fmt::Display| TransportError::InvalidRequest(e.to_string());
        let url = Url::parse(&endpoint.url(&request.target)).map_err(|e| invalid(&e))?;
        let method = SurfMethod::from_str(request.method.as_str()).map_err(|e| invalid(&e))?;
        let mut req = surf::Request::new(method, url);
        for (name, value) in &request.headers {
            let name = HeaderName::from_str(name).map_err(|e| invalid(&e))?;
            let value = HeaderValue::from_str(value).map_err(|e| invalid(&e))?;
            req.append_header(name, value);
        }
        if !request.body.is_empty() {
            req.set_body(Body::from_bytes(request.body.clone()));
        }
        let mut response = self.client.send(req).await.map_err(from_surf)?;
        let body = response.body_bytes().await.map_err(from_surf)?;
        let headers = response
            .iter()
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |value| (name.as_str().to_owned(), value.as_str().to_owned()))
            })
            .collect();
        Ok(sdk::Response {
            status: response.status().into(),
            headers,
            body,
        })
    }
}

impl HttpTransport for SurfTransport {
    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        request: &'a RequestParts,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<sdk::Response, TransportError>> {
        let timer = self
            .runtime
            .sleep_until(self.runtime.now().saturating_add(timeout));
        Box::pin(futures_lite::future::or(
            self.exchange(endpoint, request),
            async move {
                timer.await;
                Err(TransportError::Timeout(timeout))
            },
        ))
    }
}

/// The [`TransportError`] a surf error carries, or the error as an I/O failure.
fn from_surf(error: surf::Error) -> TransportError {
    error
        .downcast::<TransportError>()
        .unwrap_or_else(|other| TransportError::Io(io::Error::other(other.to_string())))
}
