//! The [`Runtime`] trait: the only things the drivers need from an async runtime — a clock, a timer, spawning, and
//! TCP. Adapters (`switchboard-smol`, `switchboard-async-std`) implement it in a few dozen lines each.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_io::{AsyncRead, AsyncWrite};
use switchboard_protocol::time::Timestamp;

/// A boxed, sendable future, as the trait's methods return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the drivers need from an async runtime.
///
/// Time is a [`Timestamp`] counted in microseconds since the unix epoch, read through a monotonic [`Clock`], so the
/// protocol core can stamp wall-clock fields and deadlines never go backwards.
pub trait Runtime: Clone + Debug + Send + Sync + 'static {
    /// A connected TCP stream.
    type Tcp: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A bound TCP listener.
    type Listener: TcpListen<Stream = Self::Tcp>;

    /// The current time.
    fn now(&self) -> Timestamp;

    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()>;

    /// Runs a task in the background. The task is detached: it ends when its future does.
    fn spawn(&self, future: BoxFuture<'static, ()>);

    /// Binds a listener.
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>>;

    /// Dials a TCP connection.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Tcp>>;

    /// Resolves `host:port` to addresses (blocking resolvers run off the executor).
    fn resolve(&self, host_port: String) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>>;
}

/// A bound TCP listener.
pub trait TcpListen: Send + Sync + 'static {
    /// The accepted stream type.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Accepts the next connection.
    fn accept(&self) -> BoxFuture<'_, io::Result<(Self::Stream, SocketAddr)>>;

    /// The address actually bound (port 0 resolves here).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A monotonic clock that reads as unix-epoch microseconds: the unix time at creation plus the monotonic time since.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    origin_unix_micros: u64,
}

impl Clock {
    /// A clock anchored at the current system time.
    pub fn new() -> Clock {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Clock {
            origin: Instant::now(),
            origin_unix_micros: u64::try_from(since_epoch.as_micros()).unwrap_or(0),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let elapsed = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        Timestamp::from_micros(self.origin_unix_micros.saturating_add(elapsed))
    }

    /// The [`Instant`] a timestamp from this clock stands for (for runtime timers). Timestamps before the clock's
    /// creation map to its creation; [`Timestamp::MAX`] maps to about a century from now.
    pub fn instant_at(&self, at: Timestamp) -> Instant {
        let micros = at.as_micros().saturating_sub(self.origin_unix_micros);
        let capped = micros.min(100 * 365 * 24 * 3600 * 1_000_000);
        self.origin + Duration::from_micros(capped)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_unix_time_and_maps_back() {
        let clock = Clock::new();
        let now = clock.now();
        let sys = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        // Within a minute of the system clock: the clock is anchored there.
        assert!(now.as_micros().abs_diff(sys) < 60_000_000);
        let later = now + Duration::from_secs(5);
        let gap = clock
            .instant_at(later)
            .duration_since(clock.instant_at(now));
        assert_eq!(gap, Duration::from_secs(5));
        assert!(clock.instant_at(Timestamp::MAX) > Instant::now());
        assert!(clock.now() >= now);
    }
}
