//! Actors and store wrappers shared by the runtime tests.
#![allow(dead_code, unreachable_pub)]

pub mod scenarios;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aether::core::{AppendOutcome, EventFilter, EventStream, NewEvent, Snapshot, StoreLimits};
use aether::{
    Actor, ActorRef, EventStore, ExpectedVersion, Position, Snapshotter, StoreError, Version,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A counter that adds one per `Add` command; `Fail` is always rejected.
pub struct Counter;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CounterCommand {
    Add,
    AddMany(u32),
    Get,
    Fail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CounterEvent {
    Added,
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[error("counter refused the command at {0}")]
pub struct Refused(pub u64);

impl Actor for Counter {
    const KIND: &'static str = "counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type State = u64;
    type Reply = u64;
    type Error = Refused;

    fn handle(state: &u64, command: &CounterCommand) -> Result<(Vec<CounterEvent>, u64), Refused> {
        match command {
            CounterCommand::Add => Ok((vec![CounterEvent::Added], state + 1)),
            CounterCommand::AddMany(n) => Ok((
                (0..*n).map(|_| CounterEvent::Added).collect(),
                state + u64::from(*n),
            )),
            CounterCommand::Get => Ok((Vec::new(), *state)),
            CounterCommand::Fail => Err(Refused(*state)),
        }
    }

    fn apply(state: &mut u64, _event: &CounterEvent) {
        *state += 1;
    }
}

/// Counts calls to the store it wraps.
#[derive(Clone)]
pub struct Counting<S> {
    pub inner: S,
    pub appends: Arc<AtomicU64>,
    pub snapshot_loads: Arc<AtomicU64>,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            appends: Arc::default(),
            snapshot_loads: Arc::default(),
        }
    }

    pub fn appends(&self) -> u64 {
        self.appends.load(Ordering::SeqCst)
    }

    pub fn snapshot_loads(&self) -> u64 {
        self.snapshot_loads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl<S: EventStore> EventStore for Counting<S> {
    async fn append(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.inner.append(actor, expected, events).await
    }

    fn read(&self, actor: &ActorRef, from: Version) -> EventStream {
        self.inner.read(actor, from)
    }

    async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError> {
        self.inner.head(actor).await
    }

    fn read_all(&self, after: Position, filter: EventFilter) -> EventStream {
        self.inner.read_all(after, filter)
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        self.inner.subscribe(after, filter)
    }

    fn limits(&self) -> StoreLimits {
        self.inner.limits()
    }
}

#[async_trait]
impl<S: Snapshotter> Snapshotter for Counting<S> {
    async fn save_snapshot(
        &self,
        actor: &ActorRef,
        snapshot: Snapshot,
    ) -> Result<bool, StoreError> {
        self.inner.save_snapshot(actor, snapshot).await
    }

    async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
        self.snapshot_loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load_snapshot(actor).await
    }
}

/// Reads every version of `actor` from the store.
pub async fn stored_versions<S: EventStore>(store: &S, actor: &ActorRef) -> Vec<u64> {
    use futures::TryStreamExt;
    let events: Vec<_> = store
        .read(actor, Version::new(1))
        .try_collect()
        .await
        .unwrap();
    events.iter().map(|e| e.version.get()).collect()
}

pub fn counter(id: &str) -> ActorRef {
    ActorRef::parse("counter", id).unwrap()
}
