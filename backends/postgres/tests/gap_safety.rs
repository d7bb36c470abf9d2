//! Readers never skip an event whose transaction commits after a later-numbered one was read.
//!
//! Needs a server: `eval "$(scripts/postgres.sh start)"` sets `DATABASE_URL`.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aether_core::{EventFilter, EventStore, ExpectedVersion, Position, Version};
use common::{WAIT, actor, connect, event, read_everything, schema_and_config};
use futures::{StreamExt, TryStreamExt};

/// How long the tests watch a blocked append to make sure it stays blocked.
const HOLD: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_position_blocks_later_commit_until_commit() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config.clone()).await;
    // A second store instance stands for another process writing the same schema.
    let other = connect(config).await;

    // Take a position in a transaction that stays open.
    let mut tx = store.begin().await.unwrap();
    let held = store
        .append_in_transaction(
            &mut tx,
            &actor("early"),
            ExpectedVersion::NoEvents,
            vec![event("early")],
        )
        .await
        .unwrap();

    // A later append, from another store instance, must not commit ahead of the held position.
    let later = tokio::spawn({
        let other = other.clone();
        async move {
            other
                .append(
                    &actor("late"),
                    ExpectedVersion::NoEvents,
                    vec![event("late")],
                )
                .await
        }
    });
    tokio::time::sleep(HOLD).await;
    assert!(
        !later.is_finished(),
        "a later append committed while a lower position was open"
    );
    assert!(
        read_everything(&store).await.is_empty(),
        "read_all returned events while a lower position was still open"
    );

    // Once the held transaction commits, both appear in position order.
    tx.commit().await.unwrap();
    let later = tokio::time::timeout(WAIT, later)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        later.position > held.position,
        "{later:?} is not after {held:?}"
    );
    let events = read_everything(&other).await;
    let payloads: Vec<_> = events.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(payloads, vec!["early", "late"]);
    assert_eq!(events[0].position, held.position);
    assert_eq!(events[1].position, later.position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_position_blocks_later_commit_until_rollback() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config.clone()).await;
    let other = connect(config).await;

    let mut tx = store.begin().await.unwrap();
    let held = store
        .append_in_transaction(
            &mut tx,
            &actor("early"),
            ExpectedVersion::NoEvents,
            vec![event("early")],
        )
        .await
        .unwrap();
    let later = tokio::spawn({
        let other = other.clone();
        async move {
            other
                .append(
                    &actor("late"),
                    ExpectedVersion::NoEvents,
                    vec![event("late")],
                )
                .await
        }
    });
    tokio::time::sleep(HOLD).await;
    assert!(
        !later.is_finished(),
        "a later append committed while a lower position was open"
    );
    assert!(read_everything(&store).await.is_empty());

    // The rolled-back position leaves a gap that readers step over.
    tx.rollback().await.unwrap();
    let later = tokio::time::timeout(WAIT, later)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(later.position > held.position);
    let events = read_everything(&store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload, "late");
    assert_eq!(store.head(&actor("early")).await.unwrap(), Version::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriber_waits_for_held_position() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config.clone()).await;
    let other = connect(config).await;
    let mut subscription = other.subscribe(Position::START, EventFilter::all());

    let mut tx = store.begin().await.unwrap();
    store
        .append_in_transaction(
            &mut tx,
            &actor("early"),
            ExpectedVersion::NoEvents,
            vec![event("early")],
        )
        .await
        .unwrap();
    let later = tokio::spawn({
        let other = other.clone();
        async move {
            other
                .append(
                    &actor("late"),
                    ExpectedVersion::NoEvents,
                    vec![event("late")],
                )
                .await
        }
    });
    let early_delivery = tokio::time::timeout(HOLD, subscription.next()).await;
    assert!(
        early_delivery.is_err(),
        "subscriber got {early_delivery:?} while a lower position was open"
    );

    tx.commit().await.unwrap();
    tokio::time::timeout(WAIT, later)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = tokio::time::timeout(WAIT, subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(WAIT, subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.payload, "early");
    assert_eq!(second.payload, "late");
    assert!(first.position < second.position);
}

/// Many writers in two store instances append while a reader tails the log by resuming after the
/// last position it saw. At the end the tailer must have seen exactly the events a full read
/// returns: a skipped position would be missing from its set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tailing_reader_sees_every_event() {
    const WRITERS_PER_STORE: usize = 8;
    const APPENDS_PER_WRITER: usize = 40;

    let (_schema, config) = schema_and_config().await;
    let stores = [connect(config.clone()).await, connect(config).await];

    let done = Arc::new(AtomicBool::new(false));
    let tailer = tokio::spawn({
        let store = stores[0].clone();
        let done = Arc::clone(&done);
        async move {
            let mut seen = Vec::new();
            let mut after = Position::START;
            for _ in 0..100_000 {
                let finished = done.load(Ordering::SeqCst);
                let page: Vec<_> = store
                    .read_all(after, EventFilter::all())
                    .try_collect()
                    .await
                    .unwrap();
                for event in page {
                    assert!(event.position > after, "read_all went back from {after:?}");
                    after = event.position;
                    seen.push(event.position);
                }
                if finished {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            panic!("the tailer did not finish within its iteration bound");
        }
    });

    let mut writers = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for w in 0..WRITERS_PER_STORE {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let actor = actor(format!("writer-{s}-{w}"));
                for i in 0..APPENDS_PER_WRITER {
                    store
                        .append(
                            &actor,
                            ExpectedVersion::Exact(Version::new(i as u64)),
                            vec![event("x")],
                        )
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for writer in writers {
        tokio::time::timeout(WAIT, writer).await.unwrap().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = tokio::time::timeout(WAIT, tailer).await.unwrap().unwrap();

    let all: Vec<Position> = read_everything(&stores[1])
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(all.len(), 2 * WRITERS_PER_STORE * APPENDS_PER_WRITER);
    let seen_set: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(
        seen_set.len(),
        seen.len(),
        "the tailer saw a position twice"
    );
    let missed: Vec<_> = all.iter().filter(|p| !seen_set.contains(p)).collect();
    assert!(missed.is_empty(), "the tailer skipped positions {missed:?}");
}
