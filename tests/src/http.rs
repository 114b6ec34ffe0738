//! A small HTTP/1.1 client over any byte stream: enough to check status lines, headers and JSON bodies, keep-alive
//! and raw malformed requests.

use std::net::SocketAddr;

use futures_lite::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use serde_json::Value;
use switchboard_runtime::Runtime;

use crate::{STEP_TIMEOUT, bounded};

/// A response as received.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error.code` of a JSON error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {}", self.text()))
            .to_owned()
    }
}

/// One client connection; requests go one after another (keep-alive).
#[derive(Debug)]
pub struct HttpConn<R: Runtime, S> {
    runtime: R,
    stream: S,
    buf: Vec<u8>,
}

impl<R: Runtime> HttpConn<R, R::Tcp> {
    /// Dials `addr` over the runtime's TCP.
    pub async fn connect(runtime: &R, addr: SocketAddr) -> Self {
        let stream = runtime.connect(addr).await.expect("connect to the server");
        HttpConn::new(runtime, stream)
    }
}

impl<R: Runtime, S: AsyncRead + AsyncWrite + Unpin> HttpConn<R, S> {
    /// A client over an already-connected stream.
    pub fn new(runtime: &R, stream: S) -> Self {
        HttpConn {
            runtime: runtime.clone(),
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends a request with a `Content-Length` body (if any) and reads the response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        if let Some(b) = body {
            raw.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        if let Some(b) = body {
            bytes.extend_from_slice(b);
        }
        self.send_raw(&bytes).await;
        self.read_response(method == "HEAD").await
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&mut self, path: &str, body: &Value) -> HttpResponse {
        let b = body.to_string();
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(b.as_bytes()),
        )
        .await
    }

    /// Writes raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        bounded(&self.runtime, STEP_TIMEOUT, write)
            .await
            .expect("write the request");
    }

    /// Reads one response (no body for a `HEAD`).
    pub async fn read_response(&mut self, head_only: bool) -> HttpResponse {
        let runtime = self.runtime.clone();
        bounded(&runtime, STEP_TIMEOUT, self.read_response_inner(head_only)).await
    }

    async fn read_response_inner(&mut self, head_only: bool) -> HttpResponse {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(len) =
                resp.parse(&self.buf).expect("a valid response head")
            {
                let status = resp.code.expect("a status");
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                self.buf.drain(..len);
                let length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map(|(_, v)| v.parse::<usize>().expect("a numeric Content-Length"))
                    .unwrap_or(0);
                let length = if head_only || status == 101 {
                    0
                } else {
                    length
                };
                while self.buf.len() < length {
                    self.fill().await;
                }
                let body = self.buf.drain(..length).collect();
                return HttpResponse {
                    status,
                    headers,
                    body,
                };
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .expect("read the response");
        assert!(
            n > 0,
            "the server closed the connection before a full response"
        );
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Whether the server has closed the connection (reads end of stream within the step timeout). The client
    /// then closes its side too, as a real one would.
    pub async fn is_closed_by_server(mut self) -> bool {
        let mut chunk = [0u8; 64];
        let runtime = self.runtime.clone();
        matches!(
            bounded(&runtime, STEP_TIMEOUT, self.stream.read(&mut chunk)).await,
            Ok(0) | Err(_)
        )
    }

    /// The stream, e.g. to continue as a WebSocket after a 101.
    pub fn into_inner(self) -> (S, Vec<u8>) {
        (self.stream, self.buf)
    }
}

/// One request on a fresh connection.
pub async fn request<R: Runtime>(
    runtime: &R,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let mut conn = HttpConn::connect(runtime, addr).await;
    conn.request(method, path, headers, body).await
}

/// `GET path` on a fresh connection.
pub async fn get<R: Runtime>(runtime: &R, addr: SocketAddr, path: &str) -> HttpResponse {
    request(runtime, addr, "GET", path, &[], None).await
}

/// `POST path` with a JSON body on a fresh connection.
pub async fn post_json<R: Runtime>(
    runtime: &R,
    addr: SocketAddr,
    path: &str,
    body: &Value,
) -> HttpResponse {
    let mut conn = HttpConn::connect(runtime, addr).await;
    conn.post_json(path, body).await
}
