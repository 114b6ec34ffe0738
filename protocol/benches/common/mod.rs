//! What the benchmarks and the callgrind driver (`examples/hot_paths.rs`) share: draining the hub as a driver would.

use std::hint::black_box;

use switchboard_protocol::server::{Hub, HubOutput};

/// Drains every output, reporting each frame flushed at once (as a writer that keeps up); returns the number of
/// frames.
pub fn drain(hub: &mut Hub) -> usize {
    let mut frames = 0;
    loop {
        match hub.poll_output() {
            HubOutput::Transmit { conn, frame } => {
                hub.handle_sent(conn, black_box(&frame).len());
                frames += 1;
            }
            HubOutput::Timeout(_) => return frames,
            _ => {}
        }
    }
}
