//! Nodes of a cluster (`serve --redis`) as processes, and their readiness.

use std::time::{Duration, Instant};

use super::rest::Http;
use super::{Proc, STEP, listening_on};

/// A running `switchboard serve --redis` process.
pub struct Node {
    /// The process (SIGKILLed when dropped).
    pub proc: Proc,
    /// Its address, `127.0.0.1:PORT`.
    pub addr: String,
}

impl Node {
    /// Starts node `id` on `redis_url`, on a free loopback port.
    pub fn start(redis_url: &str, id: &str) -> Node {
        let proc = Proc::spawn(
            &[
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--redis",
                redis_url,
                "--node-id",
                id,
            ],
            &[],
        );
        let addr = listening_on(&proc);
        let node = Node { proc, addr };
        node.wait_ready(200);
        node
    }

    /// Its native WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/ws", self.addr)
    }

    /// `GET /health/ready`: the status and the body's `reason`, if any.
    pub fn readiness(&self) -> (u16, Option<String>) {
        let answer = Http::new(&self.addr)
            .send("GET", "/health/ready", None)
            .unwrap_or_else(|e| panic!("GET /health/ready on {}: {e}", self.addr));
        let reason = answer.body["reason"].as_str().map(str::to_owned);
        (answer.status, reason)
    }

    /// Waits (at most [`STEP`]) until `/health/ready` answers `status`; returns how long it took.
    pub fn wait_ready(&self, status: u16) -> Duration {
        let started = Instant::now();
        loop {
            let (now, reason) = self.readiness();
            if now == status {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < STEP,
                "{}: /health/ready still {now} ({reason:?}) after {STEP:?}, waiting for {status}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
