//! Running the built `switchboard` binary in tests: every child is killed when its [`Proc`] is dropped (also when
//! a test panics), every wait is bounded, and servers bind 127.0.0.1 port 0.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod cluster;
pub mod data_dir;
pub mod native;
pub mod proxy;
// The Redis starter of the workspace's test crate (std only), shared rather than copied.
#[path = "../../../tests/src/redis_server.rs"]
pub mod redis_server;
pub mod rest;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// How long one expected line, exit or answer may take.
pub const STEP: Duration = Duration::from_secs(20);

/// A running `switchboard` process with its output read line by line.
pub struct Proc {
    child: Child,
    name: String,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Proc {
    /// Starts `switchboard ARGS…` with extra environment variables. `RUST_LOG` is `info` unless given.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut command = Command::new(BIN);
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        Proc::start(command, args.join(" "))
    }

    /// Starts `command` (which runs the binary, perhaps through a shell that sets limits first) with its output
    /// piped; `name` is how failures call it. `RUST_LOG` is `info` unless the command sets it.
    pub fn start(command: Command, name: String) -> Proc {
        Proc::start_with(command, name, Stdio::null())
    }

    /// Like [`start`](Self::start), with `stdin` as the child's stdin.
    pub fn start_with(mut command: Command, name: String, stdin: Stdio) -> Proc {
        if !command
            .get_envs()
            .any(|(key, _)| key == std::ffi::OsStr::new("RUST_LOG"))
        {
            command.env("RUST_LOG", "info");
        }
        command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start `{name}`: {e}"));
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = lines(child.stderr.take().expect("piped stderr"));
        Proc {
            child,
            name,
            stdout,
            stderr,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to clean up, as in a crash) and reaps it.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL the child");
        self.child.wait().expect("reap the child");
    }

    /// Reads stderr until a line satisfies `wanted` (described as `what` in the failure), and returns it.
    pub fn stderr_matching(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "`{}`: no stderr line {what} within {STEP:?}; stderr so far:\n{}",
                    self.name,
                    seen.join("\n")
                ),
            }
        }
    }

    /// The next stdout line within `wait`, or `None`; panics only if stdout ended.
    pub fn line_within(&self, wait: Duration) -> Option<String> {
        match self.stdout.recv_timeout(wait) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!(
                "`{}`: stdout ended; stderr: {}",
                self.name,
                self.drain_stderr()
            ),
        }
    }

    /// The next line on stdout.
    pub fn line(&self) -> String {
        match self.stdout.recv_timeout(STEP) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("`{}`: no stdout line within {STEP:?}", self.name)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "`{}`: stdout ended; stderr: {}",
                    self.name,
                    self.drain_stderr()
                )
            }
        }
    }

    /// The next stdout line, parsed as JSON.
    pub fn json_line(&self) -> Value {
        let line = self.line();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("`{}`: not JSON ({e}): {line}", self.name))
    }

    /// Reads stderr until a line contains `needle`, and returns that line.
    pub fn stderr_until(&self, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "`{}`: no stderr line with {needle:?} within {STEP:?}",
                    self.name
                ),
            }
        }
    }

    /// Whatever stderr lines have arrived so far.
    pub fn drain_stderr(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits for the process to exit on its own.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "`{}` did not exit within {STEP:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`INT`, `TERM`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What a finished command printed.
pub struct Finished {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Stdout lines.
    pub stdout: Vec<String>,
    /// Stderr, joined.
    pub stderr: String,
}

/// Runs a command to its end.
pub fn run(args: &[&str]) -> Finished {
    run_with_env(args, &[])
}

/// Runs a command to its end with extra environment variables.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Finished {
    finish(Proc::spawn(args, env))
}

/// Runs a command to its end with `input` as its stdin.
pub fn run_with_stdin(args: &[&str], input: &[u8]) -> Finished {
    let mut command = Command::new(BIN);
    command.args(args);
    let mut proc = Proc::start_with(command, args.join(" "), Stdio::piped());
    let mut stdin = proc.child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // Written from a thread of its own, so a child that stops reading cannot block the test.
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    finish(proc)
}

fn finish(mut proc: Proc) -> Finished {
    let status = proc.wait();
    // The reader threads finish once the pipes close; give them the moment they need.
    let mut stdout = Vec::new();
    while let Ok(line) = proc.stdout.recv_timeout(Duration::from_secs(2)) {
        stdout.push(line);
    }
    let mut stderr = Vec::new();
    while let Ok(line) = proc.stderr.recv_timeout(Duration::from_secs(2)) {
        stderr.push(line);
    }
    Finished {
        code: status.code(),
        stdout,
        stderr: stderr.join("\n"),
    }
}

/// Starts `switchboard serve --bind 127.0.0.1:0 EXTRA…` and returns it with its native WebSocket URL.
pub fn serve(extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Proc::spawn(&args, &[]);
    let addr = listening_on(&server);
    (server, format!("ws://{addr}/api/ws"))
}

/// Reads the `listening on ADDR` line a server prints on stdout.
pub fn listening_on(server: &Proc) -> String {
    let line = server.line();
    line.strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned()
}

/// `GET path` on a server, returning the body parsed as JSON.
pub fn get_json(addr: &str, path: &str) -> Value {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(STEP)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_else(|| panic!("no body: {response}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
