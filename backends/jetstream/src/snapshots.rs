//! Snapshots in the KV bucket `<namespace>_snapshots`, one key per actor.
//!
//! A save reads the key's current revision from the bucket's stream leader and writes with
//! that revision as the expectation, so of two concurrent saves the lower version never
//! replaces the higher one.
//!
//! Record layout, integers big-endian: `u8 format (1) | u64 version | u32 schema version |
//! i64 taken_at seconds | u32 taken_at nanoseconds | state bytes`.

use aether_core::{ActorRef, Snapshot, StoreError, Version};
use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
use bytes::{BufMut, Bytes, BytesMut};
use chrono::DateTime;
use tracing::warn;

use crate::append::fetch_head;
use crate::error::request_failed;
use crate::layout::snapshot_key;
use crate::store::Inner;

const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 4 + 8 + 4;

/// How often a save rereads the key after another save changed it in between.
const CAS_ATTEMPTS: usize = 16;

/// The key's last revision and the version stored there (`None` after a delete or when the
/// record cannot be decoded).
struct Current {
    revision: u64,
    version: Option<Version>,
}

/// Saves `snapshot` unless a newer one is stored; see [`aether_core::Snapshotter`].
pub(crate) async fn save(
    inner: &Inner,
    actor: &ActorRef,
    snapshot: Snapshot,
) -> Result<bool, StoreError> {
    inner.limits.check_snapshot(actor, &snapshot)?;
    let subject = inner.layout.subject(actor);
    let head = fetch_head(inner, actor, &subject).await?;
    if snapshot.version > head.version {
        return Err(StoreError::invalid_input(
            actor,
            format!(
                "snapshot version {} is ahead of the last stored event {}",
                snapshot.version, head.version
            ),
        ));
    }

    let key = snapshot_key(actor);
    let record = encode(&snapshot);
    for _ in 0..CAS_ATTEMPTS {
        match current(inner, actor, &key).await? {
            Some(current) => {
                if current
                    .version
                    .is_some_and(|stored| stored > snapshot.version)
                {
                    return Ok(false);
                }
                match inner
                    .snapshots
                    .update(&key, record.clone(), current.revision)
                    .await
                {
                    Ok(_) => return Ok(true),
                    Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => {}
                    Err(err) => {
                        return Err(request_failed(
                            format!("saving the snapshot of {actor}"),
                            err,
                        ));
                    }
                }
            }
            None => match inner.snapshots.create(&key, record.clone()).await {
                Ok(_) => return Ok(true),
                Err(err) if err.kind() == CreateErrorKind::AlreadyExists => {}
                Err(err) => {
                    return Err(request_failed(
                        format!("saving the snapshot of {actor}"),
                        err,
                    ));
                }
            },
        }
    }
    Err(StoreError::unavailable(
        format!("saving the snapshot of {actor}"),
        format!("other saves changed the snapshot {CAS_ATTEMPTS} times during this one"),
    ))
}

/// Loads the stored snapshot of `actor`.
pub(crate) async fn load(inner: &Inner, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
    let key = snapshot_key(actor);
    let Some(message) = last_message(inner, actor, &key).await? else {
        return Ok(None);
    };
    if is_removal(&message.headers) {
        return Ok(None);
    }
    let location = format!("snapshot of {actor} at revision {}", message.sequence);
    decode(&message.payload, &location).map(Some)
}

/// Reads the key's last message from the bucket's stream leader, so a save reads every earlier
/// acknowledged save. A direct get could be served by a replica that lags behind.
async fn last_message(
    inner: &Inner,
    actor: &ActorRef,
    key: &str,
) -> Result<Option<async_nats::jetstream::message::StreamMessage>, StoreError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind as Kind;

    let subject = format!("{}{key}", inner.snapshots.prefix);
    match inner
        .snapshot_stream
        .get_last_raw_message_by_subject(&subject)
        .await
    {
        Ok(message) => Ok(Some(message)),
        Err(err) => match err.kind() {
            Kind::NoMessageFound => Ok(None),
            Kind::JetStream(api) if api.error_code().0 == 10037 => Ok(None),
            _ => Err(request_failed(
                format!("reading the snapshot of {actor}"),
                err,
            )),
        },
    }
}

async fn current(
    inner: &Inner,
    actor: &ActorRef,
    key: &str,
) -> Result<Option<Current>, StoreError> {
    let Some(message) = last_message(inner, actor, key).await? else {
        return Ok(None);
    };
    if is_removal(&message.headers) {
        return Ok(Some(Current {
            revision: message.sequence,
            version: None,
        }));
    }
    let location = format!("snapshot of {actor} at revision {}", message.sequence);
    let version = match decode(&message.payload, &location) {
        Ok(stored) => Some(stored.version),
        Err(err) => {
            warn!(%actor, error = %err, "replacing a snapshot that cannot be decoded");
            None
        }
    };
    Ok(Some(Current {
        revision: message.sequence,
        version,
    }))
}

/// Returns whether a KV message marks its key deleted or purged.
fn is_removal(headers: &async_nats::HeaderMap) -> bool {
    headers
        .get("KV-Operation")
        .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"))
}

fn encode(snapshot: &Snapshot) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + snapshot.state.len());
    buf.put_u8(FORMAT_VERSION);
    buf.put_u64(snapshot.version.get());
    buf.put_u32(snapshot.schema_version);
    buf.put_i64(snapshot.taken_at.timestamp());
    buf.put_u32(snapshot.taken_at.timestamp_subsec_nanos());
    buf.put_slice(&snapshot.state);
    buf.freeze()
}

fn decode(bytes: &Bytes, location: &str) -> Result<Snapshot, StoreError> {
    let corrupt = |reason: String| StoreError::corrupt(location, reason);
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "snapshot record is {} bytes, shorter than its {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(corrupt(format!(
            "snapshot format version {} is unknown, this build reads version {FORMAT_VERSION}",
            bytes[0]
        )));
    }
    let field = |range: std::ops::Range<usize>| -> [u8; 8] {
        let mut out = [0u8; 8];
        let len = range.len();
        out[8 - len..].copy_from_slice(&bytes[range]);
        out
    };
    let version = u64::from_be_bytes(field(1..9));
    let schema_version = u64::from_be_bytes(field(9..13)) as u32;
    let seconds = i64::from_be_bytes(field(13..21));
    let nanos = u64::from_be_bytes(field(21..25)) as u32;
    let taken_at = DateTime::from_timestamp(seconds, nanos).ok_or_else(|| {
        corrupt(format!(
            "timestamp {seconds} s + {nanos} ns is out of range"
        ))
    })?;
    Ok(Snapshot {
        version: Version::new(version),
        schema_version,
        state: bytes.slice(HEADER_LEN..),
        taken_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let snapshot = Snapshot::new(Version::new(12), vec![0u8, 1, 255]).with_schema_version(7);
        let back = decode(&encode(&snapshot), "test").unwrap();
        assert_eq!(back, snapshot);
    }

    #[test]
    fn bad_records_are_corrupt() {
        let good = encode(&Snapshot::new(Version::new(1), "s"));
        for len in 0..HEADER_LEN {
            assert!(decode(&good.slice(..len), "cut").is_err(), "length {len}");
        }
        let mut wrong_format = good.to_vec();
        wrong_format[0] = 9;
        let err = decode(&Bytes::from(wrong_format), "format").unwrap_err();
        assert!(err.to_string().contains("format version 9"), "{err}");
        let mut bad_time = good.to_vec();
        bad_time[13..21].copy_from_slice(&i64::MAX.to_be_bytes());
        let err = decode(&Bytes::from(bad_time), "time").unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
