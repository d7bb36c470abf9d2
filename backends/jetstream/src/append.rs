//! The append path: version check, envelope, conditional publish, acknowledgement.
//!
//! The version check is the server's: every publish carries
//! `Nats-Expected-Last-Subject-Sequence` with the stream sequence of the actor's last message,
//! so a writer that missed a newer message is rejected with error 10071 and nothing is stored.
//! The store maps versions to sequences through its head cache.

use std::future::IntoFuture;
use std::sync::Arc;

use aether_core::{ActorRef, AppendOutcome, ExpectedVersion, NewEvent, StoreError, Version};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, RawMessageErrorKind};
use futures::{StreamExt, TryStreamExt};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::envelope::{self, MAX_EVENTS_PER_APPEND};
use crate::error::{BACKEND, UnroutedRetry, is_unrouted, request_failed};
use crate::heads::Head;
use crate::layout::{self, MAX_SEQUENCE};
use crate::store::Inner;

/// Bytes reserved for the message headers (`Nats-Msg-Id` and the expected sequence) when the
/// encoded append is checked against `max_payload`.
const HEADER_RESERVE: usize = 256;

/// How often an append with [`ExpectedVersion::Any`] refetches the head and retries after
/// another writer got in first.
const ANY_ATTEMPTS: usize = 32;

/// Maximum number of events after the expected version that a conflicting append of a
/// command searches for an earlier append of the same command.
const MAX_COMMAND_SCAN: usize = 1_000;

/// Name space of the message ids derived from command ids.
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6ae1_43c4_5b2f_4d8e_9a61_3c0e_5f7d_b219);

/// Appends `events` to `actor` if its version matches `expected`.
pub(crate) async fn append(
    inner: &Arc<Inner>,
    actor: &ActorRef,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, StoreError> {
    inner.limits.check_append(actor, &events)?;
    if events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::invalid_input(
            actor,
            format!(
                "append has {} events, the maximum is {MAX_EVENTS_PER_APPEND}",
                events.len()
            ),
        ));
    }
    let subject = inner.layout.subject(actor);
    let (message_id, from_command) = message_id(&subject, &events);

    // Holding the slot orders this store's appends to one actor, so the second of two
    // concurrent appends starts from the first one's head instead of racing it to the server.
    let slot = inner.heads.slot(actor);
    let mut cached = slot.lock().await;

    let mut attempts = 0;
    let mut unrouted = UnroutedRetry::new(inner.config.request_timeout);
    loop {
        attempts += 1;
        let (mut head, mut fresh) = match *cached {
            Some(head) => (head, false),
            None => (fetch_head(inner, actor, &subject).await?, true),
        };
        if !expected.matches(head.version) && !fresh {
            // Another store may have appended since this one cached the head.
            head = fetch_head(inner, actor, &subject).await?;
            fresh = true;
        }
        *cached = Some(head);
        if !expected.matches(head.version) {
            debug_assert!(fresh);
            if let Some(command_id) = from_command {
                // A retried command whose first try was stored finds its events after the
                // expected version. The server checks the expected sequence before the
                // message id, so its duplicate detection cannot catch this retry.
                let after = expected.exact().unwrap_or(Version::ZERO);
                if let Some(outcome) =
                    find_command(inner, actor, after, command_id, events.len()).await?
                {
                    debug!(%actor, command_id, "append repeats a stored command");
                    return Ok(outcome);
                }
            }
            return Err(StoreError::Conflict {
                actor: actor.clone(),
                expected,
                actual: head.version,
            });
        }

        let first_version = head.version.next();
        let payload = envelope::encode(first_version, &events);
        let limit = inner.max_payload.saturating_sub(HEADER_RESERVE);
        if payload.len() > limit {
            return Err(StoreError::PayloadTooLarge {
                actor: actor.clone(),
                what: "encoded append",
                size: payload.len(),
                limit,
            });
        }

        match publish(inner, &subject, &message_id, head.sequence, payload).await {
            Ok(ack) if ack.duplicate => {
                // The same append was stored before, for example by a retry after a timeout.
                // Its original outcome is in the stored message.
                *cached = None;
                debug!(%actor, sequence = ack.sequence, "append was a duplicate");
                return stored_outcome(inner, actor, &subject, ack.sequence).await;
            }
            Ok(ack) => {
                let outcome = outcome_of(ack.sequence, first_version, events.len())
                    .ok_or_else(|| sequence_overflow(actor, ack.sequence))?;
                *cached = Some(Head {
                    sequence: ack.sequence,
                    version: outcome.version,
                });
                return Ok(outcome);
            }
            Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => {
                // Another store appended between the head fetch and the publish.
                *cached = None;
                let actual = fetch_head(inner, actor, &subject).await?;
                *cached = Some(actual);
                if expected == ExpectedVersion::Any && attempts < ANY_ATTEMPTS {
                    continue;
                }
                if let Some(command_id) = from_command {
                    let after = expected.exact().unwrap_or(Version::ZERO);
                    if let Some(outcome) =
                        find_command(inner, actor, after, command_id, events.len()).await?
                    {
                        return Ok(outcome);
                    }
                }
                if expected.matches(actual.version) {
                    // Only reachable for `Any` after its last attempt.
                    return Err(StoreError::unavailable(
                        format!(
                            "appending to {actor}: other writers won {attempts} times in a row"
                        ),
                        err,
                    ));
                }
                return Err(StoreError::Conflict {
                    actor: actor.clone(),
                    expected,
                    actual: actual.version,
                });
            }
            Err(err) if err.kind() == PublishErrorKind::StreamNotFound => {
                // No server responded to the publish, so nothing was stored. In a cluster this
                // happens while a new stream's subjects spread to the other servers and while
                // a stream leader is elected. Both settle within moments.
                if !unrouted.pause().await {
                    warn!(%actor, error = %err, "append failed");
                    return Err(request_failed(format!("appending to {actor}"), err));
                }
                debug!(%actor, "no stream responded to the append; sending it again");
            }
            Err(err) => {
                // The append may or may not be stored; the next one fetches the head again.
                *cached = None;
                warn!(%actor, error = %err, "append failed");
                return Err(request_failed(format!("appending to {actor}"), err));
            }
        }
    }
}

/// Derives the message id of an append from the command id when every event carries the same
/// one, else makes a random id. Returns the id and the command id it derives from.
///
/// The stream's duplicate window spans all subjects, so the id also covers the subject: two
/// actors handling commands with equal ids must not be taken for duplicates of each other.
fn message_id<'a>(subject: &str, events: &'a [NewEvent]) -> (String, Option<&'a str>) {
    let first = events
        .first()
        .and_then(|e| e.metadata.command_id.as_deref());
    let shared = first.filter(|id| {
        events
            .iter()
            .all(|e| e.metadata.command_id.as_deref() == Some(*id))
    });
    match shared {
        Some(command_id) => {
            let mut name = Vec::with_capacity(subject.len() + command_id.len() + 1);
            name.extend_from_slice(subject.as_bytes());
            name.push(b'\n');
            name.extend_from_slice(command_id.as_bytes());
            (
                Uuid::new_v5(&MESSAGE_ID_NAMESPACE, &name).to_string(),
                Some(command_id),
            )
        }
        None => (Uuid::new_v4().to_string(), None),
    }
}

async fn publish(
    inner: &Inner,
    subject: &str,
    message_id: &str,
    expected_sequence: u64,
    payload: bytes::Bytes,
) -> Result<async_nats::jetstream::publish::PublishAck, PublishError> {
    let message = PublishMessage::build()
        .payload(payload)
        .message_id(message_id)
        .expected_last_subject_sequence(expected_sequence);
    // The ack future is awaited by this append alone, so appends of other actors publish
    // while this one waits: the connection pipelines them.
    let ack = inner
        .context
        .send_publish(subject.to_owned(), message)
        .await?;
    ack.into_future().await
}

/// Builds the outcome of an append stored at `sequence` whose first event has
/// `first_version`. Returns `None` when positions cannot express the sequence.
fn outcome_of(sequence: u64, first_version: Version, count: usize) -> Option<AppendOutcome> {
    if sequence == 0 || sequence > MAX_SEQUENCE {
        return None;
    }
    Some(AppendOutcome {
        first_version,
        version: first_version.advance(count as u64 - 1),
        position: layout::position(sequence, count - 1),
    })
}

fn sequence_overflow(actor: &ActorRef, sequence: u64) -> StoreError {
    StoreError::backend(
        BACKEND,
        format!("appending to {actor}"),
        format!(
            "stream sequence {sequence} is outside 1..={MAX_SEQUENCE}, which positions can express"
        ),
    )
}

/// Looks for an earlier append of command `command_id` with `count` events among the actor's
/// events after version `after`, and returns its outcome. Scans at most
/// [`MAX_COMMAND_SCAN`] events, so a caller far behind the head gets a conflict instead.
async fn find_command(
    inner: &Arc<Inner>,
    actor: &ActorRef,
    after: Version,
    command_id: &str,
    count: usize,
) -> Result<Option<AppendOutcome>, StoreError> {
    let events = crate::read::read_actor(inner.clone(), actor.clone(), after.next())
        .take(MAX_COMMAND_SCAN)
        .try_collect::<Vec<_>>()
        .await?;
    // Events of one append share a stream sequence, the high bits of their positions.
    for group in
        events.chunk_by(|a, b| layout::sequence_of(a.position) == layout::sequence_of(b.position))
    {
        let same_command = group
            .iter()
            .all(|event| event.metadata.command_id.as_deref() == Some(command_id));
        if same_command && group.len() == count {
            let first = &group[0];
            let last = &group[group.len() - 1];
            // A group cut by the scan limit may miss its first events.
            if layout::position(layout::sequence_of(first.position), 0) != first.position {
                continue;
            }
            return Ok(Some(AppendOutcome {
                first_version: first.version,
                version: last.version,
                position: last.position,
            }));
        }
    }
    Ok(None)
}

/// Reads the outcome of the append stored at `sequence` from the message itself.
async fn stored_outcome(
    inner: &Inner,
    actor: &ActorRef,
    subject: &str,
    sequence: u64,
) -> Result<AppendOutcome, StoreError> {
    let message = inner
        .stream
        .get_raw_message(sequence)
        .await
        .map_err(|err| {
            request_failed(
                format!("reading the stored append of {actor} at sequence {sequence}"),
                err,
            )
        })?;
    if message.subject.as_str() != subject {
        return Err(StoreError::backend(
            BACKEND,
            format!("appending to {actor}"),
            format!(
                "the server reported a duplicate of message {sequence}, which belongs to subject {}",
                message.subject
            ),
        ));
    }
    let location = format!("{actor} at stream sequence {sequence}");
    let header = envelope::decode_header(&message.payload, &location)?;
    let count = usize::try_from(header.count).unwrap_or(MAX_EVENTS_PER_APPEND);
    outcome_of(sequence, header.first_version, count)
        .ok_or_else(|| sequence_overflow(actor, sequence))
}

/// Fetches the actor's head from the stream leader: the sequence of the last message on its
/// subject and the version of that message's last event.
pub(crate) async fn fetch_head(
    inner: &Inner,
    actor: &ActorRef,
    subject: &str,
) -> Result<Head, StoreError> {
    let mut unrouted = UnroutedRetry::new(inner.config.request_timeout);
    loop {
        let err = match inner.stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => {
                let location = format!("{actor} at stream sequence {}", message.sequence);
                let header = envelope::decode_header(&message.payload, &location)?;
                return Ok(Head {
                    sequence: message.sequence,
                    version: header.last_version(),
                });
            }
            Err(err) if is_not_found(&err.kind()) => return Ok(Head::EMPTY),
            Err(err) => err,
        };
        // No server responded yet, because the stream is new or is electing a leader.
        if !is_unrouted(&err) || !unrouted.pause().await {
            return Err(request_failed(format!("reading the head of {actor}"), err));
        }
        debug!(%actor, "no stream responded to the head request; sending it again");
    }
}

pub(crate) fn is_not_found(kind: &RawMessageErrorKind) -> bool {
    match kind {
        LastRawMessageErrorKind::NoMessageFound => true,
        // 10037: no message found, as an API error.
        LastRawMessageErrorKind::JetStream(api) => api.error_code().0 == 10037,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use aether_core::EventMetadata;

    use super::*;

    fn with_command(id: Option<&str>) -> NewEvent {
        let mut metadata = EventMetadata::now();
        metadata.command_id = id.map(str::to_owned);
        NewEvent::new("E", "p").with_metadata(metadata)
    }

    #[test]
    fn message_id_follows_shared_command_id() {
        let events = vec![with_command(Some("c1")), with_command(Some("c1"))];
        let (id, from_command) = message_id("ns.k.YQ", &events);
        assert_eq!(from_command, Some("c1"));
        assert_eq!(id, message_id("ns.k.YQ", &events).0);
        assert_ne!(id, message_id("ns.k.Yg", &events).0);
    }

    #[test]
    fn message_id_is_unique_without_one_command() {
        let mixed = vec![with_command(Some("c1")), with_command(Some("c2"))];
        let none = vec![with_command(None)];
        let partial = vec![with_command(Some("c1")), with_command(None)];
        for events in [mixed, none, partial] {
            let (id, from_command) = message_id("s", &events);
            assert_eq!(from_command, None);
            assert_ne!(id, message_id("s", &events).0);
        }
    }

    #[test]
    fn outcome_positions_point_at_last_event() {
        let outcome = outcome_of(10, Version::new(4), 3).unwrap();
        assert_eq!(outcome.first_version, Version::new(4));
        assert_eq!(outcome.version, Version::new(6));
        assert_eq!(outcome.position, layout::position(10, 2));
        assert!(outcome_of(0, Version::new(1), 1).is_none());
        assert!(outcome_of(MAX_SEQUENCE + 1, Version::new(1), 1).is_none());
    }
}
