//! [`DataDir`]: the data directory of a durable server, held under an exclusive lock for as long as the server
//! runs, so two servers never write the same files.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::error::DataDirError;
use super::file_name::FileName;

/// The lock file's name.
const LOCK: &str = "LOCK";

/// A locked data directory. The lock is released when the last holder drops it (the writer thread and any
/// snapshot thread each hold it).
#[derive(Debug)]
pub(crate) struct DataDir {
    path: PathBuf,
    /// Holds the lock; it carries our pid, for the message another server prints.
    _lock: File,
}

impl DataDir {
    /// Opens `path` (creating it if missing) and takes its lock.
    pub fn lock(path: &Path) -> Result<DataDir, DataDirError> {
        fs::create_dir_all(path).map_err(DataDirError::io(path, "create the directory"))?;
        let lock_path = path.join(LOCK);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(DataDirError::io(&lock_path, "open the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = lock.read_to_string(&mut text);
                return Err(DataDirError::InUse {
                    path: path.to_owned(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(DataDirError::io(&lock_path, "lock the lock file")(e));
            }
        }
        lock.set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .map_err(DataDirError::io(&lock_path, "write the lock file"))?;
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the store's file `name` is.
    pub fn file(&self, name: FileName) -> PathBuf {
        self.path.join(name.to_string())
    }

    /// The store's files in the directory, in name order (kind, then id).
    pub fn files(&self) -> io::Result<Vec<FileName>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str().and_then(FileName::parse) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Syncs the directory itself, so files created, renamed or removed in it stay so after a power loss.
    pub fn sync(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    /// Removes the store's file `name`; a file already gone is no error.
    pub fn remove(&self, name: FileName) -> io::Result<()> {
        match fs::remove_file(self.file(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid() {
        let path = std::env::temp_dir().join(format!("switchboard-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        let first = DataDir::lock(&path).unwrap();
        match DataDir::lock(&path) {
            Err(DataDirError::InUse { path: p, pid }) => {
                assert_eq!(p, path);
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        let again = DataDir::lock(&path).unwrap();
        assert!(again.files().unwrap().is_empty());
        drop(again);
        fs::remove_dir_all(&path).unwrap();
    }
}
