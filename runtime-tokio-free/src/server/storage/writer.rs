//! [`Writer`]: the durable store's file IO, on a thread of its own (blocking IO must not run on the async
//! executor).
//!
//! The hub's driver hands it what the store asks for ([`Job`]), in order, while holding the hub's lock; the thread
//! does the IO without any lock and reports back through a [`Reporter`], which takes the hub's lock to call
//! `handle_store_written` and friends (and so draining the store's next write). A log write is appended to its
//! segment, synced when asked, and on any failure cut back to where it began (`ENOSPC`, `EFBIG` and `EIO` leave
//! the file as it was before the write); the publishes it held are then refused, and the next write tries again.
//! Snapshots run on threads of their own ([`snapshot`](super::snapshot)), so a long one never holds up group
//! commit.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use switchboard_protocol::server::{SnapshotJob, StoreWrite};

use super::data_dir::DataDir;
use super::file_name::FileName;
use super::report::{Report, Reporter};
use super::snapshot;
use super::writer_state::WriterState;

/// How often the same kind of IO failure is logged at most; the ones in between are counted into the next line.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Work for the writer.
#[derive(Debug)]
pub(crate) enum Job {
    /// Append to a log segment.
    Write(StoreWrite),
    /// Write a snapshot.
    Snapshot(SnapshotJob),
}

/// The driver's side of the writer: it hands jobs over and can close the writer.
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    state: Arc<WriterState>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("open", &self.jobs.is_some())
            .field("state", &self.state)
            .finish()
    }
}

impl Writer {
    /// Starts the writer thread over `dir`; its reports go to `report`.
    pub fn start(dir: DataDir, report: Reporter) -> io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(WriterState::default());
        let thread_state = state.clone();
        std::thread::Builder::new()
            .name("switchboard-store-writer".into())
            .spawn(move || run(Arc::new(dir), rx, report, thread_state))?;
        Ok(Writer {
            jobs: Some(tx),
            state,
        })
    }

    /// Hands `job` over; `false` when the writer is closed (the job is not done).
    pub fn submit(&self, job: Job) -> bool {
        let Some(jobs) = &self.jobs else {
            return false;
        };
        self.state.begin();
        let sent = jobs.send(job).is_ok();
        if !sent {
            self.state.done();
        }
        sent
    }

    /// Whether every job handed over has been reported.
    pub fn is_idle(&self) -> bool {
        self.state.is_idle()
    }

    /// Takes no more jobs: the thread ends once it has done those it has, closing its files.
    pub fn close(&mut self) {
        self.jobs = None;
    }

    /// Whether the writer is closed and every thread of it has let the directory (and its lock) go.
    pub fn is_released(&self) -> bool {
        self.jobs.is_none() && self.state.is_finished() && self.is_idle()
    }

    /// The counters.
    pub fn state(&self) -> &WriterState {
        &self.state
    }
}

/// The writer thread: log writes in order; snapshots handed to threads of their own.
fn run(dir: Arc<DataDir>, jobs: mpsc::Receiver<Job>, report: Reporter, state: Arc<WriterState>) {
    let mut log = LogFile::default();
    let mut errors = ErrorLog::default();
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Write(write) => {
                let outcome = match log.append(&dir, &write) {
                    Ok(()) => {
                        state
                            .log_bytes
                            .fetch_add(write.bytes.len() as u64, Ordering::Relaxed);
                        Report::Written { batch: write.batch }
                    }
                    Err(e) => {
                        state.write_failures.fetch_add(1, Ordering::Relaxed);
                        errors.log(&dir.file(FileName::Log(write.segment)), &e);
                        Report::WriteFailed { batch: write.batch }
                    }
                };
                report(outcome);
                state.done();
            }
            Job::Snapshot(job) => {
                snapshot::spawn(dir.clone(), job, report.clone(), state.clone());
            }
        }
    }
    drop(log);
    drop(dir);
    state.finish();
}

/// The log segment being appended to.
#[derive(Debug, Default)]
struct LogFile {
    open: Option<Segment>,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    file: File,
    /// The length of what was written successfully: the file is cut back here after a failure.
    len: u64,
    /// A failed write could not be cut back yet: cut before the next write.
    dirty: bool,
}

impl LogFile {
    /// Writes `write` into its segment and syncs it as asked; on failure the segment is as it was before.
    fn append(&mut self, dir: &DataDir, write: &StoreWrite) -> io::Result<()> {
        let name = FileName::Log(write.segment);
        if write.create {
            self.open = None;
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.file(name))
                .and_then(|file| reserve(&file, write.reserve).map(|()| file));
            match file {
                Ok(file) => {
                    self.open = Some(Segment {
                        id: write.segment,
                        file,
                        len: 0,
                        dirty: false,
                    });
                }
                Err(e) => {
                    let _ = dir.remove(name);
                    return Err(e);
                }
            }
        } else if self.open.as_ref().is_none_or(|s| s.id != write.segment) {
            self.open = None;
            let file = OpenOptions::new().write(true).open(dir.file(name))?;
            let len = write.offset;
            self.open = Some(Segment {
                id: write.segment,
                file,
                len,
                dirty: false,
            });
        }
        let Some(segment) = self.open.as_mut() else {
            return Err(io::Error::other("no open segment"));
        };
        let result = segment.write(write, dir);
        match &result {
            Ok(()) => segment.len = write.offset + write.bytes.len() as u64,
            Err(_) if write.create => {
                self.open = None;
                if let Err(e) = dir.remove(name) {
                    tracing::error!(file = %dir.file(name).display(), error = %e, "cannot remove a log segment whose creation failed");
                }
            }
            Err(_) => {
                // Cut back to where this write began (dropping the reserved space after it: later writes extend
                // the file), so no half-written record stays behind the good ones.
                segment.len = write.offset;
                if let Err(e) = segment.file.set_len(segment.len) {
                    segment.dirty = true;
                    tracing::error!(file = %dir.file(name).display(), error = %e, "cannot cut a failed write back; trying again before the next write");
                }
            }
        }
        result
    }
}

impl Segment {
    fn write(&mut self, write: &StoreWrite, dir: &DataDir) -> io::Result<()> {
        if self.dirty {
            self.file.set_len(self.len)?;
            self.dirty = false;
        }
        self.file.write_all_at(&write.bytes, write.offset)?;
        if write.sync {
            self.file.sync_data()?;
            if write.create {
                dir.sync()?;
            }
        }
        Ok(())
    }
}

/// Gives a new segment `bytes` of space up front (`fallocate`, within the file's length), so the syncs of the
/// writes into it need no allocation or file-size update. Best effort: where the file system cannot, or the disk
/// has less room than a whole segment, the segment grows as it is written, and only a write that finds no room
/// fails (what would still fit is still written).
fn reserve(file: &File, bytes: u64) -> io::Result<()> {
    if bytes == 0 {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, bytes) {
        tracing::debug!(error = %e, bytes, "no space reserved for a new log segment");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
    Ok(())
}

/// Logs IO failures, at most one line per [`ERROR_LOG_INTERVAL`].
#[derive(Debug, Default)]
pub(super) struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    pub(super) fn log(&mut self, file: &std::path::Path, error: &io::Error) {
        if self
            .last
            .is_some_and(|last| last.elapsed() < ERROR_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::error!(
            file = %file.display(),
            %error,
            similar_since_last = self.suppressed,
            "cannot write the data directory: publishes are refused (STORAGE_UNAVAILABLE) until writes succeed again"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn write(batch: u64, segment: u64, offset: u64, create: bool, bytes: &[u8]) -> Job {
        Job::Write(StoreWrite {
            batch,
            segment,
            offset,
            reserve: if create { 4096 } else { 0 },
            create,
            bytes: bytes.to_vec(),
            sync: true,
        })
    }

    /// A segment the disk refuses (a link to `/dev/full`: every write is `ENOSPC`) fails its write, reports it, and
    /// leaves the writer working for the next segment; closing releases the directory.
    #[cfg(unix)]
    #[test]
    fn a_refused_write_is_reported_and_the_writer_carries_on() {
        if !std::path::Path::new("/dev/full").exists() {
            return;
        }
        let path = std::env::temp_dir().join(format!("switchboard-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let dir = DataDir::lock(&path).unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.file(FileName::Log(2))).unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let mut writer = Writer::start(
            dir,
            Arc::new(move |report| {
                let _ = tx.lock().unwrap().send(report);
            }),
        )
        .unwrap();
        let next = || rx.recv_timeout(Duration::from_secs(10)).expect("a report");
        assert!(writer.submit(write(1, 1, 0, true, b"hello")));
        assert_eq!(next(), Report::Written { batch: 1 });
        assert!(writer.submit(write(2, 2, 0, false, b"refused")));
        assert_eq!(next(), Report::WriteFailed { batch: 2 });
        assert!(writer.submit(write(3, 1, 5, false, b" world")));
        assert_eq!(next(), Report::Written { batch: 3 });
        let log = path.join(FileName::Log(1).to_string());
        // Written into the space reserved for the segment: the rest reads as zeros (a restore's unwritten space).
        let bytes = std::fs::read(&log).unwrap();
        assert_eq!(&bytes[..11], b"hello world");
        assert!(bytes[11..].iter().all(|&b| b == 0));
        assert_eq!(writer.state().write_failures.load(Ordering::Relaxed), 1);
        assert_eq!(writer.state().log_bytes.load(Ordering::Relaxed), 11);
        writer.close();
        assert!(!writer.submit(write(4, 1, 11, false, b"late")));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !writer.is_released() {
            assert!(Instant::now() < deadline, "the writer thread ends");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(DataDir::lock(&path).is_ok(), "the lock is released");
        std::fs::remove_dir_all(&path).unwrap();
    }
}
