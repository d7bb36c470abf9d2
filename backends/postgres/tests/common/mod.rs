//! Helpers shared by the integration tests: a store on a fresh schema, and events.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use aether_core::{ActorRef, EventFilter, EventStore, NewEvent, Position, RecordedEvent};
use aether_postgres::{PostgresConfig, PostgresStore};
use aether_testkit::postgres::TestSchema;
use futures::TryStreamExt;

/// Bound on single operations in these tests.
pub const WAIT: Duration = Duration::from_secs(30);

/// Creates a schema for one test and returns it with a store configuration for it.
pub async fn schema_and_config() -> (TestSchema, PostgresConfig) {
    let schema = TestSchema::create().await;
    let config = PostgresConfig::from_url(schema.url())
        .expect("DATABASE_URL is not a valid PostgreSQL URL")
        .schema(schema.name());
    (schema, config)
}

/// Connects a store with `config`.
pub async fn connect(config: PostgresConfig) -> PostgresStore {
    tokio::time::timeout(WAIT, PostgresStore::connect(config))
        .await
        .expect("connecting the store timed out")
        .expect("cannot connect the store to DATABASE_URL")
}

/// Builds an actor of kind `test`.
pub fn actor(id: impl Into<String>) -> ActorRef {
    ActorRef::parse("test", id).expect("valid test actor")
}

/// Builds an event whose payload is `payload`.
pub fn event(payload: impl Into<String>) -> NewEvent {
    NewEvent::new("Happened", payload.into())
}

/// Reads every event of the store, in position order.
pub async fn read_everything(store: &PostgresStore) -> Vec<RecordedEvent> {
    tokio::time::timeout(
        WAIT,
        store
            .read_all(Position::START, EventFilter::all())
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("read_all timed out")
    .expect("read_all failed")
}
