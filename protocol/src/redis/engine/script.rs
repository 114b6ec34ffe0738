//! [`Script`]: a Lua script run by its SHA1 once Redis has it, by its source when Redis does not.

use alloc::string::String;

use super::EngineReplyError;
use crate::redis::{Command, Reply};

/// One of the engine's scripts, and the SHA1 Redis gave it.
///
/// The first call sends the source (`EVAL`, which also caches it in Redis); [`handle_loaded`](Self::handle_loaded)
/// with the reply of [`load_command`](Self::load_command) switches to `EVALSHA`. A Redis that lost its script cache
/// (restarted, `SCRIPT FLUSH`) answers `NOSCRIPT` without running anything: [`handle_refused`](Self::handle_refused)
/// goes back to the source, and the call can be repeated safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    source: &'static str,
    sha: Option<String>,
}

impl Script {
    /// A script not loaded yet.
    pub const fn new(source: &'static str) -> Script {
        Script { source, sha: None }
    }

    /// The script's source.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// `SCRIPT LOAD`.
    pub fn load_command(&self) -> Command {
        Command::new("SCRIPT").arg("LOAD").arg(self.source)
    }

    /// Keeps the SHA1 `SCRIPT LOAD` answered.
    pub fn handle_loaded(&mut self, reply: &Reply) -> Result<(), EngineReplyError> {
        let sha = reply
            .as_bytes()
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .filter(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(EngineReplyError::Shape {
                what: "SCRIPT LOAD",
            })?;
        self.sha = Some(sha.into());
        Ok(())
    }

    /// Whether `EVALSHA` is used.
    pub fn is_loaded(&self) -> bool {
        self.sha.is_some()
    }

    /// `EVALSHA sha` or `EVAL source`, with the key count: the caller appends keys, then arguments.
    pub fn invoke(&self, keys: usize) -> Command {
        match &self.sha {
            Some(sha) => Command::new("EVALSHA").arg(sha).uint(keys as u64),
            None => Command::new("EVAL").arg(self.source).uint(keys as u64),
        }
    }

    /// An error reply to [`invoke`](Self::invoke): `true` when it was `NOSCRIPT` (nothing ran; call again, with the
    /// source this time).
    pub fn handle_refused(&mut self, message: &str) -> bool {
        if message.starts_with("NOSCRIPT") {
            self.sha = None;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn encoded(command: Command) -> Vec<u8> {
        let mut out = Vec::new();
        command.encode_into(&mut out);
        out
    }

    #[test]
    fn source_then_sha_then_source_again() {
        let mut script = Script::new("return 1");
        assert_eq!(
            encoded(script.invoke(0)),
            encoded(Command::new("EVAL").arg("return 1").uint(0))
        );
        let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
        assert!(
            script
                .handle_loaded(&Reply::Bulk(b"nope".to_vec()))
                .is_err()
        );
        script.handle_loaded(&Reply::Bulk(sha.into())).unwrap();
        assert_eq!(
            encoded(script.invoke(2)),
            encoded(Command::new("EVALSHA").arg(sha).uint(2))
        );
        assert!(!script.handle_refused("ERR something else"));
        assert!(script.is_loaded());
        assert!(script.handle_refused("NOSCRIPT No matching script."));
        assert!(!script.is_loaded());
    }
}
