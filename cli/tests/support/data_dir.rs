//! Data directories for `serve --data-dir`: a unique directory removed when dropped, and a reader of the store's
//! files written from the documented format (not the server's code): a 16-byte header (`SWBLOG\r\n`, the version
//! as `u32` little-endian, four zero bytes), then records framed `len u32 LE | crc32 u32 LE | payload`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first eight bytes of every store file.
pub const MAGIC: &[u8; 8] = b"SWBLOG\r\n";
/// Bytes of a file header.
pub const HEADER_LEN: usize = 16;
/// Bytes of a record's frame before its payload.
pub const FRAME_LEN: usize = 8;
/// The payload kind byte of an event record.
const KIND_EVENT: u8 = 3;

/// A fresh, empty directory under the system's temp dir, removed with everything in it when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new directory whose name starts with `switchboard-TAG-`.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "switchboard-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory as a command-line argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temp path")
    }

    /// The log segments (`{id:016x}.log`), oldest first.
    pub fn segments(&self) -> Vec<PathBuf> {
        let mut segments: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .expect("list the data dir")
            .map(|entry| entry.expect("a dir entry").path())
            .filter(|path| {
                path.extension().is_some_and(|ext| ext == "log")
                    && path
                        .file_stem()
                        .and_then(|stem| stem.to_str())
                        .is_some_and(|stem| {
                            stem.len() == 16 && stem.chars().all(|c| c.is_ascii_hexdigit())
                        })
            })
            .collect();
        segments.sort();
        segments
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One framed record of a store file.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Where its frame starts in the file.
    pub start: usize,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Where its payload starts in the file.
    pub fn payload_start(&self) -> usize {
        self.start + FRAME_LEN
    }

    /// Where it ends in the file.
    pub fn end(&self) -> usize {
        self.payload_start() + self.payload.len()
    }

    /// For an event record: its channel and offset (the payload is the kind byte, the channel as a `u32` length
    /// and UTF-8, then the offset as `u64` little-endian).
    pub fn event(&self) -> Option<(String, u64)> {
        let p = &self.payload;
        if p.first() != Some(&KIND_EVENT) {
            return None;
        }
        let len = u32::from_le_bytes(p.get(1..5)?.try_into().ok()?) as usize;
        let channel = std::str::from_utf8(p.get(5..5 + len)?).ok()?.to_owned();
        let offset = u64::from_le_bytes(p.get(5 + len..13 + len)?.try_into().ok()?);
        Some((channel, offset))
    }
}

/// The format version a file's header names; panics if the header is not the store's.
pub fn version(file: &[u8]) -> u32 {
    assert!(
        file.len() >= HEADER_LEN && &file[..8] == MAGIC,
        "not a store file"
    );
    u32::from_le_bytes(file[8..12].try_into().expect("four bytes"))
}

/// Every whole record of a file, in order (the file must be undamaged). Zeros after the last record are space the
/// server reserved for the segment and has not written yet.
pub fn frames(file: &[u8]) -> Vec<Frame> {
    version(file);
    let mut frames = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < file.len() && file[pos..].iter().any(|&b| b != 0) {
        assert!(file.len() - pos >= FRAME_LEN, "a torn frame at {pos}");
        let len = u32::from_le_bytes(file[pos..pos + 4].try_into().expect("four bytes")) as usize;
        let payload = file
            .get(pos + FRAME_LEN..pos + FRAME_LEN + len)
            .unwrap_or_else(|| panic!("a torn record at {pos}"))
            .to_vec();
        frames.push(Frame {
            start: pos,
            payload,
        });
        pos += FRAME_LEN + len;
    }
    frames
}

/// A header in the store's format naming `version`.
pub fn header(version: u32) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&version.to_le_bytes());
    header
}
