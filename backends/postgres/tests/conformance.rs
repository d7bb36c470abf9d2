//! The aether conformance suite against PostgreSQL, one fresh schema per case.
//!
//! Needs a server: `eval "$(scripts/postgres.sh start)"` sets `DATABASE_URL`.

use aether_postgres::{PostgresConfig, PostgresStore};
use aether_testkit::Fixture;
use aether_testkit::postgres::TestSchema;

async fn postgres_store() -> Fixture<PostgresStore> {
    let schema = TestSchema::create().await;
    let config = PostgresConfig::from_url(schema.url())
        .expect("DATABASE_URL is not a valid PostgreSQL URL")
        .schema(schema.name())
        .max_connections(4);
    let store = PostgresStore::connect(config)
        .await
        .expect("cannot connect the store to DATABASE_URL");
    Fixture::new(store).with_guard(schema)
}

aether_testkit::conformance_suite!(postgres_store);
