//! Group commit: concurrent appends share flushes, and a rejected request fails alone.

use std::sync::Arc;
use std::time::Duration;

use aether_core::{
    ActorRef, ErrorKind, EventStore, ExpectedVersion, NewEvent, Snapshot, Snapshotter, StoreError,
    StoreLimits, Version,
};
use aether_sled::{FlushMode, SledOptions, SledStore};
use futures::TryStreamExt;
use tokio::sync::Barrier;

fn actor(kind: &str, i: usize) -> ActorRef {
    ActorRef::parse(kind, format!("actor-{i}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_actors_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let actors = 256;
    let start = Arc::new(Barrier::new(actors));

    let tasks: Vec<_> = (0..actors)
        .map(|i| {
            let store = store.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store
                    .append(
                        &actor("shared", i),
                        ExpectedVersion::NoEvents,
                        vec![NewEvent::new("Added", vec![7u8; 150])],
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert_eq!(outcome.version, Version::new(1));
    }

    let stats = store.stats();
    assert_eq!(stats.appends, 256);
    assert!(
        stats.flushes <= 64,
        "256 concurrent appends took {} flushes",
        stats.flushes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejected_requests_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        max_event_bytes: 100,
        ..aether_sled::DEFAULT_LIMITS
    };
    let store = SledOptions::new(dir.path()).limits(limits).open().unwrap();
    let contested = actor("contested", 0);
    store
        .append(
            &contested,
            ExpectedVersion::NoEvents,
            vec![NewEvent::new("Added", "0")],
        )
        .await
        .unwrap();

    // Valid appends, stale expectations, oversized payloads and a snapshot ahead of its events,
    // all released at once so they land in the same batches.
    let requests = 120;
    let start = Arc::new(Barrier::new(requests));
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let store = store.clone();
            let start = start.clone();
            let contested = contested.clone();
            tokio::spawn(async move {
                start.wait().await;
                match i % 4 {
                    0 | 1 => store
                        .append(
                            &actor("valid", i),
                            ExpectedVersion::NoEvents,
                            vec![NewEvent::new("Added", "ok")],
                        )
                        .await
                        .map(|_| ()),
                    2 => store
                        .append(
                            &contested,
                            ExpectedVersion::Exact(Version::new(7)),
                            vec![NewEvent::new("Added", "stale")],
                        )
                        .await
                        .map(|_| ()),
                    _ if i % 8 == 3 => store
                        .append(
                            &actor("valid", i),
                            ExpectedVersion::NoEvents,
                            vec![NewEvent::new("Added", vec![0u8; 101])],
                        )
                        .await
                        .map(|_| ()),
                    _ => store
                        .save_snapshot(&contested, Snapshot::new(Version::new(9), "ahead"))
                        .await
                        .map(|_| ()),
                }
            })
        })
        .collect();

    for (i, task) in tasks.into_iter().enumerate() {
        let result: Result<(), StoreError> = task.await.unwrap();
        match i % 4 {
            0 | 1 => assert!(result.is_ok(), "valid append {i} failed: {result:?}"),
            2 => assert_eq!(result.unwrap_err().kind(), ErrorKind::Conflict),
            _ if i % 8 == 3 => assert_eq!(result.unwrap_err().kind(), ErrorKind::PayloadTooLarge),
            _ => assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidInput),
        }
    }

    // Nothing of the rejected requests was stored.
    assert_eq!(store.head(&contested).await.unwrap(), Version::new(1));
    assert!(store.load_snapshot(&contested).await.unwrap().is_none());
    for i in (0..requests).filter(|i| i % 8 == 3) {
        assert_eq!(store.head(&actor("valid", i)).await.unwrap(), Version::ZERO);
    }
    assert!(store.stats().batches < requests as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_actor_appends_in_one_batch_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let one = actor("chain", 0);
    let writers = 64;
    let start = Arc::new(Barrier::new(writers));

    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let (store, start, one) = (store.clone(), start.clone(), one.clone());
            tokio::spawn(async move {
                start.wait().await;
                store
                    .append(
                        &one,
                        ExpectedVersion::Any,
                        vec![NewEvent::new("Added", format!("{i}"))],
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().version.get());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=writers as u64).collect::<Vec<_>>());

    let events: Vec<_> = store
        .read(&one, Version::new(1))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events.len(), writers);
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_snapshots_keep_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let one = actor("snap", 0);
    store
        .append(
            &one,
            ExpectedVersion::NoEvents,
            (0..20)
                .map(|i| NewEvent::new("Added", format!("{i}")))
                .collect(),
        )
        .await
        .unwrap();

    let tasks: Vec<_> = (1..=20u64)
        .rev()
        .map(|v| {
            let (store, one) = (store.clone(), one.clone());
            tokio::spawn(async move {
                store
                    .save_snapshot(&one, Snapshot::new(Version::new(v), format!("state-{v}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let newest = store.load_snapshot(&one).await.unwrap().unwrap();
    assert_eq!(newest.version, Version::new(20));
    assert_eq!(newest.state, "state-20");
}

#[tokio::test]
async fn periodic_mode_acknowledges_without_flushing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledOptions::new(dir.path())
        .flush_mode(FlushMode::Periodic(Duration::from_millis(50)))
        .open()
        .unwrap();
    let one = actor("periodic", 0);
    for v in 0..10u64 {
        store
            .append(
                &one,
                ExpectedVersion::from(Version::new(v)),
                vec![NewEvent::new("Added", "x")],
            )
            .await
            .unwrap();
    }
    assert_eq!(store.head(&one).await.unwrap(), Version::new(10));
    assert_eq!(store.stats().flushes, 0);
    drop(store);

    // Dropping the last handle flushes, so a clean shutdown keeps everything.
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.head(&one).await.unwrap(), Version::new(10));
}

#[tokio::test]
async fn small_head_cache_still_checks_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledOptions::new(dir.path())
        .head_cache_capacity(2)
        .max_batch(1)
        .open()
        .unwrap();
    for round in 0..3u64 {
        for i in 0..10 {
            store
                .append(
                    &actor("cache", i),
                    ExpectedVersion::from(Version::new(round)),
                    vec![NewEvent::new("Added", "x")],
                )
                .await
                .unwrap();
        }
    }
    let stale = store
        .append(
            &actor("cache", 0),
            ExpectedVersion::Exact(Version::new(2)),
            vec![NewEvent::new("Added", "x")],
        )
        .await
        .unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::Conflict);
}
