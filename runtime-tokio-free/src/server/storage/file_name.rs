//! [`FileName`]: the names of the durable store's files in a data directory (`{id:016x}.log`,
//! `{id:016x}.snap`, `{id:016x}.snap.tmp`), made and recognised in one place.

use std::fmt;

/// One of the store's files, by kind and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FileName {
    /// A log segment.
    Log(u64),
    /// A complete snapshot: it replaces every log segment up to its id.
    Snapshot(u64),
    /// A snapshot being written; renamed to [`FileName::Snapshot`] once complete and synced.
    SnapshotTmp(u64),
}

impl FileName {
    /// Recognises a name; `None` for anything else in the directory (the lock file, files of other programs).
    pub fn parse(name: &str) -> Option<FileName> {
        let (id, kind): (&str, fn(u64) -> FileName) = if let Some(id) = name.strip_suffix(".log") {
            (id, FileName::Log)
        } else if let Some(id) = name.strip_suffix(".snap.tmp") {
            (id, FileName::SnapshotTmp)
        } else if let Some(id) = name.strip_suffix(".snap") {
            (id, FileName::Snapshot)
        } else {
            return None;
        };
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(id, 16).ok().map(kind)
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileName::Log(id) => write!(f, "{id:016x}.log"),
            FileName::Snapshot(id) => write!(f, "{id:016x}.snap"),
            FileName::SnapshotTmp(id) => write!(f, "{id:016x}.snap.tmp"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FileName;

    #[test]
    fn names_round_trip() {
        for name in [
            FileName::Log(1),
            FileName::Snapshot(0xfeed),
            FileName::SnapshotTmp(u64::MAX),
        ] {
            assert_eq!(FileName::parse(&name.to_string()), Some(name));
        }
        assert_eq!(FileName::Log(26).to_string(), "000000000000001a.log");
    }

    #[test]
    fn other_files_are_not_ours() {
        for name in [
            "LOCK",
            "1.log",
            "000000000000001g.log",
            "000000000000001a.log.bak",
            "000000000000001a.tmp",
            "+00000000000001a.log",
        ] {
            assert_eq!(FileName::parse(name), None, "{name}");
        }
    }
}
