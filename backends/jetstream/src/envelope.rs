//! The binary envelope: one JetStream message carries every event of one append.
//!
//! Layout of format version 1, integers as unsigned LEB128 varints unless noted:
//!
//! ```text
//! u8 format version (1) | first version | event count (1..=65,535)
//! per event:
//!   event type (length + UTF-8) | schema version | timestamp seconds (zigzag varint)
//!   | timestamp nanoseconds | u8 flags of the optional fields
//!   | command id, correlation id, causation id, node (length + UTF-8, when flagged)
//!   | reply (length + bytes, when flagged) | payload (length + bytes)
//! ```
//!
//! Decoding checks every length against the bytes left, so bad input of any kind becomes
//! [`StoreError::Corrupt`] and never a panic or an oversized allocation.

use std::fmt;

use aether_core::{EventMetadata, NewEvent, StoreError, Version};
use bytes::{BufMut, Bytes, BytesMut};
use chrono::DateTime;

/// The format version written by this crate.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Maximum number of events in one append, so that an event's index within its message fits
/// the 16 low bits of its position.
pub const MAX_EVENTS_PER_APPEND: usize = 65_535;

const HAS_COMMAND_ID: u8 = 1;
const HAS_CORRELATION_ID: u8 = 1 << 1;
const HAS_CAUSATION_ID: u8 = 1 << 2;
const HAS_NODE: u8 = 1 << 3;
const HAS_REPLY: u8 = 1 << 4;
const KNOWN_FLAGS: u8 =
    HAS_COMMAND_ID | HAS_CORRELATION_ID | HAS_CAUSATION_ID | HAS_NODE | HAS_REPLY;

/// One event as decoded from an envelope, before it gets its actor, version and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    pub(crate) event_type: String,
    pub(crate) schema_version: u32,
    pub(crate) payload: Bytes,
    pub(crate) metadata: EventMetadata,
}

/// A decoded envelope.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The version of the first event.
    pub(crate) first_version: Version,
    /// The events in version order; never empty.
    pub(crate) events: Vec<StoredEvent>,
}

/// The first version and event count of an envelope, read without decoding the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EnvelopeHeader {
    pub(crate) first_version: Version,
    pub(crate) count: u64,
}

impl EnvelopeHeader {
    /// The version of the last event.
    pub(crate) fn last_version(&self) -> Version {
        self.first_version.advance(self.count - 1)
    }
}

/// Encodes `events` whose first version is `first_version`. The caller has checked that there
/// are between 1 and [`MAX_EVENTS_PER_APPEND`] events.
pub(crate) fn encode(first_version: Version, events: &[NewEvent]) -> Bytes {
    let size: usize = events.iter().map(encoded_event_bound).sum::<usize>() + 32;
    let mut buf = BytesMut::with_capacity(size);
    buf.put_u8(FORMAT_VERSION);
    put_varint(&mut buf, first_version.get());
    put_varint(&mut buf, events.len() as u64);
    for event in events {
        put_bytes(&mut buf, event.event_type.as_bytes());
        put_varint(&mut buf, u64::from(event.schema_version));
        let meta = &event.metadata;
        put_varint(&mut buf, zigzag(meta.timestamp.timestamp()));
        put_varint(&mut buf, u64::from(meta.timestamp.timestamp_subsec_nanos()));

        let mut flags = 0u8;
        for (present, flag) in [
            (meta.command_id.is_some(), HAS_COMMAND_ID),
            (meta.correlation_id.is_some(), HAS_CORRELATION_ID),
            (meta.causation_id.is_some(), HAS_CAUSATION_ID),
            (meta.node.is_some(), HAS_NODE),
            (meta.reply.is_some(), HAS_REPLY),
        ] {
            if present {
                flags |= flag;
            }
        }
        buf.put_u8(flags);
        for text in [
            &meta.command_id,
            &meta.correlation_id,
            &meta.causation_id,
            &meta.node,
        ]
        .into_iter()
        .flatten()
        {
            put_bytes(&mut buf, text.as_bytes());
        }
        if let Some(reply) = &meta.reply {
            put_bytes(&mut buf, reply);
        }
        put_bytes(&mut buf, &event.payload);
    }
    buf.freeze()
}

/// Estimates an upper bound of the encoded size of one event.
fn encoded_event_bound(event: &NewEvent) -> usize {
    let meta = &event.metadata;
    let texts = [
        &meta.command_id,
        &meta.correlation_id,
        &meta.causation_id,
        &meta.node,
    ]
    .into_iter()
    .flatten()
    .map(|text| text.len() + 10)
    .sum::<usize>();
    let reply = meta.reply.as_ref().map_or(0, |reply| reply.len() + 10);
    event.event_type.len() + event.payload.len() + texts + reply + 50
}

/// Reads the first version and event count of `bytes`. `location` names the message in errors;
/// it is formatted only when there is one.
pub(crate) fn decode_header(
    bytes: &[u8],
    location: &dyn fmt::Display,
) -> Result<EnvelopeHeader, StoreError> {
    let mut reader = Reader::new(bytes, location);
    reader.header()
}

/// Decodes a whole envelope. `location` names the message in errors.
#[cfg(test)]
pub(crate) fn decode(bytes: &Bytes, location: &dyn fmt::Display) -> Result<Envelope, StoreError> {
    let (first_version, events) = decode_each(bytes, location, |_, _, event| event)?;
    Ok(Envelope {
        first_version,
        events,
    })
}

/// Decodes a whole envelope and passes each event, with its index in the message and its
/// version, through `convert`. Returns the first version and the converted events. `location`
/// names the message in errors.
pub(crate) fn decode_each<T>(
    bytes: &Bytes,
    location: &dyn fmt::Display,
    mut convert: impl FnMut(usize, Version, StoredEvent) -> T,
) -> Result<(Version, Vec<T>), StoreError> {
    let mut reader = Reader::new(bytes, location);
    let header = reader.header()?;
    // Each event takes at least 7 bytes, which bounds the allocation by the input size.
    let capacity = usize::try_from(header.count)
        .unwrap_or(usize::MAX)
        .min(bytes.len() / 7);
    let mut events = Vec::with_capacity(capacity);
    for index in 0..header.count {
        let event = reader.event(bytes)?;
        let version = header.first_version.advance(index);
        events.push(convert(index as usize, version, event));
    }
    if reader.remaining() != 0 {
        return Err(reader.corrupt(format!("{} bytes after the last event", reader.remaining())));
    }
    Ok((header.first_version, events))
}

fn put_varint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// A cursor over envelope bytes whose every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    location: &'a dyn fmt::Display,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], location: &'a dyn fmt::Display) -> Self {
        Self {
            bytes,
            offset: 0,
            location,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::corrupt(
            self.location.to_string(),
            format!("invalid event envelope at byte {}: {reason}", self.offset),
        )
    }

    fn header(&mut self) -> Result<EnvelopeHeader, StoreError> {
        let format = self.u8("format version")?;
        if format != FORMAT_VERSION {
            return Err(self.corrupt(format!(
                "format version {format} is unknown, this build reads version {FORMAT_VERSION}"
            )));
        }
        let first_version = self.varint("first version")?;
        let count = self.varint("event count")?;
        if first_version == 0 {
            return Err(self.corrupt("first version is 0".to_owned()));
        }
        if count == 0 || count > MAX_EVENTS_PER_APPEND as u64 {
            return Err(self.corrupt(format!(
                "event count {count} is outside 1..={MAX_EVENTS_PER_APPEND}"
            )));
        }
        if first_version.checked_add(count - 1).is_none() {
            return Err(self.corrupt(format!(
                "first version {first_version} plus {count} events overflows"
            )));
        }
        Ok(EnvelopeHeader {
            first_version: Version::new(first_version),
            count,
        })
    }

    fn event(&mut self, source: &Bytes) -> Result<StoredEvent, StoreError> {
        let event_type = self.text("event type")?;
        let schema_version = self.varint("schema version")?;
        let schema_version = u32::try_from(schema_version)
            .map_err(|_| self.corrupt(format!("schema version {schema_version} exceeds u32")))?;
        let seconds = unzigzag(self.varint("timestamp seconds")?);
        let nanos = self.varint("timestamp nanoseconds")?;
        let timestamp = u32::try_from(nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(seconds, nanos))
            .ok_or_else(|| {
                self.corrupt(format!(
                    "timestamp {seconds} s + {nanos} ns is out of range"
                ))
            })?;

        let flags = self.u8("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(self.corrupt(format!("unknown flags {flags:#04x}")));
        }
        let mut optional_text =
            |flag: u8, what: &'static str| -> Result<Option<String>, StoreError> {
                if flags & flag == 0 {
                    Ok(None)
                } else {
                    self.text(what).map(Some)
                }
            };
        let command_id = optional_text(HAS_COMMAND_ID, "command id")?;
        let correlation_id = optional_text(HAS_CORRELATION_ID, "correlation id")?;
        let causation_id = optional_text(HAS_CAUSATION_ID, "causation id")?;
        let node = optional_text(HAS_NODE, "node")?;
        let reply = if flags & HAS_REPLY == 0 {
            None
        } else {
            Some(self.bytes_from(source, "reply")?)
        };
        let payload = self.bytes_from(source, "payload")?;

        Ok(StoredEvent {
            event_type,
            schema_version,
            payload,
            metadata: EventMetadata {
                timestamp,
                command_id,
                correlation_id,
                causation_id,
                node,
                reply,
            },
        })
    }

    fn u8(&mut self, what: &str) -> Result<u8, StoreError> {
        let Some(&byte) = self.bytes.get(self.offset) else {
            return Err(self.corrupt(format!("ends before the {what}")));
        };
        self.offset += 1;
        Ok(byte)
    }

    fn varint(&mut self, what: &str) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.corrupt(format!("{what} overflows u64")));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corrupt(format!("{what} overflows u64")))
    }

    /// Reads a length prefix and returns the range it covers.
    fn span(&mut self, what: &str) -> Result<std::ops::Range<usize>, StoreError> {
        let len = self.varint(what)?;
        match usize::try_from(len) {
            Ok(len) if len <= self.remaining() => {
                let start = self.offset;
                self.offset += len;
                Ok(start..self.offset)
            }
            _ => Err(self.corrupt(format!(
                "{what} length {len} exceeds the {} bytes left",
                self.remaining()
            ))),
        }
    }

    fn text(&mut self, what: &str) -> Result<String, StoreError> {
        let range = self.span(what)?;
        let start = range.start;
        std::str::from_utf8(&self.bytes[range])
            .map(str::to_owned)
            .map_err(|err| {
                StoreError::corrupt(
                    self.location.to_string(),
                    format!("invalid event envelope at byte {start}: {what} is not UTF-8 ({err})"),
                )
            })
    }

    /// Reads length-prefixed bytes as a zero-copy slice of `source`, the buffer being read.
    fn bytes_from(&mut self, source: &Bytes, what: &str) -> Result<Bytes, StoreError> {
        let range = self.span(what)?;
        Ok(source.slice(range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_event(n: u32) -> NewEvent {
        let metadata = EventMetadata::now()
            .with_command_id(format!("cmd-{n}"))
            .with_correlation_id("corr ü")
            .with_causation_id("cause\0x")
            .with_node("node-7")
            .with_reply(vec![0u8, 255, 1]);
        NewEvent::new(format!("Type{n}"), vec![n as u8; n as usize])
            .with_schema_version(n + 3)
            .with_metadata(metadata)
    }

    fn as_new(event: StoredEvent) -> NewEvent {
        NewEvent {
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: event.payload,
            metadata: event.metadata,
        }
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let mut bare = NewEvent::new("Bare", Bytes::new());
        bare.metadata.timestamp = DateTime::from_timestamp(-62_000_000_000, 999_999_999).unwrap();
        let events = vec![full_event(0), bare, full_event(200)];

        let bytes = encode(Version::new(41), &events);
        let envelope = decode(&bytes, &"test").unwrap();

        assert_eq!(envelope.first_version, Version::new(41));
        let back: Vec<NewEvent> = envelope.events.into_iter().map(as_new).collect();
        assert_eq!(back, events);
        let header = decode_header(&bytes, &"test").unwrap();
        assert_eq!(header.count, 3);
        assert_eq!(header.last_version(), Version::new(43));
    }

    #[test]
    fn every_truncation_is_corrupt() {
        let bytes = encode(Version::new(1), &[full_event(5), full_event(9)]);
        for len in 0..bytes.len() {
            let cut = bytes.slice(..len);
            let err = decode(&cut, &"cut").unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt { .. }),
                "length {len}: {err}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_corrupt() {
        let mut bytes = encode(Version::new(1), &[full_event(1)]).to_vec();
        bytes.push(0);
        let err = decode(&Bytes::from(bytes), &"tail").unwrap_err();
        assert!(err.to_string().contains("after the last event"), "{err}");
    }

    #[test]
    fn bad_headers_are_corrupt() {
        let cases: [(&[u8], &str); 6] = [
            (&[2, 1, 1], "format version 2"),
            (&[1, 0, 1], "first version is 0"),
            (&[1, 1, 0], "event count 0"),
            (&[1, 1, 0xff, 0xff, 0x04], "outside 1..=65535"),
            (
                &[
                    1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 2,
                ],
                "overflows",
            ),
            (
                &[
                    1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
                ],
                "overflows u64",
            ),
        ];
        for (bytes, expected) in cases {
            let err = decode(&Bytes::copy_from_slice(bytes), &"header").unwrap_err();
            assert!(err.to_string().contains(expected), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        // A header announcing 65,535 events followed by a payload length of about 2^63.
        let bytes: &[u8] = &[
            1, 1, 0xff, 0xff, 0x03, 0x01, b'x', 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0x7f,
        ];
        let err = decode(&Bytes::copy_from_slice(bytes), &"huge").unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
    }

    #[test]
    fn invalid_utf8_and_flags_are_corrupt() {
        let mut bytes = encode(Version::new(1), &[NewEvent::new("Ab", "p")]).to_vec();
        // Offset 3 is the event type length, 4 and 5 are its bytes.
        bytes[4] = 0xff;
        let err = decode(&Bytes::from(bytes), &"utf8").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");

        let mut event = NewEvent::new("A", "p");
        event.metadata.timestamp = DateTime::from_timestamp(0, 0).unwrap();
        let mut bytes = encode(Version::new(1), &[event]).to_vec();
        // 1 format, 1 first version, 1 count, 2 type, 1 schema, 1 seconds, 1 nanos, then flags.
        bytes[8] = 0x80;
        let err = decode(&Bytes::from(bytes), &"flags").unwrap_err();
        assert!(err.to_string().contains("unknown flags"), "{err}");
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        let valid = encode(Version::new(7), &[full_event(3), full_event(4)]).to_vec();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = valid.clone();
            let index = (state as usize) % bytes.len();
            bytes[index] = (state >> 32) as u8;
            let len = ((state >> 40) as usize) % (bytes.len() + 1);
            bytes.truncate(len.max(index));
            let _ = decode(&Bytes::from(bytes), &"fuzz");
        }
    }
}
