//! The WebSocket frames the server writes itself: a text frame around a payload and a close frame (RFC 6455 §5.2).
//!
//! Server-to-client frames are never masked, so one event's frame (header and payload) is the same bytes for every
//! recipient: the driver builds it once per publish and dialect ([`FrameCache`]) and every writer writes those
//! bytes as they are. No extension is negotiated (the upgrade answers no `Sec-WebSocket-Extensions`), so the
//! reserved bits stay zero and the payload is the frame's text unchanged.

use std::sync::Arc;

/// FIN and the text opcode.
const FIN_TEXT: u8 = 0x81;
/// FIN and the close opcode.
const FIN_CLOSE: u8 = 0x88;
/// The close opcode (low four bits of the first byte).
const OPCODE_CLOSE: u8 = 0x8;
/// Longest close reason on the wire (a close frame's payload is at most 125 bytes, 2 of them the code).
pub(crate) const MAX_CLOSE_REASON: usize = 123;

/// Appends the header of an unmasked final frame with `first` (FIN and opcode) and a payload of `len` bytes.
fn put_header(out: &mut Vec<u8>, first: u8, len: usize) {
    out.push(first);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// One unmasked text frame carrying `text`, as one shared buffer.
pub(crate) fn text_frame(text: &str) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(text.len() + 10);
    put_header(&mut out, FIN_TEXT, text.len());
    out.extend_from_slice(text.as_bytes());
    out.into()
}

/// A close frame with `code` and `reason` (cut to [`MAX_CLOSE_REASON`] bytes on a character boundary).
pub(crate) fn close_frame(code: u16, reason: &str) -> Box<[u8]> {
    let reason = truncate(reason, MAX_CLOSE_REASON);
    let mut out = Vec::with_capacity(4 + reason.len());
    put_header(&mut out, FIN_CLOSE, 2 + reason.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    out.into()
}

/// Whether `bytes`, a run of whole unmasked frames the server itself produced (tungstenite's pong and close
/// answers), holds a close frame. Stops at anything that is not a whole frame.
pub(crate) fn holds_close(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    while at + 2 <= bytes.len() {
        let (first, second) = (bytes[at], bytes[at + 1]);
        if first & 0x0F == OPCODE_CLOSE {
            return true;
        }
        let masked = second & 0x80 != 0;
        let (len, header) = match second & 0x7F {
            126 => match bytes.get(at + 2..at + 4) {
                Some(b) => (usize::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return false,
            },
            127 => match bytes
                .get(at + 2..at + 10)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
            {
                Some(b) => match usize::try_from(u64::from_be_bytes(b)) {
                    Ok(len) => (len, 10),
                    Err(_) => return false,
                },
                None => return false,
            },
            short => (usize::from(short), 2),
        };
        let mask = if masked { 4 } else { 0 };
        at = match at
            .checked_add(header + mask)
            .and_then(|a| a.checked_add(len))
        {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

/// `s` cut to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A text the hub handed out and its frame.
type Framed = (Arc<str>, Arc<[u8]>);

/// The last few frames built in one drain of the hub's output, by the identity of the hub's text: a fan-out hands
/// every subscriber of a dialect the same `Arc<str>` (at most one per dialect), so each is framed once.
#[derive(Debug, Default)]
pub(crate) struct FrameCache {
    entries: [Option<Framed>; FrameCache::SLOTS],
    next: usize,
}

impl FrameCache {
    /// One slot per dialect, and one for the answers between them.
    const SLOTS: usize = 4;

    /// The frame for `text`: the one built already if this very text was framed since the last [`clear`], else a
    /// new one, kept in place of the oldest.
    ///
    /// [`clear`]: FrameCache::clear
    pub fn framed(&mut self, text: &Arc<str>) -> Arc<[u8]> {
        for (cached, frame) in self.entries.iter().flatten() {
            if Arc::ptr_eq(cached, text) {
                return Arc::clone(frame);
            }
        }
        let frame = text_frame(text);
        self.entries[self.next] = Some((Arc::clone(text), Arc::clone(&frame)));
        self.next = (self.next + 1) % Self::SLOTS;
        frame
    }

    /// Forgets every frame (the cache holds its texts, so it must not outlive one drain).
    pub fn clear(&mut self) {
        self.entries = Default::default();
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tungstenite::Message;
    use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
    use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use async_tungstenite::tungstenite::protocol::{Role, WebSocket};
    use std::io::Cursor;

    /// Reads every message a client sees in `bytes`.
    fn client_reads(bytes: &[u8]) -> Vec<Message> {
        let mut ws = WebSocket::from_raw_socket(Cursor::new(bytes.to_vec()), Role::Client, None);
        let mut out = Vec::new();
        while let Ok(m) = ws.read() {
            out.push(m);
        }
        out
    }

    #[test]
    fn text_frames_of_every_length_class_read_back() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 200_000] {
            let text = "y".repeat(len);
            let frame = text_frame(&text);
            let header = match len {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(frame.len(), header + len);
            assert_eq!(
                client_reads(&frame),
                vec![Message::text(text)],
                "length {len}"
            );
            assert!(!holds_close(&frame));
        }
    }

    #[test]
    fn close_frames_carry_code_and_cut_reason() {
        let frame = close_frame(1013, &"é".repeat(100));
        let read = client_reads(&frame);
        let Some(Message::Close(Some(CloseFrame { code, reason }))) = read.first() else {
            panic!("{read:?}");
        };
        assert_eq!(*code, CloseCode::Again);
        assert_eq!(
            reason.len(),
            122,
            "cut on a character boundary below 123 bytes"
        );
        assert!(holds_close(&frame));
    }

    #[test]
    fn a_close_after_other_frames_is_found() {
        let mut run = text_frame(&"z".repeat(300)).to_vec();
        run.extend_from_slice(&close_frame(1000, ""));
        assert!(holds_close(&run));
        // A pong (opcode 0xA) alone is not a close.
        assert!(!holds_close(&[0x8A, 0x01, b'x']));
        // Cut short: no whole close frame header to see.
        assert!(!holds_close(&run[..3]));
    }

    #[test]
    fn one_text_is_framed_once_per_drain() {
        let mut cache = FrameCache::default();
        let a: Arc<str> = Arc::from("aaa");
        let b: Arc<str> = Arc::from("aaa");
        let first = cache.framed(&a);
        assert!(Arc::ptr_eq(&first, &cache.framed(&a.clone())));
        // Equal text, different publish: framed again.
        assert!(!Arc::ptr_eq(&first, &cache.framed(&b)));
        cache.clear();
        assert!(!Arc::ptr_eq(&first, &cache.framed(&a)));
    }

    #[test]
    fn close_reasons_are_cut_on_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }
}
