//! The aether conformance suite against a three-node JetStream cluster, with the stream and
//! the snapshot bucket replicated three times.

mod support;

use aether_jetstream::JetStreamStore;
use aether_testkit::Fixture;
use aether_testkit::nats::shared_cluster;

async fn cluster_store() -> Fixture<JetStreamStore> {
    support::fixture(shared_cluster().await, 3).await
}

aether_testkit::conformance_suite!(cluster_store);
