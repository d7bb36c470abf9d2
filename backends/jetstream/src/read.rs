//! Reads: one actor's events, store-wide reads and subscriptions.
//!
//! A read of one actor first fetches the actor's last stream sequence from the stream leader.
//! Then it fetches the actor's messages up to that sequence, with batched direct gets on
//! servers 2.11 and newer, else with an ordered consumer filtered on the actor's subject. Store-wide reads and
//! subscriptions use an ordered consumer that starts at the message of the resume position.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aether_core::{
    ActorRef, EventFilter, EventStream, Position, RecordedEvent, StoreError, Version,
};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::message::StreamMessage;
use async_nats::{StatusCode, Subject};
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tracing::debug;

use crate::append::{fetch_head, is_not_found};
use crate::envelope;
use crate::error::{BACKEND, UnroutedRetry, request_failed};
use crate::layout::{self, Layout};
use crate::store::Inner;

/// How often a per-actor read repeats a direct get that returns fewer messages than the
/// leader reported, which happens while a replica catches up.
const LAG_RETRIES: u32 = 50;

/// Pause between those retries.
const LAG_PAUSE: Duration = Duration::from_millis(20);

/// One stored message, as the readers see it.
struct RawMessage {
    sequence: u64,
    subject: Subject,
    payload: Bytes,
}

type RawStream = BoxStream<'static, Result<RawMessage, StoreError>>;

/// Reads `actor`'s events from version `from` up to its head when the read starts.
pub(crate) fn read_actor(inner: Arc<Inner>, actor: ActorRef, from: Version) -> EventStream {
    let setup = async move {
        let subject = inner.layout.subject(&actor);
        let head = fetch_head(&inner, &actor, &subject).await?;
        if head.sequence == 0 || head.version < from {
            return Ok::<_, StoreError>(stream::empty().boxed());
        }
        let raw = if inner.batch_direct_get {
            direct_messages(inner.clone(), subject, head.sequence)
        } else {
            consumer_messages(inner.clone(), 1, vec![subject], Some(head.sequence))
        };
        let events = raw
            .map(move |message| items(message.and_then(|m| actor_events(&actor, &m, from))))
            .flatten();
        Ok(events.boxed())
    };
    end_on_error(stream::once(setup).try_flatten())
}

/// Reads every event after `after` that passes `filter`, up to the stream's last message when
/// the read starts.
pub(crate) fn read_all(inner: Arc<Inner>, after: Position, filter: EventFilter) -> EventStream {
    let setup = async move {
        let Some(subjects) = filter_subjects(&inner.layout, &filter) else {
            return Ok::<_, StoreError>(stream::empty().boxed());
        };
        let end = last_matching_sequence(&inner, &subjects).await?;
        let start = layout::sequence_of(after).max(1);
        if end < start {
            return Ok(stream::empty().boxed());
        }
        let raw = consumer_messages(inner.clone(), start, subjects, Some(end));
        Ok(store_events(inner, raw, after, filter))
    };
    end_on_error(stream::once(setup).try_flatten())
}

/// Delivers every event after `after` that passes `filter`, stored ones first, then new ones.
pub(crate) fn subscribe(inner: Arc<Inner>, after: Position, filter: EventFilter) -> EventStream {
    let Some(subjects) = filter_subjects(&inner.layout, &filter) else {
        // No event can pass the filter; the subscription stays open and silent.
        return stream::pending().boxed();
    };
    let start = layout::sequence_of(after).max(1);
    let raw = consumer_messages(inner.clone(), start, subjects, None);
    end_on_error(store_events(inner, raw, after, filter))
}

/// Builds the consumer filter for `filter`: empty for every subject, `None` when nothing can
/// match.
fn filter_subjects(layout: &Layout, filter: &EventFilter) -> Option<Vec<String>> {
    if let Some(actor) = &filter.actor {
        if !filter.kinds.is_empty() && !filter.kinds.contains(&actor.kind) {
            return None;
        }
        return Some(vec![layout.subject(actor)]);
    }
    let mut subjects: Vec<String> = filter
        .kinds
        .iter()
        .map(|k| layout.kind_subjects(k))
        .collect();
    subjects.sort();
    subjects.dedup();
    Some(subjects)
}

/// Fetches the stream sequence of the last message on `subjects` (every subject when empty)
/// from the stream leader. Returns 0 when there is none.
///
/// A read ends at this message. Consumers may run on a replica that has not stored it yet, so
/// their pending counts cannot tell where the read ends.
async fn last_matching_sequence(inner: &Inner, subjects: &[String]) -> Result<u64, StoreError> {
    if subjects.is_empty() {
        let info = inner
            .stream
            .get_info()
            .await
            .map_err(|err| request_failed("reading the stream's last sequence", err))?;
        return Ok(info.state.last_sequence);
    }
    let mut last = 0;
    for subject in subjects {
        match inner.stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => last = last.max(message.sequence),
            Err(err) if is_not_found(&err.kind()) => {}
            Err(err) => {
                return Err(request_failed(
                    format!("reading the last message on {subject}"),
                    err,
                ));
            }
        }
    }
    Ok(last)
}

/// Turns store-wide messages into the events after `after` that pass `filter`.
fn store_events(
    inner: Arc<Inner>,
    raw: RawStream,
    after: Position,
    filter: EventFilter,
) -> EventStream {
    raw.map(move |message| {
        items(message.and_then(|message| {
            let actor = inner.layout.actor_of(&message.subject)?;
            if !filter.matches(&actor) {
                return Ok(Vec::new());
            }
            let mut events = decode_events(&actor, &message)?;
            events.retain(|event| event.position > after);
            Ok(events)
        }))
    })
    .flatten()
    .boxed()
}

/// Turns one message's events, or the error of decoding them, into stream items.
fn items(
    events: Result<Vec<RecordedEvent>, StoreError>,
) -> stream::Iter<impl Iterator<Item = Result<RecordedEvent, StoreError>>> {
    let (events, error) = match events {
        Ok(events) => (events, None),
        Err(err) => (Vec::new(), Some(err)),
    };
    stream::iter(events.into_iter().map(Ok).chain(error.map(Err)))
}

/// Ends `events` after its first error, as the store contract allows, so a failing consumer
/// does not repeat its error forever.
fn end_on_error(
    events: impl futures::Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static,
) -> EventStream {
    events
        .scan(false, |failed, item| {
            let next = if *failed {
                None
            } else {
                *failed = item.is_err();
                Some(item)
            };
            futures::future::ready(next)
        })
        .boxed()
}

/// The events of `actor` in `message` from version `from` on. A message whose events all lie
/// before `from` is skipped after reading its header only.
fn actor_events(
    actor: &ActorRef,
    message: &RawMessage,
    from: Version,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let location = MessageLocation {
        actor,
        sequence: message.sequence,
    };
    let header = envelope::decode_header(&message.payload, &location)?;
    if header.last_version() < from {
        return Ok(Vec::new());
    }
    let mut events = decode_events(actor, message)?;
    events.retain(|event| event.version >= from);
    Ok(events)
}

fn decode_events(actor: &ActorRef, message: &RawMessage) -> Result<Vec<RecordedEvent>, StoreError> {
    let location = MessageLocation {
        actor,
        sequence: message.sequence,
    };
    let (_, events) =
        envelope::decode_each(&message.payload, &location, |index, version, event| {
            RecordedEvent {
                actor: actor.clone(),
                version,
                position: layout::position(message.sequence, index),
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
            }
        })?;
    Ok(events)
}

/// Names a message in corrupt-data errors; formatted only when an error needs it.
struct MessageLocation<'a> {
    actor: &'a ActorRef,
    sequence: u64,
}

impl fmt::Display for MessageLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at stream sequence {}", self.actor, self.sequence)
    }
}

/// Messages of `subject` up to stream sequence `end`. The first `read_batch` come from one
/// batched direct get, which is all a short stream needs. The rest come from an ordered
/// consumer, which streams long histories faster than further direct gets did in the crate's
/// `throughput` benchmark against nats-server 2.15.1.
fn direct_messages(inner: Arc<Inner>, subject: String, end: u64) -> RawStream {
    let first_page = async move {
        let mut lag_retries = 0;
        loop {
            let batch = direct_batch(&inner, &subject, 1).await?;
            let page: Vec<RawMessage> = batch
                .into_iter()
                .take_while(|message| message.sequence <= end)
                .collect();
            if let Some(last) = page.last() {
                let next = last.sequence + 1;
                // A page can also stop before `end` when a lagging replica sent it. The consumer
                // then waits until its replica has the messages up to `end`.
                let rest = if next <= end {
                    consumer_messages(inner.clone(), next, vec![subject], Some(end))
                } else {
                    stream::empty().boxed()
                };
                let page = stream::iter(page.into_iter().map(Ok));
                return Ok::<RawStream, StoreError>(page.chain(rest).boxed());
            }
            // The leader reported a message up to `end` that this reply did not contain, so a
            // replica that has not caught up yet sent it.
            lag_retries += 1;
            if lag_retries > LAG_RETRIES {
                return Err(StoreError::unavailable(
                    format!("reading subject {subject}"),
                    format!(
                        "direct gets returned no message up to sequence {end} after {LAG_RETRIES} tries"
                    ),
                ));
            }
            debug!(%subject, end, "direct get behind the leader, retrying");
            tokio::time::sleep(LAG_PAUSE).await;
        }
    };
    stream::once(first_page).try_flatten().boxed()
}

/// Body of a batched direct get request (server 2.11 and newer).
#[derive(Serialize)]
struct BatchRequest<'a> {
    seq: u64,
    next_by_subj: &'a str,
    batch: usize,
}

/// Fetches up to `read_batch` messages of `subject` from stream sequence `start` on.
///
/// A request that no replica responds to is sent again, as appends are, until the request
/// timeout has passed. Replicas of a new stream start serving direct gets a moment after the
/// stream is created.
async fn direct_batch(
    inner: &Inner,
    subject: &str,
    start: u64,
) -> Result<Vec<RawMessage>, StoreError> {
    let mut unrouted = UnroutedRetry::new(inner.config.request_timeout);
    loop {
        if let Some(messages) = direct_batch_once(inner, subject, start).await? {
            return Ok(messages);
        }
        if !unrouted.pause().await {
            return Err(StoreError::unavailable(
                format!("reading subject {subject} from sequence {start}"),
                "no server responds to direct gets on the stream",
            ));
        }
        debug!(
            subject,
            start, "no replica responded to a direct get; sending it again"
        );
    }
}

/// Sends one batched direct get. Returns `None` when no server responded.
async fn direct_batch_once(
    inner: &Inner,
    subject: &str,
    start: u64,
) -> Result<Option<Vec<RawMessage>>, StoreError> {
    let operation = || format!("reading subject {subject} from sequence {start}");
    let inbox = inner.client.new_inbox();
    let mut replies = inner
        .client
        .subscribe(inbox.clone())
        .await
        .map_err(|err| request_failed(operation(), err))?;
    let body = serde_json::to_vec(&BatchRequest {
        seq: start,
        next_by_subj: subject,
        batch: inner.read_batch,
    })
    .map_err(|err| StoreError::backend(BACKEND, operation(), err))?;
    let request = async_nats::Request::new().payload(body.into()).inbox(inbox);
    inner
        .context
        .send_request(
            format!("DIRECT.GET.{}", inner.layout.stream_name()),
            request,
        )
        .await
        .map_err(|err| request_failed(operation(), err))?;

    let deadline = tokio::time::Instant::now() + inner.config.request_timeout;
    let mut messages = Vec::new();
    loop {
        let reply = match tokio::time::timeout_at(deadline, replies.next()).await {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                return Err(StoreError::unavailable(
                    operation(),
                    "the reply subscription closed, the connection was lost",
                ));
            }
            Err(elapsed) => return Err(StoreError::unavailable(operation(), elapsed)),
        };
        match reply.status {
            None => {
                let message = StreamMessage::try_from(reply)
                    .map_err(|err| StoreError::backend(BACKEND, operation(), err))?;
                messages.push(RawMessage {
                    sequence: message.sequence,
                    subject: message.subject,
                    payload: message.payload,
                });
                if messages.len() >= inner.read_batch {
                    return Ok(Some(messages));
                }
            }
            // 204 ends a batch; 404 means no message at or after `start`.
            Some(status) if status.as_u16() == 204 || status == StatusCode::NOT_FOUND => {
                return Ok(Some(messages));
            }
            // The server sends this status in place of any reply, so no message came before.
            Some(status) if status == StatusCode::NO_RESPONDERS => return Ok(None),
            Some(status) => {
                let description = reply.description.unwrap_or_default();
                return Err(StoreError::backend(
                    BACKEND,
                    operation(),
                    format!("the server answered status {status}: {description}"),
                ));
            }
        }
    }
}

/// Messages from an ordered consumer starting at stream sequence `start`, filtered on
/// `subjects` (all when empty). With `end`, the stream ends with the message at that sequence,
/// which must be stored and on `subjects`. Without it, the stream follows new messages.
fn consumer_messages(
    inner: Arc<Inner>,
    start: u64,
    subjects: Vec<String>,
    end: Option<u64>,
) -> RawStream {
    let setup = async move {
        let mut config = pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        };
        match subjects.len() {
            0 => {}
            1 => config.filter_subject = subjects[0].clone(),
            _ => config.filter_subjects = subjects.clone(),
        }
        let operation = || format!("reading the stream from sequence {start}");
        let consumer = inner
            .stream
            .create_consumer(config)
            .await
            .map_err(|err| request_failed(operation(), err))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|err| request_failed(operation(), err))?;

        let raw = messages.map(|message| {
            let message =
                message.map_err(|err| StoreError::unavailable("reading the stream", err))?;
            let sequence = message
                .info()
                .map_err(|err| StoreError::backend(BACKEND, "reading the stream", err.to_string()))?
                .stream_sequence;
            let message = message.message;
            Ok(RawMessage {
                sequence,
                subject: message.subject,
                payload: message.payload,
            })
        });
        let Some(end) = end else {
            return Ok::<RawStream, StoreError>(raw.boxed());
        };
        // Stop with the message at `end`, and before any later one.
        let bounded = stream::unfold((raw, false), move |(mut raw, done)| async move {
            if done {
                return None;
            }
            match raw.next().await? {
                Ok(message) if message.sequence > end => None,
                Ok(message) => {
                    let last = message.sequence >= end;
                    Some((Ok(message), (raw, last)))
                }
                Err(err) => Some((Err(err), (raw, true))),
            }
        });
        Ok(bounded.boxed())
    };
    stream::once(setup).try_flatten().boxed()
}
