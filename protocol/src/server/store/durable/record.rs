//! The on-disk record format of the [durable store](super): segment headers and checksummed records.
//!
//! A file (a log segment or a snapshot) is a 16-byte header — the magic `SWBLOG\r\n`, the format version (`u32`
//! little-endian) and four reserved zero bytes — followed by records. A record is framed as
//!
//! ```text
//! len: u32 LE (of the payload) | crc: u32 LE (CRC-32 of len's four bytes and the payload) | payload
//! ```
//!
//! so a torn write (the file ends inside a record) and a damaged byte (the checksum disagrees) are both found
//! before anything of the record is believed, and a damaged length cannot make the reader allocate. The payload
//! is a kind byte and the kind's fields; strings are a `u32` length and UTF-8, numbers `u64` little-endian, and an
//! event's JSON is the rest of the payload.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::Value;

use crate::server::store::KeptKey;
use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey};

/// The first eight bytes of every file of the store.
pub const MAGIC: [u8; 8] = *b"SWBLOG\r\n";
/// The format this build writes; it reads this one and every earlier one, and refuses a file with a higher one.
///
/// Version 2 gives each channel's log its own epoch: a `Channel` record carries it (written before the first event
/// of every new log, and in snapshots), a `Forget` record ends a log, and files no longer start with an `Epoch`
/// record. In a version 1 file, the `Epoch` record that starts it is the epoch of every channel it names.
///
/// Version 3 adds the `Key` record: an idempotency key and the offsets its publish got, written just before that
/// publish's events in the same write, so a retry after a restart still finds it.
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of a file's header.
pub const HEADER_LEN: usize = 16;
/// Bytes of a record's frame before its payload.
pub const FRAME_LEN: usize = 8;
/// The largest payload a reader believes: anything longer is damage (an event is at most `max_message_bytes`,
/// far below this).
pub const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

const KIND_EPOCH: u8 = 1;
const KIND_CHANNEL: u8 = 2;
const KIND_EVENT: u8 = 3;
const KIND_STATE: u8 = 4;
const KIND_CURSOR: u8 = 5;
const KIND_TRIM: u8 = 6;
const KIND_SNAPSHOT_END: u8 = 7;
const KIND_FORGET: u8 = 8;
const KIND_KEY: u8 = 9;

/// One record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Version 1 only: the epoch of every channel from here on (every version 1 file starts with one).
    Epoch(String),
    /// A channel's log: before the first event of a new log (`head` 0), and in a snapshot after the channel's
    /// history (its `Event`s) and state. A log in another epoch than the one known for the channel replaces it.
    Channel {
        /// The channel.
        channel: ChannelName,
        /// The offset of its last event.
        head: u64,
        /// The log's epoch; `None` in version 1 files (the file's `Epoch` applies).
        epoch: Option<String>,
    },
    /// The channel's log was forgotten (idle: no interest, history or state): a restore does not bring it back.
    Forget {
        /// The channel.
        channel: ChannelName,
    },
    /// An event, at its offset, published at `at`; `retain` makes it the channel's state.
    Event {
        /// The channel.
        channel: ChannelName,
        /// Its offset.
        offset: u64,
        /// When it was published (history time-to-live runs from here).
        at: Timestamp,
        /// Whether it became the channel's retained state.
        retain: bool,
        /// The event.
        event: Arc<Value>,
    },
    /// In a snapshot: the retained state of a channel whose state is no longer in its history.
    State {
        /// The channel.
        channel: ChannelName,
        /// The retained event.
        event: Arc<Value>,
    },
    /// A reader's position in a channel (the webhook sender's), by the reader's name.
    Cursor {
        /// Who reads.
        name: String,
        /// The channel.
        channel: ChannelName,
        /// The offset of the last event it has.
        offset: u64,
    },
    /// The disk budget dropped a channel's history up to and including `through`.
    Trim {
        /// The channel.
        channel: ChannelName,
        /// The last dropped offset.
        through: u64,
    },
    /// A publish with an idempotency key was given `first..=last` in the channel's log of `epoch`, at `at`: a
    /// repeat of the key within the dedupe window answers those offsets. In a log segment it comes just before
    /// the publish's events, in the same write: a restore keeps it only once every event it names is read, and
    /// cuts a file whose end tore them off back to the key (none of them was acknowledged). In a snapshot it
    /// comes after the events it names.
    Key(KeptKey),
    /// The last record of a complete snapshot.
    SnapshotEnd,
    /// An `Event` read by a [lazy](RecordReader::lazy) reader: its JSON still as bytes, to parse only if it is
    /// kept (a restore reads many events that later ones push out of history).
    UnparsedEvent {
        /// The channel.
        channel: ChannelName,
        /// Its offset.
        offset: u64,
        /// When it was published.
        at: Timestamp,
        /// Whether it became the channel's retained state.
        retain: bool,
        /// The event's JSON text.
        json: Vec<u8>,
    },
}

/// The 16-byte header of a file in this build's format.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// Why a file's header is refused: the file is not the store's, or a newer build wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file does not start with the store's magic (or is shorter than a header).
    #[error("not a switchboard data file (bad header)")]
    NotOurs,
    /// A newer build wrote it.
    #[error(
        "written in data format version {found}, newer than the {supported} this build reads: run a newer switchboard"
    )]
    NewerVersion {
        /// The file's format version.
        found: u32,
        /// [`FORMAT_VERSION`].
        supported: u32,
    },
}

/// Checks a file's header.
pub fn check_header(bytes: &[u8]) -> Result<(), FormatError> {
    if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC {
        return Err(FormatError::NotOurs);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version > FORMAT_VERSION {
        return Err(FormatError::NewerVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(FormatError::NotOurs);
    }
    Ok(())
}

impl Record {
    /// Appends the framed record to `out`; returns the bytes written.
    pub fn encode(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0u8; FRAME_LEN]);
        match self {
            Record::Epoch(epoch) => {
                out.push(KIND_EPOCH);
                put_str(out, epoch);
            }
            Record::Channel {
                channel,
                head,
                epoch,
            } => {
                out.push(KIND_CHANNEL);
                put_str(out, channel);
                put_u64(out, *head);
                if let Some(epoch) = epoch {
                    put_str(out, epoch);
                }
            }
            Record::Forget { channel } => {
                out.push(KIND_FORGET);
                put_str(out, channel);
            }
            Record::Event {
                channel,
                offset,
                at,
                retain,
                event,
            } => {
                out.push(KIND_EVENT);
                put_str(out, channel);
                put_u64(out, *offset);
                put_u64(out, at.as_micros());
                out.push(u8::from(*retain));
                put_json(out, event);
            }
            Record::State { channel, event } => {
                out.push(KIND_STATE);
                put_str(out, channel);
                put_json(out, event);
            }
            Record::Cursor {
                name,
                channel,
                offset,
            } => {
                out.push(KIND_CURSOR);
                put_str(out, name);
                put_str(out, channel);
                put_u64(out, *offset);
            }
            Record::Trim { channel, through } => {
                out.push(KIND_TRIM);
                put_str(out, channel);
                put_u64(out, *through);
            }
            Record::Key(KeptKey {
                channel,
                key,
                epoch,
                first,
                last,
                at,
            }) => {
                out.push(KIND_KEY);
                put_str(out, channel);
                put_str(out, key);
                put_str(out, epoch);
                put_u64(out, *first);
                put_u64(out, *last);
                put_u64(out, at.as_micros());
            }
            Record::SnapshotEnd => out.push(KIND_SNAPSHOT_END),
            Record::UnparsedEvent {
                channel,
                offset,
                at,
                retain,
                json,
            } => {
                out.push(KIND_EVENT);
                put_str(out, channel);
                put_u64(out, *offset);
                put_u64(out, at.as_micros());
                out.push(u8::from(*retain));
                out.extend_from_slice(json);
            }
        }
        let payload_len = out.len() - start - FRAME_LEN;
        // A payload over u32::MAX cannot be framed; events are bounded far below it by max_message_bytes.
        let len = u32::try_from(payload_len).unwrap_or(u32::MAX).to_le_bytes();
        let crc = checksum(len, &out[start + FRAME_LEN..]);
        out[start..start + 4].copy_from_slice(&len);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        out.len() - start
    }
}

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_json(out: &mut Vec<u8>, value: &Value) {
    struct Sink<'a>(&'a mut Vec<u8>);
    impl core::fmt::Write for Sink<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    // Writing into a Vec cannot fail.
    let _ = core::fmt::write(&mut Sink(out), format_args!("{value}"));
}

/// What is wrong at some point of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The file ends inside a record, or a record fails its checksum with nothing but zeros after it: the last
    /// write, cut short by the crash.
    TornTail,
    /// A record's checksum or content is wrong: the bytes changed after they were written.
    Corrupt,
}

/// Reads the records of one file after its header, stopping at the first damage.
#[derive(Debug, Clone)]
pub struct RecordReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    damage: Option<Damage>,
    lazy: bool,
}

impl<'a> RecordReader<'a> {
    /// A reader over a whole file (header included; check it with [`check_header`] first).
    pub fn new(file: &'a [u8]) -> RecordReader<'a> {
        RecordReader {
            bytes: file,
            pos: HEADER_LEN.min(file.len()),
            damage: None,
            lazy: false,
        }
    }

    /// A reader that gives events as [`Record::UnparsedEvent`]: their JSON is checked only by the checksum, and
    /// parsed by whoever keeps them.
    pub fn lazy(file: &'a [u8]) -> RecordReader<'a> {
        RecordReader {
            lazy: true,
            ..RecordReader::new(file)
        }
    }

    /// Where the last good record ends: the length to truncate a damaged file to (or a file whose reserved space
    /// was never written to).
    pub fn good_len(&self) -> usize {
        self.pos
    }

    /// The damage that stopped the reader, if any (`None` while reading, and at a clean end).
    pub fn damage(&self) -> Option<Damage> {
        self.damage
    }

    /// Stops at a record that cannot be believed; `end` is where it claims to end. Nothing but zeros after it
    /// means it was the last write, cut short (a torn tail); anything else after it means bytes changed.
    fn fail(&mut self, damage: Damage, end: usize) -> Option<(Record, usize)> {
        let after = self.bytes.get(end..).unwrap_or(&[]);
        let damage = if after.iter().all(|&b| b == 0) {
            Damage::TornTail
        } else {
            damage
        };
        self.damage = Some(damage);
        None
    }
}

impl Iterator for RecordReader<'_> {
    /// A record and its framed length on disk.
    type Item = (Record, usize);

    fn next(&mut self) -> Option<(Record, usize)> {
        if self.damage.is_some() || self.pos >= self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.pos..];
        if rest.iter().all(|&b| b == 0) {
            // Space reserved for the segment and not written yet: the clean end of what was written.
            return None;
        }
        if rest.len() < FRAME_LEN {
            return self.fail(Damage::TornTail, self.bytes.len());
        }
        let len_bytes = [rest[0], rest[1], rest[2], rest[3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let end = self.pos + FRAME_LEN + len;
        if len > MAX_PAYLOAD {
            return self.fail(Damage::Corrupt, self.pos + FRAME_LEN);
        }
        let Some(payload) = rest.get(FRAME_LEN..FRAME_LEN + len) else {
            return self.fail(Damage::TornTail, self.bytes.len());
        };
        if checksum(len_bytes, payload) != crc {
            return self.fail(Damage::Corrupt, end);
        }
        match decode_payload(payload, self.lazy) {
            Some(record) => {
                self.pos += FRAME_LEN + len;
                Some((record, FRAME_LEN + len))
            }
            None => self.fail(Damage::Corrupt, end),
        }
    }
}

/// Reads fields off a payload; every read is checked.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.0.split_at_checked(8)?;
        self.0 = rest;
        Some(u64::from_le_bytes(head.try_into().ok()?))
    }

    fn str(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_at_checked(4)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let (s, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        core::str::from_utf8(s).ok()
    }

    fn channel(&mut self) -> Option<ChannelName> {
        ChannelName::new(self.str()?).ok()
    }

    fn json(&mut self) -> Option<Arc<Value>> {
        let value: Value = serde_json::from_slice(self.0).ok()?;
        self.0 = &[];
        Some(Arc::new(value))
    }

    fn rest(&mut self) -> Vec<u8> {
        let rest = self.0.to_vec();
        self.0 = &[];
        rest
    }

    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

fn decode_payload(payload: &[u8], lazy: bool) -> Option<Record> {
    let mut f = Fields(payload);
    let record = match f.u8()? {
        KIND_EVENT if lazy => Record::UnparsedEvent {
            channel: f.channel()?,
            offset: f.u64()?,
            at: Timestamp::from_micros(f.u64()?),
            retain: match f.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
            json: f.rest(),
        },
        KIND_EPOCH => Record::Epoch(String::from(f.str()?)),
        KIND_CHANNEL => Record::Channel {
            channel: f.channel()?,
            head: f.u64()?,
            // Version 1 wrote none.
            epoch: if f.0.is_empty() {
                None
            } else {
                Some(String::from(f.str()?))
            },
        },
        KIND_FORGET => Record::Forget {
            channel: f.channel()?,
        },
        KIND_EVENT => Record::Event {
            channel: f.channel()?,
            offset: f.u64()?,
            at: Timestamp::from_micros(f.u64()?),
            retain: match f.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
            event: f.json()?,
        },
        KIND_STATE => Record::State {
            channel: f.channel()?,
            event: f.json()?,
        },
        KIND_CURSOR => Record::Cursor {
            name: String::from(f.str()?),
            channel: f.channel()?,
            offset: f.u64()?,
        },
        KIND_TRIM => Record::Trim {
            channel: f.channel()?,
            through: f.u64()?,
        },
        KIND_KEY => {
            let channel = f.channel()?;
            let key = IdempotencyKey::new(f.str()?).ok()?;
            let epoch = String::from(f.str()?);
            let (first, last) = (f.u64()?, f.u64()?);
            if first == 0 || last < first {
                return None;
            }
            Record::Key(KeptKey {
                channel,
                key,
                epoch,
                first,
                last,
                at: Timestamp::from_micros(f.u64()?),
            })
        }
        KIND_SNAPSHOT_END => Record::SnapshotEnd,
        _ => return None,
    };
    f.end()?;
    Some(record)
}
