//! Names in the server: stream, subjects, snapshot keys, message ids, and the mapping between
//! stream sequences and aether positions.
//!
//! Every actor id is encoded as unpadded base64url, so any UTF-8 id becomes one subject token of
//! `A-Z a-z 0-9 - _` and decoding is unambiguous. Kinds are already restricted to
//! `a-z 0-9 _ -` and are used as they are.

use aether_core::{ActorId, ActorKind, ActorRef, Position, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::envelope::MAX_EVENTS_PER_APPEND;

/// Number of low position bits that hold an event's index within its message.
const INDEX_BITS: u32 = 16;

/// The names one namespace uses in the server.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    namespace: String,
}

impl Layout {
    /// Builds the layout of a namespace that the config has already validated.
    pub(crate) fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    /// Returns the event stream's name, which is the namespace.
    pub(crate) fn stream_name(&self) -> &str {
        &self.namespace
    }

    /// Builds the subject filter that covers every actor of the namespace.
    pub(crate) fn all_subjects(&self) -> String {
        format!("{}.>", self.namespace)
    }

    /// Builds the subject filter that covers every actor of `kind`.
    pub(crate) fn kind_subjects(&self, kind: &ActorKind) -> String {
        format!("{}.{kind}.*", self.namespace)
    }

    /// Builds the subject of one actor: `<namespace>.<kind>.<base64url id>`.
    pub(crate) fn subject(&self, actor: &ActorRef) -> String {
        format!(
            "{}.{}.{}",
            self.namespace,
            actor.kind,
            URL_SAFE_NO_PAD.encode(actor.id.as_str())
        )
    }

    /// Builds the snapshot bucket's name: `<namespace>_snapshots`.
    pub(crate) fn snapshot_bucket(&self) -> String {
        format!("{}_snapshots", self.namespace)
    }

    /// Decodes the actor of a message subject. A subject that this layout did not write is
    /// reported as corrupt data.
    pub(crate) fn actor_of(&self, subject: &str) -> Result<ActorRef, StoreError> {
        let corrupt = |reason: String| StoreError::corrupt(format!("subject {subject:?}"), reason);
        let rest = subject
            .strip_prefix(self.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or_else(|| corrupt(format!("not under namespace {:?}", self.namespace)))?;
        let (kind, encoded) = rest
            .split_once('.')
            .ok_or_else(|| corrupt("expected <kind>.<encoded id>".to_owned()))?;
        let kind = ActorKind::new(kind).map_err(|err| corrupt(err.to_string()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|err| corrupt(format!("id token is not base64url: {err}")))?;
        let text =
            String::from_utf8(raw).map_err(|_| corrupt("decoded id is not UTF-8".to_owned()))?;
        let id = ActorId::new(text).map_err(|err| corrupt(err.to_string()))?;
        Ok(ActorRef::new(kind, id))
    }
}

/// Builds the snapshot key of an actor: `<kind>.<base64url id>`, valid as a KV key.
pub(crate) fn snapshot_key(actor: &ActorRef) -> String {
    format!(
        "{}.{}",
        actor.kind,
        URL_SAFE_NO_PAD.encode(actor.id.as_str())
    )
}

/// Computes the position of the event at `index` within the message at stream sequence `sequence`:
/// `sequence * 2^16 + index`.
pub(crate) fn position(sequence: u64, index: usize) -> Position {
    debug_assert!(index < MAX_EVENTS_PER_APPEND);
    Position::new((sequence << INDEX_BITS) | index as u64)
}

/// Extracts the stream sequence of the message that contains the event at `position`.
pub(crate) fn sequence_of(position: Position) -> u64 {
    position.get() >> INDEX_BITS
}

/// The largest stream sequence whose positions fit a `u64`.
pub(crate) const MAX_SEQUENCE: u64 = u64::MAX >> INDEX_BITS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_round_trips_unusual_ids() {
        let layout = Layout::new("ns_1");
        for id in [
            "a", "a.b", "*", ">", "x y", "x\r\n", "ü/ß", "\0", "==", "AAAA",
        ] {
            let actor = ActorRef::parse("order-line_2", id).unwrap();
            let subject = layout.subject(&actor);
            let token = subject.rsplit('.').next().unwrap();
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{subject}"
            );
            assert_eq!(subject.matches('.').count(), 2, "{subject}");
            assert_eq!(layout.actor_of(&subject).unwrap(), actor);
        }
    }

    #[test]
    fn foreign_subjects_are_corrupt() {
        let layout = Layout::new("ns");
        for subject in [
            "other.k.YQ",
            "ns.k",
            "ns.K.YQ",
            "ns.k.Y!Q",
            "ns.k._w",
            "nsx.k.YQ",
        ] {
            let err = layout.actor_of(subject).unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt { .. }),
                "{subject}: {err}"
            );
        }
    }

    #[test]
    fn positions_grow_with_sequence_and_index() {
        assert_eq!(position(1, 0), Position::new(65_536));
        assert!(position(1, 65_534) < position(2, 0));
        assert_eq!(sequence_of(position(77, 123)), 77);
        assert_eq!(sequence_of(position(MAX_SEQUENCE, 0)), MAX_SEQUENCE);
    }

    #[test]
    fn snapshot_keys_are_distinct_per_actor() {
        let a = ActorRef::parse("k", "a.b").unwrap();
        let b = ActorRef::parse("k", "a_b").unwrap();
        assert_ne!(snapshot_key(&a), snapshot_key(&b));
        assert!(snapshot_key(&a).starts_with("k."));
    }
}
