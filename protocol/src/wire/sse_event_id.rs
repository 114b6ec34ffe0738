//! The `id:` of a Server-Sent Events stream (PROTOCOL §8): where the stream is in every channel it carries, so
//! that the `Last-Event-ID` a reconnecting browser sends back is enough to resume all of them.
//!
//! The text is one entry per channel, in the order of the stream's channels (the order of the `channel`
//! parameters, which the browser repeats on reconnect since it reuses the URL), separated by `,`:
//!
//! - `epoch:offset`: the last event seen in that channel's epoch (offset 0: none yet);
//! - `:offset`: the same epoch as the entry before it (a store gives every channel the same epoch, so a stream of
//!   many channels repeats no epoch);
//! - `offset` alone: the offset in the channel's current epoch (accepted from `?since=`; never written).
//!
//! An epoch is written with every byte outside `A–Z a–z 0–9 - _ . ~` as `%XX`, so an id never holds `,`, `:`,
//! a line break or NUL whatever the store's epochs are. A single-channel stream's id is exactly `epoch:offset`.
//!
//! Decoding is total: any text gives a position list or an [`SseIdError`], never a panic.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Longest id text decoded (bytes); a longer one is [`SseIdError::TooLong`].
pub const MAX_EVENT_ID_BYTES: usize = 8 * 1024;

/// One channel's position in an [`SseEventId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsePosition {
    /// The channel's epoch; empty: the channel's current epoch (an offset given alone).
    pub epoch: String,
    /// The offset of the last event seen (0: none yet).
    pub offset: u64,
}

/// The positions of a stream's channels, in the stream's channel order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEventId(pub Vec<SsePosition>);

/// Why an id (or `since`) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseIdError {
    /// The text is empty.
    #[error("the event id is empty")]
    Empty,
    /// Longer than [`MAX_EVENT_ID_BYTES`].
    #[error("the event id is longer than {MAX_EVENT_ID_BYTES} bytes")]
    TooLong,
    /// An offset that is not a non-negative decimal integer that fits 64 bits.
    #[error("entry {entry}: the offset is not a non-negative integer")]
    BadOffset {
        /// The entry's index, from 0.
        entry: usize,
    },
    /// A bad `%XX` escape, a character outside the epoch alphabet, or an epoch that is not UTF-8.
    #[error("entry {entry}: the epoch is not well formed")]
    BadEpoch {
        /// The entry's index, from 0.
        entry: usize,
    },
    /// The first entry says "the same epoch as before" (`:offset`).
    #[error("the first entry has no epoch to repeat")]
    NothingToRepeat,
}

impl SseEventId {
    /// A single channel's id.
    pub fn single(epoch: &str, offset: u64) -> SseEventId {
        SseEventId(alloc::vec![SsePosition {
            epoch: String::from(epoch),
            offset,
        }])
    }

    /// The id's text (see the [module docs](self)).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let mut previous: Option<&str> = None;
        for (i, pos) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if !pos.epoch.is_empty() {
                if previous != Some(pos.epoch.as_str()) {
                    escape_into(&mut out, &pos.epoch);
                }
                out.push(':');
            }
            previous = Some(pos.epoch.as_str()).filter(|e| !e.is_empty());
            let _ = write!(out, "{}", pos.offset);
        }
        out
    }

    /// Reads an id's text (see the [module docs](self)).
    pub fn decode(text: &str) -> Result<SseEventId, SseIdError> {
        if text.is_empty() {
            return Err(SseIdError::Empty);
        }
        if text.len() > MAX_EVENT_ID_BYTES {
            return Err(SseIdError::TooLong);
        }
        let mut positions: Vec<SsePosition> = Vec::new();
        for (entry, part) in text.split(',').enumerate() {
            let (epoch, offset) = match part.rsplit_once(':') {
                None => (String::new(), part),
                Some(("", offset)) => {
                    let previous = positions
                        .last()
                        .map(|p| p.epoch.clone())
                        .filter(|e| !e.is_empty())
                        .ok_or(SseIdError::NothingToRepeat)?;
                    (previous, offset)
                }
                Some((raw, offset)) => {
                    (unescape(raw).ok_or(SseIdError::BadEpoch { entry })?, offset)
                }
            };
            let offset = parse_offset(offset).ok_or(SseIdError::BadOffset { entry })?;
            positions.push(SsePosition { epoch, offset });
        }
        Ok(SseEventId(positions))
    }
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn escape_into(out: &mut String, epoch: &str) {
    for &b in epoch.as_bytes() {
        if is_plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn unescape(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = core::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

fn parse_offset(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn pos(epoch: &str, offset: u64) -> SsePosition {
        SsePosition {
            epoch: String::from(epoch),
            offset,
        }
    }

    #[test]
    fn single_channel_ids_are_epoch_colon_offset() {
        assert_eq!(SseEventId::single("ab12", 7).encode(), "ab12:7");
        assert_eq!(
            SseEventId::decode("ab12:7").unwrap(),
            SseEventId::single("ab12", 7)
        );
    }

    #[test]
    fn repeated_epochs_are_written_once_and_bare_offsets_mean_the_current_epoch() {
        let id = SseEventId(vec![pos("e1", 3), pos("e1", 0), pos("e2", 9), pos("", 4)]);
        assert_eq!(id.encode(), "e1:3,:0,e2:9,4");
        assert_eq!(SseEventId::decode("e1:3,:0,e2:9,4").unwrap(), id);
        assert_eq!(SseEventId::decode("12").unwrap().0, vec![pos("", 12)]);
    }

    #[test]
    fn epochs_outside_the_alphabet_are_escaped() {
        let id = SseEventId(vec![pos("a,b:c\n", 1), pos("é", 2)]);
        assert_eq!(id.encode(), "a%2Cb%3Ac%0A:1,%C3%A9:2");
        assert_eq!(SseEventId::decode(&id.encode()).unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_typed_errors() {
        assert_eq!(SseEventId::decode(""), Err(SseIdError::Empty));
        assert_eq!(SseEventId::decode(":3"), Err(SseIdError::NothingToRepeat));
        assert_eq!(SseEventId::decode("4,:3"), Err(SseIdError::NothingToRepeat));
        assert_eq!(
            SseEventId::decode("e:-1"),
            Err(SseIdError::BadOffset { entry: 0 })
        );
        assert_eq!(
            SseEventId::decode("e:1,e:"),
            Err(SseIdError::BadOffset { entry: 1 })
        );
        assert_eq!(
            SseEventId::decode("e:18446744073709551616"),
            Err(SseIdError::BadOffset { entry: 0 })
        );
        assert_eq!(
            SseEventId::decode("e%zz:1"),
            Err(SseIdError::BadEpoch { entry: 0 })
        );
        assert_eq!(
            SseEventId::decode("e e:1"),
            Err(SseIdError::BadEpoch { entry: 0 })
        );
        assert_eq!(
            SseEventId::decode("%ff:1"),
            Err(SseIdError::BadEpoch { entry: 0 })
        );
        let long = "1,".repeat(MAX_EVENT_ID_BYTES);
        assert_eq!(SseEventId::decode(&long), Err(SseIdError::TooLong));
    }

    proptest! {
        #[test]
        fn round_trips(entries in proptest::collection::vec((".{0,12}", any::<u64>()), 1..6)) {
            let id = SseEventId(entries.into_iter().map(|(e, o)| pos(&e, o)).collect());
            let text = id.encode();
            prop_assert!(!text.contains(['\n', '\r', '\0']));
            prop_assert_eq!(SseEventId::decode(&text), Ok(id));
        }

        #[test]
        fn any_text_decodes_or_fails_without_panicking(text in ".{0,64}") {
            if let Ok(id) = SseEventId::decode(&text) {
                prop_assert!(!id.0.is_empty());
                // What decodes encodes to text that decodes to the same positions.
                prop_assert_eq!(SseEventId::decode(&id.encode()), Ok(id));
            }
        }

        #[test]
        fn id_like_text_never_panics(text in "[0-9a-f:,%]{0,40}") {
            let _ = SseEventId::decode(&text);
        }
    }
}
