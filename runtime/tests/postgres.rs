//! The runtime over PostgreSQL: the scenarios that do not depend on the store kind, each in a
//! schema of its own on the server at `DATABASE_URL`.

#![cfg(feature = "postgres")]

mod common;

use std::pin::Pin;

use aether::postgres::{PostgresConfig, PostgresStore};
use aether_testkit::postgres::TestSchema;
use common::scenarios;

fn connector(schema: &TestSchema) -> impl Fn() -> Pin<Box<dyn Future<Output = PostgresStore>>> {
    let config = PostgresConfig::from_url(schema.url())
        .unwrap()
        .schema(schema.name())
        .max_connections(4);
    move || {
        let config = config.clone();
        Box::pin(async move { PostgresStore::connect(config).await.unwrap() })
            as Pin<Box<dyn Future<Output = PostgresStore>>>
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_from_snapshot() {
    let schema = TestSchema::create().await;
    scenarios::restart_from_snapshot(connector(&schema)).await;
    schema.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_repeated_command_after_restart() {
    let schema = TestSchema::create().await;
    scenarios::repeated_command_after_restart(connector(&schema)).await;
    schema.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_runtimes_one_actor() {
    let schema = TestSchema::create().await;
    scenarios::two_runtimes_one_actor(connector(&schema)).await;
    schema.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_follows_other_writer() {
    let schema = TestSchema::create().await;
    scenarios::follows_other_writer(connector(&schema)).await;
    schema.cleanup().await.unwrap();
}
