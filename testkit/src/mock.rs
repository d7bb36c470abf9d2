//! mockall mocks of the storage traits.
//!
//! [`MockEventStore`] and [`MockSnapshotter`] each implement one trait. [`MockStore`] implements
//! both, for code that needs one value serving events and snapshots. Wrap a mock in
//! [`Arc`](std::sync::Arc) where the code under test wants a cloneable store: `aether-core`
//! implements both traits for `Arc<S>`.
//!
//! A store that fails an append as an unreachable server would:
//!
//! ```
//! use aether_core::{ActorRef, ErrorKind, EventStore, ExpectedVersion, NewEvent, StoreError};
//! use aether_testkit::MockEventStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store = MockEventStore::new();
//! store.expect_append().times(1).returning(|actor, _expected, _events| {
//!     let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 5 s");
//!     Err(StoreError::unavailable(format!("appending to {actor}"), timeout))
//! });
//!
//! let actor = ActorRef::parse("invoice", "536365")?;
//! let err = store
//!     .append(&actor, ExpectedVersion::NoEvents, vec![NewEvent::new("Opened", "{}")])
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Unavailable);
//! assert!(err.is_retryable());
//! # Ok(())
//! # }
//! ```

use aether_core::{
    ActorRef, AppendOutcome, EventFilter, EventStore, EventStream, ExpectedVersion, NewEvent,
    Position, Snapshot, Snapshotter, StoreError, StoreLimits, Version,
};
use async_trait::async_trait;
use mockall::mock;

mock! {
    /// A mock [`EventStore`]. Set expectations with the `expect_*` methods.
    pub EventStore {}

    #[async_trait]
    impl EventStore for EventStore {
        async fn append(
            &self,
            actor: &ActorRef,
            expected: ExpectedVersion,
            events: Vec<NewEvent>,
        ) -> Result<AppendOutcome, StoreError>;
        fn read(&self, actor: &ActorRef, from: Version) -> EventStream;
        async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError>;
        fn read_all(&self, after: Position, filter: EventFilter) -> EventStream;
        fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream;
        fn limits(&self) -> StoreLimits;
    }
}

mock! {
    /// A mock [`Snapshotter`]. Set expectations with the `expect_*` methods.
    pub Snapshotter {}

    #[async_trait]
    impl Snapshotter for Snapshotter {
        async fn save_snapshot(
            &self,
            actor: &ActorRef,
            snapshot: Snapshot,
        ) -> Result<bool, StoreError>;
        async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError>;
    }
}

mock! {
    /// A mock that is both an [`EventStore`] and a [`Snapshotter`].
    pub Store {}

    #[async_trait]
    impl EventStore for Store {
        async fn append(
            &self,
            actor: &ActorRef,
            expected: ExpectedVersion,
            events: Vec<NewEvent>,
        ) -> Result<AppendOutcome, StoreError>;
        fn read(&self, actor: &ActorRef, from: Version) -> EventStream;
        async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError>;
        fn read_all(&self, after: Position, filter: EventFilter) -> EventStream;
        fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream;
        fn limits(&self) -> StoreLimits;
    }

    #[async_trait]
    impl Snapshotter for Store {
        async fn save_snapshot(
            &self,
            actor: &ActorRef,
            snapshot: Snapshot,
        ) -> Result<bool, StoreError>;
        async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError>;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aether_core::{ErrorKind, Version};
    use futures::{StreamExt, stream};
    use mockall::predicate::{always, eq};

    use super::*;

    fn actor() -> ActorRef {
        ActorRef::parse("invoice", "1").unwrap()
    }

    #[tokio::test]
    async fn event_store_mock_scripts_results() {
        let mut store = MockEventStore::new();
        store
            .expect_head()
            .with(eq(actor()))
            .returning(|_| Ok(Version::new(3)));
        store
            .expect_append()
            .with(
                always(),
                eq(ExpectedVersion::Exact(Version::new(3))),
                always(),
            )
            .returning(|actor, expected, _| {
                Err(StoreError::Conflict {
                    actor: actor.clone(),
                    expected,
                    actual: Version::new(4),
                })
            });
        store
            .expect_read()
            .returning(|_, _| Box::pin(stream::empty()));
        store.expect_limits().return_const(StoreLimits::default());

        assert_eq!(store.head(&actor()).await.unwrap(), Version::new(3));
        let err = store
            .append(
                &actor(),
                ExpectedVersion::Exact(Version::new(3)),
                vec![NewEvent::new("Added", "1")],
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(store.read(&actor(), Version::ZERO).next().await.is_none());
        assert_eq!(store.limits(), StoreLimits::default());
    }

    #[tokio::test]
    async fn snapshotter_mock_scripts_results() {
        let mut snapshots = MockSnapshotter::new();
        snapshots.expect_save_snapshot().returning(|_, _| Ok(false));
        snapshots.expect_load_snapshot().returning(|_| Ok(None));

        let saved = snapshots
            .save_snapshot(&actor(), Snapshot::new(Version::new(1), "state"))
            .await
            .unwrap();
        assert!(!saved);
        assert!(snapshots.load_snapshot(&actor()).await.unwrap().is_none());
    }

    /// Compiles only when `S` implements both traits, as the runtime requires.
    fn both_traits<S: EventStore + Snapshotter>(store: S) -> S {
        store
    }

    #[tokio::test]
    async fn combined_mock_implements_both_traits() {
        let mut store = MockStore::new();
        store.expect_head().returning(|_| Ok(Version::ZERO));
        store
            .expect_load_snapshot()
            .returning(|_| Ok(Some(Snapshot::new(Version::new(2), "s"))));

        let store = Arc::new(both_traits(store));
        assert_eq!(store.head(&actor()).await.unwrap(), Version::ZERO);
        let snapshot = store.load_snapshot(&actor()).await.unwrap().unwrap();
        assert_eq!(snapshot.version, Version::new(2));
    }
}
