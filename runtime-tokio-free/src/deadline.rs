//! Racing a future against a deadline or a [`Trigger`], on any [`Runtime`].

use std::future::Future;

use futures_lite::future::or;
use switchboard_protocol::time::Timestamp;

use crate::Runtime;
use crate::signal::Trigger;

/// Runs `fut` until `deadline`: `Some(output)` if it finished first, `None` if the deadline came first.
pub async fn with_deadline<R: Runtime, F: Future>(
    runtime: &R,
    deadline: Timestamp,
    fut: F,
) -> Option<F::Output> {
    let sleep = runtime.sleep_until(deadline);
    or(async { Some(fut.await) }, async {
        sleep.await;
        None
    })
    .await
}

/// Runs `fut` until `stop` fires: `Some(output)` if it finished first, `None` if stopped.
pub async fn until_stopped<F: Future>(stop: &Trigger, fut: F) -> Option<F::Output> {
    or(async { Some(fut.await) }, async {
        stop.wait().await;
        None
    })
    .await
}
