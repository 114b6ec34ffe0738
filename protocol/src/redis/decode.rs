//! [`Decoder`]: RESP2 replies out of a byte stream, resumable and bounded.
//!
//! Bytes come in as the socket gives them ([`Decoder::feed`]); whole replies come out ([`Decoder::next_reply`]).
//! Each byte is parsed once: an array that arrives in pieces keeps its finished items on a stack between calls
//! rather than being parsed again from its start, so a reply of many items costs the same whether it arrives at
//! once or a byte at a time. Nothing a peer sends is trusted: line lengths, bulk lengths and nesting are bounded
//! ([`RespLimits`]), declared lengths never size an allocation up front, and every malformed input is a
//! [`RespError`], never a panic.

use alloc::string::String;
use alloc::vec::Vec;

use super::reply::Reply;

/// Bounds on what a peer may make the decoder hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// The longest status, error or length line, in bytes (without its CRLF).
    pub max_line: usize,
    /// The longest bulk string, in bytes (Redis's own default `proto-max-bulk-len` is 512 MiB).
    pub max_bulk: usize,
    /// How deep arrays may nest (a stream read is four deep).
    pub max_depth: usize,
}

impl Default for RespLimits {
    fn default() -> Self {
        RespLimits {
            max_line: 64 * 1024,
            max_bulk: 512 * 1024 * 1024,
            max_depth: 16,
        }
    }
}

/// Input that is not RESP2 as Redis speaks it (the peer's fault; the connection cannot continue).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RespError {
    /// A line ran past [`RespLimits::max_line`] without its CRLF.
    #[error("a RESP line is longer than {limit} bytes")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// A bulk string longer than [`RespLimits::max_bulk`] was announced.
    #[error("a RESP bulk string of {len} bytes is longer than the limit of {limit}")]
    BulkTooLong {
        /// The announced length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// Arrays nested deeper than [`RespLimits::max_depth`].
    #[error("RESP arrays nest deeper than {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A length or integer line that is not a number in range.
    #[error("a RESP length or integer is malformed")]
    BadNumber,
    /// A bulk string not followed by CRLF.
    #[error("a RESP bulk string is not followed by CRLF")]
    MissingCrlf,
    /// A type byte this client does not speak (RESP3 types included: the client never asks for RESP3).
    #[error("unexpected RESP type byte 0x{0:02x}")]
    UnexpectedType(u8),
}

/// An array whose items are still arriving.
#[derive(Debug)]
struct Partial {
    remaining: usize,
    items: Vec<Reply>,
}

/// Capacity reserved for an array up front, whatever length it announces: the rest grows as items arrive.
const INITIAL_ITEMS: usize = 16;

/// Consumed input is dropped from the buffer's front once it is at least this long and half the buffer.
const COMPACT_AFTER: usize = 16 * 1024;

/// Turns a byte stream into replies.
#[derive(Debug)]
pub struct Decoder {
    limits: RespLimits,
    buf: Vec<u8>,
    /// Where the next value starts in `buf`.
    pos: usize,
    stack: Vec<Partial>,
    /// Set once an error was returned: the stream has no boundary to resume from.
    failed: Option<RespError>,
}

impl Decoder {
    /// A decoder with these limits.
    pub fn new(limits: RespLimits) -> Decoder {
        Decoder {
            limits,
            buf: Vec::new(),
            pos: 0,
            stack: Vec::new(),
            failed: None,
        }
    }

    /// Adds bytes read from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= COMPACT_AFTER && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed and not yet part of a returned reply.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether a reply is partly received.
    pub fn in_reply(&self) -> bool {
        !self.stack.is_empty() || self.buffered() > 0
    }

    /// The next whole reply, `None` until one has fully arrived. After an error every call returns it again.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, RespError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.parse();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn parse(&mut self) -> Result<Option<Reply>, RespError> {
        loop {
            let Some(mut value) = self.parse_value()? else {
                return Ok(None);
            };
            // Completes the arrays the value finishes, innermost first.
            loop {
                let Some(top) = self.stack.last_mut() else {
                    return Ok(Some(value));
                };
                top.items.push(value);
                top.remaining -= 1;
                if top.remaining > 0 {
                    break;
                }
                let done = self.stack.pop().map(|partial| partial.items);
                value = Reply::Array(done.unwrap_or_default());
            }
        }
    }

    /// Parses one scalar, or opens an array (then returns `Ok(None)` only when input ran out). Consumes input only
    /// for what it returns or pushes.
    fn parse_value(&mut self) -> Result<Option<Reply>, RespError> {
        loop {
            let Some((line_end, next)) = self.find_line()? else {
                return Ok(None);
            };
            let kind = self.buf[self.pos];
            let line = &self.buf[self.pos + 1..line_end];
            match kind {
                b'+' | b'-' => {
                    let text = String::from_utf8_lossy(line).into_owned();
                    self.pos = next;
                    return Ok(Some(if kind == b'+' {
                        Reply::Status(text)
                    } else {
                        Reply::Error(text)
                    }));
                }
                b':' => {
                    let value = parse_i64(line)?;
                    self.pos = next;
                    return Ok(Some(Reply::Integer(value)));
                }
                b'$' => {
                    let len = parse_i64(line)?;
                    if len == -1 {
                        self.pos = next;
                        return Ok(Some(Reply::Nil));
                    }
                    let len = u64::try_from(len).map_err(|_| RespError::BadNumber)?;
                    let len = match usize::try_from(len) {
                        Ok(len) if len <= self.limits.max_bulk => len,
                        _ => {
                            return Err(RespError::BulkTooLong {
                                len,
                                limit: self.limits.max_bulk,
                            });
                        }
                    };
                    let end = next + len;
                    if self.buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if &self.buf[end..end + 2] != b"\r\n" {
                        return Err(RespError::MissingCrlf);
                    }
                    let bytes = self.buf[next..end].to_vec();
                    self.pos = end + 2;
                    return Ok(Some(Reply::Bulk(bytes)));
                }
                b'*' => {
                    let len = parse_i64(line)?;
                    if len == -1 {
                        self.pos = next;
                        return Ok(Some(Reply::Nil));
                    }
                    let len = usize::try_from(len).map_err(|_| RespError::BadNumber)?;
                    self.pos = next;
                    if len == 0 {
                        return Ok(Some(Reply::Array(Vec::new())));
                    }
                    if self.stack.len() >= self.limits.max_depth {
                        return Err(RespError::TooDeep {
                            limit: self.limits.max_depth,
                        });
                    }
                    self.stack.push(Partial {
                        remaining: len,
                        items: Vec::with_capacity(len.min(INITIAL_ITEMS)),
                    });
                }
                other => return Err(RespError::UnexpectedType(other)),
            }
        }
    }

    /// The end of the line starting at `pos` (the CR's index) and where the next value starts; `None` until the
    /// whole line is here.
    fn find_line(&self) -> Result<Option<(usize, usize)>, RespError> {
        let rest = &self.buf[self.pos..];
        let window = rest.len().min(self.limits.max_line + 3);
        match rest[..window].windows(2).position(|pair| pair == b"\r\n") {
            Some(0) => Err(RespError::UnexpectedType(b'\r')),
            Some(at) => Ok(Some((self.pos + at, self.pos + at + 2))),
            // Past the type byte, the limit and a CR that may start the CRLF: too long already.
            None if rest.len() > self.limits.max_line + 2
                || (rest.len() == self.limits.max_line + 2 && rest.last() != Some(&b'\r')) =>
            {
                Err(RespError::LineTooLong {
                    limit: self.limits.max_line,
                })
            }
            None => Ok(None),
        }
    }
}

fn parse_i64(digits: &[u8]) -> Result<i64, RespError> {
    let text = core::str::from_utf8(digits).map_err(|_| RespError::BadNumber)?;
    if text.starts_with('+') {
        return Err(RespError::BadNumber);
    }
    text.parse().map_err(|_| RespError::BadNumber)
}

#[cfg(test)]
mod tests;
