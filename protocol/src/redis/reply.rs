//! [`Reply`]: one RESP2 value as Redis sends it.

use alloc::string::String;
use alloc::vec::Vec;

/// One RESP2 value: what Redis answers a command with, or pushes on a subscribed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a status line.
    Status(String),
    /// `-ERR ...`: an error answer to one command (the connection stays usable).
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`: a binary-safe string.
    Bulk(Vec<u8>),
    /// `*2\r\n...`: an ordered list of values.
    Array(Vec<Reply>),
    /// `$-1` or `*-1`: no value.
    Nil,
}

impl Reply {
    /// The bytes of a bulk or status reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(bytes) => Some(bytes),
            Reply::Status(text) => Some(text.as_bytes()),
            _ => None,
        }
    }

    /// The value of an integer reply, or of a bulk or status reply that spells an integer (Lua scripts and some
    /// commands answer numbers as strings).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Integer(value) => Some(*value),
            Reply::Bulk(_) | Reply::Status(_) => {
                core::str::from_utf8(self.as_bytes()?).ok()?.parse().ok()
            }
            _ => None,
        }
    }

    /// The items of an array reply.
    pub fn as_array(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Takes the items of an array reply.
    pub fn into_array(self) -> Option<Vec<Reply>> {
        match self {
            Reply::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Whether this is `+OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Status(text) if text == "OK")
    }
}
