//! Durable history (`ServerConfig::data_dir`): the protocol's [`DurableStore`] decides what is written and when
//! a publish may be acknowledged; this module does its file IO.
//!
//! - [`data_dir`]: the directory, held under an exclusive lock (`LOCK`, carrying the holder's pid) while the
//!   server runs.
//! - [`restore`]: at start, the newest snapshot and the log after it read back; damaged tails cut off with one
//!   warning.
//! - [`writer`]: one thread appending the store's log writes (and syncing them as the
//!   [`FsyncPolicy`](switchboard_protocol::server::FsyncPolicy) asks), reporting each back to the hub; [`snapshot`]: snapshots, each on a thread of its own.
//! - [`report`]: how the writer's jobs ended, for the hub; [`writer_state`]: what its threads share with the
//!   driver (busy, released, counters).
//! - [`file_name`]: the files' names; [`error`]: [`DataDirError`].
//!
//! [`DurableStore`]: switchboard_protocol::server::DurableStore

pub(crate) mod data_dir;
pub(crate) mod error;
pub(crate) mod file_name;
pub(crate) mod report;
pub(crate) mod restore;
pub(crate) mod snapshot;
pub(crate) mod writer;
pub(crate) mod writer_state;

pub use error::DataDirError;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use switchboard_protocol::rng::Rng;
use switchboard_protocol::server::{DurableConfig, Store};
use switchboard_protocol::time::Timestamp;

use super::config::ServerConfig;
use data_dir::DataDir;
use writer_state::WriterState;

/// A data directory opened and read back: the store to run the hub over, and the directory its writer writes.
#[derive(Debug)]
pub(crate) struct Durable {
    /// The restored store.
    pub store: Box<dyn Store>,
    /// The locked directory.
    pub dir: DataDir,
}

/// Opens `config.data_dir`, if set: locks it and reads the store back (blocking file IO). `None` without one.
pub(crate) fn open(config: &ServerConfig, now: Timestamp) -> Result<Option<Durable>, DataDirError> {
    let Some(path) = &config.data_dir else {
        return Ok(None);
    };
    let dir = DataDir::lock(path)?;
    let mut durable = DurableConfig::new(config.hub.history_size, config.hub.history_ttl);
    durable.history_bytes = config.hub.history_bytes;
    durable.history_total_bytes = config.hub.history_total_bytes;
    durable.fsync = config.fsync;
    durable.max_disk_bytes = config.max_disk_bytes;
    // A new store's epoch, drawn from the hub's seed as a hub over memory draws its own.
    let fresh_epoch = format!("{:016x}", Rng::from_seed(config.hub.seed).next_u64());
    let (store, _report) = restore::restore(&dir, durable, now, fresh_epoch)?;
    Ok(Some(Durable {
        store: Box::new(store),
        dir,
    }))
}

/// `/api/info`'s `storage` object.
pub(crate) fn info(config: &ServerConfig) -> serde_json::Value {
    match &config.data_dir {
        Some(path) => serde_json::json!({
            "mode": "disk",
            "data_dir": path.display().to_string(),
            "fsync": config.fsync.as_str(),
            "max_disk_bytes": config.max_disk_bytes,
        }),
        None => serde_json::json!({
            "mode": "memory",
            "data_dir": null,
            "fsync": null,
            "max_disk_bytes": null,
        }),
    }
}

/// Appends the writer's counters in the Prometheus text format.
pub(crate) fn render_metrics(out: &mut String, state: &WriterState) {
    let rows = [
        (
            "switchboard_storage_written_bytes_total",
            "Bytes appended to the data directory's log.",
            state.log_bytes.load(Ordering::Relaxed),
        ),
        (
            "switchboard_storage_write_failures_total",
            "Log writes to the data directory that failed (and were cut back).",
            state.write_failures.load(Ordering::Relaxed),
        ),
        (
            "switchboard_storage_snapshots_total",
            "Snapshots written to the data directory.",
            state.snapshots.load(Ordering::Relaxed),
        ),
        (
            "switchboard_storage_snapshot_failures_total",
            "Snapshots that could not be written.",
            state.snapshot_failures.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, value) in rows {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {value}");
    }
}
