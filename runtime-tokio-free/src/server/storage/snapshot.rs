//! Writing a [`SnapshotJob`] on a thread of its own: into `{covers:016x}.snap.tmp`, synced, renamed into place,
//! the directory synced; then the log segments and older snapshots it replaces are removed.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use switchboard_protocol::server::SnapshotJob;

use super::data_dir::DataDir;
use super::file_name::FileName;
use super::report::{Report, Reporter};
use super::writer_state::WriterState;

/// Writes `job` on a new thread and reports how it went. `state` already counts it as busy.
pub(super) fn spawn(
    dir: Arc<DataDir>,
    job: SnapshotJob,
    report: Reporter,
    state: Arc<WriterState>,
) {
    let covers = job.covers;
    let thread_state = state.clone();
    let thread_report = report.clone();
    let spawned = std::thread::Builder::new()
        .name("switchboard-snapshot".into())
        .spawn(move || {
            let outcome = write(&dir, &job);
            // The directory goes before the report: once nothing is busy, no thread holds its lock.
            drop(dir);
            finish(&thread_state, &thread_report, covers, outcome);
        });
    if let Err(e) = spawned {
        finish(&state, &report, covers, Err(e));
    }
}

fn finish(state: &WriterState, report: &Reporter, covers: u64, outcome: io::Result<u64>) {
    use std::sync::atomic::Ordering;
    let outcome = match outcome {
        Ok(bytes) => {
            state.snapshots.fetch_add(1, Ordering::Relaxed);
            tracing::info!(covers, bytes, "snapshot written");
            Report::SnapshotWritten { covers, bytes }
        }
        Err(e) => {
            state.snapshot_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(covers, error = %e, "cannot write a snapshot; the log is kept and it is tried again later");
            Report::SnapshotFailed { covers }
        }
    };
    report(outcome);
    state.done();
}

/// Writes the snapshot into place; returns its length.
fn write(dir: &DataDir, job: &SnapshotJob) -> io::Result<u64> {
    let tmp = FileName::SnapshotTmp(job.covers);
    let written = (|| -> io::Result<u64> {
        let mut out = BufWriter::with_capacity(1024 * 1024, File::create(dir.file(tmp))?);
        let bytes = job.write_to(|chunk| out.write_all(chunk))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(dir.file(tmp), dir.file(FileName::Snapshot(job.covers)))?;
        dir.sync()?;
        Ok(bytes)
    })();
    if written.is_err() {
        let _ = dir.remove(tmp);
    }
    let bytes = written?;
    // The snapshot is in place: what it replaces may go. A file left behind is removed at the next start.
    if let Err(e) = remove_replaced(dir, job.covers) {
        tracing::warn!(error = %e, covers = job.covers, "cannot remove the log segments a snapshot replaced; they are removed at the next start");
    }
    Ok(bytes)
}

fn remove_replaced(dir: &DataDir, covers: u64) -> io::Result<()> {
    for name in dir.files()? {
        match name {
            FileName::Log(id) if id <= covers => dir.remove(name)?,
            FileName::Snapshot(id) if id < covers => dir.remove(name)?,
            _ => {}
        }
    }
    dir.sync()
}
