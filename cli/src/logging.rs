//! Logging: `tracing` events to stderr, filtered by `RUST_LOG` (default `info`), in colour only on a terminal.
//! Stdout stays for the command's output.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. Safe to call once per process.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
    if let Err(e) = installed {
        eprintln!("warning: logging not set up: {e}");
    }
}
