//! One HTTP/1.1 request and response over an open connection, driven by `ureq-proto`'s sans-IO client [`Call`].
//!
//! `ureq-proto` owns the protocol: writing the request head, framing the body, parsing the response head, and
//! telling a `Content-Length` body from a chunked one from one that runs to the close, and whether the connection
//! may be reused. This file only moves bytes between it and the socket, and enforces the size limits.
//!
//! The request goes out in one write: head and body (always `Content-Length`-framed; the body is in memory).

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use switchboard_protocol::http_client::RequestParts;
use ureq_proto::BodyMode;
use ureq_proto::client::{
    Await100Result, Call, RecvBodyResult, RecvResponseResult, SendRequestResult,
};
use ureq_proto::http;

use super::endpoint::Endpoint;
use super::transport::{Response, TransportError};

/// Size limits for one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Longest response head (status line and headers) accepted, in bytes.
    pub max_head_bytes: usize,
    /// Longest response body accepted, in bytes (after de-chunking).
    pub max_body_bytes: usize,
}

impl Default for ResponseLimits {
    /// 64 KiB of head, 16 MiB of body.
    fn default() -> Self {
        ResponseLimits {
            max_head_bytes: 64 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// How an exchange failed, and whether the server had started answering: a reused keep-alive connection that
/// fails before any response byte was most likely closed by the server while idle, and the request can go again on
/// a fresh connection.
#[derive(Debug)]
pub(crate) struct ExchangeError {
    pub error: TransportError,
    pub response_started: bool,
}

impl ExchangeError {
    fn before_response(error: TransportError) -> Self {
        ExchangeError {
            error,
            response_started: false,
        }
    }

    fn during_response(error: TransportError) -> Self {
        ExchangeError {
            error,
            response_started: true,
        }
    }
}

/// A completed exchange: the response, and whether the connection may carry another request.
#[derive(Debug)]
pub(crate) struct Exchanged {
    pub response: Response,
    pub reusable: bool,
}

const READ_CHUNK: usize = 16 * 1024;

/// Writes `request` to `conn` and reads the response.
pub(crate) async fn exchange<C>(
    conn: &mut C,
    endpoint: &Endpoint,
    request: &RequestParts,
    limits: ResponseLimits,
) -> Result<Exchanged, ExchangeError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let bytes = encode_request(endpoint, request).map_err(ExchangeError::before_response)?;
    let mut call = bytes.1;
    conn.write_all(&bytes.0)
        .await
        .map_err(|e| ExchangeError::before_response(TransportError::Io(e)))?;
    conn.flush()
        .await
        .map_err(|e| ExchangeError::before_response(TransportError::Io(e)))?;

    // The response head.
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    let head = loop {
        let (used, head) = call
            .try_response(&input, false)
            .map_err(|e| ExchangeError::during_response(TransportError::Protocol(e.to_string())))?;
        input.drain(..used);
        if let Some(head) = head {
            break head;
        }
        if used > 0 {
            continue; // an informational (1xx) response was skipped
        }
        if input.len() > limits.max_head_bytes {
            return Err(ExchangeError::during_response(TransportError::TooLarge {
                what: "head",
                limit: limits.max_head_bytes,
            }));
        }
        let n = read_some(conn, &mut chunk, !input.is_empty()).await?;
        input.extend_from_slice(&chunk[..n]);
    };
    let started = ExchangeError::during_response;
    let status = head.status().as_u16();
    let headers = head
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();

    // The body.
    let mut body = Vec::new();
    let must_close = match call.proceed() {
        Some(RecvResponseResult::RecvBody(mut call)) => {
            let mode = call.body_mode();
            let close_delimited = mode == BodyMode::CloseDelimited;
            if let BodyMode::LengthDelimited(declared) = mode
                && declared > limits.max_body_bytes as u64
            {
                // Refuse up front rather than read what will be thrown away.
                return Err(started(TransportError::TooLarge {
                    what: "body",
                    limit: limits.max_body_bytes,
                }));
            }
            let mut out = vec![0u8; READ_CHUNK];
            loop {
                while !input.is_empty() {
                    let (used, produced) = call
                        .read(&input, &mut out)
                        .map_err(|e| started(TransportError::Protocol(e.to_string())))?;
                    if used == 0 && produced == 0 {
                        break;
                    }
                    input.drain(..used);
                    if body.len() + produced > limits.max_body_bytes {
                        return Err(started(TransportError::TooLarge {
                            what: "body",
                            limit: limits.max_body_bytes,
                        }));
                    }
                    body.extend_from_slice(&out[..produced]);
                }
                if !close_delimited && call.can_proceed() {
                    break;
                }
                let n = conn
                    .read(&mut chunk)
                    .await
                    .map_err(|e| started(TransportError::Io(e)))?;
                if n == 0 {
                    if close_delimited {
                        break;
                    }
                    return Err(started(TransportError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed in the middle of the response body",
                    ))));
                }
                input.extend_from_slice(&chunk[..n]);
            }
            match call.proceed() {
                Some(RecvBodyResult::Cleanup(c)) => c.must_close_connection(),
                Some(RecvBodyResult::Redirect(r)) => r.must_close_connection(),
                None => true,
            }
        }
        Some(RecvResponseResult::Redirect(r)) => r.must_close_connection(),
        Some(RecvResponseResult::Cleanup(c)) => c.must_close_connection(),
        None => {
            return Err(started(TransportError::Protocol(
                "response head without a body mode".into(),
            )));
        }
    };
    Ok(Exchanged {
        response: Response {
            status,
            headers,
            body,
        },
        // Bytes after the response would be a pipelining confusion: do not reuse such a connection.
        reusable: !must_close && input.is_empty(),
    })
}

/// Reads at least one byte; EOF is an error, reported as during the response when some of it had arrived.
async fn read_some<C: AsyncRead + Unpin>(
    conn: &mut C,
    buf: &mut [u8],
    response_started: bool,
) -> Result<usize, ExchangeError> {
    let wrap = |error| ExchangeError {
        error,
        response_started,
    };
    match conn.read(buf).await {
        Ok(0) => Err(wrap(TransportError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a complete response head",
        )))),
        Ok(n) => Ok(n),
        Err(e) => Err(wrap(TransportError::Io(e))),
    }
}

/// The request's bytes, and the call ready to receive the response.
fn encode_request(
    endpoint: &Endpoint,
    request: &RequestParts,
) -> Result<(Vec<u8>, Call<ureq_proto::client::state::RecvResponse>), TransportError> {
    let invalid = |e: &dyn std::fmt::Display| TransportError::InvalidRequest(e.to_string());
    let method =
        http::Method::from_bytes(request.method.as_str().as_bytes()).map_err(|e| invalid(&e))?;
    let mut builder = http::Request::builder()
        .method(method.clone())
        .uri(endpoint.url(&request.target));
    let mut has_length = false;
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("content-length") {
            has_length = true;
        }
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(TransportError::InvalidRequest(
                "transfer-encoding is chosen by the transport".into(),
            ));
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    let needs_body = matches!(
        method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    );
    if !has_length && (needs_body || !request.body.is_empty()) {
        builder = builder.header("content-length", request.body.len().to_string());
    }
    let head = builder.body(()).map_err(|e| invalid(&e))?;
    let call = Call::new(head).map_err(|e| invalid(&e))?;

    let mut out = Vec::with_capacity(512 + request.body.len());
    let mut buf = vec![0u8; READ_CHUNK];
    let mut call = call.proceed();
    while !call.can_proceed() {
        let n = call.write(&mut buf).map_err(|e| invalid(&e))?;
        out.extend_from_slice(&buf[..n]);
    }
    let mut send_body = match call.proceed().map_err(|e| invalid(&e))? {
        Some(SendRequestResult::RecvResponse(call)) => return Ok((out, call)),
        Some(SendRequestResult::SendBody(call)) => call,
        Some(SendRequestResult::Await100(call)) => match call.proceed().map_err(|e| invalid(&e))? {
            Await100Result::SendBody(call) => call,
            Await100Result::RecvResponse(call) => return Ok((out, call)),
        },
        None => {
            return Err(TransportError::InvalidRequest(
                "incomplete request head".into(),
            ));
        }
    };
    let mut rest = request.body.as_slice();
    while !send_body.can_proceed() {
        let (used, n) = send_body.write(rest, &mut buf).map_err(|e| invalid(&e))?;
        out.extend_from_slice(&buf[..n]);
        rest = &rest[used..];
        if used == 0 && n == 0 && !rest.is_empty() {
            return Err(TransportError::InvalidRequest(
                "request body not accepted".into(),
            ));
        }
        if rest.is_empty() && !send_body.can_proceed() {
            // Chunked bodies end with an empty write; sized ones are done once all is written.
            let (_, n) = send_body.write(&[], &mut buf).map_err(|e| invalid(&e))?;
            out.extend_from_slice(&buf[..n]);
            if !send_body.can_proceed() {
                return Err(TransportError::InvalidRequest(
                    "request body incomplete".into(),
                ));
            }
        }
    }
    let call = send_body
        .proceed()
        .ok_or_else(|| TransportError::InvalidRequest("request body incomplete".into()))?;
    Ok((out, call))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::http_client::Method;

    /// An in-memory connection: reads from `input`, records writes.
    struct Scripted {
        input: std::io::Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl AsyncRead for Scripted {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            // One byte at a time: every parser path sees split input.
            let n = buf.len().min(1);
            std::task::Poll::Ready(std::io::Read::read(&mut self.input, &mut buf[..n]))
        }
    }

    impl AsyncWrite for Scripted {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.written.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn run(request: &RequestParts, reply: &[u8]) -> (Result<Exchanged, ExchangeError>, String) {
        let endpoint = Endpoint::parse("http://example.test:8080/base").unwrap();
        let mut conn = Scripted {
            input: std::io::Cursor::new(reply.to_vec()),
            written: Vec::new(),
        };
        let result = futures_lite::future::block_on(exchange(
            &mut conn,
            &endpoint,
            request,
            ResponseLimits {
                max_head_bytes: 256,
                max_body_bytes: 32,
            },
        ));
        (result, String::from_utf8(conn.written).unwrap())
    }

    #[test]
    fn writes_a_sized_request_and_reads_a_sized_response() {
        let request = RequestParts::new(Method::Post, "/base/x?a=1")
            .with_header("authorization", "Bearer t")
            .with_body("application/json", &b"{\"k\":1}"[..]);
        let (result, written) = run(
            &request,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
        );
        let done = result.unwrap();
        assert_eq!(done.response.status, 201);
        assert_eq!(done.response.body, b"hello");
        assert_eq!(done.response.header("x-a"), Some("b"));
        assert!(done.reusable);
        assert!(
            written.starts_with("POST /base/x?a=1 HTTP/1.1\r\n"),
            "{written}"
        );
        assert!(written.contains("host: example.test:8080\r\n"), "{written}");
        assert!(written.contains("content-length: 7\r\n"), "{written}");
        assert!(written.ends_with("\r\n\r\n{\"k\":1}"), "{written}");
    }

    #[test]
    fn reads_chunked_and_close_delimited_bodies() {
        let get = RequestParts::new(Method::Get, "/");
        let (r, written) = run(
            &get,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        let r = r.unwrap();
        assert_eq!(
            (r.response.body.as_slice(), r.reusable),
            (&b"abcde"[..], true)
        );
        assert!(!written.contains("content-length"), "{written}");

        let (r, _) = run(&get, b"HTTP/1.1 200 OK\r\n\r\nuntil the end");
        let r = r.unwrap();
        assert_eq!(
            (r.response.body.as_slice(), r.reusable),
            (&b"until the end"[..], false)
        );

        let (r, _) = run(
            &get,
            b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        );
        let r = r.unwrap();
        assert_eq!((r.response.status, r.reusable), (204, false));
    }

    #[test]
    fn failures_say_whether_the_response_had_started() {
        let get = RequestParts::new(Method::Get, "/");
        let (r, _) = run(&get, b"");
        let e = r.unwrap_err();
        assert!(!e.response_started && matches!(e.error, TransportError::Io(_)));

        let (r, _) = run(&get, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
        let e = r.unwrap_err();
        assert!(e.response_started && matches!(e.error, TransportError::Io(_)));

        let (r, _) = run(&get, b"NOT HTTP AT ALL\r\n\r\n");
        assert!(matches!(r.unwrap_err().error, TransportError::Protocol(_)));

        let (r, _) = run(&get, b"HTTP/1.1 200 OK\r\nContent-Length: 33\r\n\r\n");
        assert!(matches!(
            r.unwrap_err().error,
            TransportError::TooLarge {
                what: "body",
                limit: 32
            }
        ));

        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{}\r\n1\r\nx\r\n0\r\n\r\n",
            "a".repeat(32)
        );
        let (r, _) = run(&get, chunked.as_bytes());
        assert!(matches!(
            r.unwrap_err().error,
            TransportError::TooLarge {
                what: "body",
                limit: 32
            }
        ));

        let long_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(300));
        let (r, _) = run(&get, long_head.as_bytes());
        assert!(matches!(
            r.unwrap_err().error,
            TransportError::TooLarge { what: "head", .. }
        ));

        let bad = RequestParts::new(Method::Get, "/").with_header("x", "a\nb");
        let (r, _) = run(&bad, b"");
        assert!(matches!(
            r.unwrap_err().error,
            TransportError::InvalidRequest(_)
        ));
    }
}
