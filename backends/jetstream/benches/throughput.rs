//! Throughput of the JetStream store beside raw async-nats in the same run, on one server
//! from the testkit fixtures (a Docker container, or a `nats-server` process without Docker).
//!
//! For each server setting (default, and `sync_interval: always`), appends:
//! `ACTORS` actors append one event of `PAYLOAD` bytes at a time, all actors concurrently,
//! each append expecting the actor's last version. Raw: one publish of a payload of the same
//! size per subject in flight across `ACTORS` subjects, each with the expected-sequence
//! header, pipelined through one task. Raw and store runs alternate, twice each, and the
//! table shows the mean rate of each.
//!
//! With the default setting, replays of the messages the store wrote:
//!
//! - the whole stream: an ordered consumer (raw) against `read_all`;
//! - `SAMPLED_ACTORS` of the interleaved actors: one ordered consumer filtered on each
//!   actor's subject (raw) against `read` of each actor, `READ_CONCURRENCY` at a time;
//! - one actor with `LONG_APPENDS` appends of `LONG_BATCH` events: an ordered consumer
//!   filtered on its subject (raw) against `read`.
//!
//! Prints a markdown table. Run with `cargo bench -p aether-jetstream --bench throughput`.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_core::{
    ActorRef, EventFilter, EventStore, ExpectedVersion, NewEvent, Position, Version,
};
use aether_jetstream::{JetStreamConfig, JetStreamStore};
use aether_testkit::nats::{NatsOptions, NatsServer, start_single_node, unique_namespace};
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};

const ACTORS: usize = 1_000;
const PAYLOAD: usize = 100;
/// Bound on every acknowledgement and request, raw and store alike.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent per-actor reads in the per-actor replay.
const READ_CONCURRENCY: usize = 32;
/// Interleaved actors read back one by one.
const SAMPLED_ACTORS: usize = 100;
/// Appends of the long actor.
const LONG_APPENDS: usize = 5_000;
/// Events per append of the long actor.
const LONG_BATCH: usize = 20;

struct Row {
    setting: &'static str,
    operation: &'static str,
    count: usize,
    raw: f64,
    store: f64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let settings: [(&str, NatsOptions, usize, bool); 2] = [
        ("default", NatsOptions::default(), 100_000, true),
        (
            "sync_always",
            NatsOptions {
                sync_always: true,
                ..NatsOptions::default()
            },
            10_000,
            false,
        ),
    ];
    let mut rows = Vec::new();
    for (setting, options, total, replays) in settings {
        let server = start_single_node(options).await;
        eprintln!("{setting}: server {:?}", server.urls());
        rows.extend(run_setting(setting, &server, total, replays).await);
        drop(server);
    }

    println!(
        "| setting | operation | events | raw async-nats (events/s) | store (events/s) | store / raw |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0}% |",
            row.setting,
            row.operation,
            row.count,
            row.raw,
            row.store,
            100.0 * row.store / row.raw
        );
    }
}

async fn run_setting(
    setting: &'static str,
    server: &NatsServer,
    total: usize,
    replays: bool,
) -> Vec<Row> {
    let client = async_nats::connect(server.urls()[0].as_str())
        .await
        .expect("connect raw client");
    // With an fsync per message, 1,000 queued publishes can wait seconds for their acks.
    let context = jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .build(client);
    let store = JetStreamStore::connect(
        JetStreamConfig::new(server.urls())
            .namespace(unique_namespace("bench"))
            .request_timeout(ACK_TIMEOUT),
    )
    .await
    .expect("connect store");
    let rate = |count: usize, elapsed: Duration| count as f64 / elapsed.as_secs_f64();

    // Warm-up of both paths, on throwaway subjects and actors.
    raw_publish(&context, &unique_namespace("warm"), 2_000).await;
    store_append(&store, "warm", 2_000).await;

    let mut raw_rates = Vec::new();
    let mut store_rates = Vec::new();
    for round in 0..2 {
        let elapsed = raw_publish(&context, &unique_namespace("raw"), total).await;
        raw_rates.push(rate(total, elapsed));
        let elapsed = store_append(&store, &format!("round{round}"), total).await;
        store_rates.push(rate(total, elapsed));
    }
    eprintln!("{setting}: append rates raw {raw_rates:.0?}, store {store_rates:.0?}");
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
    let mut rows = vec![Row {
        setting,
        operation: "append, 1 event each, 1,000 actors",
        count: total,
        raw: mean(&raw_rates),
        store: mean(&store_rates),
    }];
    if !replays {
        return rows;
    }

    let (replayed, raw_elapsed) = raw_replay(&context, store.stream_name(), Vec::new()).await;
    let (read, store_elapsed) = store_read_all(&store).await;
    assert_eq!(
        read, replayed,
        "read_all and the raw replay must see the same events"
    );
    rows.push(Row {
        setting,
        operation: "replay whole stream: read_all vs ordered consumer",
        count: read,
        raw: rate(replayed, raw_elapsed),
        store: rate(read, store_elapsed),
    });

    let sampled: Vec<ActorRef> = (0..SAMPLED_ACTORS)
        .map(|n| ActorRef::parse("bench", format!("round0-{n}")).unwrap())
        .collect();
    let (replayed, raw_elapsed) = raw_replay_actors(&context, &store, &sampled).await;
    let (read, store_elapsed) = store_read_actors(&store, &sampled).await;
    assert_eq!(read, replayed, "per-actor reads must see the same events");
    rows.push(Row {
        setting,
        operation: "replay 100 interleaved actors: read vs filtered ordered consumer",
        count: read,
        raw: rate(replayed, raw_elapsed),
        store: rate(read, store_elapsed),
    });

    let long = ActorRef::parse("bench", "long").unwrap();
    store_append_long(&store, &long).await;
    let (messages, raw_elapsed) =
        raw_replay(&context, store.stream_name(), vec![store.subject_of(&long)]).await;
    let (read, store_elapsed) = store_read_actors(&store, std::slice::from_ref(&long)).await;
    assert_eq!(
        read,
        messages * LONG_BATCH,
        "the long actor's read must see every event"
    );
    rows.push(Row {
        setting,
        operation: "replay one actor, 20 events per message: read vs filtered ordered consumer",
        count: read,
        raw: rate(messages * LONG_BATCH, raw_elapsed),
        store: rate(read, store_elapsed),
    });

    // The same read through the store's other per-actor paths.
    for (operation, config) in [
        (
            "same, first direct get of 1,024 messages",
            JetStreamConfig::new(server.urls()).read_batch(1_024),
        ),
        (
            "same, read through an ordered consumer",
            JetStreamConfig::new(server.urls()).batch_direct_get(false),
        ),
    ] {
        let other = JetStreamStore::connect(config.namespace(store.stream_name()))
            .await
            .expect("connect store");
        let (read, store_elapsed) = store_read_actors(&other, std::slice::from_ref(&long)).await;
        rows.push(Row {
            setting,
            operation,
            count: read,
            raw: rate(messages * LONG_BATCH, raw_elapsed),
            store: rate(read, store_elapsed),
        });
    }
    rows
}

/// Publishes `total` messages across `ACTORS` subjects of a new stream, one in flight per
/// subject, each expecting the subject's last sequence.
async fn raw_publish(context: &jetstream::Context, name: &str, total: usize) -> Duration {
    context
        .create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .expect("create raw stream");
    let payload = Bytes::from(vec![b'r'; PAYLOAD + 30]);
    let subjects: Vec<String> = (0..ACTORS).map(|n| format!("{name}.s.{n}")).collect();

    let publish = |index: usize, expected: u64| {
        let context = context.clone();
        let subject = subjects[index].clone();
        let payload = payload.clone();
        async move {
            let message = PublishMessage::build()
                .payload(payload)
                .expected_last_subject_sequence(expected);
            let ack = context
                .send_publish(subject, message)
                .await
                .expect("raw publish")
                .into_future()
                .await
                .expect("raw publish ack");
            (index, ack.sequence)
        }
    };

    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0;
    for index in 0..ACTORS.min(total) {
        in_flight.push(publish(index, 0));
        sent += 1;
    }
    while let Some((index, sequence)) = in_flight.next().await {
        if sent < total {
            in_flight.push(publish(index, sequence));
            sent += 1;
        }
    }
    let elapsed = started.elapsed();
    context
        .delete_stream(name)
        .await
        .expect("delete raw stream");
    elapsed
}

/// Appends `total` events, one per append, from `ACTORS` concurrent actors.
async fn store_append(store: &JetStreamStore, id_prefix: &str, total: usize) -> Duration {
    let per_actor = total / ACTORS;
    let payload = Bytes::from(vec![b's'; PAYLOAD]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..ACTORS)
        .map(|n| {
            let store = store.clone();
            let payload = payload.clone();
            let actor = ActorRef::parse("bench", format!("{id_prefix}-{n}")).unwrap();
            tokio::spawn(async move {
                let mut version = Version::ZERO;
                for _ in 0..per_actor {
                    let event = NewEvent::new("Benched", payload.clone());
                    let outcome = store
                        .append(&actor, ExpectedVersion::from(version), vec![event])
                        .await
                        .expect("store append");
                    version = outcome.version;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("append task");
    }
    started.elapsed()
}

/// Appends `LONG_APPENDS` appends of `LONG_BATCH` events to one actor.
async fn store_append_long(store: &JetStreamStore, actor: &ActorRef) {
    let payload = Bytes::from(vec![b'l'; PAYLOAD]);
    let mut version = Version::ZERO;
    for _ in 0..LONG_APPENDS {
        let events = (0..LONG_BATCH)
            .map(|_| NewEvent::new("Benched", payload.clone()))
            .collect();
        version = store
            .append(actor, ExpectedVersion::from(version), events)
            .await
            .expect("long append")
            .version;
    }
}

/// Reads every message on `subjects` (all when empty) with an ordered consumer. Returns the
/// number of messages and the time taken. On a single server, the pending count of a new
/// consumer is the number of stored messages it will deliver.
async fn raw_replay(
    context: &jetstream::Context,
    stream_name: &str,
    subjects: Vec<String>,
) -> (usize, Duration) {
    let stream = context.get_stream(stream_name).await.expect("get stream");
    let started = Instant::now();
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subjects: subjects,
            ..Default::default()
        })
        .await
        .expect("create ordered consumer");
    let total = consumer.cached_info().num_pending as usize;
    let mut messages = consumer.messages().await.expect("consume").take(total);
    let mut count = 0;
    while let Some(message) = messages.next().await {
        message.expect("replayed message");
        count += 1;
    }
    (count, started.elapsed())
}

/// Reads every message of each actor with an ordered consumer filtered on its subject,
/// `READ_CONCURRENCY` actors at a time, as a caller of async-nats would.
async fn raw_replay_actors(
    context: &jetstream::Context,
    store: &JetStreamStore,
    actors: &[ActorRef],
) -> (usize, Duration) {
    let started = Instant::now();
    let counts: Vec<usize> = futures::stream::iter(actors.iter().map(|a| store.subject_of(a)))
        .map(|subject| {
            let context = context.clone();
            let stream_name = store.stream_name().to_owned();
            async move { raw_replay(&context, &stream_name, vec![subject]).await.0 }
        })
        .buffer_unordered(READ_CONCURRENCY)
        .collect()
        .await;
    (counts.iter().sum(), started.elapsed())
}

async fn store_read_all(store: &JetStreamStore) -> (usize, Duration) {
    let started = Instant::now();
    let count = store
        .read_all(Position::START, EventFilter::all())
        .try_fold(0usize, |count, _| async move { Ok(count + 1) })
        .await
        .expect("read_all");
    (count, started.elapsed())
}

/// Reads every event of each actor, `READ_CONCURRENCY` actors at a time.
async fn store_read_actors(store: &JetStreamStore, actors: &[ActorRef]) -> (usize, Duration) {
    let store = Arc::new(store.clone());
    let started = Instant::now();
    let counts: Vec<usize> = futures::stream::iter(actors.to_vec())
        .map(|actor| {
            let store = store.clone();
            async move {
                store
                    .read(&actor, Version::new(1))
                    .try_fold(0usize, |count, _| async move { Ok(count + 1) })
                    .await
                    .expect("read")
            }
        })
        .buffer_unordered(READ_CONCURRENCY)
        .collect()
        .await;
    (counts.iter().sum(), started.elapsed())
}
