//! The runtime over NATS JetStream: the scenarios that do not depend on the store kind, on a
//! single node started by the testkit.

#![cfg(feature = "jetstream")]

mod common;

use std::time::Duration;

use aether::jetstream::{JetStreamConfig, JetStreamStore};
use aether_testkit::nats::{shared_single_node, unique_namespace};
use common::scenarios;

/// Connector of a new handle to a namespace of its own, with the configuration that
/// `cleanup` uses to delete the namespace.
async fn namespace() -> (
    impl Fn() -> std::pin::Pin<Box<dyn Future<Output = JetStreamStore>>>,
    JetStreamConfig,
) {
    let server = shared_single_node().await;
    let config = JetStreamConfig::new(server.urls())
        .namespace(unique_namespace("rt"))
        .request_timeout(Duration::from_secs(5));
    let for_connect = config.clone();
    let connect = move || {
        let config = for_connect.clone();
        Box::pin(async move { JetStreamStore::connect(config).await.unwrap() })
            as std::pin::Pin<Box<dyn Future<Output = JetStreamStore>>>
    };
    (connect, config)
}

async fn cleanup(config: JetStreamConfig) {
    let store = JetStreamStore::connect(config).await.unwrap();
    store.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_restart_from_snapshot() {
    let (connect, config) = namespace().await;
    scenarios::restart_from_snapshot(connect).await;
    cleanup(config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_repeated_command_after_restart() {
    let (connect, config) = namespace().await;
    scenarios::repeated_command_after_restart(connect).await;
    cleanup(config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_two_runtimes_one_actor() {
    let (connect, config) = namespace().await;
    scenarios::two_runtimes_one_actor(connect).await;
    cleanup(config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_follows_other_writer() {
    let (connect, config) = namespace().await;
    scenarios::follows_other_writer(connect).await;
    cleanup(config).await;
}
