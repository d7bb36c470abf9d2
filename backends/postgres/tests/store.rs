//! Behaviour specific to the PostgreSQL store: several instances on one schema, group commit,
//! transactions of the caller, corrupt rows and unreachable servers.
//!
//! Needs a server: `eval "$(scripts/postgres.sh start)"` sets `DATABASE_URL`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aether_core::{
    ErrorKind, EventFilter, EventMetadata, EventStore, ExpectedVersion, Position, StoreError,
    Version,
};
use aether_postgres::{PostgresConfig, PostgresStore};
use common::{WAIT, actor, connect, event, read_everything, schema_and_config};
use futures::TryStreamExt;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_appends_from_two_instances_have_one_winner() {
    let (_schema, config) = schema_and_config().await;
    let a = connect(config.clone()).await;
    let b = connect(config).await;

    for round in 0..20 {
        let target = actor(format!("race-{round}"));
        let (left, right) = tokio::join!(
            a.append(&target, ExpectedVersion::NoEvents, vec![event("a")]),
            b.append(&target, ExpectedVersion::NoEvents, vec![event("b")]),
        );
        let (winner, loser) = match (left, right) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("round {round}: expected one winner, got {other:?}"),
        };
        assert_eq!(winner.version, Version::new(1));
        match loser {
            StoreError::Conflict {
                actual, expected, ..
            } => {
                assert_eq!(
                    actual,
                    Version::new(1),
                    "round {round}: conflict names the real version"
                );
                assert_eq!(expected, ExpectedVersion::NoEvents);
            }
            other => panic!("round {round}: the loser got {other:?} instead of a conflict"),
        }
        assert_eq!(a.head(&target).await.unwrap(), Version::new(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_writing_one_actor_keep_versions_dense() {
    const WRITERS: usize = 6;
    const SUCCESSES_PER_WRITER: usize = 15;

    let (_schema, config) = schema_and_config().await;
    let stores = [connect(config.clone()).await, connect(config).await];
    let target = actor("shared");

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = stores[w % 2].clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            let mut successes = 0;
            let mut version = store.head(&target).await.unwrap();
            for _ in 0..10_000 {
                if successes == SUCCESSES_PER_WRITER {
                    return conflicts;
                }
                match store
                    .append(
                        &target,
                        ExpectedVersion::Exact(version),
                        vec![event(format!("{w}"))],
                    )
                    .await
                {
                    Ok(outcome) => {
                        assert_eq!(outcome.first_version, version.next());
                        version = outcome.version;
                        successes += 1;
                    }
                    Err(StoreError::Conflict { actual, .. }) => {
                        assert!(
                            actual > version,
                            "a conflict reported {actual}, not above {version}"
                        );
                        version = actual;
                        conflicts += 1;
                    }
                    Err(err) => panic!("writer {w}: {err:?}"),
                }
            }
            panic!("writer {w} did not finish within its attempt bound");
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    }

    let events: Vec<_> = stores[0]
        .read(&target, Version::ZERO)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events.len(), WRITERS * SUCCESSES_PER_WRITER);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.version, Version::new(i as u64 + 1));
    }
    assert!(
        conflicts > 0,
        "the writers never raced, so the test proved nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_transactions() {
    const ACTORS: usize = 256;

    let (_schema, config) = schema_and_config().await;
    let store = connect(config).await;

    let mut tasks = Vec::new();
    for a in 0..ACTORS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(
                    &actor(format!("g{a}")),
                    ExpectedVersion::NoEvents,
                    vec![event("x")],
                )
                .await
                .unwrap()
        }));
    }
    let mut positions = BTreeSet::new();
    for task in tasks {
        positions.insert(task.await.unwrap().position);
    }
    assert_eq!(positions.len(), ACTORS);

    // Events of one transaction share its start time, so the number of distinct times counts
    // the transactions.
    let transactions: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT recorded_at) FROM aether_events")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(
        transactions < (ACTORS / 4) as i64,
        "{ACTORS} concurrent appends took {transactions} transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflict_in_batch_does_not_fail_others() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config).await;
    for a in 0..50 {
        store
            .append(
                &actor(format!("c{a}")),
                ExpectedVersion::NoEvents,
                vec![event("1")],
            )
            .await
            .unwrap();
    }

    // Every even actor gets a stale expectation, and all appends run at once.
    let mut tasks = Vec::new();
    for a in 0..50 {
        let store = store.clone();
        let expected = if a % 2 == 0 {
            ExpectedVersion::NoEvents
        } else {
            ExpectedVersion::Exact(Version::new(1))
        };
        tasks.push(tokio::spawn(async move {
            store
                .append(&actor(format!("c{a}")), expected, vec![event("2")])
                .await
        }));
    }
    for (a, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        if a % 2 == 0 {
            match result {
                Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, Version::new(1)),
                other => panic!("c{a}: expected a conflict, got {other:?}"),
            }
        } else {
            assert_eq!(result.unwrap().version, Version::new(2), "c{a}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_actor_appends_queue_in_order() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config).await;
    let target = actor("any");

    // Many appends with no expectation for the same actor, queued together.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(
                    &target,
                    ExpectedVersion::Any,
                    vec![event(format!("{i}")), event("b")],
                )
                .await
        }));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert_eq!(outcome.version.get(), outcome.first_version.get() + 1);
        versions.insert(outcome.version.get());
    }
    assert_eq!(versions.len(), 40);
    assert_eq!(store.head(&target).await.unwrap(), Version::new(80));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caller_transaction_commits_events_with_its_own_writes() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config).await;
    sqlx::query("CREATE TABLE read_model (id int PRIMARY KEY)")
        .execute(store.pool())
        .await
        .unwrap();
    let target = actor("tx");

    // A conflict leaves the transaction usable.
    let mut tx = store.begin().await.unwrap();
    let conflict = store
        .append_in_transaction(
            &mut tx,
            &target,
            ExpectedVersion::Exact(Version::new(3)),
            vec![event("x")],
        )
        .await
        .unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict);
    store
        .append_in_transaction(
            &mut tx,
            &target,
            ExpectedVersion::NoEvents,
            vec![event("x")],
        )
        .await
        .unwrap();
    sqlx::query("INSERT INTO read_model VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.head(&target).await.unwrap(), Version::ZERO);
    assert!(read_everything(&store).await.is_empty());

    let mut tx = store.begin().await.unwrap();
    let outcome = store
        .append_in_transaction(
            &mut tx,
            &target,
            ExpectedVersion::NoEvents,
            vec![event("x")],
        )
        .await
        .unwrap();
    sqlx::query("INSERT INTO read_model VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(outcome.version, Version::new(1));
    assert_eq!(store.head(&target).await.unwrap(), Version::new(1));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM read_model")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nul_in_text_fields_is_invalid_input() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config).await;
    let target = actor("nul");

    let bad_type = aether_core::NewEvent::new("Bad\0Type", "x");
    let err = store
        .append(&target, ExpectedVersion::Any, vec![bad_type])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let bad_meta = event("x").with_metadata(EventMetadata::now().with_command_id("c\0"));
    let err = store
        .append(&target, ExpectedVersion::Any, vec![bad_meta])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(store.head(&target).await.unwrap(), Version::ZERO);

    // NUL in ids and payloads is fine.
    let nul_id = common::actor("a\0b");
    store
        .append(&nul_id, ExpectedVersion::NoEvents, vec![event("p\0q")])
        .await
        .unwrap();
    let stored = read_everything(&store).await;
    assert_eq!(stored[0].actor, nul_id);
    assert_eq!(stored[0].payload, "p\0q");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_rows_are_reported() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config).await;
    store
        .append(&actor("good"), ExpectedVersion::NoEvents, vec![event("x")])
        .await
        .unwrap();

    // Rows written behind the store's back: an invalid kind, then an id that is not UTF-8.
    for (kind, id) in [("Not A Kind", &b"x"[..]), ("test", &[0xff, 0xfe][..])] {
        let mut tx = store.pool().begin().await.unwrap();
        sqlx::query(
            "INSERT INTO aether_events (actor_kind, actor_id, version, event_type, schema_version, \
             payload, occurred_at) VALUES ($1, $2, 1, 'T', 1, '', now())",
        )
        .bind(kind)
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let result: Result<Vec<_>, _> = store
            .read_all(Position::START, EventFilter::all())
            .try_collect()
            .await;
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        sqlx::query("DELETE FROM aether_events WHERE actor_kind = $1 AND actor_id = $2")
            .bind(kind)
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
    }

    // A snapshot with an out-of-range schema version cannot be inserted (the table checks it),
    // but a negative snapshot version can be forced by dropping the check.
    sqlx::query("ALTER TABLE aether_snapshots DROP CONSTRAINT aether_snapshots_version_check")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO aether_snapshots (actor_kind, actor_id, version, schema_version, state, taken_at) \
         VALUES ('test', 'good', -1, 1, '', now())",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let err = aether_core::Snapshotter::load_snapshot(&store, &actor("good"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_unavailable() {
    // Port 1 on the loopback address has no listener, so connecting is refused.
    let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1:1/postgres")
        .unwrap()
        .acquire_timeout(Duration::from_millis(300));
    let err = PostgresStore::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    // The pool reports only its timeout; the message also gives the cause.
    let message = aether_core::ErrorChain(&err).to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(message.contains("acquire timeout of 300ms"), "{message}");
    assert!(message.contains("refused"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schema_name_is_rejected() {
    let url = aether_testkit::postgres::database_url();
    let config = PostgresConfig::from_url(&url)
        .unwrap()
        .schema("Robert'); DROP TABLE x;--");
    let err = PostgresStore::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    let message = format!("{:?}", std::error::Error::source(&err));
    assert!(message.contains("InvalidSchema"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_twice_runs_migrations_once() {
    let (_schema, config) = schema_and_config().await;
    let first = connect(config.clone()).await;
    first
        .append(&actor("m"), ExpectedVersion::NoEvents, vec![event("x")])
        .await
        .unwrap();
    let second = connect(config).await;
    assert_eq!(second.head(&actor("m")).await.unwrap(), Version::new(1));
    let applied: i64 = sqlx::query("SELECT count(*) FROM _aether_migrations")
        .fetch_one(second.pool())
        .await
        .unwrap()
        .get(0);
    let embedded = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!(applied, embedded as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_sees_appends_of_another_instance() {
    let (_schema, config) = schema_and_config().await;
    // A long poll interval, so only the notification can deliver in time.
    let reader = connect(config.clone().poll_interval(Duration::from_secs(600))).await;
    let writer = connect(config).await;
    let mut subscription = reader.subscribe(Position::START, EventFilter::all());
    // Let the reader's LISTEN start before the append.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for i in 0..5u64 {
        writer
            .append(
                &actor("n"),
                ExpectedVersion::Exact(Version::new(i)),
                vec![event("x")],
            )
            .await
            .unwrap();
        let delivered = tokio::time::timeout(
            Duration::from_secs(5),
            futures::StreamExt::next(&mut subscription),
        )
        .await
        .expect("the notification did not wake the subscriber")
        .unwrap()
        .unwrap();
        assert_eq!(delivered.version, Version::new(i + 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unique_violation_is_conflict_and_isolated() {
    let (_schema, config) = schema_and_config().await;
    let store = connect(config).await;

    // An event written behind the store's back, without a heads row, so the store's own check
    // passes and the insert hits the unique key instead.
    sqlx::query(
        "INSERT INTO aether_events (actor_kind, actor_id, version, event_type, schema_version, \
         payload, occurred_at) VALUES ('test', 'orphan', 1, 'T', 1, '', now())",
    )
    .execute(store.pool())
    .await
    .unwrap();

    let mut tasks = Vec::new();
    for a in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(
                    &actor(format!("ok{a}")),
                    ExpectedVersion::NoEvents,
                    vec![event("x")],
                )
                .await
        }));
    }
    let orphan = store
        .append(
            &actor("orphan"),
            ExpectedVersion::NoEvents,
            vec![event("x")],
        )
        .await;
    match orphan {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, Version::new(1)),
        other => panic!("expected a conflict from the unique key, got {other:?}"),
    }
    for (a, task) in tasks.into_iter().enumerate() {
        let outcome = task
            .await
            .unwrap()
            .unwrap_or_else(|err| panic!("ok{a}: {err:?}"));
        assert_eq!(outcome.version, Version::new(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_options_reach_the_session() {
    let schema = aether_testkit::postgres::TestSchema::create().await;
    let url = format!("{}?options=-c%20statement_timeout%3D30s", schema.url());
    let config = PostgresConfig::from_url(&url)
        .unwrap()
        .schema(schema.name());
    let store = connect(config).await;
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(timeout, "30s");
    // The store's own search_path option is kept beside the URL's.
    let search_path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(search_path, schema.name());
}
