//! The runtime over the durable sled store, with real restarts: the store is closed and opened
//! again from its folder between runtimes.

#![cfg(feature = "sled")]

mod common;

use std::path::Path;
use std::time::Duration;

use aether::sled::SledStore;
use aether::{CommandOptions, Runtime, Snapshotter};
use common::{Counter, CounterCommand, counter, stored_versions};

fn open(path: &Path) -> SledStore {
    SledStore::open(path).unwrap()
}

fn runtime(store: &SledStore, snapshot_every: Option<u64>) -> Runtime<SledStore> {
    Runtime::builder(store.clone())
        .snapshot_every(snapshot_every)
        .snapshot_on_stop(false)
        .register::<Counter>()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replays_snapshot_and_events() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let first = runtime(&store, Some(4));
        for _ in 0..6 {
            first
                .ask::<Counter>("c", CounterCommand::Add)
                .await
                .unwrap();
        }
        first.shutdown().await;
        let snapshot = store.load_snapshot(&counter("c")).await.unwrap().unwrap();
        assert_eq!(snapshot.version.get(), 4);
    }

    let store = open(dir.path());
    let second = runtime(&store, None);
    let (state, version) = second.state::<Counter>("c").await.unwrap();
    assert_eq!(state, 6);
    assert_eq!(version.get(), 6);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_command_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = CommandOptions::with_command_id("order-17");
    {
        let store = open(dir.path());
        let first = runtime(&store, None);
        let reply = first
            .ask_with::<Counter>("i", CounterCommand::AddMany(2), options.clone())
            .await
            .unwrap();
        assert_eq!(reply, 2);
        first.shutdown().await;
    }

    let store = open(dir.path());
    let second = runtime(&store, None);
    second
        .ask::<Counter>("i", CounterCommand::Add)
        .await
        .unwrap();
    let again = second
        .ask_with::<Counter>("i", CounterCommand::AddMany(2), options)
        .await
        .unwrap();
    assert_eq!(again, 2, "the original reply");
    assert_eq!(stored_versions(&store, &counter("i")).await, vec![1, 2, 3]);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_share_a_sled_actor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let build = || {
        Runtime::builder(store.clone())
            .max_conflict_retries(1000)
            .register::<Counter>()
            .build()
            .unwrap()
    };
    let (left, right) = (build(), build());
    let run = |runtime: Runtime<SledStore>| async move {
        for _ in 0..100 {
            runtime
                .ask::<Counter>("shared", CounterCommand::Add)
                .await
                .unwrap();
        }
        runtime
    };
    let (left, right) = tokio::join!(tokio::spawn(run(left)), tokio::spawn(run(right)));
    let (left, right) = (left.unwrap(), right.unwrap());
    assert_eq!(
        stored_versions(&store, &counter("shared")).await,
        (1..=200).collect::<Vec<_>>()
    );
    left.shutdown().await;
    right.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivation_race_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let runtime = Runtime::builder(store.clone())
        .idle_timeout(Duration::from_millis(5))
        .snapshot_every(Some(10))
        .register::<Counter>()
        .build()
        .unwrap();
    let mut replies = Vec::new();
    for i in 0..300u64 {
        if i % 3 == 0 {
            tokio::time::sleep(Duration::from_micros(4000 + (i * 37) % 2500)).await;
        }
        replies.push(
            runtime
                .ask::<Counter>("race", CounterCommand::Add)
                .await
                .unwrap(),
        );
    }
    let expected: Vec<u64> = (1..=300).collect();
    assert_eq!(replies, expected);
    assert_eq!(stored_versions(&store, &counter("race")).await, expected);
    runtime.shutdown().await;
}
