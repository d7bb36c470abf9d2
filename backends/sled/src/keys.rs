//! Key layout of the sled tree.
//!
//! Every record lives in the database's default tree, and the first key byte gives its type:
//!
//! | key | value |
//! |---|---|
//! | `a` ‖ actor ‖ `e` ‖ version (u64 BE) | event record |
//! | `a` ‖ actor ‖ `s` | snapshot record |
//! | `p` ‖ first position (u64 BE) | position group: the events of one committed batch |
//! | `m` ‖ `format` | layout version, one byte |
//!
//! where actor = kind length (u8) ‖ kind ‖ id length (u16 BE) ‖ id. Because both lengths come
//! before their bytes, no actor's encoding is a prefix of another's: ids `a` and `a b` differ at
//! the id length. So an actor's events are one contiguous key range, sorted by version, with its
//! snapshot right after them. An actor's head is the version in its last event key; no separate
//! head record can disagree with the events.

use aether_core::{ActorId, ActorKind, ActorRef, Position, Version};

use crate::record::DecodeError;

/// First byte of every key of an actor: events and snapshot.
const ACTOR_TAG: u8 = b'a';
/// Byte after the actor in an event key.
const EVENT_TAG: u8 = b'e';
/// Byte after the actor in a snapshot key.
const SNAPSHOT_TAG: u8 = b's';
/// First byte of a position group key.
const POSITION_TAG: u8 = b'p';
/// The prefix of every position group key.
pub(crate) const POSITION_PREFIX: &[u8] = &[POSITION_TAG];

/// Key of the layout version record.
pub(crate) const FORMAT_KEY: &[u8] = b"mformat";

/// Version of this key layout and of the records in [`record`](crate::record).
pub(crate) const LAYOUT_VERSION: u8 = 1;

/// Appends the length-prefixed kind and id of `actor` to `buf`.
pub(crate) fn encode_actor(buf: &mut Vec<u8>, actor: &ActorRef) {
    let kind = actor.kind.as_str().as_bytes();
    let id = actor.id.as_str().as_bytes();
    // ActorKind and ActorId validate their lengths (64 and 1024 bytes), so both fit.
    buf.push(kind.len() as u8);
    buf.extend_from_slice(kind);
    buf.extend_from_slice(&(id.len() as u16).to_be_bytes());
    buf.extend_from_slice(id);
}

/// Reads a length-prefixed actor from the start of `bytes`; returns it and the bytes after it.
pub(crate) fn decode_actor(bytes: &[u8]) -> Result<(ActorRef, &[u8]), DecodeError> {
    let (&kind_len, rest) = bytes.split_first().ok_or(DecodeError::Truncated {
        field: "actor kind length",
    })?;
    let (kind, rest) = split(rest, usize::from(kind_len), "actor kind")?;
    let (id_len, rest) = split(rest, 2, "actor id length")?;
    let id_len = u16::from_be_bytes([id_len[0], id_len[1]]);
    let (id, rest) = split(rest, usize::from(id_len), "actor id")?;

    let kind = std::str::from_utf8(kind).map_err(|_| DecodeError::InvalidUtf8 {
        field: "actor kind",
    })?;
    let id = std::str::from_utf8(id).map_err(|_| DecodeError::InvalidUtf8 { field: "actor id" })?;
    let actor = ActorRef::new(ActorKind::new(kind)?, ActorId::new(id)?);
    Ok((actor, rest))
}

/// Builds the prefix shared by all event keys of `actor`.
pub(crate) fn event_prefix(actor: &ActorRef) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + actor.kind.as_str().len() + actor.id.as_str().len() + 8);
    key.push(ACTOR_TAG);
    encode_actor(&mut key, actor);
    key.push(EVENT_TAG);
    key
}

/// Returns the encoded actor inside an event prefix, as stored in position groups.
pub(crate) fn actor_of_prefix(prefix: &[u8]) -> &[u8] {
    &prefix[1..prefix.len() - 1]
}

/// Builds the key of `actor`'s event at `version` from the actor's [`event_prefix`].
pub(crate) fn event_key(prefix: &[u8], version: Version) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&version.get().to_be_bytes());
    key
}

/// Builds the key of an event from its encoded actor, as found in a position group.
pub(crate) fn event_key_of_actor(actor: &[u8], version: Version) -> Vec<u8> {
    let mut key = Vec::with_capacity(actor.len() + 10);
    key.push(ACTOR_TAG);
    key.extend_from_slice(actor);
    key.push(EVENT_TAG);
    key.extend_from_slice(&version.get().to_be_bytes());
    key
}

/// Returns the version in an event key that starts with `prefix`, or `None` when the key does
/// not have exactly eight bytes after the prefix.
pub(crate) fn version_of_event_key(prefix: &[u8], key: &[u8]) -> Option<Version> {
    let tail: [u8; 8] = key.strip_prefix(prefix)?.try_into().ok()?;
    Some(Version::new(u64::from_be_bytes(tail)))
}

/// Builds the key of `actor`'s snapshot.
pub(crate) fn snapshot_key(actor: &ActorRef) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + actor.kind.as_str().len() + actor.id.as_str().len());
    key.push(ACTOR_TAG);
    encode_actor(&mut key, actor);
    key.push(SNAPSHOT_TAG);
    key
}

/// Builds the key of the position group whose first event is at `position`.
pub(crate) fn position_key(position: Position) -> [u8; 9] {
    let mut key = [POSITION_TAG; 9];
    key[1..].copy_from_slice(&position.get().to_be_bytes());
    key
}

/// Returns the first position of a position group key, or `None` for a key of another shape.
pub(crate) fn position_of_key(key: &[u8]) -> Option<Position> {
    let tail: [u8; 8] = key.strip_prefix(&[POSITION_TAG])?.try_into().ok()?;
    Some(Position::new(u64::from_be_bytes(tail)))
}

/// Splits `len` bytes off the front of `bytes`.
fn split<'a>(
    bytes: &'a [u8],
    len: usize,
    field: &'static str,
) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    if bytes.len() < len {
        return Err(DecodeError::Truncated { field });
    }
    Ok(bytes.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(kind: &str, id: &str) -> ActorRef {
        ActorRef::parse(kind, id).unwrap()
    }

    #[test]
    fn prefix_ids_do_not_share_prefixes() {
        let short = event_prefix(&actor("t", "a"));
        let long = event_prefix(&actor("t", "a b"));
        assert!(!long.starts_with(&short));
        assert!(!short.starts_with(&long));

        // An id that ends in what looks like another key's tag and version stays apart too.
        let tricky = event_prefix(&actor("t", "a\u{0}e"));
        assert!(!tricky.starts_with(&short));
    }

    #[test]
    fn event_keys_sort_by_version() {
        let prefix = event_prefix(&actor("invoice", "1"));
        let keys: Vec<_> = [1u64, 2, 255, 256, 70_000]
            .iter()
            .map(|v| event_key(&prefix, Version::new(*v)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn snapshot_key_sorts_after_events() {
        let a = actor("invoice", "1");
        let last_event = event_key(&event_prefix(&a), Version::new(u64::MAX));
        assert!(snapshot_key(&a) > last_event);
    }

    #[test]
    fn actor_round_trips() {
        for id in ["a", "a b", "ü/ß", "\0", &"x".repeat(1024)] {
            let a = actor("k-1", id);
            let mut buf = Vec::new();
            encode_actor(&mut buf, &a);
            buf.extend_from_slice(b"rest");
            let (back, rest) = decode_actor(&buf).unwrap();
            assert_eq!(back, a);
            assert_eq!(rest, b"rest");
        }
    }

    #[test]
    fn event_key_parts_round_trip() {
        let a = actor("invoice", "x y");
        let prefix = event_prefix(&a);
        let key = event_key(&prefix, Version::new(42));
        assert_eq!(
            key,
            event_key_of_actor(actor_of_prefix(&prefix), Version::new(42))
        );
        assert_eq!(version_of_event_key(&prefix, &key), Some(Version::new(42)));
        assert_eq!(version_of_event_key(&prefix, &key[..key.len() - 1]), None);
    }

    #[test]
    fn position_key_round_trips() {
        let key = position_key(Position::new(513));
        assert_eq!(position_of_key(&key), Some(Position::new(513)));
        assert_eq!(position_of_key(b"x"), None);
    }

    #[test]
    fn decode_actor_rejects_bad_bytes() {
        assert!(decode_actor(&[]).is_err());
        assert!(decode_actor(&[3, b'a']).is_err());
        assert!(decode_actor(&[1, b'A', 0, 1, b'x']).is_err());
        assert!(decode_actor(&[1, b'a', 0, 2, 0xff, 0xfe]).is_err());
        assert!(decode_actor(&[1, b'a', 0, 0]).is_err());
    }
}
