//! Reading a data directory back at start: the newest snapshot, then every log segment after it, through the
//! protocol's [`Restorer`]. Damage (a torn or corrupted tail) is cut off the file with one warning; files the
//! snapshot replaced are removed.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::time::Instant;

use switchboard_protocol::server::store::durable::record::{HEADER_LEN, header};
use switchboard_protocol::server::store::durable::{
    FormatError, RestoreReport, Restorer, SegmentScan,
};
use switchboard_protocol::server::{DurableConfig, DurableStore};
use switchboard_protocol::time::Timestamp;

use super::data_dir::DataDir;
use super::error::DataDirError;
use super::file_name::FileName;

/// Reads the store in `dir` back. `fresh_epoch` is its epoch when the files name none or are corrupt.
pub(crate) fn restore(
    dir: &DataDir,
    config: DurableConfig,
    now: Timestamp,
    fresh_epoch: String,
) -> Result<(DurableStore, RestoreReport), DataDirError> {
    let started = Instant::now();
    let files = dir
        .files()
        .map_err(DataDirError::io(dir.path(), "list the directory"))?;
    for &name in &files {
        if let FileName::SnapshotTmp(_) = name {
            // A snapshot the previous run did not finish: the log it would replace is still there.
            dir.remove(name)
                .map_err(DataDirError::io(dir.file(name), "remove"))?;
        }
    }
    let newest_snapshot = files
        .iter()
        .filter_map(|name| match name {
            FileName::Snapshot(id) => Some(*id),
            _ => None,
        })
        .max();
    let mut restorer = Restorer::new(config);
    if let Some(id) = newest_snapshot {
        let name = FileName::Snapshot(id);
        let bytes = read(dir, name)?;
        let scan = restorer
            .snapshot(id, &bytes)
            .map_err(|e| format_error(&dir.file(name), e))?;
        cut(dir, name, &bytes, scan)?;
        sync(dir, name)?;
    }
    let after = newest_snapshot.unwrap_or(0);
    for &name in &files {
        let FileName::Log(id) = name else { continue };
        if newest_snapshot.is_some() && id <= after {
            continue;
        }
        let bytes = read(dir, name)?;
        if torn_creation(&bytes) {
            tracing::warn!(file = %dir.file(name).display(), bytes = bytes.len(),
                "data file cut short before its header was written; removed");
            dir.remove(name)
                .map_err(DataDirError::io(dir.file(name), "remove"))?;
            continue;
        }
        let scan = restorer
            .segment(id, &bytes)
            .map_err(|e| format_error(&dir.file(name), e))?;
        cut(dir, name, &bytes, scan)?;
        sync(dir, name)?;
    }
    // What the newest snapshot replaced: a run that ended between writing it and removing them left them.
    for &name in &files {
        let replaced = match name {
            FileName::Log(id) => newest_snapshot.is_some_and(|snap| id <= snap),
            FileName::Snapshot(id) => newest_snapshot.is_some_and(|snap| id < snap),
            FileName::SnapshotTmp(_) => false,
        };
        if replaced {
            dir.remove(name)
                .map_err(DataDirError::io(dir.file(name), "remove"))?;
        }
    }
    // Everything read back is synced before it is served: after a crash of the process the files may hold
    // writes that never were, and a power loss later would take them from under events already delivered (the
    // new writes go to a new segment, whose syncs do not cover the old one).
    dir.sync()
        .map_err(DataDirError::io(dir.path(), "sync the directory"))?;
    let (store, report) = restorer.finish(now, fresh_epoch);
    tracing::info!(
        data_dir = %dir.path().display(),
        channels = report.channels,
        events = report.events,
        records = report.records,
        idempotency_keys = report.keys,
        epoch_kept = !report.epoch_changed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "data directory opened"
    );
    Ok((store, report))
}

fn sync(dir: &DataDir, name: FileName) -> Result<(), DataDirError> {
    let path = dir.file(name);
    fs::File::open(&path)
        .and_then(|file| file.sync_all())
        .map_err(DataDirError::io(path, "sync"))
}

fn read(dir: &DataDir, name: FileName) -> Result<Vec<u8>, DataDirError> {
    let path = dir.file(name);
    fs::read(&path).map_err(DataDirError::io(path, "read"))
}

/// A log segment the crash caught between its creation and its first write: empty, a part of the header, or
/// space the file system allocated that the data never reached.
fn torn_creation(bytes: &[u8]) -> bool {
    (bytes.len() < HEADER_LEN && header().starts_with(bytes)) || bytes.iter().all(|&b| b == 0)
}

/// Cuts a damaged file back to its last whole record (and syncs it); returns whether it did.
fn cut(
    dir: &DataDir,
    name: FileName,
    bytes: &[u8],
    scan: SegmentScan,
) -> Result<bool, DataDirError> {
    let path = dir.file(name);
    let Some(damage) = scan.damage else {
        if scan.good_len < bytes.len() as u64 {
            // The unwritten rest of the space reserved for the segment: nothing to report, just given back.
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|file| file.set_len(scan.good_len))
                .map_err(DataDirError::io(&path, "give back reserved space"))?;
        }
        return Ok(false);
    };
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(DataDirError::io(&path, "open for repair"))?;
    file.set_len(scan.good_len)
        .and_then(|()| file.sync_all())
        .map_err(DataDirError::io(&path, "cut back"))?;
    tracing::warn!(
        file = %path.display(),
        ?damage,
        kept_bytes = scan.good_len,
        cut_bytes = (bytes.len() as u64).saturating_sub(scan.good_len),
        "damaged data file cut back to its last whole record"
    );
    Ok(true)
}

fn format_error(file: &Path, e: FormatError) -> DataDirError {
    match e {
        FormatError::NewerVersion { found, supported } => DataDirError::NewerFormat {
            file: file.to_owned(),
            found,
            supported,
        },
        _ => DataDirError::NotOurs {
            file: file.to_owned(),
        },
    }
}
