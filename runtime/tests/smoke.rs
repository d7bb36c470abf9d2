//! A first end-to-end check of the command path on the memory store.

mod common;

use aether::{MemoryStore, Runtime};
use common::{Counter, CounterCommand, counter, stored_versions};

#[tokio::test]
async fn ask_stores_and_replies() {
    let store = MemoryStore::new();
    let runtime = Runtime::builder(store.clone())
        .register::<Counter>()
        .build()
        .unwrap();
    for expected in 1..=5 {
        let reply = runtime
            .ask::<Counter>("a", CounterCommand::Add)
            .await
            .unwrap();
        assert_eq!(reply, expected);
    }
    assert_eq!(
        stored_versions(&store, &counter("a")).await,
        vec![1, 2, 3, 4, 5]
    );
    runtime.shutdown().await;
}
