//! Binary encoding of the values stored in the tree: events, snapshots and position groups.
//!
//! Every value starts with a format byte ([`RECORD_FORMAT`]). Integers are big-endian; a
//! variable-length field is an unsigned LEB128 length followed by its bytes.
//!
//! Event record (the actor and version are in the key):
//!
//! ```text
//! format u8 | position u64 | schema_version u32 | timestamp seconds i64 | nanoseconds u32
//! | flags u8 | event_type | [command_id] [correlation_id] [causation_id] [node] [reply]
//! | payload…
//! ```
//!
//! `flags` bits 0 to 4 mark which of the five optional metadata fields follow. The payload is
//! every byte after them, so it needs no length.
//!
//! Snapshot record: `format u8 | version u64 | schema_version u32 | seconds i64 | nanoseconds u32
//! | state…`.
//!
//! Position group: `format u8 | runs…`, where each run is an encoded actor (see
//! [`keys`]), its first version (u64) and an event count (u32). The group key contains
//! the position of the first event, and the events of the runs follow each other without gaps.
//!
//! Decoders return [`DecodeError`] for any byte sequence they cannot read, never panic.

use aether_core::{
    ActorRef, EventMetadata, IdError, NewEvent, Position, RecordedEvent, Snapshot, Version,
};
use bytes::{Buf, Bytes};
use chrono::{DateTime, Utc};

use crate::keys;

/// Format byte of every record this version writes.
pub(crate) const RECORD_FORMAT: u8 = 1;

const HAS_COMMAND_ID: u8 = 1;
const HAS_CORRELATION_ID: u8 = 1 << 1;
const HAS_CAUSATION_ID: u8 = 1 << 2;
const HAS_NODE: u8 = 1 << 3;
const HAS_REPLY: u8 = 1 << 4;
const KNOWN_FLAGS: u8 =
    HAS_COMMAND_ID | HAS_CORRELATION_ID | HAS_CAUSATION_ID | HAS_NODE | HAS_REPLY;

/// Bytes of an event record before the event type.
const EVENT_HEADER_LEN: usize = 1 + 8 + 4 + 8 + 4 + 1;

/// The reason a stored value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The value is shorter than its fields require.
    #[error("record ends inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// The first byte is not a format this version reads.
    #[error("unknown record format {0}")]
    UnknownFormat(u8),
    /// A text field contains bytes that are not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A length is not LEB128 or does not fit in 64 bits.
    #[error("length of {field} is not a valid LEB128 number")]
    InvalidLength {
        /// The field being read.
        field: &'static str,
    },
    /// The flags byte has bits this version does not know.
    #[error("unknown metadata flags {0:#04x}")]
    UnknownFlags(u8),
    /// The timestamp is outside the range chrono represents.
    #[error("timestamp {seconds} s {nanos} ns is out of range")]
    InvalidTimestamp {
        /// Seconds since the Unix epoch.
        seconds: i64,
        /// Nanoseconds within the second.
        nanos: u32,
    },
    /// A stored actor kind or id is not valid.
    #[error("invalid actor: {0}")]
    InvalidActor(#[from] IdError),
    /// A position group run has no events, or a group has no runs.
    #[error("position group has an empty run or no runs")]
    EmptyRun,
}

/// Appends the event record of `event` at `position` to `buf`.
pub(crate) fn encode_event(buf: &mut Vec<u8>, position: Position, event: &NewEvent) {
    let meta = &event.metadata;
    let optional: [(u8, Option<&[u8]>); 5] = [
        (
            HAS_COMMAND_ID,
            meta.command_id.as_deref().map(str::as_bytes),
        ),
        (
            HAS_CORRELATION_ID,
            meta.correlation_id.as_deref().map(str::as_bytes),
        ),
        (
            HAS_CAUSATION_ID,
            meta.causation_id.as_deref().map(str::as_bytes),
        ),
        (HAS_NODE, meta.node.as_deref().map(str::as_bytes)),
        (HAS_REPLY, meta.reply.as_deref()),
    ];
    let flags = optional
        .iter()
        .filter(|(_, value)| value.is_some())
        .fold(0, |flags, (bit, _)| flags | bit);

    buf.reserve(EVENT_HEADER_LEN + 10 + event.event_type.len() + event.payload.len());
    buf.push(RECORD_FORMAT);
    buf.extend_from_slice(&position.get().to_be_bytes());
    buf.extend_from_slice(&event.schema_version.to_be_bytes());
    put_timestamp(buf, &meta.timestamp);
    buf.push(flags);
    put_bytes(buf, event.event_type.as_bytes());
    for value in optional.iter().filter_map(|(_, value)| *value) {
        put_bytes(buf, value);
    }
    buf.extend_from_slice(&event.payload);
}

/// Reads only the position of an event record.
pub(crate) fn event_position(value: &[u8]) -> Result<Position, DecodeError> {
    let mut reader = Reader::new(value);
    reader.format()?;
    Ok(Position::new(reader.u64("position")?))
}

/// Decodes the event record `value` of `actor` at `version`. The payload and the reply share
/// `value`'s memory instead of copying it.
pub(crate) fn decode_event(
    actor: &ActorRef,
    version: Version,
    value: sled::IVec,
) -> Result<RecordedEvent, DecodeError> {
    let value = Bytes::from_owner(value);
    let mut reader = Reader::new(&value);
    reader.format()?;
    let position = Position::new(reader.u64("position")?);
    let schema_version = reader.u32("schema version")?;
    let timestamp = reader.timestamp()?;
    let flags = reader.u8("metadata flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError::UnknownFlags(flags));
    }
    let event_type = reader.text("event type")?.to_owned();
    let mut text = |bit: u8, field: &'static str| -> Result<Option<String>, DecodeError> {
        if flags & bit == 0 {
            return Ok(None);
        }
        reader.text(field).map(|text| Some(text.to_owned()))
    };
    let command_id = text(HAS_COMMAND_ID, "command id")?;
    let correlation_id = text(HAS_CORRELATION_ID, "correlation id")?;
    let causation_id = text(HAS_CAUSATION_ID, "causation id")?;
    let node = text(HAS_NODE, "node")?;
    let reply = if flags & HAS_REPLY == 0 {
        None
    } else {
        let len = reader.length("reply")?;
        let start = reader.at;
        reader.take(len, "reply")?;
        Some(value.slice(start..reader.at))
    };
    let payload_start = reader.at;
    // Advancing the record itself spares the reference count update of a slice.
    let mut payload = value;
    payload.advance(payload_start);

    Ok(RecordedEvent {
        actor: actor.clone(),
        version,
        position,
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

/// Encodes a snapshot record.
pub(crate) fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + 8 + 4 + 12 + snapshot.state.len());
    buf.push(RECORD_FORMAT);
    buf.extend_from_slice(&snapshot.version.get().to_be_bytes());
    buf.extend_from_slice(&snapshot.schema_version.to_be_bytes());
    put_timestamp(&mut buf, &snapshot.taken_at);
    buf.extend_from_slice(&snapshot.state);
    buf
}

/// Reads only the version of a snapshot record.
pub(crate) fn snapshot_version(value: &[u8]) -> Result<Version, DecodeError> {
    let mut reader = Reader::new(value);
    reader.format()?;
    Ok(Version::new(reader.u64("snapshot version")?))
}

/// Decodes a snapshot record; the state shares `value`'s memory.
pub(crate) fn decode_snapshot(value: sled::IVec) -> Result<Snapshot, DecodeError> {
    let mut reader = Reader::new(&value);
    reader.format()?;
    let version = Version::new(reader.u64("snapshot version")?);
    let schema_version = reader.u32("schema version")?;
    let taken_at = reader.timestamp()?;
    let state_start = reader.at;
    Ok(Snapshot {
        version,
        schema_version,
        state: Bytes::from_owner(value).slice(state_start..),
        taken_at,
    })
}

/// One actor's events inside a position group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run<'a> {
    /// The encoded actor, as in its keys.
    pub(crate) actor: &'a [u8],
    /// Version of the run's first event.
    pub(crate) first_version: Version,
    /// Number of events, at least 1.
    pub(crate) count: u32,
}

/// Builds the value of a position group.
#[derive(Debug)]
pub(crate) struct GroupBuilder {
    first: Position,
    events: u64,
    runs: usize,
    buf: Vec<u8>,
}

impl GroupBuilder {
    /// An empty group whose first event will be at `first`.
    pub(crate) fn new(first: Position) -> Self {
        Self {
            first,
            events: 0,
            runs: 0,
            buf: vec![RECORD_FORMAT],
        }
    }

    /// Adds a run of `count` events of the encoded `actor` starting at `first_version`.
    pub(crate) fn push(&mut self, actor: &[u8], first_version: Version, count: u32) {
        self.buf.extend_from_slice(actor);
        self.buf
            .extend_from_slice(&first_version.get().to_be_bytes());
        self.buf.extend_from_slice(&count.to_be_bytes());
        self.runs += 1;
        self.events += u64::from(count);
    }

    /// Position of the group's first event.
    pub(crate) fn first(&self) -> Position {
        self.first
    }

    /// Number of events in the group.
    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// Number of runs in the group.
    pub(crate) fn runs(&self) -> usize {
        self.runs
    }

    /// Size of the encoded group in bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Returns the encoded group.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Decodes the runs of a position group.
pub(crate) fn decode_group(value: &[u8]) -> Result<Vec<Run<'_>>, DecodeError> {
    let mut reader = Reader::new(value);
    reader.format()?;
    let mut runs = Vec::new();
    while reader.at < value.len() {
        let rest = &value[reader.at..];
        let (_, after_actor) = keys::decode_actor(rest)?;
        let actor = &rest[..rest.len() - after_actor.len()];
        reader.at += actor.len();
        let first_version = Version::new(reader.u64("run first version")?);
        let count = reader.u32("run event count")?;
        if count == 0 || first_version == Version::ZERO {
            return Err(DecodeError::EmptyRun);
        }
        runs.push(Run {
            actor,
            first_version,
            count,
        });
    }
    if runs.is_empty() {
        return Err(DecodeError::EmptyRun);
    }
    Ok(runs)
}

fn put_timestamp(buf: &mut Vec<u8>, timestamp: &DateTime<Utc>) {
    buf.extend_from_slice(&timestamp.timestamp().to_be_bytes());
    buf.extend_from_slice(&timestamp.timestamp_subsec_nanos().to_be_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    let mut len = bytes.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            buf.push(byte);
            break;
        }
        buf.push(byte | 0x80);
    }
    buf.extend_from_slice(bytes);
}

/// A cursor over a record that fails instead of reading past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(DecodeError::Truncated { field })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn format(&mut self) -> Result<(), DecodeError> {
        match self.u8("format")? {
            RECORD_FORMAT => Ok(()),
            other => Err(DecodeError::UnknownFormat(other)),
        }
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn timestamp(&mut self) -> Result<DateTime<Utc>, DecodeError> {
        let seconds = i64::from_be_bytes(self.array("timestamp seconds")?);
        let nanos = self.u32("timestamp nanoseconds")?;
        DateTime::from_timestamp(seconds, nanos)
            .ok_or(DecodeError::InvalidTimestamp { seconds, nanos })
    }

    fn length(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(field)?;
            let bits = u64::from(byte & 0x7f);
            if bits.leading_zeros() < shift {
                return Err(DecodeError::InvalidLength { field });
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(value).map_err(|_| DecodeError::InvalidLength { field });
            }
        }
        Err(DecodeError::InvalidLength { field })
    }

    fn text(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.length(field)?;
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { field })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_event() -> NewEvent {
        let metadata = EventMetadata::now()
            .with_command_id("cmd-1")
            .with_correlation_id("corr ü")
            .with_node("node-a")
            .with_reply(Bytes::from_static(b"\x01ok"));
        NewEvent::new("LineAdded", Bytes::from_static(b"\x00{\"qty\":3}\xff"))
            .with_schema_version(7)
            .with_metadata(metadata)
    }

    fn encoded_event(event: &NewEvent) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_event(&mut buf, Position::new(99), event);
        buf
    }

    fn actor() -> ActorRef {
        ActorRef::parse("invoice", "536365").unwrap()
    }

    /// A small xorshift generator, so the garbage is the same on every run.
    fn garbage(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn event_round_trips() {
        let event = sample_event();
        let value = sled::IVec::from(encoded_event(&event));
        assert_eq!(event_position(&value), Ok(Position::new(99)));

        let back = decode_event(&actor(), Version::new(4), value).unwrap();
        assert_eq!(back.actor, actor());
        assert_eq!(back.version, Version::new(4));
        assert_eq!(back.position, Position::new(99));
        assert_eq!(back.event_type, event.event_type);
        assert_eq!(back.schema_version, 7);
        assert_eq!(back.payload, event.payload);
        assert_eq!(back.metadata, event.metadata);
    }

    #[test]
    fn event_without_metadata_ids_round_trips() {
        let event = NewEvent::new("", Bytes::new());
        let value = sled::IVec::from(encoded_event(&event));
        let back = decode_event(&actor(), Version::new(1), value).unwrap();
        assert_eq!(back.metadata, event.metadata);
        assert!(back.payload.is_empty());
    }

    #[test]
    fn truncated_event_records_fail() {
        // The payload is the tail, so cuts inside it decode to a shorter payload; every cut
        // before the payload must fail.
        let event = NewEvent::new("LineAdded", Bytes::new()).with_metadata(sample_event().metadata);
        let full = encoded_event(&event);
        for len in 0..full.len() {
            let cut = sled::IVec::from(&full[..len]);
            let result = decode_event(&actor(), Version::new(1), cut);
            assert!(result.is_err(), "a record cut to {len} bytes decoded");
        }
    }

    #[test]
    fn garbage_event_records_do_not_panic() {
        for seed in 0..2_000u64 {
            let mut bytes = garbage(seed, (seed % 97) as usize);
            if seed % 2 == 0 && !bytes.is_empty() {
                bytes[0] = RECORD_FORMAT;
            }
            let _ = decode_event(&actor(), Version::new(1), sled::IVec::from(bytes.clone()));
            let _ = event_position(&bytes);
            let _ = decode_snapshot(sled::IVec::from(bytes.clone()));
            let _ = decode_group(&bytes);
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let mut unknown_format = encoded_event(&sample_event());
        unknown_format[0] = 9;
        let err = decode_event(&actor(), Version::new(1), unknown_format.into()).unwrap_err();
        assert_eq!(err, DecodeError::UnknownFormat(9));

        let mut bad_flags = encoded_event(&sample_event());
        bad_flags[EVENT_HEADER_LEN - 1] |= 0x40;
        let err = decode_event(&actor(), Version::new(1), bad_flags.into()).unwrap_err();
        assert!(matches!(err, DecodeError::UnknownFlags(_)), "{err}");

        let mut bad_utf8 = encoded_event(&sample_event());
        bad_utf8[EVENT_HEADER_LEN + 1] = 0xff;
        let err = decode_event(&actor(), Version::new(1), bad_utf8.into()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::InvalidUtf8 {
                field: "event type"
            }
        );

        let mut overlong = encoded_event(&sample_event());
        overlong.truncate(EVENT_HEADER_LEN);
        overlong.extend_from_slice(&[0xff; 11]);
        let err = decode_event(&actor(), Version::new(1), overlong.into()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::InvalidLength {
                field: "event type"
            }
        );

        let mut bad_time = encoded_event(&sample_event());
        bad_time[13..21].copy_from_slice(&i64::MAX.to_be_bytes());
        let err = decode_event(&actor(), Version::new(1), bad_time.into()).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidTimestamp { .. }), "{err}");
    }

    #[test]
    fn snapshot_round_trips_and_rejects_truncation() {
        let snapshot =
            Snapshot::new(Version::new(12), Bytes::from_static(b"state")).with_schema_version(3);
        let full = encode_snapshot(&snapshot);
        assert_eq!(snapshot_version(&full), Ok(Version::new(12)));
        assert_eq!(decode_snapshot(full.clone().into()).unwrap(), snapshot);
        for len in 0..full.len() - snapshot.state.len() {
            assert!(
                decode_snapshot(full[..len].into()).is_err(),
                "cut to {len} bytes decoded"
            );
        }
    }

    #[test]
    fn group_round_trips_and_rejects_truncation() {
        let a = crate::keys::event_prefix(&actor());
        let b = crate::keys::event_prefix(&ActorRef::parse("t", "a b").unwrap());
        let mut group = GroupBuilder::new(Position::new(10));
        group.push(keys::actor_of_prefix(&a), Version::new(3), 2);
        group.push(keys::actor_of_prefix(&b), Version::new(1), 1);
        assert_eq!(
            (group.first(), group.events(), group.runs()),
            (Position::new(10), 3, 2)
        );
        let value = group.finish();

        let runs = decode_group(&value).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].actor, keys::actor_of_prefix(&a));
        assert_eq!((runs[0].first_version, runs[0].count), (Version::new(3), 2));
        assert_eq!(runs[1].actor, keys::actor_of_prefix(&b));

        // A cut right after the first run is a valid one-run group; every other cut must fail.
        let first_run_end = 1 + keys::actor_of_prefix(&a).len() + 12;
        for len in (0..value.len()).filter(|len| *len != first_run_end) {
            assert!(
                decode_group(&value[..len]).is_err(),
                "cut to {len} bytes decoded"
            );
        }
        assert_eq!(decode_group(&value[..first_run_end]).unwrap().len(), 1);
    }
}
