//! A WebSocket JSON client for the tests: async-tungstenite's runtime-neutral `client_async` over the runtime's
//! TCP (or any stream), with bounded waits on every receive.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use futures_lite::{AsyncRead, AsyncWrite};
use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_runtime::Runtime;

use crate::{STEP_TIMEOUT, bounded};

/// What the next frame was.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A text frame, parsed as JSON.
    Json(Value),
    /// A pong frame with its payload.
    Pong(Vec<u8>),
    /// A close frame with its code (`None` when it had none).
    Close(Option<u16>),
    /// The stream ended without a close frame.
    Ended,
}

/// A WebSocket client speaking JSON text frames.
#[derive(Debug)]
pub struct WsClient<R: Runtime, S> {
    runtime: R,
    ws: WebSocketStream<S>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh `message_id`.
pub fn next_id() -> String {
    format!("m{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

impl<R: Runtime> WsClient<R, R::Tcp> {
    /// Dials `addr` and opens a WebSocket at `path` (with its query).
    pub async fn connect(runtime: &R, addr: SocketAddr, path: &str) -> Self {
        let tcp = runtime.connect(addr).await.expect("connect to the server");
        WsClient::over(runtime, tcp, path).await
    }
}

impl<R: Runtime, S: AsyncRead + AsyncWrite + Unpin> WsClient<R, S> {
    /// Opens a WebSocket at `path` over an already-connected stream.
    pub async fn over(runtime: &R, stream: S, path: &str) -> Self {
        let url = format!("ws://switchboard.test{path}");
        let (ws, response) = bounded(
            runtime,
            STEP_TIMEOUT,
            async_tungstenite::client_async(url, stream),
        )
        .await
        .expect("the WebSocket handshake succeeds");
        assert_eq!(response.status(), 101);
        WsClient {
            runtime: runtime.clone(),
            ws,
        }
    }

    /// Sends a JSON text frame.
    pub async fn send(&mut self, value: &Value) {
        self.send_message(Message::text(value.to_string())).await;
    }

    /// Sends any message.
    pub async fn send_message(&mut self, message: Message) {
        let runtime = self.runtime.clone();
        bounded(&runtime, STEP_TIMEOUT, self.ws.send(message))
            .await
            .expect("send a frame");
    }

    /// Sends a native request `{type, message_id, data}` and returns its message id.
    pub async fn send_request(&mut self, kind: &str, data: Value) -> String {
        let id = next_id();
        self.send(&json!({"type": kind, "message_id": id, "data": data}))
            .await;
        id
    }

    /// The next frame (pings are skipped; tungstenite answers them).
    pub async fn next_frame(&mut self) -> Frame {
        let runtime = self.runtime.clone();
        bounded(&runtime, STEP_TIMEOUT, async {
            loop {
                match self.ws.next().await {
                    None => return Frame::Ended,
                    Some(Err(_)) => return Frame::Ended,
                    Some(Ok(Message::Text(t))) => {
                        let v = serde_json::from_str(t.as_str())
                            .unwrap_or_else(|e| panic!("server sent non-JSON text ({e}): {t}"));
                        return Frame::Json(v);
                    }
                    Some(Ok(Message::Pong(p))) => return Frame::Pong(p.to_vec()),
                    Some(Ok(Message::Close(c))) => {
                        return Frame::Close(c.map(|f: CloseFrame| u16::from(f.code)));
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
    }

    /// The next JSON message (fails the test on anything else).
    pub async fn recv(&mut self) -> Value {
        match self.next_frame().await {
            Frame::Json(v) => v,
            other => panic!("expected a JSON message, got {other:?}"),
        }
    }

    /// The next JSON message, skipping native `server_ping`s (answering them is not needed within a test).
    pub async fn recv_skip_pings(&mut self) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] != "server_ping" {
                return v;
            }
        }
    }

    /// Reads until a close frame and returns its code; JSON messages on the way are returned too. Like a
    /// well-behaved client, it then keeps reading so its answering close goes out, until the server ends the
    /// stream.
    pub async fn until_close(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut seen = Vec::new();
        loop {
            match self.next_frame().await {
                Frame::Json(v) => seen.push(v),
                Frame::Pong(_) => {}
                Frame::Close(code) => {
                    while self.next_frame().await != Frame::Ended {}
                    return (seen, code);
                }
                Frame::Ended => panic!("the stream ended without a close frame after {seen:?}"),
            }
        }
    }

    /// Sends a native request and returns its answer (the next message with the same `message_id`), skipping
    /// `server_ping`s; other messages on the way fail the test.
    pub async fn request(&mut self, kind: &str, data: Value) -> Value {
        let id = self.send_request(kind, data).await;
        let answer = self.recv_skip_pings().await;
        assert_eq!(
            answer["message_id"],
            json!(id),
            "answer to {kind}: {answer}"
        );
        answer
    }

    /// Reads the native `connected` greeting and returns the app id.
    pub async fn connected(&mut self) -> String {
        let hello = self.recv().await;
        assert_eq!(hello["type"], "connected", "{hello}");
        hello["data"]["app_id"]
            .as_str()
            .expect("connected carries an app_id")
            .to_owned()
    }

    /// Closes the WebSocket (close frame 1000) and waits for the server's answer.
    pub async fn close(mut self) {
        let runtime = self.runtime.clone();
        let _ = bounded(&runtime, STEP_TIMEOUT, self.ws.close(None)).await;
        let _ = bounded(&runtime, STEP_TIMEOUT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// The underlying WebSocket.
    pub fn inner(&mut self) -> &mut WebSocketStream<S> {
        &mut self.ws
    }
}
