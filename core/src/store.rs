//! The storage contracts: [`EventStore`] for event streams and [`Snapshotter`] for snapshots.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::error::StoreError;
use crate::event::{EventFilter, NewEvent, RecordedEvent};
use crate::id::ActorRef;
use crate::snapshot::Snapshot;
use crate::version::{ExpectedVersion, Position, Version};

/// A stream of stored events, or the error that ended it.
///
/// After an error the stream may end. A consumer that wants to go on opens a new one from the
/// last position or version it processed.
pub type EventStream = BoxStream<'static, Result<RecordedEvent, StoreError>>;

/// The result of a successful append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The version of the first appended event.
    pub first_version: Version,
    /// The actor's version after the append: the version of its last appended event, and the
    /// version the next append expects.
    pub version: Version,
    /// The store-wide position of the last appended event.
    pub position: Position,
}

/// Size limits of a store. Appends over a limit fail with
/// [`StoreError::PayloadTooLarge`] before anything is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Maximum payload size of one event, in bytes.
    pub max_event_bytes: usize,
    /// Maximum total payload size of one append, in bytes.
    pub max_append_bytes: usize,
    /// Maximum size of one snapshot's state, in bytes.
    pub max_snapshot_bytes: usize,
}

impl StoreLimits {
    /// Checks an append against these limits.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidInput`] for an append without events and
    /// [`StoreError::PayloadTooLarge`] for an event or append over its limit.
    pub fn check_append(&self, actor: &ActorRef, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Err(StoreError::invalid_input(actor, "append has no events"));
        }
        let mut total = 0usize;
        for event in events {
            let size = event.payload.len();
            if size > self.max_event_bytes {
                return Err(StoreError::PayloadTooLarge {
                    actor: actor.clone(),
                    what: "event payload",
                    size,
                    limit: self.max_event_bytes,
                });
            }
            total = total.saturating_add(size);
        }
        if total > self.max_append_bytes {
            return Err(StoreError::PayloadTooLarge {
                actor: actor.clone(),
                what: "append",
                size: total,
                limit: self.max_append_bytes,
            });
        }
        Ok(())
    }

    /// Checks a snapshot's size against [`StoreLimits::max_snapshot_bytes`].
    ///
    /// # Errors
    ///
    /// [`StoreError::PayloadTooLarge`] when the state is too large.
    pub fn check_snapshot(&self, actor: &ActorRef, snapshot: &Snapshot) -> Result<(), StoreError> {
        let size = snapshot.state.len();
        if size > self.max_snapshot_bytes {
            return Err(StoreError::PayloadTooLarge {
                actor: actor.clone(),
                what: "snapshot",
                size,
                limit: self.max_snapshot_bytes,
            });
        }
        Ok(())
    }
}

impl Default for StoreLimits {
    /// 1 MiB per event, 8 MiB per append, 16 MiB per snapshot.
    fn default() -> Self {
        Self {
            max_event_bytes: 1024 * 1024,
            max_append_bytes: 8 * 1024 * 1024,
            max_snapshot_bytes: 16 * 1024 * 1024,
        }
    }
}

/// An append-only store of actor event streams.
///
/// Every implementation keeps these promises, which the conformance suite in `aether-testkit`
/// checks:
///
/// - An append stores all its events or none. When the expectation does not match the actor's
///   version it returns [`StoreError::Conflict`] and stores nothing, also under concurrent
///   writers and for an actor's first append.
/// - An acknowledged append is durable by the backend's own promise.
/// - Versions of one actor run 1, 2, 3… without gaps. Positions grow in storage order; a reader
///   that resumes after a position never misses an event stored after it.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `actor`'s stream if its version matches `expected`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] on a version mismatch, [`StoreError::InvalidInput`] for an empty
    /// append, [`StoreError::PayloadTooLarge`] over a limit, [`StoreError::Unavailable`] when the
    /// outcome is unknown.
    async fn append(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Reads `actor`'s events from version `from` (inclusive; 0 and 1 both mean the first) up to
    /// its head when the read starts. The stream pages internally and never waits for new events.
    fn read(&self, actor: &ActorRef, from: Version) -> EventStream;

    /// Returns `actor`'s current version ([`Version::ZERO`] when it has no events).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the store cannot be read.
    async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError>;

    /// Reads every event after position `after` that passes `filter`, in position order, up to the
    /// store's head when the read starts.
    fn read_all(&self, after: Position, filter: EventFilter) -> EventStream;

    /// Returns the position of the newest stored event, or [`Position::START`] when the store is
    /// empty. A subscription started after it delivers only events stored later.
    ///
    /// The provided implementation reads every stored event; backends override it with a
    /// direct look-up.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the store cannot be read.
    async fn last_position(&self) -> Result<Position, StoreError> {
        use futures::StreamExt;
        let mut events = self.read_all(Position::START, EventFilter::all());
        let mut last = Position::START;
        while let Some(event) = events.next().await {
            last = last.max(event?.position);
        }
        Ok(last)
    }

    /// Delivers every event after position `after` that passes `filter`, in position order, first
    /// those already stored and then new ones as they are stored. The stream does not end on its
    /// own. Each event carries its position, so a consumer can checkpoint and resume.
    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream;

    /// Returns the size limits of this store.
    fn limits(&self) -> StoreLimits;
}

/// A store of actor snapshots.
#[async_trait]
pub trait Snapshotter: Send + Sync + 'static {
    /// Saves `snapshot` for `actor` unless a snapshot of a higher version is already stored.
    /// Returns whether it was stored. A snapshot of the same version replaces the stored one, so a
    /// state whose schema changed can be rewritten.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidInput`] when the snapshot's version is above the actor's last stored
    /// event, [`StoreError::PayloadTooLarge`] over the snapshot limit.
    async fn save_snapshot(&self, actor: &ActorRef, snapshot: Snapshot)
    -> Result<bool, StoreError>;

    /// Loads `actor`'s newest snapshot, if it has one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the stored record cannot be decoded; the state bytes inside
    /// are not decoded here.
    async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError>;
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for Arc<S> {
    async fn append(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        (**self).append(actor, expected, events).await
    }

    fn read(&self, actor: &ActorRef, from: Version) -> EventStream {
        (**self).read(actor, from)
    }

    async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError> {
        (**self).head(actor).await
    }

    fn read_all(&self, after: Position, filter: EventFilter) -> EventStream {
        (**self).read_all(after, filter)
    }

    async fn last_position(&self) -> Result<Position, StoreError> {
        (**self).last_position().await
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        (**self).subscribe(after, filter)
    }

    fn limits(&self) -> StoreLimits {
        (**self).limits()
    }
}

#[async_trait]
impl<S: Snapshotter + ?Sized> Snapshotter for Arc<S> {
    async fn save_snapshot(
        &self,
        actor: &ActorRef,
        snapshot: Snapshot,
    ) -> Result<bool, StoreError> {
        (**self).save_snapshot(actor, snapshot).await
    }

    async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
        (**self).load_snapshot(actor).await
    }
}
