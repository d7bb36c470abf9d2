//! Building blocks of the cases: events, unique actors, bounded waits and checks that panic with a
//! message naming what went wrong.

use std::future::Future;
use std::time::Duration;

use aether_core::{
    ActorKind, ActorRef, AppendOutcome, EventFilter, EventStore, EventStream, ExpectedVersion,
    NewEvent, Position, RecordedEvent, StoreError, Version,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{QUIET, WAIT};

/// Builds an event of type `event_type` with `payload`, schema version 1 and metadata stamped now.
pub fn event(event_type: &str, payload: impl Into<Bytes>) -> NewEvent {
    NewEvent::new(event_type, payload)
}

/// Builds `count` events of type `Numbered` whose payloads are `event <n>`, for `n` from `first` on.
pub fn numbered_events(first: u64, count: u64) -> Vec<NewEvent> {
    (first..first + count)
        .map(|n| event("Numbered", numbered_payload(n)))
        .collect()
}

/// Returns the payload that [`numbered_events`] gives event `n`.
pub(crate) fn numbered_payload(n: u64) -> Bytes {
    Bytes::from(format!("event {n}"))
}

/// Returns a kind that no other case uses: `prefix`, a dash and 12 random hex digits.
///
/// # Panics
///
/// Panics when `prefix` is not a valid start of an [`ActorKind`] or is longer than 51 bytes.
pub fn unique_kind(prefix: &str) -> ActorKind {
    let random = Uuid::new_v4().simple().to_string();
    ActorKind::new(format!("{prefix}-{}", &random[..12]))
        .unwrap_or_else(|err| panic!("unique_kind({prefix:?}) built an invalid kind: {err}"))
}

/// Returns an actor of `kind` whose id is a random UUID, so no other case touches it.
///
/// # Panics
///
/// Panics when `kind` is not a valid [`ActorKind`].
pub fn unique_actor(kind: &str) -> ActorRef {
    ActorRef::parse(kind, Uuid::new_v4().to_string())
        .unwrap_or_else(|err| panic!("unique_actor({kind:?}) got an invalid kind: {err}"))
}

/// Collects a finite stream, failing when it errs or does not end within `limit`.
///
/// # Panics
///
/// Panics naming `context` when the stream yields an error or does not end in time.
pub async fn collect_within(
    context: &str,
    stream: EventStream,
    limit: Duration,
) -> Vec<RecordedEvent> {
    match tokio::time::timeout(limit, stream.try_collect::<Vec<_>>()).await {
        Ok(Ok(events)) => events,
        Ok(Err(err)) => panic!("{context}: the stream failed: {}", describe(&err)),
        Err(_) => panic!("{context}: the stream did not end within {limit:?}"),
    }
}

/// Takes the next `count` events of `stream`, all within `limit`.
///
/// # Panics
///
/// Panics naming `context` when the stream yields an error, ends, or is too slow.
pub async fn next_events(
    context: &str,
    stream: &mut EventStream,
    count: usize,
    limit: Duration,
) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(event))) => events.push(event),
            Ok(Some(Err(err))) => panic!(
                "{context}: the stream failed after {} of {count} events: {}",
                events.len(),
                describe(&err)
            ),
            Ok(None) => panic!(
                "{context}: the stream ended after {} of {count} events",
                events.len()
            ),
            Err(_) => panic!(
                "{context}: received {} of {count} events within {limit:?}, the last was {}",
                events.len(),
                events.last().map_or_else(|| "none".to_owned(), label)
            ),
        }
    }
    events
}

/// Checks that a subscription delivers nothing more within [`QUIET`] and has not ended.
pub(crate) async fn assert_silent(context: &str, stream: &mut EventStream) {
    match tokio::time::timeout(QUIET, stream.next()).await {
        Err(_) => {}
        Ok(Some(Ok(event))) => panic!("{context}: unexpected extra event {}", label(&event)),
        Ok(Some(Err(err))) => panic!("{context}: the stream failed: {}", describe(&err)),
        Ok(None) => {
            panic!("{context}: the subscription ended, but it must stay open for new events")
        }
    }
}

/// Checks that an append failed with a conflict on `actor` reporting `expected` and `actual`.
///
/// # Panics
///
/// Panics when the append succeeded or failed in another way.
pub fn expect_conflict(
    result: Result<AppendOutcome, StoreError>,
    actor: &ActorRef,
    expected: ExpectedVersion,
    actual: Version,
) {
    match result {
        Ok(outcome) => panic!(
            "append to {actor} expecting {expected} succeeded with {outcome:?}, \
             but the actor was at version {actual} so it must conflict"
        ),
        Err(StoreError::Conflict {
            actor: got_actor,
            expected: got_expected,
            actual: got_actual,
        }) => {
            assert_eq!(&got_actor, actor, "conflict names the wrong actor");
            assert_eq!(
                got_expected, expected,
                "conflict on {actor} reports the wrong expectation"
            );
            assert_eq!(
                got_actual, actual,
                "conflict on {actor} expecting {expected} reports the wrong actual version"
            );
        }
        Err(err) => panic!(
            "append to {actor} expecting {expected} must fail with a conflict \
             (actual version {actual}), got {:?} error: {}",
            err.kind(),
            describe(&err)
        ),
    }
}

/// Awaits `future` within [`WAIT`].
pub(crate) async fn within<T>(context: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{context}: did not finish within {WAIT:?}"),
    }
}

/// Appends and returns the outcome, panicking on any error.
pub(crate) async fn append_ok<S: EventStore>(
    store: &S,
    actor: &ActorRef,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendOutcome {
    let count = events.len();
    let context = format!("append of {count} events to {actor} expecting {expected}");
    match within(&context, store.append(actor, expected, events)).await {
        Ok(outcome) => outcome,
        Err(err) => panic!("{context} failed: {}", describe(&err)),
    }
}

/// Appends and returns the error, panicking when the append succeeds.
pub(crate) async fn append_err<S: EventStore>(
    store: &S,
    actor: &ActorRef,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> StoreError {
    let count = events.len();
    let context = format!("append of {count} events to {actor} expecting {expected}");
    match within(&context, store.append(actor, expected, events)).await {
        Ok(outcome) => panic!("{context} must fail, but it succeeded with {outcome:?}"),
        Err(err) => err,
    }
}

/// Returns the actor's head version, panicking on an error.
pub(crate) async fn head_of<S: EventStore>(store: &S, actor: &ActorRef) -> Version {
    let context = format!("head of {actor}");
    match within(&context, store.head(actor)).await {
        Ok(version) => version,
        Err(err) => panic!("{context} failed: {}", describe(&err)),
    }
}

/// Appends events `1..=count` to `actor`, which must have none yet, in appends of 100 events.
pub(crate) async fn append_batches<S: EventStore>(store: &S, actor: &ActorRef, count: u64) {
    const BATCH: u64 = 100;
    let mut version = Version::ZERO;
    while version.get() < count {
        let size = BATCH.min(count - version.get());
        let events = numbered_events(version.get() + 1, size);
        version = append_ok(store, actor, version.into(), events)
            .await
            .version;
    }
}

/// Reads every event of `actor` from version `from` within [`WAIT`].
pub(crate) async fn read_events<S: EventStore>(
    store: &S,
    actor: &ActorRef,
    from: Version,
) -> Vec<RecordedEvent> {
    let context = format!("read of {actor} from version {from}");
    collect_within(&context, store.read(actor, from), WAIT).await
}

/// Reads every event after `after` that passes `filter` within [`WAIT`].
pub(crate) async fn read_all_events<S: EventStore>(
    store: &S,
    after: Position,
    filter: EventFilter,
) -> Vec<RecordedEvent> {
    let context = format!("read_all after position {after} with {filter:?}");
    collect_within(&context, store.read_all(after, filter), WAIT).await
}

/// Checks that the factory returned an empty store, which cases that count store-wide events need.
pub(crate) async fn assert_empty_store<S: EventStore>(store: &S) {
    let events = read_all_events(store, Position::START, EventFilter::all()).await;
    assert!(
        events.is_empty(),
        "the factory must return an empty store for every case, this one holds {} events, \
         the first is {}",
        events.len(),
        label(&events[0])
    );
}

/// Joins spawned tasks within [`WAIT`], passing on a task's panic.
pub(crate) async fn join_tasks<T>(context: &str, tasks: Vec<JoinHandle<T>>) -> Vec<T> {
    let results = within(context, futures::future::join_all(tasks)).await;
    results
        .into_iter()
        .map(|result| match result {
            Ok(value) => value,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("{context}: a task was cancelled: {err}"),
        })
        .collect()
}

/// Checks that `events` carry versions `first, first + 1, …` without gaps.
pub(crate) fn assert_versions_from(context: &str, events: &[RecordedEvent], first: u64) {
    for (offset, event) in events.iter().enumerate() {
        let expected = Version::new(first + offset as u64);
        assert_eq!(
            event.version,
            expected,
            "{context}: event {offset} of {} has the wrong version ({})",
            events.len(),
            label(event)
        );
    }
}

/// Checks that positions grow strictly from one event to the next.
pub(crate) fn assert_positions_increase(context: &str, events: &[RecordedEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "{context}: positions must grow strictly, but {} is followed by {}",
            label(&pair[0]),
            label(&pair[1])
        );
    }
}

/// Checks that `events` all belong to `actor`.
pub(crate) fn assert_all_of(context: &str, events: &[RecordedEvent], actor: &ActorRef) {
    for event in events {
        assert_eq!(
            &event.actor,
            actor,
            "{context}: event {} belongs to another actor",
            label(event)
        );
    }
}

/// Formats an event for messages as its actor, version and position.
pub(crate) fn label(event: &RecordedEvent) -> String {
    format!("{} {:?} {:?}", event.actor, event.version, event.position)
}

/// Formats an error with its chain of sources, for messages.
pub(crate) fn describe(err: &StoreError) -> String {
    aether_core::ErrorChain(err).to_string()
}
