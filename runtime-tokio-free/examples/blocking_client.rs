//! The protocol's client machine driven without any async runtime: a plain `std::net::TcpStream`, tungstenite's
//! blocking WebSocket, and `set_read_timeout` to wake up for the machine's deadlines. This is the whole driver; the
//! machine (`switchboard_protocol::client::ClientMachine`) owns every decision — reconnects, backoff, resubscribing
//! with `since`, heartbeats, request timeouts.
//!
//! ```sh
//! cargo run --release --bin switchboard -- serve &
//! cargo run -p switchboard-runtime --example blocking_client -- ws://127.0.0.1:8000/api/ws projects/demo 10
//! ```
//!
//! It subscribes to the channel and prints each event as one JSON line `{"channel","offset","event"}`, stopping
//! after COUNT events when given.

use std::io::{self, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use switchboard_protocol::client::{
    ClientConfig, ClientEvent, ClientMachine, ConnectFailure, Output,
};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::CloseCode;
use switchboard_runtime::Clock;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::Uri;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tungstenite::{Message, WebSocket};

/// The machine, the socket and a clock: one blocking client.
struct BlockingClient {
    machine: ClientMachine,
    clock: Clock,
    url: String,
    /// How long dialing and each blocking write may take.
    io_timeout: Duration,
    socket: Option<WebSocket<TcpStream>>,
    /// Events drained from the machine, not yet handed to the application.
    events: Vec<ClientEvent>,
}

impl BlockingClient {
    /// A client for `url`; it dials on the first [`turn`](Self::turn).
    fn new(url: &str, config: ClientConfig) -> BlockingClient {
        let clock = Clock::new();
        let io_timeout = config.connect_timeout;
        BlockingClient {
            machine: ClientMachine::new(config, clock.now()),
            clock,
            url: url.to_owned(),
            io_timeout,
            socket: None,
            events: Vec::new(),
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// One round of the run loop: carry out the machine's outputs; if that produced no event, wait for the network
    /// until the machine's deadline (or `limit`, whichever is first), feed back what happened, and carry out the
    /// outputs again. Returns the events for the application.
    fn turn(&mut self, limit: Timestamp) -> Vec<ClientEvent> {
        let deadline = self.drain();
        if self.events.is_empty() && !self.machine.is_closed() {
            self.wait(deadline.min(limit));
            self.drain();
        }
        std::mem::take(&mut self.events)
    }

    /// Carries out every output until the machine names its next deadline. Frames are written as they come and
    /// flushed once at the end.
    fn drain(&mut self) -> Timestamp {
        loop {
            let deadline = loop {
                match self.machine.poll_output() {
                    Output::Connect => {
                        let now = self.now();
                        match self.dial() {
                            Ok(socket) => {
                                self.socket = Some(socket);
                                self.machine.handle_connected(now);
                            }
                            Err(failure) => self.machine.handle_connect_failed(now, failure),
                        }
                    }
                    Output::Transmit(frame) => {
                        if let Some(socket) = &mut self.socket
                            && let Err(e) = socket.write(Message::text(frame))
                        {
                            self.lose(&e.to_string());
                        }
                    }
                    Output::Close { code, reason } => {
                        // The machine has moved on: send the close frame and let the socket go.
                        if let Some(mut socket) = self.socket.take() {
                            let frame = CloseFrame {
                                code: WsCloseCode::from(code.as_u16()),
                                reason: reason.as_ref().into(),
                            };
                            let _ = socket.close(Some(frame));
                            let _ = socket.flush();
                        }
                    }
                    Output::Event(event) => self.events.push(event),
                    Output::Timeout(at) => break at,
                    _ => {}
                }
            };
            let flushed = match &mut self.socket {
                Some(socket) => socket.flush().map_err(|e| e.to_string()),
                None => Ok(()),
            };
            match flushed {
                Ok(()) => return deadline,
                // Losing the connection queued more outputs: carry those out too.
                Err(e) => self.lose(&e),
            }
        }
    }

    /// Blocks until a frame arrives or `until` comes, and feeds the machine.
    fn wait(&mut self, until: Timestamp) {
        let now = self.now();
        let Some(socket) = &mut self.socket else {
            let pause = until
                .saturating_duration_since(now)
                .min(Duration::from_secs(3600));
            std::thread::sleep(pause);
            self.machine.handle_timeout(self.now());
            return;
        };
        let timeout = (until != Timestamp::MAX).then(|| {
            until
                .saturating_duration_since(now)
                .max(Duration::from_millis(1))
        });
        if let Err(e) = socket.get_mut().set_read_timeout(timeout) {
            return self.lose(&e.to_string());
        }
        match socket.read() {
            Ok(Message::Text(text)) => self.machine.handle_text(self.clock.now(), text.as_str()),
            Ok(Message::Close(frame)) => {
                // tungstenite has queued the answering close frame: send it, then let the socket go.
                let _ = socket.flush();
                self.socket = None;
                let (code, reason) = match frame {
                    Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                    None => (1005, String::new()),
                };
                self.machine.handle_disconnected(
                    self.clock.now(),
                    CloseCode::from_u16(code),
                    &reason,
                );
            }
            // Pings are answered by tungstenite; binary frames are not part of the contract.
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => self.lose(&e.to_string()),
        }
        let now = self.now();
        if now >= until {
            self.machine.handle_timeout(now);
        }
    }

    /// The connection broke without a close frame.
    fn lose(&mut self, reason: &str) {
        self.socket = None;
        self.machine
            .handle_disconnected(self.now(), CloseCode::Abnormal, reason);
    }

    /// TCP connect (each resolved address in turn) and the WebSocket upgrade, blocking, bounded by `io_timeout`.
    fn dial(&self) -> Result<WebSocket<TcpStream>, ConnectFailure> {
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            ConnectFailure::Transient(format!("{what}: {e}"))
        };
        let uri: Uri = self.url.parse().map_err(|e| transient("bad URL", &e))?;
        let host = uri.host().unwrap_or("127.0.0.1");
        let port = uri.port_u16().unwrap_or(80);
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| transient("resolving", &e))?;
        let mut last = io::Error::new(ErrorKind::NotFound, "no address");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.io_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| transient("connecting", &last))?;
        let setup = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(self.io_timeout)))
            .and_then(|()| stream.set_write_timeout(Some(self.io_timeout)));
        setup.map_err(|e| transient("socket options", &e))?;
        let request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| transient("request", &e))?;
        match tungstenite::client(request, stream) {
            Ok((socket, _response)) => Ok(socket),
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let why = format!("the upgrade was answered with HTTP {}", response.status());
                match response.status().as_u16() {
                    401 | 403 | 404 => Err(ConnectFailure::Rejected(why)),
                    _ => Err(ConnectFailure::Transient(why)),
                }
            }
            Err(e) => Err(transient("WebSocket upgrade", &e)),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, channel, count) = match args.as_slice() {
        [url, channel] => (url, channel, None),
        [url, channel, n] => match n.parse::<u64>() {
            Ok(n) => (url, channel, Some(n)),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let seed = Clock::new().now().as_micros();
    let mut client = BlockingClient::new(url, ClientConfig::with_seed(seed));
    if let Err(e) = client.machine.subscribe(client.now(), channel) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let mut seen = 0;
    while !client.machine.is_closed() {
        for event in client.turn(Timestamp::MAX) {
            match event {
                ClientEvent::ChannelEvent {
                    channel,
                    offset,
                    event,
                    ..
                } => {
                    let line = serde_json::json!({"channel": channel.as_str(), "offset": offset, "event": event});
                    println!("{line}");
                    seen += 1;
                    if count.is_some_and(|n| seen >= n) {
                        client.machine.close(client.now());
                    }
                }
                ClientEvent::GaveUp { reason } => {
                    eprintln!("gave up: {reason:?}");
                    return ExitCode::FAILURE;
                }
                other => eprintln!("{other:?}"),
            }
        }
    }
    client.drain();
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: blocking_client ws://HOST:PORT/api/ws CHANNEL [COUNT]");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    //! The blocking driver against a tiny tungstenite server thread that speaks just enough of the protocol: the
    //! greeting, `subscribe_res`, events — and that drops the first connection to check the reconnect resumes
    //! with `since`.

    use super::*;
    use serde_json::{Value, json};
    use std::net::TcpListener;
    use std::sync::mpsc;

    type ServerSocket = WebSocket<TcpStream>;

    fn accept(listener: &TcpListener) -> Result<ServerSocket, String> {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        tungstenite::accept(stream).map_err(|e| e.to_string())
    }

    fn send(ws: &mut ServerSocket, frame: Value) -> Result<(), String> {
        ws.send(Message::text(frame.to_string()))
            .map_err(|e| e.to_string())
    }

    fn greet(ws: &mut ServerSocket, app_id: &str) -> Result<(), String> {
        send(
            ws,
            json!({"type": "connected", "message_id": format!("greet-{app_id}"), "server_initiated": true,
                   "data": {"app_id": app_id, "status": "connected", "protocol": 1, "heartbeat_ms": 25000,
                            "max_message_bytes": 1048576}}),
        )
    }

    /// The next text frame, parsed.
    fn receive(ws: &mut ServerSocket) -> Result<Value, String> {
        loop {
            match ws.read().map_err(|e| e.to_string())? {
                Message::Text(t) => {
                    return serde_json::from_str(t.as_str()).map_err(|e| e.to_string());
                }
                Message::Close(f) => return Err(format!("closed: {f:?}")),
                _ => {}
            }
        }
    }

    fn event(offset: u64) -> Value {
        json!({"type": "event", "message_id": format!("ev-{offset}"), "server_initiated": true,
               "data": {"channel": "projects/p1", "epoch": "e1", "offset": offset, "event": {"n": offset}}})
    }

    /// Connection 1: greet, answer the subscribe, send events 1 and 2, drop the TCP connection. Connection 2:
    /// greet, answer the resubscribe as recovered, replay 2 (a duplicate the machine must drop) and send 3, then
    /// wait for the client's close frame. Returns both subscribe frames and the close code.
    fn serve(listener: TcpListener) -> Result<(Value, Value, u16), String> {
        let mut ws = accept(&listener)?;
        greet(&mut ws, "app-1")?;
        let first = receive(&mut ws)?;
        send(
            &mut ws,
            json!({"type": "subscribe_res", "message_id": first["message_id"],
                   "data": {"channel": "projects/p1", "epoch": "e1", "offset": 0, "recovered": null}}),
        )?;
        send(&mut ws, event(1))?;
        send(&mut ws, event(2))?;
        drop(ws);

        let mut ws = accept(&listener)?;
        greet(&mut ws, "app-2")?;
        let second = receive(&mut ws)?;
        send(
            &mut ws,
            json!({"type": "subscribe_res", "message_id": second["message_id"],
                   "data": {"channel": "projects/p1", "epoch": "e1", "offset": 3, "recovered": true}}),
        )?;
        send(&mut ws, event(2))?;
        send(&mut ws, event(3))?;
        let code = loop {
            match ws.read().map_err(|e| e.to_string())? {
                Message::Close(Some(frame)) => break u16::from(frame.code),
                Message::Close(None) => break 1005,
                _ => {}
            }
        };
        Ok((first, second, code))
    }

    #[test]
    fn subscribes_reconnects_resumes_with_since_and_closes_cleanly() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/api/ws", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(serve(listener));
        });

        let mut client = BlockingClient::new(&url, ClientConfig::with_seed(7));
        client
            .machine
            .subscribe(client.now(), "projects/p1")
            .unwrap();
        let give_up = client.now() + Duration::from_secs(20);
        let mut offsets = Vec::new();
        let mut connected = Vec::new();
        while offsets.len() < 3 && client.now() < give_up {
            for event in client.turn(give_up) {
                match event {
                    ClientEvent::ChannelEvent { offset, event, .. } => {
                        assert_eq!(event, json!({"n": offset}));
                        offsets.push(offset);
                    }
                    ClientEvent::Connected { app_id } => connected.push(app_id),
                    _ => {}
                }
            }
        }
        assert_eq!(offsets, [1, 2, 3], "every event once, in order");
        assert_eq!(connected, ["app-1", "app-2"]);
        client.machine.close(client.now());
        client.drain();
        assert!(client.socket.is_none());

        let (first, second, code) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server thread finished")
            .expect("the server saw the expected frames");
        assert_eq!(first["type"], "subscribe");
        assert_eq!(first["data"]["channel"], "projects/p1");
        assert!(first["data"].get("since").is_none());
        assert_eq!(second["type"], "subscribe");
        assert_eq!(second["data"]["since"], json!({"epoch": "e1", "offset": 2}));
        assert_eq!(code, 1000);
    }
}
