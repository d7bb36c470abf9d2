//! An in-memory store for tests, examples and benchmarks. Nothing survives the process.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use futures::stream;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{EventFilter, NewEvent, RecordedEvent};
use crate::id::ActorRef;
use crate::snapshot::Snapshot;
use crate::store::{AppendOutcome, EventStore, EventStream, Snapshotter, StoreLimits};
use crate::subscription::{Page, follow};
use crate::version::{ExpectedVersion, Position, Version};

/// Events returned by one internal read of [`MemoryStore`] unless set otherwise.
const DEFAULT_PAGE_SIZE: usize = 512;

/// An [`EventStore`] and [`Snapshotter`] kept in process memory.
///
/// Clones share the same data. Appends are atomic and checked like on every other backend, so
/// the memory store passes the same conformance suite.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<RwLock<Inner>>,
    head: Arc<watch::Sender<Position>>,
    limits: StoreLimits,
    page_size: usize,
}

#[derive(Default)]
struct Inner {
    /// Every event in position order; the event at index `i` has position `i + 1`.
    log: Vec<RecordedEvent>,
    /// For each actor, the log indexes of its events in version order.
    streams: HashMap<ActorRef, Vec<usize>>,
    snapshots: HashMap<ActorRef, Snapshot>,
}

impl MemoryStore {
    /// Creates an empty store with the default [`StoreLimits`].
    pub fn new() -> Self {
        Self::with_limits(StoreLimits::default())
    }

    /// Creates an empty store with the given limits.
    pub fn with_limits(limits: StoreLimits) -> Self {
        let (head, _) = watch::channel(Position::START);
        Self {
            inner: Arc::new(RwLock::new(Inner::default())),
            head: Arc::new(head),
            limits,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Sets how many events one internal read returns (default 512, minimum 1), so tests can
    /// exercise readers across many pages.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Returns the number of events stored.
    pub fn len(&self) -> usize {
        self.read_lock().log.len()
    }

    /// Returns whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-written: every write
        // validates first and then only pushes, so the poisoned data is still consistent.
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn page_after(&self, after: Position, filter: &EventFilter) -> Page {
        let inner = self.read_lock();
        let start = usize::try_from(after.get()).unwrap_or(usize::MAX);
        let mut page = Page {
            events: Vec::new(),
            scanned_to: after,
        };
        for event in inner.log.iter().skip(start).take(self.page_size) {
            page.scanned_to = event.position;
            if filter.matches(&event.actor) {
                page.events.push(event.clone());
            }
        }
        page
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("events", &self.len())
            .field("limits", &self.limits)
            .finish()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.limits.check_append(actor, &events)?;

        let mut inner = self.write_lock();
        let current = inner
            .streams
            .get(actor)
            .map_or(Version::ZERO, |s| Version::new(s.len() as u64));
        if !expected.matches(current) {
            return Err(StoreError::Conflict {
                actor: actor.clone(),
                expected,
                actual: current,
            });
        }

        let first_index = inner.log.len();
        let mut version = current;
        for event in events {
            version = version.next();
            let position = Position::new(inner.log.len() as u64 + 1);
            inner.log.push(RecordedEvent {
                actor: actor.clone(),
                version,
                position,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
            });
        }
        let last_index = inner.log.len();
        inner
            .streams
            .entry(actor.clone())
            .or_default()
            .extend(first_index..last_index);
        let position = Position::new(last_index as u64);
        drop(inner);

        self.head.send_replace(position);
        Ok(AppendOutcome {
            first_version: current.next(),
            version,
            position,
        })
    }

    fn read(&self, actor: &ActorRef, from: Version) -> EventStream {
        let store = self.clone();
        let actor = actor.clone();
        let skip = from.get().saturating_sub(1) as usize;
        let end = self.read_lock().streams.get(&actor).map_or(0, Vec::len);

        let pages = stream::unfold(skip, move |next| {
            let store = store.clone();
            let actor = actor.clone();
            async move {
                if next >= end {
                    return None;
                }
                let inner = store.read_lock();
                let indexes = inner.streams.get(&actor)?;
                let stop = (next + store.page_size).min(end);
                let page: Vec<_> = indexes[next..stop]
                    .iter()
                    .map(|&i| Ok(inner.log[i].clone()))
                    .collect();
                Some((stream::iter(page), stop))
            }
        });
        Box::pin(futures::StreamExt::flatten(pages))
    }

    async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError> {
        let inner = self.read_lock();
        Ok(inner
            .streams
            .get(actor)
            .map_or(Version::ZERO, |s| Version::new(s.len() as u64)))
    }

    fn read_all(&self, after: Position, filter: EventFilter) -> EventStream {
        let store = self.clone();
        let end = Position::new(self.read_lock().log.len() as u64);

        let pages = stream::unfold(after, move |after| {
            let store = store.clone();
            let filter = filter.clone();
            async move {
                if after >= end {
                    return None;
                }
                let mut page = store.page_after(after, &filter);
                page.events.retain(|e| e.position <= end);
                let next = page.scanned_to.min(end);
                let items: Vec<_> = page.events.into_iter().map(Ok).collect();
                Some((stream::iter(items), next))
            }
        });
        Box::pin(futures::StreamExt::flatten(pages))
    }

    async fn last_position(&self) -> Result<Position, StoreError> {
        Ok(Position::new(self.read_lock().log.len() as u64))
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        let store = self.clone();
        follow(after, self.head.subscribe(), move |after| {
            let page = store.page_after(after, &filter);
            async move { Ok(page) }
        })
    }

    fn limits(&self) -> StoreLimits {
        self.limits
    }
}

#[async_trait]
impl Snapshotter for MemoryStore {
    async fn save_snapshot(
        &self,
        actor: &ActorRef,
        snapshot: Snapshot,
    ) -> Result<bool, StoreError> {
        self.limits.check_snapshot(actor, &snapshot)?;

        let mut inner = self.write_lock();
        let head = inner
            .streams
            .get(actor)
            .map_or(Version::ZERO, |s| Version::new(s.len() as u64));
        if snapshot.version > head {
            return Err(StoreError::invalid_input(
                actor,
                format!(
                    "snapshot version {} is ahead of the last stored event {head}",
                    snapshot.version
                ),
            ));
        }
        if let Some(existing) = inner.snapshots.get(actor)
            && existing.version > snapshot.version
        {
            return Ok(false);
        }
        inner.snapshots.insert(actor.clone(), snapshot);
        Ok(true)
    }

    async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.read_lock().snapshots.get(actor).cloned())
    }
}
