//! A small HTTP/1.1 client of the REST routes: one keep-alive connection per [`Http`], re-opened after the server
//! closes it (it does after every 5xx answer), and the channel routes the durable tests read.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::STEP;

/// One answer: the status and the body as JSON (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Response {
    /// The `error.code` of an error body.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

/// A keep-alive connection to `addr` (`host:port`).
pub struct Http {
    addr: String,
    source: Option<IpAddr>,
    stream: Option<BufReader<TcpStream>>,
}

impl Http {
    /// A client of `addr`; it connects on the first request.
    pub fn new(addr: &str) -> Http {
        Http {
            addr: addr.to_owned(),
            source: None,
            stream: None,
        }
    }

    /// A client of `addr` connecting from `source` (any 127.x.y.z on loopback): the server's REST rate limit
    /// counts per client address, so concurrent publishers from distinct addresses do not share one budget.
    pub fn from_source(addr: &str, source: IpAddr) -> Http {
        Http {
            source: Some(source),
            ..Http::new(addr)
        }
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let Some(source) = self.source else {
            return TcpStream::connect(&self.addr);
        };
        let target: SocketAddr = self
            .addr
            .parse()
            .map_err(|e| io::Error::other(format!("{}: {e}", self.addr)))?;
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
        socket.connect(&target.into())?;
        Ok(socket.into())
    }

    /// Sends a request and reads its answer. An IO error drops the connection (the next request opens another)
    /// and means the outcome is unknown: the server may or may not have acted on it.
    pub fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> io::Result<Response> {
        let outcome = self.exchange(method, path, body);
        if outcome.is_err() {
            self.stream = None;
        }
        outcome
    }

    fn exchange(&mut self, method: &str, path: &str, body: Option<&Value>) -> io::Result<Response> {
        if self.stream.is_none() {
            let stream = self.connect()?;
            stream.set_read_timeout(Some(STEP))?;
            stream.set_write_timeout(Some(STEP))?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let reader = self.stream.as_mut().expect("connected above");
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        reader.get_mut().write_all(request.as_bytes())?;
        let (response, close) = read_response(reader)?;
        if close {
            self.stream = None;
        }
        Ok(response)
    }

    /// `POST /api/v1/channels/{channel}/events`. A 429 (over the REST rate limit, refused before the hub saw
    /// it) is tried again after a moment, so the answer is the hub's.
    pub fn publish(&mut self, channel: &str, event: &Value, retain: bool) -> io::Result<Response> {
        let path = format!("/api/v1/channels/{}/events", encode(channel));
        let body = json!({"event": event, "retain": retain});
        let deadline = Instant::now() + STEP;
        loop {
            let answer = self.send("POST", &path, Some(&body))?;
            if answer.status != 429 || Instant::now() > deadline {
                return Ok(answer);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads one response; also says whether the server closes the connection after it.
fn read_response(reader: &mut BufReader<TcpStream>) -> io::Result<(Response, bool)> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut length = 0usize;
    let mut close = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => {
                length = value
                    .parse()
                    .map_err(|_| io::Error::other(format!("bad length {value:?}")))?;
            }
            "connection" => close = value.eq_ignore_ascii_case("close"),
            "transfer-encoding" => {
                return Err(io::Error::other("chunked answers are not read here"));
            }
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| io::Error::other(format!("body is not JSON ({e})")))?
    };
    Ok((Response { status, body }, close))
}

/// A channel name as one path segment.
fn encode(channel: &str) -> String {
    channel.replace('/', "%2F")
}

/// Everything `GET /api/v1/channels/{channel}/events` holds, every page: the epoch and `(offset, event)` in the
/// order served.
pub fn history(addr: &str, channel: &str) -> (String, Vec<(u64, Value)>) {
    let mut http = Http::new(addr);
    let mut since: Option<u64> = None;
    let mut epoch: Option<String> = None;
    let mut events = Vec::new();
    loop {
        let mut path = format!("/api/v1/channels/{}/events?limit=1000", encode(channel));
        if let Some(since) = since {
            path.push_str(&format!("&since={since}"));
        }
        let page = http
            .send("GET", &path, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(page.status, 200, "GET {path}: {:?}", page.body);
        let page_epoch = page.body["epoch"].as_str().expect("an epoch").to_owned();
        if let Some(first) = &epoch {
            assert_eq!(first, &page_epoch, "the epoch changed between pages");
        }
        epoch = Some(page_epoch);
        let batch = page.body["events"].as_array().expect("events").clone();
        for e in &batch {
            events.push((e["offset"].as_u64().expect("an offset"), e["event"].clone()));
        }
        match page.body["next_since"].as_u64() {
            Some(next) if !batch.is_empty() && Some(next) != since => since = Some(next),
            _ => break,
        }
    }
    (epoch.expect("at least one page"), events)
}

/// `GET /api/v1/channels/{channel}/state`: `{channel, epoch, offset, state}`.
pub fn state(addr: &str, channel: &str) -> Value {
    let path = format!("/api/v1/channels/{}/state", encode(channel));
    let answer = Http::new(addr)
        .send("GET", &path, None)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(answer.status, 200, "GET {path}: {:?}", answer.body);
    answer.body
}
