//! The aether conformance suite against a single JetStream node.

mod support;

use aether_jetstream::JetStreamStore;
use aether_testkit::Fixture;
use aether_testkit::nats::shared_single_node;

async fn single_node_store() -> Fixture<JetStreamStore> {
    support::fixture(shared_single_node().await, 1).await
}

aether_testkit::conformance_suite!(single_node_store);
