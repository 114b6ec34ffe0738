//! Listeners: each bound address has an accept loop task, a stop signal and a "done" signal that fires once the
//! socket is released (so the same port can be bound again).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Front, conn};
use crate::deadline::until_stopped;
use crate::server::hub::driver::ListenerId;
use crate::signal::Trigger;
use crate::{Runtime, TcpListen};

#[derive(Debug)]
struct Slot {
    id: ListenerId,
    addr: SocketAddr,
    stop: Trigger,
    done: Trigger,
}

/// The server's active listeners.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    next_id: AtomicU64,
    slots: Mutex<Vec<Slot>>,
}

impl Listeners {
    /// Binds `addr` and spawns its accept loop.
    pub async fn listen<R: Runtime>(
        &self,
        front: Arc<Front<R>>,
        addr: SocketAddr,
    ) -> io::Result<SocketAddr> {
        let listener = front.runtime.bind(addr).await?;
        let local = listener.local_addr()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stop = Trigger::new();
        let done = Trigger::new();
        self.lock().push(Slot {
            id,
            addr: local,
            stop: stop.clone(),
            done: done.clone(),
        });
        tracing::info!(%local, "listening");
        let runtime = front.runtime.clone();
        runtime.spawn(Box::pin(accept_loop(front, listener, id, stop, done)));
        Ok(local)
    }

    /// The bound addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.lock().iter().map(|s| s.addr).collect()
    }

    /// Stops every listener and waits until their sockets are released; returns their ids.
    pub async fn stop_all(&self) -> Vec<ListenerId> {
        let slots = std::mem::take(&mut *self.lock());
        for slot in &slots {
            slot.stop.fire();
        }
        for slot in &slots {
            slot.done.wait().await;
        }
        slots.iter().map(|s| s.id).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn accept_loop<R: Runtime>(
    front: Arc<Front<R>>,
    listener: R::Listener,
    id: ListenerId,
    stop: Trigger,
    done: Trigger,
) {
    loop {
        match until_stopped(&stop, listener.accept()).await {
            None => break,
            Some(Ok((stream, peer))) => {
                tracing::trace!(%peer, "accepted");
                #[cfg(feature = "tls")]
                if let Some(tls) = front.config.tls.clone() {
                    let task = serve_tls(front.clone(), tls, stream, peer, id, stop.clone());
                    front.runtime.spawn(Box::pin(task));
                    continue;
                }
                let task = conn::serve(front.clone(), stream, Some(peer), Some(id), stop.clone());
                front.runtime.spawn(Box::pin(task));
            }
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off a little instead of spinning.
                let now = front.runtime.now();
                front.accept_errors.failed(now, &e);
                let at = now + Duration::from_millis(50);
                let _ = until_stopped(&stop, front.runtime.sleep_until(at)).await;
            }
        }
    }
    drop(listener);
    done.fire();
}

/// The TLS handshake (within `handshake_timeout`, cut short by a stop), then the HTTP front over the TLS stream.
#[cfg(feature = "tls")]
async fn serve_tls<R: Runtime>(
    front: Arc<Front<R>>,
    tls: super::tls::ServerTls,
    stream: R::Tcp,
    peer: SocketAddr,
    id: ListenerId,
    stop: Trigger,
) {
    let deadline = front.runtime.now() + front.config.handshake_timeout;
    let handshake = crate::deadline::with_deadline(&front.runtime, deadline, tls.accept(stream));
    match until_stopped(&stop, handshake).await {
        Some(Some(Ok(stream))) => {
            conn::serve(front, stream, Some(peer), Some(id), stop).await;
        }
        Some(Some(Err(e))) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Some(None) => tracing::debug!(%peer, "TLS handshake timed out"),
        None => {}
    }
}
