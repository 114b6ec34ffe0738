//! [`RedisServer`]: a real `redis-server` (the operating system's package) on a free loopback port, for the tests
//! of the Redis client and engine. Stopped when dropped.
//!
//! The binary is `redis-server` on `PATH`, or `SWITCHBOARD_REDIS_SERVER`. Where it is missing, [`RedisServer::start`]
//! answers `None` and the test says on stderr that it did not run — unless `SWITCHBOARD_REQUIRE_REDIS=1` (CI sets
//! it), where a missing binary fails the test.
//!
//! The file uses nothing but std, so the `switchboard` binary's process tests (cli/tests) include it as well.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    /// Where a persistent server keeps its append-only file (`None`: it keeps nothing).
    data_dir: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a server without a password, or `None` where the binary is missing (see the module docs).
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(None)
    }

    /// Starts a server that wants `password`, or `None` where the binary is missing.
    pub fn start_with(password: Option<&str>) -> Option<RedisServer> {
        binary()?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            password: password.map(Into::into),
            data_dir: None,
        };
        server.spawn_on_a_free_port();
        Some(server)
    }

    /// Starts a server that keeps every write in an append-only file in `dir`, synced to disk before it answers
    /// (`--appendonly yes --appendfsync always`): what it acknowledged survives [`kill`](Self::kill) and
    /// [`start_again`](Self::start_again). `None` where the binary is missing.
    pub fn start_persistent(dir: &Path) -> Option<RedisServer> {
        binary()?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            password: None,
            data_dir: Some(dir.to_owned()),
        };
        server.spawn_on_a_free_port();
        Some(server)
    }

    fn spawn_on_a_free_port(&mut self) {
        // Another process may take the free port before redis-server binds it: try a few.
        for _ in 0..5 {
            self.port = free_port();
            if self.spawn() {
                return;
            }
        }
        panic!("redis-server did not start on any of five free ports");
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://[:password@]127.0.0.1:PORT/db`.
    pub fn url(&self, db: u32) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/{db}", self.port),
            None => format!("redis://127.0.0.1:{}/{db}", self.port),
        }
    }

    /// Kills the server (as a crash would: no shutdown, no save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: it keeps nothing on disk), unless it is
    /// [persistent](Self::start_persistent).
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Starts a [killed](Self::kill) server again on the same port, with what its data directory holds.
    pub fn start_again(&mut self) {
        assert!(
            self.spawn(),
            "redis-server did not start again on port {}",
            self.port
        );
    }

    /// Runs one command over a plain blocking connection and returns the first line of the reply (for checks
    /// made beside the client under test).
    pub fn command(&self, words: &[&str]) -> String {
        let mut stream = TcpStream::connect(self.addr()).expect("connect to redis-server");
        stream
            .set_read_timeout(Some(START_TIMEOUT))
            .expect("set a read timeout");
        let mut out = Vec::new();
        let mut send = |words: &[&str]| {
            out.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
            for word in words {
                out.extend_from_slice(format!("${}\r\n{word}\r\n", word.len()).as_bytes());
            }
        };
        if let Some(password) = &self.password {
            send(&["AUTH", password]);
        }
        send(words);
        stream.write_all(&out).expect("write to redis-server");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if self.password.is_some() {
            reader.read_line(&mut line).expect("read AUTH's reply");
            line.clear();
        }
        reader.read_line(&mut line).expect("read the reply");
        line.trim_end().to_owned()
    }

    /// Starts `redis-server` on `self.port` and waits for its `PONG`; `false` when it exited first (the port was
    /// taken).
    fn spawn(&mut self) -> bool {
        let binary = binary().expect("redis-server was found when the test started");
        let mut command = Command::new(binary);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no", "--loglevel", "warning"]);
        match &self.data_dir {
            Some(dir) => command
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir),
            None => command
                .args(["--appendonly", "no", "--dir"])
                .arg(std::env::temp_dir()),
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let mut child = command.spawn().expect("start redis-server");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Ok(stream) = TcpStream::connect(self.addr()) {
                drop(stream);
                if self.command(&["PING"]) == "+PONG" {
                    self.child = Some(child);
                    return true;
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {} within {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `redis-server` binary, or `None` where it is missing and not required.
fn binary() -> Option<String> {
    let binary =
        std::env::var("SWITCHBOARD_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let found = Command::new(&binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some(binary);
    }
    let required = std::env::var("SWITCHBOARD_REQUIRE_REDIS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "SWITCHBOARD_REQUIRE_REDIS=1 but `{binary}` cannot be run (install the redis-server package)"
    );
    eprintln!("redis-server not found: this test did not run (install the redis-server package)");
    None
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("read the bound port").port()
}
