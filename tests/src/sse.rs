//! A Server-Sent Events client over any byte stream, reading the server's bytes as a browser's `EventSource`
//! would: the response head, then blocks separated by a blank line, each with its `id:`, `event:`, `data:` and
//! `retry:` fields; comment lines (keep-alives) are counted and skipped.

use std::net::SocketAddr;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde_json::Value;
use switchboard_runtime::Runtime;

use crate::http::HttpResponse;
use crate::{STEP_TIMEOUT, bounded};

/// One block of the stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseBlock {
    /// `id:`, when the block has one.
    pub id: Option<String>,
    /// `event:`, when the block has one (`EventSource` dispatches a block without as `message`).
    pub event: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
    /// `retry:`, when the block has one.
    pub retry: Option<u64>,
}

impl SseBlock {
    /// The data as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {}", self.data))
    }
}

/// An open stream.
pub struct SseClient<R: Runtime, S> {
    runtime: R,
    stream: S,
    buf: Vec<u8>,
    /// The `200`'s head (status and headers; no body).
    pub head: HttpResponse,
    /// Keep-alive comments seen so far.
    pub keep_alives: usize,
}

impl<R: Runtime, S> std::fmt::Debug for SseClient<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseClient")
            .field("head", &self.head)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// Opens `path` over TCP with extra request headers. `Err` holds a refusal (any status but 200), body included.
pub async fn open<R: Runtime>(
    runtime: &R,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<SseClient<R, R::Tcp>, HttpResponse> {
    let stream = runtime.connect(addr).await.expect("connect to the server");
    SseClient::open_over(runtime, stream, path, headers).await
}

impl<R: Runtime, S: AsyncRead + AsyncWrite + Unpin> SseClient<R, S> {
    /// Sends the request over `stream` and reads the response head.
    pub async fn open_over(
        runtime: &R,
        mut stream: S,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, HttpResponse> {
        let mut raw = format!("GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        bounded(runtime, STEP_TIMEOUT, async {
            stream.write_all(raw.as_bytes()).await?;
            stream.flush().await
        })
        .await
        .expect("write the request");
        let mut client = SseClient {
            runtime: runtime.clone(),
            stream,
            buf: Vec::new(),
            head: HttpResponse {
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
            },
            keep_alives: 0,
        };
        let end = client
            .read_until(b"\r\n\r\n")
            .await
            .expect("a response head");
        let head_bytes: Vec<u8> = client.buf.drain(..end + 4).collect();
        let text = String::from_utf8_lossy(&head_bytes).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        client.head = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if status != 200 {
            let len: usize = client
                .head
                .header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            while client.buf.len() < len {
                if !client.fill().await {
                    break;
                }
            }
            let mut refused = client.head.clone();
            refused.body = client.buf.clone();
            return Err(refused);
        }
        Ok(client)
    }

    /// The next block with a field (keep-alives are skipped); `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseBlock> {
        let runtime = self.runtime.clone();
        bounded(&runtime, STEP_TIMEOUT, self.next_inner()).await
    }

    /// The next block that carries an event (has `data:`), skipping the opening block's like; `None` at the end.
    pub async fn next_event(&mut self) -> Option<SseBlock> {
        loop {
            let block = self.next().await?;
            if !block.data.is_empty() {
                return Some(block);
            }
        }
    }

    /// Reads until the server ends the stream (bounded); the events seen on the way.
    pub async fn until_end(&mut self) -> Vec<SseBlock> {
        let mut seen = Vec::new();
        while let Some(block) = self.next().await {
            if !block.data.is_empty() {
                seen.push(block);
            }
        }
        seen
    }

    async fn next_inner(&mut self) -> Option<SseBlock> {
        loop {
            let end = self.read_until(b"\n\n").await?;
            let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8(raw).expect("a stream is UTF-8");
            let mut block = SseBlock::default();
            let mut data: Vec<&str> = Vec::new();
            let mut any = false;
            for line in text.lines().filter(|l| !l.is_empty()) {
                if line.starts_with(':') {
                    self.keep_alives += 1;
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                any = true;
                match field {
                    "id" => block.id = Some(value.to_owned()),
                    "event" => block.event = Some(value.to_owned()),
                    "data" => data.push(value),
                    "retry" => block.retry = value.parse().ok(),
                    other => panic!("unknown field {other:?} in {text:?}"),
                }
            }
            if any {
                block.data = data.join("\n");
                return Some(block);
            }
        }
    }

    /// Reads until `pattern` is in the buffer; its position, or `None` at the end of the stream.
    async fn read_until(&mut self, pattern: &[u8]) -> Option<usize> {
        loop {
            if let Some(at) = self.buf.windows(pattern.len()).position(|w| w == pattern) {
                return Some(at);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }
}
