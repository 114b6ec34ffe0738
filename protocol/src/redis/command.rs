//! [`Command`]: one Redis command, encoded as RESP2 sends commands (an array of bulk strings).

use alloc::vec::Vec;
use core::fmt::Write as _;

/// A Redis command being built: its name, then its arguments, each binary-safe.
///
/// ```
/// use switchboard_protocol::redis::Command;
/// let cmd = Command::new("SET").arg("key").arg(b"value").int(10);
/// let mut out = Vec::new();
/// cmd.encode_into(&mut out);
/// assert_eq!(out, b"*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n$2\r\n10\r\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The arguments, each already framed as a bulk string.
    body: Vec<u8>,
    args: usize,
}

impl Command {
    /// A command with no argument yet.
    pub fn new(name: &str) -> Command {
        Command {
            body: Vec::with_capacity(64),
            args: 0,
        }
        .arg(name)
    }

    /// Adds a binary-safe argument.
    pub fn arg(mut self, value: impl AsRef<[u8]>) -> Command {
        let value = value.as_ref();
        self.body.push(b'$');
        push_decimal(&mut self.body, value.len() as u64);
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(value);
        self.body.extend_from_slice(b"\r\n");
        self.args += 1;
        self
    }

    /// Adds an integer argument, in decimal.
    pub fn int(self, value: i64) -> Command {
        let mut digits = decimal(value.unsigned_abs());
        if value < 0 {
            digits.insert(0, b'-');
        }
        self.arg(digits)
    }

    /// Adds an unsigned integer argument, in decimal.
    pub fn uint(self, value: u64) -> Command {
        self.arg(decimal(value))
    }

    /// The number of words (the name and every argument).
    pub fn len(&self) -> usize {
        self.args
    }

    /// Whether the command has no word (never true: a command has its name).
    pub fn is_empty(&self) -> bool {
        self.args == 0
    }

    /// Appends the command's RESP2 encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.body.len() + 16);
        out.push(b'*');
        push_decimal(out, self.args as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        let mut header = Vec::new();
        push_decimal(&mut header, self.args as u64);
        1 + header.len() + 2 + self.body.len()
    }
}

fn decimal(value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    push_decimal(&mut out, value);
    out
}

fn push_decimal(out: &mut Vec<u8>, value: u64) {
    struct Sink<'a>(&'a mut Vec<u8>);
    impl core::fmt::Write for Sink<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    // Writing a u64 into a Vec cannot fail.
    let _ = write!(Sink(out), "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        Command::new("EVALSHA")
            .arg("abc")
            .uint(1)
            .int(-5)
            .arg(b"")
            .encode_into(&mut out);
        assert_eq!(
            out,
            b"*5\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$2\r\n-5\r\n$0\r\n\r\n"
        );
        let cmd = Command::new("PING");
        assert_eq!(cmd.len(), 1);
        let mut out = Vec::new();
        cmd.encode_into(&mut out);
        assert_eq!(out.len(), cmd.encoded_len());
    }
}
