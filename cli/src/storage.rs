//! `serve`'s durable-history options: `--data-dir`, `--fsync`, `--max-disk-bytes`, and how they make the server's
//! configuration.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use switchboard_runtime::ServerConfig;
use switchboard_runtime::server::FsyncPolicy;

/// Durable history.
#[derive(Debug, Clone, Default, Args)]
pub struct StorageArgs {
    /// Keep every channel's history, epoch, offset and retained state (and the webhook's place) in this
    /// directory, so a restart or a crash loses no acknowledged event. Default: in memory, gone with the process.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir, when writes reach the disk: `always` (each event synced before it is acknowledged),
    /// `batch` (the default: group commit, each batch synced before its events are acknowledged), `off`
    /// (acknowledged once written to the OS: survives a crash of the process, not a power loss).
    #[arg(long, env = "SWITCHBOARD_FSYNC", value_enum, value_name = "WHEN")]
    pub fsync: Option<FsyncArg>,
    /// With --data-dir, the most its files may take (bytes, or with a K, M, G or T suffix: 512M, 10G). History is
    /// kept within about a quarter of it (the rest is room for the log and the snapshots), the oldest dropped
    /// first, never the retained state. Default: no limit.
    #[arg(long, env = "SWITCHBOARD_MAX_DISK_BYTES", value_parser = parse_size, value_name = "BYTES")]
    pub max_disk_bytes: Option<u64>,
}

/// `--fsync`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncArg {
    /// Sync every event before acknowledging it.
    Always,
    /// Group commit: sync each batch before acknowledging its events.
    Batch,
    /// Never sync (except new files and snapshots).
    Off,
}

impl From<FsyncArg> for FsyncPolicy {
    fn from(arg: FsyncArg) -> FsyncPolicy {
        match arg {
            FsyncArg::Always => FsyncPolicy::Always,
            FsyncArg::Batch => FsyncPolicy::Batch,
            FsyncArg::Off => FsyncPolicy::Off,
        }
    }
}

/// Sets the server's storage from the options. Without `--data-dir` the others have nothing to act on: they are
/// ignored with a warning.
pub fn apply(args: &StorageArgs, config: &mut ServerConfig) {
    if args.data_dir.is_none() {
        if args.fsync.is_some() || args.max_disk_bytes.is_some() {
            tracing::warn!(
                "--fsync and --max-disk-bytes apply only with --data-dir; history stays in memory"
            );
        }
        return;
    }
    config.data_dir = args.data_dir.clone();
    config.fsync = args
        .fsync
        .map_or_else(FsyncPolicy::default, FsyncPolicy::from);
    config.max_disk_bytes = args.max_disk_bytes;
}

/// A byte count above 0, as [`parse_size`] reads it.
pub(crate) fn parse_nonzero_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err(format!("{text:?}: must be at least 1 byte")),
        n => Ok(n),
    }
}

/// A byte count: digits, optionally followed by `K`, `M`, `G` or `T` (powers of 1024, any case, an optional
/// trailing `B` or `iB`).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a size: expected bytes, or a number with K, M, G or T")
    })?;
    let unit = unit.to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("3GB"), Ok(3 << 30));
        for bad in ["", "M", "-1", "1.5G", "1X", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn without_a_data_dir_nothing_changes() {
        let mut config = ServerConfig::default();
        apply(
            &StorageArgs {
                data_dir: None,
                fsync: Some(FsyncArg::Always),
                max_disk_bytes: Some(1),
            },
            &mut config,
        );
        assert_eq!(config.data_dir, None);
        assert_eq!(config.fsync, FsyncPolicy::Batch);
        assert_eq!(config.max_disk_bytes, None);
        let args = StorageArgs {
            data_dir: Some("/tmp/x".into()),
            fsync: Some(FsyncArg::Off),
            max_disk_bytes: Some(1 << 30),
        };
        apply(&args, &mut config);
        assert_eq!(config.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(config.fsync, FsyncPolicy::Off);
        assert_eq!(config.max_disk_bytes, Some(1 << 30));
    }
}
