//! A native-dialect WebSocket client for tests: requests answered by `message_id`, events kept in arrival order,
//! heartbeats answered; every wait bounded by [`STEP`].

use std::collections::VecDeque;
use std::net::TcpStream;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde_json::{Value, json};
use smol::{Async, Timer};

use super::STEP;

/// One native connection to `ws://ADDR/api/ws`.
pub struct Native {
    ws: WebSocketStream<Async<TcpStream>>,
    next_id: u64,
    events: VecDeque<Value>,
}

impl Native {
    /// Connects to the server at `addr` (`host:port`) and reads its `connected` message.
    pub fn connect(addr: &str) -> Native {
        let url = format!("ws://{addr}/api/ws");
        let ws = bounded(async {
            let stream = Async::<TcpStream>::connect(
                addr.parse::<std::net::SocketAddr>().expect("an address"),
            )
            .await
            .expect("connect");
            let (ws, _) = async_tungstenite::client_async(url.as_str(), stream)
                .await
                .expect("upgrade");
            ws
        });
        let mut native = Native {
            ws,
            next_id: 0,
            events: VecDeque::new(),
        };
        let hello = native.receive();
        assert_eq!(hello["type"], "connected", "{hello}");
        native
    }

    /// Sends request `kind` with `data` and returns the answer (its `_res` or an `error`), whole.
    pub fn request(&mut self, kind: &str, data: Value) -> Value {
        self.next_id += 1;
        let id = format!("req-{}", self.next_id);
        let text = json!({"type": kind, "message_id": id, "data": data}).to_string();
        bounded(self.ws.send(Message::text(text))).expect("send");
        loop {
            let message = self.receive();
            if message["message_id"] == id.as_str() && message["server_initiated"] != true {
                return message;
            }
            self.keep(message);
        }
    }

    /// The next `event` message's data, in arrival order.
    pub fn event(&mut self) -> Value {
        loop {
            if let Some(event) = self.events.pop_front() {
                return event;
            }
            let message = self.receive();
            self.keep(message);
        }
    }

    /// Closes the connection.
    pub fn close(mut self) {
        let _ = bounded(self.ws.close(None));
    }

    fn keep(&mut self, message: Value) {
        match message["type"].as_str() {
            Some("event") => self.events.push_back(message["data"].clone()),
            Some("server_ping") => {
                let pong = json!({
                    "type": "server_pong",
                    "message_id": message["message_id"],
                    "data": {"timestamp": message["data"]["timestamp"], "server_timestamp": 0},
                });
                bounded(self.ws.send(Message::text(pong.to_string()))).expect("send a pong");
            }
            _ => {}
        }
    }

    /// The next text message, parsed.
    fn receive(&mut self) -> Value {
        loop {
            match bounded(self.ws.next()) {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("a JSON message");
                }
                Some(Ok(Message::Close(frame))) => {
                    panic!("the server closed the socket: {frame:?}")
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("the socket failed: {e}"),
                None => panic!("the socket ended"),
            }
        }
    }
}

/// Runs `future` to its end, failing the test if that takes longer than [`STEP`].
fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    smol::block_on(smol::future::or(async { Some(future.await) }, async {
        Timer::after(STEP).await;
        None
    }))
    .unwrap_or_else(|| panic!("no answer within {STEP:?}"))
}
