//! Store factories shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use aether_jetstream::{JetStreamConfig, JetStreamStore};
use aether_testkit::Fixture;
use aether_testkit::nats::{NatsServer, unique_namespace};

/// Connects a store to `server` in a namespace of its own, retrying while a fresh cluster
/// still elects its meta leader.
pub async fn connect(server: &NatsServer, replicas: usize) -> JetStreamStore {
    let config = JetStreamConfig::new(server.urls())
        .namespace(unique_namespace("t"))
        .replicas(replicas)
        .request_timeout(Duration::from_secs(5));
    connect_with(config).await
}

/// Connects with `config`, retrying for up to 30 seconds while the server is not ready.
pub async fn connect_with(config: JetStreamConfig) -> JetStreamStore {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match JetStreamStore::connect(config.clone()).await {
            Ok(store) => return store,
            Err(err) if tokio::time::Instant::now() < deadline => {
                eprintln!("connect to JetStream failed, retrying: {err}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => panic!("failed to connect to JetStream: {err:?}"),
        }
    }
}

/// Keeps the server alive while a case runs and deletes the case's namespace afterwards.
pub struct NamespaceGuard {
    store: JetStreamStore,
    _server: Arc<NatsServer>,
}

impl NamespaceGuard {
    pub fn new(store: JetStreamStore, server: Arc<NatsServer>) -> Self {
        Self {
            store,
            _server: server,
        }
    }
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        // Deleting needs the runtime; the conformance cases run on a multi-threaded one.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        let store = self.store.clone();
        let result = tokio::task::block_in_place(|| {
            handle.block_on(tokio::time::timeout(
                Duration::from_secs(10),
                store.delete_namespace(),
            ))
        });
        if let Ok(Err(err)) = result {
            eprintln!(
                "failed to delete namespace {}: {err}",
                self.store.stream_name()
            );
        }
    }
}

/// Connects a fresh store to `server` and wraps it for the conformance suite.
pub async fn fixture(server: Arc<NatsServer>, replicas: usize) -> Fixture<JetStreamStore> {
    let store = connect(&server, replicas).await;
    let guard = NamespaceGuard::new(store.clone(), server);
    Fixture::new(store).with_guard(guard)
}
