//! A server restart in the middle of appends: callers see `Unavailable`, the store recovers on
//! its own, no acknowledged event is lost, and a subscriber that resumes from its checkpoint
//! receives every stored event.
//!
//! The test restarts a private server of its own, so it never cuts the sessions of other tests
//! on the shared server at `DATABASE_URL`, also when test binaries run in parallel.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aether_core::{ErrorKind, EventFilter, EventStore, ExpectedVersion, Position, Version};
use aether_postgres::PostgresConfig;
use aether_testkit::postgres::PrivateServer;
use common::{actor, connect, event, read_everything};
use futures::{StreamExt, TryStreamExt};

const WRITERS: usize = 16;
/// Acknowledged appends before the restart starts.
const ACKS_BEFORE_RESTART: usize = 300;
/// Acknowledged appends each writer must make after the restart, proving recovery.
const ACKS_AFTER_RESTART: usize = 20;
/// Bound on the whole test.
const DEADLINE: Duration = Duration::from_secs(90);

#[derive(Default)]
struct WriterLog {
    /// Payload of every acknowledged event by version.
    acked: BTreeMap<u64, String>,
    unavailable: usize,
    acks_after_restart: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_during_appends_loses_no_acknowledged_event() {
    let server = PrivateServer::start().await;
    let config = PostgresConfig::from_url(server.url())
        .expect("the private server's URL is invalid")
        .schema("restart_test")
        .max_connections(4)
        .acquire_timeout(Duration::from_millis(500));
    let store = connect(config.clone()).await;
    // The subscriber uses a store instance of its own, as another process would.
    let reader = connect(config).await;
    let started = Instant::now();

    // The subscriber stops once it has reached this position (0 while the writers run).
    let target = Arc::new(AtomicU64::new(0));
    let subscriber = tokio::spawn({
        let target = Arc::clone(&target);
        async move {
            let mut seen = Vec::new();
            let mut resumed = 0usize;
            let mut after = Position::START;
            let mut subscription = reader.subscribe(after, EventFilter::all());
            loop {
                assert!(
                    started.elapsed() < DEADLINE,
                    "the subscriber did not catch up in time"
                );
                let goal = target.load(Ordering::SeqCst);
                if goal > 0 && after.get() >= goal {
                    return (seen, resumed);
                }
                match tokio::time::timeout(Duration::from_millis(200), subscription.next()).await {
                    Err(_) => {}
                    Ok(Some(Ok(e))) => {
                        assert!(e.position > after, "subscription went back from {after:?}");
                        after = e.position;
                        seen.push(e.position);
                    }
                    Ok(Some(Err(err))) => {
                        assert_eq!(
                            err.kind(),
                            ErrorKind::Unavailable,
                            "subscription failed: {err:?}"
                        );
                        // Resume from the checkpoint, as a consumer would.
                        resumed += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        subscription = reader.subscribe(after, EventFilter::all());
                    }
                    Ok(None) => panic!("the subscription ended"),
                }
            }
        }
    });

    let acks = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let acks = Arc::clone(&acks);
        let restarted = Arc::clone(&restarted);
        writers.push(tokio::spawn(async move {
            let actor = actor(format!("w{w}"));
            let mut log = WriterLog::default();
            let mut version = Version::ZERO;
            let mut n = 0u64;
            while log.acks_after_restart < ACKS_AFTER_RESTART {
                assert!(
                    started.elapsed() < DEADLINE,
                    "{actor} did not recover in time"
                );
                n += 1;
                let payload = format!("{w}-{n}");
                let after_restart = restarted.load(Ordering::SeqCst);
                match store
                    .append(
                        &actor,
                        ExpectedVersion::Exact(version),
                        vec![event(payload.clone())],
                    )
                    .await
                {
                    Ok(outcome) => {
                        version = outcome.version;
                        log.acked.insert(version.get(), payload);
                        acks.fetch_add(1, Ordering::SeqCst);
                        if after_restart {
                            log.acks_after_restart += 1;
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::Unavailable => {
                        log.unavailable += 1;
                        // The append may or may not have been committed, so read the version
                        // from the store once it responds again.
                        version = loop {
                            assert!(
                                started.elapsed() < DEADLINE,
                                "{actor} did not recover in time"
                            );
                            match store.head(&actor).await {
                                Ok(head) => break head,
                                Err(err) if err.kind() == ErrorKind::Unavailable => {
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                                Err(err) => panic!(
                                    "head of {actor} failed with a non-retryable error: {err:?}"
                                ),
                            }
                        };
                    }
                    Err(err) => panic!("append to {actor} failed with {:?}: {err:?}", err.kind()),
                }
            }
            (actor, log)
        }));
    }

    // Restart once enough appends are acknowledged.
    while acks.load(Ordering::SeqCst) < ACKS_BEFORE_RESTART {
        assert!(
            started.elapsed() < DEADLINE,
            "writers did not reach {ACKS_BEFORE_RESTART} acks"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Two seconds down is well over the 500 ms acquire timeout, so appends in that window
    // must fail with Unavailable instead of waiting the outage out.
    let old_pid = server.postmaster_pid();
    let took = server.restart(Duration::from_secs(2)).await;
    assert_ne!(
        server.postmaster_pid(),
        old_pid,
        "the restart kept the old postmaster"
    );
    restarted.store(true, Ordering::SeqCst);
    eprintln!("server restarted in {took:?}");

    let mut unavailable = 0;
    for writer in writers {
        let (actor, log) = tokio::time::timeout(DEADLINE, writer)
            .await
            .unwrap()
            .unwrap();
        unavailable += log.unavailable;

        // Every acknowledged event is stored with its payload, and versions have no gaps.
        let stored: Vec<_> = store
            .read(&actor, Version::new(1))
            .try_collect()
            .await
            .unwrap();
        for (i, e) in stored.iter().enumerate() {
            assert_eq!(
                e.version,
                Version::new(i as u64 + 1),
                "{actor} has a version gap"
            );
        }
        for (version, payload) in &log.acked {
            let e = stored
                .get(*version as usize - 1)
                .unwrap_or_else(|| panic!("acknowledged {actor} version {version} was lost"));
            assert_eq!(
                e.payload,
                payload.as_bytes(),
                "{actor} version {version} changed"
            );
        }
    }
    assert!(
        unavailable > 0,
        "no append saw Unavailable during the restart"
    );
    eprintln!("appends that saw Unavailable: {unavailable}");

    // The subscriber, resuming after errors, receives every stored event once.
    let stored: Vec<Position> = read_everything(&store)
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    let last = stored.last().expect("no events stored").get();
    target.store(last, Ordering::SeqCst);
    let (seen, resumed) = tokio::time::timeout(DEADLINE, subscriber)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, stored, "the subscriber missed or repeated events");
    eprintln!("subscription resumed {resumed} times");

    store.close().await;
    server.stop().await;
}
