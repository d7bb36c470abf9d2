//! Replay from snapshots and events: the counter scenarios.

mod common;

use aether::{MemoryStore, Runtime, Snapshotter};
use common::{Counter, CounterCommand, counter};

async fn add(runtime: &Runtime<MemoryStore>, id: &str, times: u64) {
    for _ in 0..times {
        runtime
            .ask::<Counter>(id, CounterCommand::Add)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn snapshot_at_four_then_two_events_restarts_at_six() {
    let store = MemoryStore::new();
    let first = Runtime::builder(store.clone())
        .snapshot_every(Some(4))
        .snapshot_on_stop(false)
        .register::<Counter>()
        .build()
        .unwrap();
    add(&first, "c", 6).await;
    first.shutdown().await;
    let snapshot = store.load_snapshot(&counter("c")).await.unwrap().unwrap();
    assert_eq!(snapshot.version.get(), 4, "snapshot taken after event 4");

    let second = Runtime::builder(store.clone())
        .register::<Counter>()
        .build()
        .unwrap();
    let (state, version) = second.state::<Counter>("c").await.unwrap();
    assert_eq!(state, 6);
    assert_eq!(version.get(), 6);
    second.shutdown().await;
}

#[tokio::test]
async fn snapshot_at_four_plus_one_event_is_five() {
    let store = MemoryStore::new();
    let first = Runtime::builder(store.clone())
        .snapshot_every(Some(4))
        .snapshot_on_stop(false)
        .register::<Counter>()
        .build()
        .unwrap();
    add(&first, "c", 5).await;
    first.shutdown().await;

    let second = Runtime::builder(store.clone())
        .register::<Counter>()
        .build()
        .unwrap();
    assert_eq!(second.state::<Counter>("c").await.unwrap().0, 5);
    second.shutdown().await;
}

#[tokio::test]
async fn replay_in_pages_of_two_reaches_thirteen() {
    // Four events before the snapshot and nine after it, read back two at a time.
    let store = MemoryStore::new().with_page_size(2);
    let first = Runtime::builder(store.clone())
        .snapshot_every(Some(4))
        .snapshot_on_stop(false)
        .register::<Counter>()
        .build()
        .unwrap();
    add(&first, "c", 4).await;
    first.shutdown().await;

    let second = Runtime::builder(store.clone())
        .snapshot_every(None)
        .snapshot_on_stop(false)
        .register::<Counter>()
        .build()
        .unwrap();
    add(&second, "c", 9).await;
    second.shutdown().await;
    let snapshot = store.load_snapshot(&counter("c")).await.unwrap().unwrap();
    assert_eq!(snapshot.version.get(), 4);

    let third = Runtime::builder(store.clone())
        .register::<Counter>()
        .build()
        .unwrap();
    let (state, version) = third.state::<Counter>("c").await.unwrap();
    assert_eq!(state, 13);
    assert_eq!(version.get(), 13);
    third.shutdown().await;
}

#[tokio::test]
async fn undecodable_snapshot_is_ignored() {
    let store = MemoryStore::new();
    let first = Runtime::builder(store.clone())
        .snapshot_every(None)
        .register::<Counter>()
        .build()
        .unwrap();
    add(&first, "c", 3).await;
    first.shutdown().await;

    // Overwrite the snapshot with bytes the state type cannot decode.
    let garbage = aether::core::Snapshot::new(aether::Version::new(3), b"{\"not\":1}".to_vec());
    store.save_snapshot(&counter("c"), garbage).await.unwrap();

    let second = Runtime::builder(store.clone())
        .register::<Counter>()
        .build()
        .unwrap();
    let (state, version) = second.state::<Counter>("c").await.unwrap();
    assert_eq!(state, 3, "state rebuilt from the events");
    assert_eq!(version.get(), 3);
    second.shutdown().await;
}

#[tokio::test]
async fn snapshot_of_old_schema_is_ignored() {
    let store = MemoryStore::new();
    let first = Runtime::builder(store.clone())
        .snapshot_every(Some(2))
        .register::<Counter>()
        .build()
        .unwrap();
    add(&first, "c", 2).await;
    first.shutdown().await;

    let old = store.load_snapshot(&counter("c")).await.unwrap().unwrap();
    let renumbered = old.clone().with_schema_version(99);
    store
        .save_snapshot(&counter("c"), renumbered)
        .await
        .unwrap();

    let second = Runtime::builder(store.clone())
        .register::<Counter>()
        .build()
        .unwrap();
    assert_eq!(second.state::<Counter>("c").await.unwrap().0, 2);
    second.shutdown().await;
}
