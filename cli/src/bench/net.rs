//! The generator's plumbing: the target, dialing (optionally from a chosen source address), a small pool of
//! executor threads, the clock, the fd limit and the server's `/metrics`.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Executor};
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::CliError;

/// A generator's WebSocket.
pub type Ws = WebSocketStream<Async<TcpStream>>;

/// Where the generator connects.
#[derive(Debug, Clone)]
pub struct Target {
    /// The WebSocket URL as given.
    pub url: String,
    /// Its resolved address.
    pub addr: SocketAddr,
    /// The `Authorization` value, if any.
    pub authorization: Option<HeaderValue>,
}

impl Target {
    /// Parses a `ws://host:port/path` URL.
    pub fn parse(url: &str, token: Option<&str>) -> Result<Target, CliError> {
        let usage = |why: &str| CliError::Usage(format!("{url}: {why}"));
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| usage("bench speaks ws:// only"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| usage(&format!("cannot resolve {authority}: {e}")))?
            .next()
            .ok_or_else(|| usage("no address"))?;
        let authorization = match token {
            Some(token) => Some(
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| usage("the token is not a valid header value"))?,
            ),
            None => None,
        };
        Ok(Target {
            url: url.to_owned(),
            addr,
            authorization,
        })
    }

    /// Opens a TCP connection (from `source`, port picked by the kernel, if given) and upgrades it.
    pub async fn connect(&self, source: Option<IpAddr>) -> Result<Ws, CliError> {
        let stream = match source {
            None => Async::<TcpStream>::connect(self.addr).await?,
            Some(ip) => connect_from(ip, self.addr).await?,
        };
        stream.get_ref().set_nodelay(true)?;
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| CliError::Usage(format!("{}: {e}", self.url)))?;
        if let Some(value) = &self.authorization {
            request.headers_mut().insert("authorization", value.clone());
        }
        let (ws, _) =
            async_tungstenite::client_async_with_config(request, stream, Some(client_config()))
                .await
                .map_err(|e| CliError::Failed(format!("upgrade to {} failed: {e}", self.url)))?;
        Ok(ws)
    }
}

/// Small client buffers: the generator holds up to tens of thousands of sockets.
fn client_config() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 16 * 1024;
    config.write_buffer_size = 0;
    config
}

/// A non-blocking connect from a bound source address (socket2), finished on smol's reactor.
async fn connect_from(source: IpAddr, to: SocketAddr) -> io::Result<Async<TcpStream>> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.set_nonblocking(true)?;
    match socket.connect(&to.into()) {
        Ok(()) => {}
        // EINPROGRESS (Linux 115): the usual answer of a non-blocking connect.
        Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let stream = Async::new(TcpStream::from(socket))?;
    stream.writable().await?;
    if let Some(e) = stream.get_ref().take_error()? {
        return Err(e);
    }
    Ok(stream)
}

/// An executor run by `threads` threads; tasks spawned on it run until they end.
pub fn executor(threads: u16) -> Arc<Executor<'static>> {
    let ex = Arc::new(Executor::new());
    for i in 0..threads {
        let ex = ex.clone();
        std::thread::Builder::new()
            .name(format!("bench-{i}"))
            .spawn(move || smol::block_on(ex.run(futures_lite::future::pending::<()>())))
            .expect("spawn a generator thread");
    }
    ex
}

/// Unix time in microseconds.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Raises the soft open-file limit to the hard one and returns the soft limit now in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.maximum != limit.current {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum.unwrap_or(u64::MAX);
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// The server's `process_resident_memory_bytes` from `GET /metrics` on the target's host and port.
pub async fn resident_memory(addr: SocketAddr) -> Result<u64, CliError> {
    let fetch = async {
        let mut stream = Async::<TcpStream>::connect(addr).await?;
        let head = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        Ok::<_, io::Error>(text)
    };
    let text = futures_lite::future::or(fetch, async {
        smol::Timer::after(Duration::from_secs(20)).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in 20 s"))
    })
    .await
    .map_err(|e| CliError::Failed(format!("GET /metrics on {addr}: {e}")))?;
    text.lines()
        .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| {
            CliError::Failed(format!(
                "{addr}/metrics has no process_resident_memory_bytes"
            ))
        })
}

/// Waits for the server's `connected` greeting.
pub async fn greeting(ws: &mut Ws) -> Result<(), CliError> {
    use futures_util::StreamExt;
    loop {
        match ws.next().await {
            Some(Ok(message)) if message.is_text() => {
                let text = message.to_text().unwrap_or_default();
                if text.contains(r#""type":"connected""#) {
                    return Ok(());
                }
                return Err(CliError::Failed(format!(
                    "expected `connected`, got {text}"
                )));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(CliError::Failed(format!("before `connected`: {e}"))),
            None => return Err(CliError::Failed("closed before `connected`".to_owned())),
        }
    }
}

/// Sends one text frame.
pub async fn send(ws: &mut Ws, text: String) -> Result<(), CliError> {
    ws.send(async_tungstenite::tungstenite::Message::text(text))
        .await
        .map_err(|e| CliError::Failed(format!("send failed: {e}")))
}

/// Sends a request and waits for the frame answering `message_id` (other frames in between are passed to
/// `other`). Fails on an `error` answer.
pub async fn request(
    ws: &mut Ws,
    text: String,
    message_id: &str,
    mut other: impl FnMut(&str),
) -> Result<String, CliError> {
    use futures_util::StreamExt;
    send(ws, text).await?;
    let needle = format!(r#""message_id":"{message_id}""#);
    loop {
        match ws.next().await {
            Some(Ok(message)) if message.is_text() => {
                let text = message.to_text().unwrap_or_default();
                if text.contains(&needle) {
                    if text.starts_with(r#"{"type":"error""#) {
                        return Err(CliError::Failed(format!("refused: {text}")));
                    }
                    return Ok(text.to_owned());
                }
                other(text);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(CliError::Failed(format!("read failed: {e}"))),
            None => return Err(CliError::Failed("closed by the server".to_owned())),
        }
    }
}

/// The `server_pong` answering a `server_ping` frame, if `text` is one.
pub fn pong_for(text: &str) -> Option<String> {
    if !text.starts_with(r#"{"type":"server_ping""#) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = value.get("message_id")?.as_str()?;
    Some(
        serde_json::json!({"type": "server_pong", "message_id": id, "data": {"timestamp": unix_micros() / 1000}})
            .to_string(),
    )
}

/// The unsigned integer after `"key":` in `text`, starting the search at `from`; gives it and where it ended.
pub fn number_after(text: &str, key: &str, from: usize) -> Option<(u64, usize)> {
    let start = from + text.get(from..)?.find(key)? + key.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    let value = text[start..start + digits].parse().ok()?;
    Some((value, start + digits))
}
