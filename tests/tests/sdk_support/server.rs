//! A fault-injecting HTTP/1.1 server for the SDK tests, on any [`Runtime`]: it binds 127.0.0.1:0, records every
//! request, and answers what the test's handler says — a normal response, a chunked one, one after a delay, a
//! connection reset in the middle of the body, a hang-up with no answer, or an answer followed by closing the
//! connection — over plain TCP or TLS. Dropping the [`FakeServer`] stops it: the listener and every connection task end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::oneshot;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::TlsAcceptor;
use futures_rustls::rustls::ServerConfig;
use futures_util::FutureExt;
use serde_json::Value;
use switchboard_runtime::{Runtime, TcpListen};

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Order of arrival over the whole server, from 0.
    pub index: usize,
    /// The connection it came on (order of accept, from 0).
    pub connection: usize,
    /// The method.
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Seen {
    /// The path (before `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter's raw value.
    pub fn query(&self, key: &str) -> Option<&str> {
        let query = self.target.split_once('?')?.1;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A `Content-Length` response.
    Full {
        /// Status.
        status: u16,
        /// Extra header fields.
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// A chunked response, one chunk per element.
    Chunked {
        /// Status.
        status: u16,
        /// Chunks.
        chunks: Vec<Vec<u8>>,
    },
    /// The reply, after a delay.
    After(Duration, Box<Reply>),
    /// A head promising 1000 bytes, 10 of them, then the connection closes.
    ResetMidBody,
    /// Close the connection without answering.
    HangUp,
    /// The reply, then close the connection (without announcing it: as a server's idle timeout would).
    ThenClose(Box<Reply>),
}

impl Reply {
    /// A JSON response.
    pub fn json(status: u16, value: Value) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&value).unwrap(),
        }
    }

    /// A Switchboard error response (PROTOCOL §7).
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            serde_json::json!({"error": {"code": code, "message": message}}),
        )
    }

    /// This reply with one more header field.
    pub fn with_header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::Full {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.into(), value.into()));
                Reply::Full {
                    status,
                    headers,
                    body,
                }
            }
            other => panic!("with_header on {other:?}"),
        }
    }

    /// This reply after `delay`.
    pub fn after(self, delay: Duration) -> Reply {
        Reply::After(delay, Box::new(self))
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

#[derive(Default)]
struct Counters {
    requests: AtomicUsize,
    accepted: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A running fake server (see the [module docs](self)).
pub struct FakeServer {
    addr: SocketAddr,
    scheme: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeServer {
    /// Starts a server on 127.0.0.1:0 answering with `handler`.
    pub async fn start<R: Runtime>(
        rt: &R,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        FakeServer::start_with(rt, None, handler).await
    }

    /// [`start`](Self::start), speaking TLS with `tls` (the URL is then `https://127.0.0.1:port`).
    pub async fn start_tls<R: Runtime>(
        rt: &R,
        tls: Arc<ServerConfig>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        FakeServer::start_with(rt, Some(tls), handler).await
    }

    async fn start_with<R: Runtime>(
        rt: &R,
        tls: Option<Arc<ServerConfig>>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = rt
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let stop = stop_rx.map(drop).shared();
        let handler: Arc<Handler> = Arc::new(handler);
        let accept_loop = {
            let (rt2, seen, counters, stop) =
                (rt.clone(), seen.clone(), counters.clone(), stop.clone());
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let connection = counters.accepted.fetch_add(1, Ordering::SeqCst);
                    let (rt3, handler, seen, counters) =
                        (rt2.clone(), handler.clone(), seen.clone(), counters.clone());
                    let tls = tls.clone();
                    let task = async move {
                        match tls {
                            None => serve(rt3, stream, connection, handler, seen, counters).await,
                            Some(config) => {
                                if let Ok(stream) = TlsAcceptor::from(config).accept(stream).await {
                                    serve(rt3, stream, connection, handler, seen, counters).await;
                                }
                            }
                        }
                    };
                    rt2.spawn(Box::pin(until_stopped(task, stop.clone())));
                }
            }
        };
        rt.spawn(Box::pin(until_stopped(accept_loop, stop)));
        FakeServer {
            addr,
            scheme,
            seen,
            counters,
            stop: Some(stop_tx),
        }
    }

    /// `http://127.0.0.1:port` (`https` with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests so far.
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    /// The most requests being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.counters.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn until_stopped(
    task: impl std::future::Future<Output = ()>,
    stop: impl std::future::Future<Output = ()>,
) {
    futures_lite::future::or(task, stop).await;
}

/// Answers requests on one connection until the client closes it or a reply ends it.
async fn serve<R: Runtime, S: AsyncRead + AsyncWrite + Unpin>(
    rt: R,
    mut stream: S,
    connection: usize,
    handler: Arc<Handler>,
    seen: Arc<Mutex<Vec<Seen>>>,
    counters: Arc<Counters>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // The head.
        let (method, target, headers, head_len) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut fields);
            if let Ok(httparse::Status::Complete(len)) = req.parse(&buf) {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (
                    req.method.unwrap().to_owned(),
                    req.path.unwrap().to_owned(),
                    headers,
                    len,
                );
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..head_len);
        // The body (the SDK always sends Content-Length).
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        while buf.len() < length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        let request = Seen {
            index: counters.requests.fetch_add(1, Ordering::SeqCst),
            connection,
            method,
            target,
            headers,
            body,
        };
        seen.lock().unwrap().push(request.clone());
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let reply = handler(&request);
        let keep_open = write_reply(&rt, &mut stream, reply).await;
        counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !keep_open {
            return;
        }
    }
}

/// Writes `reply`; returns whether the connection stays open.
async fn write_reply<R: Runtime, S: AsyncWrite + Unpin>(
    rt: &R,
    stream: &mut S,
    reply: Reply,
) -> bool {
    let mut reply = reply;
    let mut close_after = false;
    loop {
        match reply {
            Reply::After(delay, inner) => {
                rt.sleep_until(rt.now().saturating_add(delay)).await;
                reply = *inner;
            }
            Reply::ThenClose(inner) => {
                close_after = true;
                reply = *inner;
            }
            _ => break,
        }
    }
    let bytes = match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} Status\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (n, v) in headers {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let mut out = out.into_bytes();
            out.extend_from_slice(&body);
            out
        }
        Reply::Chunked { status, chunks } => {
            let mut out = format!(
                "HTTP/1.1 {status} Status\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            .into_bytes();
            for c in chunks {
                out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend_from_slice(&c);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        Reply::ResetMidBody => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 Status\r\ncontent-length: 1000\r\n\r\n0123456789")
                .await;
            let _ = stream.flush().await;
            return false;
        }
        Reply::HangUp => return false,
        Reply::After(..) | Reply::ThenClose(_) => unreachable!("unwrapped above"),
    };
    if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
        return false;
    }
    !close_after
}

/// `key=value` pairs of a query, percent-decoding nothing (tests use plain values).
pub fn query_map(target: &str) -> HashMap<String, String> {
    target
        .split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// An IMF-fixdate for unix second `t` (for `Retry-After` dates).
pub fn http_date(t: u64) -> String {
    let (days, secs) = (t / 86_400, t % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A self-signed certificate for 127.0.0.1 and localhost: the server's TLS config and the certificate (DER) for the
/// client to trust.
pub fn self_signed() -> (Arc<ServerConfig>, Vec<u8>) {
    use futures_rustls::rustls::crypto::ring::default_provider;
    use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("generate a certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("a valid certificate and key");
    (Arc::new(config), cert.to_vec())
}
