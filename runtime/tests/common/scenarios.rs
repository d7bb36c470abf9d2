//! Runtime scenarios that do not depend on the store kind, run against the networked stores.
//! `connect` opens a new handle to the same stored data, which is how a restart looks there.

use std::future::Future;
use std::time::Duration;

use aether::{CommandOptions, EventStore, Runtime, Snapshotter};

use super::{Counter, CounterCommand, counter, stored_versions};

fn runtime<S: EventStore + Snapshotter>(store: S, snapshot_every: Option<u64>) -> Runtime<S> {
    Runtime::builder(store)
        .snapshot_every(snapshot_every)
        .snapshot_on_stop(false)
        .register::<Counter>()
        .build()
        .unwrap()
}

/// Events 1–6 with a snapshot at 4, then a restart on a new handle: state 6.
pub async fn restart_from_snapshot<S, F, Fut>(connect: F)
where
    S: EventStore + Snapshotter + Clone,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = connect().await;
    let first = runtime(store.clone(), Some(4));
    for _ in 0..6 {
        first
            .ask::<Counter>("c", CounterCommand::Add)
            .await
            .unwrap();
    }
    first.shutdown().await;
    let snapshot = store.load_snapshot(&counter("c")).await.unwrap().unwrap();
    assert_eq!(snapshot.version.get(), 4, "snapshot after event 4");

    let second = runtime(connect().await, None);
    let (state, version) = second.state::<Counter>("c").await.unwrap();
    assert_eq!(state, 6);
    assert_eq!(version.get(), 6);
    second.shutdown().await;
}

/// A repeated command id after a restart returns the original reply and stores nothing.
pub async fn repeated_command_after_restart<S, F, Fut>(connect: F)
where
    S: EventStore + Snapshotter + Clone,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let options = CommandOptions::with_command_id("order-17");
    let first = runtime(connect().await, None);
    let reply = first
        .ask_with::<Counter>("i", CounterCommand::AddMany(2), options.clone())
        .await
        .unwrap();
    assert_eq!(reply, 2);
    first.shutdown().await;

    let store = connect().await;
    let second = runtime(store.clone(), None);
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

/// Two runtimes on two handles write one actor: versions stay gapless and every command counts.
pub async fn two_runtimes_one_actor<S, F, Fut>(connect: F)
where
    S: EventStore + Snapshotter + Clone,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let build = |store: S| {
        Runtime::builder(store)
            .max_conflict_retries(1000)
            .register::<Counter>()
            .build()
            .unwrap()
    };
    let reader = connect().await;
    let (left, right) = (build(connect().await), build(connect().await));
    let run = |runtime: Runtime<S>| async move {
        for _ in 0..50 {
            runtime
                .ask::<Counter>("shared", CounterCommand::Add)
                .await
                .unwrap();
        }
        runtime
    };
    let (left, right) = tokio::join!(run(left), run(right));
    assert_eq!(
        stored_versions(&reader, &counter("shared")).await,
        (1..=100).collect::<Vec<_>>()
    );
    left.shutdown().await;
    right.shutdown().await;
}

/// Checks that an active actor applies events another runtime stores, without a command of
/// its own.
pub async fn follows_other_writer<S, F, Fut>(connect: F)
where
    S: EventStore + Snapshotter + Clone,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let build = |store: S, node: &str| {
        Runtime::builder(store)
            .node(node)
            .register::<Counter>()
            .build()
            .unwrap()
    };
    let reader = build(connect().await, "reader");
    let writer = build(connect().await, "writer");
    reader.create_vm::<Counter>("followed").await.unwrap();
    // The follower subscribes from the store's last position in the background.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        writer
            .ask::<Counter>("followed", CounterCommand::Add)
            .await
            .unwrap();
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seen = 0;
    while tokio::time::Instant::now() < deadline {
        seen = reader.state::<Counter>("followed").await.unwrap().0;
        if seen == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 3, "the reader applied the writer's events");
    reader.shutdown().await;
    writer.shutdown().await;
}
