//! Passivation races, concurrent writers and concurrent first messages.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aether::{MemoryStore, Runtime};
use common::{Counter, CounterCommand, Counting, counter, stored_versions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_racing_passivation_each_get_one_reply() {
    let store = MemoryStore::new();
    let runtime = Runtime::builder(store.clone())
        .idle_timeout(Duration::from_millis(5))
        .register::<Counter>()
        .build()
        .unwrap();

    // Pauses around the idle timeout make many commands land while the VM is passivating.
    let mut replies = Vec::with_capacity(1000);
    for i in 0..1000u64 {
        if i % 3 == 0 {
            tokio::time::sleep(Duration::from_micros(4000 + (i * 37) % 2500)).await;
        }
        let reply = runtime
            .ask::<Counter>("race", CounterCommand::Add)
            .await
            .unwrap();
        replies.push(reply);
    }

    let expected: Vec<u64> = (1..=1000).collect();
    assert_eq!(replies, expected, "one reply per command, in order");
    assert_eq!(stored_versions(&store, &counter("race")).await, expected);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_share_one_actor() {
    let store = MemoryStore::new();
    let build = || {
        Runtime::builder(store.clone())
            .max_conflict_retries(1000)
            .register::<Counter>()
            .build()
            .unwrap()
    };
    let (left, right) = (build(), build());

    let run = |runtime: Runtime<MemoryStore>| async move {
        for _ in 0..200 {
            runtime
                .ask::<Counter>("shared", CounterCommand::Add)
                .await
                .unwrap();
        }
        runtime
    };
    let (left, right) = tokio::join!(tokio::spawn(run(left)), tokio::spawn(run(right)));
    let (left, right) = (left.unwrap(), right.unwrap());

    let expected: Vec<u64> = (1..=400).collect();
    assert_eq!(stored_versions(&store, &counter("shared")).await, expected);
    left.shutdown().await;
    right.shutdown().await;

    let fresh = build();
    assert_eq!(fresh.state::<Counter>("shared").await.unwrap().0, 400);
    fresh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_messages_activate_once() {
    let store = Counting::new(MemoryStore::new());
    let runtime = Runtime::builder(store.clone())
        .register::<Counter>()
        .build()
        .unwrap();

    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let runtime = runtime.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                runtime
                    .ask::<Counter>("first", CounterCommand::Add)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies.sort_unstable();

    assert_eq!(replies, (1..=100).collect::<Vec<_>>());
    assert_eq!(store.snapshot_loads(), 1, "exactly one activation");
    assert_eq!(runtime.active_vms(), vec![counter("first")]);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_commands_share_one_append() {
    let store = Counting::new(MemoryStore::new());
    let runtime = Runtime::builder(store.clone())
        .register::<Counter>()
        .build()
        .unwrap();

    // Hold the VM busy with a first command, then queue many more behind it.
    for _ in 0..500 {
        runtime
            .tell::<Counter>("batch", CounterCommand::Add)
            .await
            .unwrap();
    }
    let total = runtime
        .ask::<Counter>("batch", CounterCommand::Get)
        .await
        .unwrap();
    assert_eq!(total, 500);
    assert!(
        store.appends() < 500,
        "{} appends for 500 commands: no batching",
        store.appends()
    );
    assert_eq!(
        stored_versions(&store, &counter("batch")).await,
        (1..=500).collect::<Vec<_>>()
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_recently_used_are_passivated() {
    let runtime = Runtime::builder(MemoryStore::new())
        .max_active(20)
        .register::<Counter>()
        .build()
        .unwrap();
    for i in 0..200 {
        runtime
            .ask::<Counter>(format!("a{i}"), CounterCommand::Add)
            .await
            .unwrap();
    }
    // Passivation runs in the background; give it a bounded time to settle.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while runtime.active_count() > 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        runtime.active_count() <= 20,
        "{} active",
        runtime.active_count()
    );
    assert!(
        runtime.active_vms().contains(&counter("a199")),
        "the most recent actor stays active"
    );
    // A passivated actor comes back with its state.
    assert_eq!(
        runtime
            .ask::<Counter>("a0", CounterCommand::Get)
            .await
            .unwrap(),
        1
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_vm_takes_final_snapshot() {
    use aether::Snapshotter;
    let store = MemoryStore::new();
    let runtime = Runtime::builder(store.clone())
        .snapshot_every(None)
        .register::<Counter>()
        .build()
        .unwrap();
    runtime
        .ask::<Counter>("s", CounterCommand::AddMany(7))
        .await
        .unwrap();
    assert!(runtime.stop_vm::<Counter>("s").await.unwrap());
    assert!(runtime.active_vms().is_empty());
    let snapshot = store.load_snapshot(&counter("s")).await.unwrap().unwrap();
    assert_eq!(snapshot.version.get(), 7);
    assert!(
        !runtime.stop_vm::<Counter>("s").await.unwrap(),
        "already stopped"
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_actor_follows_other_writer() {
    let store = Counting::new(MemoryStore::new());
    let reader = Runtime::builder(store.clone())
        .node("reader")
        .register::<Counter>()
        .build()
        .unwrap();
    let writer = Runtime::builder(store.clone())
        .node("writer")
        .register::<Counter>()
        .build()
        .unwrap();

    assert_eq!(
        reader.create_vm::<Counter>("followed").await.unwrap().get(),
        0
    );
    for _ in 0..3 {
        writer
            .ask::<Counter>("followed", CounterCommand::Add)
            .await
            .unwrap();
    }

    // The reader issues no command: the events reach it through its store subscription.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    while tokio::time::Instant::now() < deadline {
        seen = reader.state::<Counter>("followed").await.unwrap().0;
        if seen == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, 3, "the reader applied the writer's events");
    let appends_before = store.appends();
    assert_eq!(
        reader
            .ask::<Counter>("followed", CounterCommand::Add)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store.appends(),
        appends_before + 1,
        "no conflict: one append"
    );
    reader.shutdown().await;
    writer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_following_a_conflict_catches_up() {
    let store = Counting::new(MemoryStore::new());
    let build = |node: &str| {
        Runtime::builder(store.clone())
            .node(node)
            .follow_store(false)
            .register::<Counter>()
            .build()
            .unwrap()
    };
    let (reader, writer) = (build("reader"), build("writer"));
    reader.create_vm::<Counter>("stale").await.unwrap();
    writer
        .ask::<Counter>("stale", CounterCommand::AddMany(2))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        reader.state::<Counter>("stale").await.unwrap().0,
        0,
        "not followed"
    );

    let appends_before = store.appends();
    assert_eq!(
        reader
            .ask::<Counter>("stale", CounterCommand::Add)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store.appends(),
        appends_before + 2,
        "one conflict, then one append"
    );
    reader.shutdown().await;
    writer.shutdown().await;
}
