//! [`Shutdown`]: SIGINT or SIGTERM as something to `await`, via signal-hook's self-pipe. The first signal asks for
//! a graceful stop; a second one while stopping exits at once (code 130), for the impatient.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use futures_lite::AsyncReadExt;
use signal_hook::consts::{SIGINT, SIGTERM};
use smol::Async;

/// Completes [`wait`](Self::wait) on the first SIGINT or SIGTERM.
#[derive(Debug)]
pub struct Shutdown {
    read: Async<UnixStream>,
}

impl Shutdown {
    /// Takes over SIGINT and SIGTERM for this process.
    pub fn install() -> io::Result<Shutdown> {
        let (read, write) = UnixStream::pair()?;
        let stopping = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as it was before this signal set it.
            signal_hook::flag::register_conditional_shutdown(signal, 130, stopping.clone())?;
            signal_hook::flag::register(signal, stopping.clone())?;
            signal_hook::low_level::pipe::register(signal, write.try_clone()?)?;
        }
        Ok(Shutdown {
            read: Async::new(read)?,
        })
    }

    /// Completes when a signal has come.
    pub async fn wait(&mut self) {
        let mut byte = [0u8; 1];
        if let Err(e) = self.read.read(&mut byte).await {
            tracing::warn!(%e, "signal pipe failed; stopping");
        }
    }
}
