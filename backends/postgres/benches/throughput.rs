//! Throughput of the PostgreSQL store beside raw sqlx on the same server, in one run.
//!
//! ```text
//! eval "$(scripts/postgres.sh start)"
//! cargo bench -p aether-postgres --bench throughput            # under a minute
//! cargo bench -p aether-postgres --bench throughput -- --quick # a few seconds
//! ```
//!
//! Prints a markdown table. The raw workloads write to `raw_events`, a copy of `aether_events`
//! with the same columns, identity and indexes, in the same schema, so the ratios show what the
//! store's version checks, heads table and position lock cost. Compare figures within one run
//! only: the server, the disk and other load on the machine change them between runs.

use std::time::{Duration, Instant};

use aether_core::{ActorRef, EventStore, ExpectedVersion, NewEvent, Version};
use aether_postgres::{PostgresConfig, PostgresStore};
use aether_testkit::postgres::TestSchema;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use sqlx::{PgPool, Postgres, QueryBuilder};

const PAYLOAD_BYTES: usize = 100;
const ACTORS: usize = 256;
const BATCH_ROWS: usize = 100;
const POOL_SIZE: u32 = 10;

/// Each replay is measured this many times, store and raw in turns; the median counts.
const REPLAY_RUNS: usize = 5;

/// Sizes of one run.
struct Sizes {
    appends_per_actor: usize,
    serial_rows: usize,
    parallel_rows: usize,
    batched_rows: usize,
    replay_events: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            appends_per_actor: 400,
            serial_rows: 1_000,
            parallel_rows: 4_000,
            batched_rows: 100_000,
            replay_events: 100_000,
        }
    }

    fn quick() -> Self {
        Self {
            appends_per_actor: 20,
            serial_rows: 200,
            parallel_rows: 500,
            batched_rows: 10_000,
            replay_events: 10_000,
        }
    }
}

struct Measurement {
    workload: String,
    events: usize,
    elapsed: Duration,
}

impl Measurement {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot build the Tokio runtime");
    runtime.block_on(run(sizes));
}

async fn run(sizes: Sizes) {
    let schema = TestSchema::create().await;
    let config = PostgresConfig::from_url(schema.url())
        .expect("DATABASE_URL is not a valid PostgreSQL URL")
        .schema(schema.name())
        .max_connections(POOL_SIZE);
    let store = PostgresStore::connect(config)
        .await
        .expect("cannot connect the store to DATABASE_URL");
    let pool = store.pool().clone();
    sqlx::query("CREATE TABLE raw_events (LIKE aether_events INCLUDING ALL)")
        .execute(&pool)
        .await
        .expect("cannot create raw_events");

    let store_appends = store_appends(&store, sizes.appends_per_actor).await;
    let raw_single = raw_single_rows(&pool, sizes.serial_rows, 1).await;
    let raw_single_parallel = raw_single_rows(&pool, sizes.parallel_rows, POOL_SIZE as usize).await;
    let raw_batched = raw_batched_rows(&pool, sizes.batched_rows, 1).await;
    let raw_batched_parallel =
        raw_batched_rows(&pool, sizes.batched_rows, POOL_SIZE as usize).await;

    let replayed = fill_replayed_actor(&store, sizes.replay_events).await;
    // Settle the freshly written tables first, so autovacuum and the first reads' hint-bit
    // writes do not land inside one side's measurement.
    sqlx::query("VACUUM (ANALYZE) aether_events")
        .execute(&pool)
        .await
        .expect("VACUUM failed");
    store_replay(&store, &replayed, sizes.replay_events).await;
    raw_replay(&pool, sizes.replay_events).await;
    let mut store_replays = Vec::new();
    let mut raw_replays = Vec::new();
    for _ in 0..REPLAY_RUNS {
        store_replays.push(store_replay(&store, &replayed, sizes.replay_events).await);
        raw_replays.push(raw_replay(&pool, sizes.replay_events).await);
    }
    let store_replay = median(store_replays);
    let raw_replay = median(raw_replays);

    println!("| workload | events | seconds | events/s |");
    println!("|---|---:|---:|---:|");
    for m in [
        &store_appends,
        &raw_single,
        &raw_single_parallel,
        &raw_batched,
        &raw_batched_parallel,
        &store_replay,
        &raw_replay,
    ] {
        println!(
            "| {} | {} | {:.2} | {:.0} |",
            m.workload,
            m.events,
            m.elapsed.as_secs_f64(),
            m.rate()
        );
    }
    println!();
    println!("| ratio | value | aim |");
    println!("|---|---:|---:|");
    println!(
        "| store appends / raw batched inserts | {:.0}% | ≥ 60% |",
        100.0 * store_appends.rate() / raw_batched.rate()
    );
    println!(
        "| store appends / raw batched inserts ({POOL_SIZE} connections) | {:.0}% | |",
        100.0 * store_appends.rate() / raw_batched_parallel.rate()
    );
    println!(
        "| store appends / raw single-row inserts ({POOL_SIZE} connections) | {:.1}× | |",
        store_appends.rate() / raw_single_parallel.rate()
    );
    println!(
        "| store replay / raw ordered select | {:.0}% | ≥ 70% |",
        100.0 * store_replay.rate() / raw_replay.rate()
    );

    drop(store);
    if let Err(err) = schema.cleanup().await {
        eprintln!("could not drop the benchmark schema: {err}");
    }
}

fn payload() -> Vec<u8> {
    vec![b'x'; PAYLOAD_BYTES]
}

/// `ACTORS` tasks append one event at a time to their own actor, each waiting for its commit.
async fn store_appends(store: &PostgresStore, appends_per_actor: usize) -> Measurement {
    let started = Instant::now();
    let tasks: Vec<_> = (0..ACTORS)
        .map(|a| {
            let store = store.clone();
            tokio::spawn(async move {
                let actor = ActorRef::parse("bench", format!("actor-{a}")).expect("valid actor");
                for v in 0..appends_per_actor {
                    store
                        .append(
                            &actor,
                            ExpectedVersion::Exact(Version::new(v as u64)),
                            vec![NewEvent::new("Benchmarked", payload())],
                        )
                        .await
                        .expect("store append failed");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("append task panicked");
    }
    Measurement {
        workload: format!("store append, {ACTORS} actors, 1 event per append"),
        events: ACTORS * appends_per_actor,
        elapsed: started.elapsed(),
    }
}

/// Single-row inserts, each its own autocommit transaction, from `connections` tasks.
async fn raw_single_rows(pool: &PgPool, rows: usize, connections: usize) -> Measurement {
    let started = Instant::now();
    let per_task = rows / connections;
    let tasks: Vec<_> = (0..connections)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let id = format!("single-{connections}-{t}");
                for v in 1..=per_task {
                    sqlx::query(
                        "INSERT INTO raw_events (actor_kind, actor_id, version, event_type, \
                         schema_version, payload, occurred_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind("bench")
                    .bind(id.as_bytes())
                    .bind(v as i64)
                    .bind("Benchmarked")
                    .bind(1i64)
                    .bind(payload())
                    .bind(Utc::now())
                    .execute(&pool)
                    .await
                    .expect("raw insert failed");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("insert task panicked");
    }
    Measurement {
        workload: format!("raw single-row autocommit inserts, {connections} connection(s)"),
        events: per_task * connections,
        elapsed: started.elapsed(),
    }
}

/// Multi-row `INSERT … VALUES` statements of `BATCH_ROWS` rows, each its own transaction, from
/// `connections` tasks.
async fn raw_batched_rows(pool: &PgPool, rows: usize, connections: usize) -> Measurement {
    let started = Instant::now();
    let batches_per_task = rows / BATCH_ROWS / connections;
    let tasks: Vec<_> = (0..connections)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let payload = payload();
                for b in 0..batches_per_task {
                    let mut insert = QueryBuilder::<Postgres>::new(
                        "INSERT INTO raw_events (actor_kind, actor_id, version, event_type, \
                         schema_version, payload, occurred_at) ",
                    );
                    let now = Utc::now();
                    insert.push_values(0..BATCH_ROWS, |mut row, i| {
                        row.push_bind("bench")
                            .push_bind(format!("batched-{connections}-{t}-{i}").into_bytes())
                            .push_bind((b + 1) as i64)
                            .push_bind("Benchmarked")
                            .push_bind(1i64)
                            .push_bind(payload.as_slice())
                            .push_bind(now);
                    });
                    insert
                        .build()
                        .execute(&pool)
                        .await
                        .expect("raw batched insert failed");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("insert task panicked");
    }
    Measurement {
        workload: format!(
            "raw batched inserts, {BATCH_ROWS} rows per statement, {connections} connection(s)"
        ),
        events: batches_per_task * BATCH_ROWS * connections,
        elapsed: started.elapsed(),
    }
}

/// Writes `events` events to one actor through the store, 1000 per append.
async fn fill_replayed_actor(store: &PostgresStore, events: usize) -> ActorRef {
    let actor = ActorRef::parse("bench", "replayed").expect("valid actor");
    let mut version = Version::ZERO;
    for chunk in (0..events).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|_| NewEvent::new("Benchmarked", payload()))
            .collect();
        version = store
            .append(&actor, ExpectedVersion::Exact(version), batch)
            .await
            .expect("filling the replayed actor failed")
            .version;
    }
    actor
}

/// Reads the replayed actor back with `EventStore::read`.
async fn store_replay(store: &PostgresStore, actor: &ActorRef, events: usize) -> Measurement {
    let started = Instant::now();
    let mut count = 0usize;
    let mut bytes = 0usize;
    let mut stream = store.read(actor, Version::new(1));
    while let Some(event) = stream.next().await {
        let event = event.expect("store read failed");
        count += 1;
        bytes += event.payload.len();
    }
    assert_eq!(count, events);
    assert_eq!(bytes, events * PAYLOAD_BYTES);
    Measurement {
        workload: format!("store read of one actor, {events} events"),
        events: count,
        elapsed: started.elapsed(),
    }
}

fn median(mut runs: Vec<Measurement>) -> Measurement {
    runs.sort_by_key(|run| run.elapsed);
    let mut middle = runs.swap_remove(runs.len() / 2);
    middle.workload = format!("{} (median of {REPLAY_RUNS})", middle.workload);
    middle
}

/// Reads the same events as [`store_replay`] with one raw `SELECT … ORDER BY version`, decoding
/// the same columns.
async fn raw_replay(pool: &PgPool, events: usize) -> Measurement {
    type Row = (
        i64,
        i64,
        String,
        i64,
        Vec<u8>,
        chrono::DateTime<Utc>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<Vec<u8>>,
    );

    let started = Instant::now();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT version, position, event_type, schema_version, payload, occurred_at, \
         command_id, correlation_id, causation_id, node, reply \
         FROM aether_events WHERE actor_kind = $1 AND actor_id = $2 ORDER BY version",
    )
    .bind("bench")
    .bind(&b"replayed"[..])
    .fetch(pool)
    .try_collect()
    .await
    .expect("raw select failed");
    let bytes: usize = rows.iter().map(|row| row.4.len()).sum();
    assert_eq!(rows.len(), events);
    assert_eq!(bytes, events * PAYLOAD_BYTES);
    Measurement {
        workload: format!("raw ordered select of one actor, {events} events"),
        events: rows.len(),
        elapsed: started.elapsed(),
    }
}
