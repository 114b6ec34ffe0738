//! [`DataDirError`]: why a data directory could not be opened.

use std::io;
use std::path::PathBuf;

/// Why [`Server::open`](crate::server::Server::open) could not open its data directory. Nothing is served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// Another server holds the directory's lock.
    #[error(
        "data directory {} is in use by another switchboard serve (pid {})",
        .path.display(),
        .pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
    )]
    InUse {
        /// The directory.
        path: PathBuf,
        /// The process that holds it, as it wrote into the lock file.
        pid: Option<u32>,
    },
    /// A newer build wrote a file of the directory.
    #[error(
        "{} is in data format version {found}, newer than the {supported} this build reads: run a newer switchboard",
        .file.display()
    )]
    NewerFormat {
        /// The file.
        file: PathBuf,
        /// Its format version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A file named like the store's does not start with the store's header.
    #[error(
        "{} is not a switchboard data file (bad header); move it out of the data directory",
        .file.display()
    )]
    NotOurs {
        /// The file.
        file: PathBuf,
    },
    /// The operating system refused an operation on the directory or one of its files.
    #[error("data directory {}: cannot {what}: {source}", .path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl DataDirError {
    /// An [`DataDirError::Io`] for `what` on `path`.
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        what: &'static str,
    ) -> impl FnOnce(io::Error) -> DataDirError {
        let path = path.into();
        move |source| DataDirError::Io { path, what, source }
    }
}
