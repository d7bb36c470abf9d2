//! JetStream-specific behaviour beyond the conformance suite: version and sequence mapping,
//! duplicate detection, limits taken from the server, corrupt messages, several stores on one
//! namespace, and both per-actor read paths.

mod support;

use std::time::Duration;

use aether_core::{
    ActorRef, EventFilter, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position,
    Snapshot, Snapshotter, StoreError, Version,
};
use aether_jetstream::{ConnectError, JetStreamConfig, JetStreamStore};
use aether_testkit::nats::{shared_single_node, unique_namespace};
use futures::TryStreamExt;

fn actor(id: &str) -> ActorRef {
    ActorRef::parse("account", id).unwrap()
}

fn events(count: usize, tag: &str) -> Vec<NewEvent> {
    (0..count)
        .map(|n| NewEvent::new("Noted", format!("{tag}-{n}")))
        .collect()
}

fn with_command(tag: &str, command_id: &str) -> Vec<NewEvent> {
    let metadata = EventMetadata::now().with_command_id(command_id);
    vec![NewEvent::new("Noted", tag.to_owned()).with_metadata(metadata)]
}

async fn read(
    store: &JetStreamStore,
    actor: &ActorRef,
    from: u64,
) -> Vec<aether_core::RecordedEvent> {
    tokio::time::timeout(
        Duration::from_secs(30),
        store
            .read(actor, Version::new(from))
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("read did not finish within 30 s")
    .expect("read failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_actors_chain_versions() {
    let server = shared_single_node().await;
    let store = support::connect(&server, 1).await;
    let (a, b) = (actor("A"), actor("B"));

    let a1 = store
        .append(&a, ExpectedVersion::NoEvents, events(1, "a1"))
        .await
        .unwrap();
    let b1 = store
        .append(&b, ExpectedVersion::NoEvents, events(1, "b1"))
        .await
        .unwrap();
    let a2 = store
        .append(&a, ExpectedVersion::Exact(a1.version), events(2, "a2"))
        .await
        .unwrap();

    assert_eq!(a1.version, Version::new(1));
    assert_eq!(b1.version, Version::new(1));
    assert_eq!(a2.first_version, Version::new(2));
    assert_eq!(a2.version, Version::new(3));
    assert!(a1.position < b1.position);
    assert!(b1.position < a2.position);

    // A fresh store has no cached heads and must map versions from the stream alone.
    let other =
        support::connect_with(JetStreamConfig::new(server.urls()).namespace(store.stream_name()))
            .await;
    let b2 = other
        .append(&b, ExpectedVersion::Exact(b1.version), events(1, "b2"))
        .await
        .unwrap();
    assert_eq!(b2.version, Version::new(2));
    let a3 = other
        .append(&a, ExpectedVersion::Exact(a2.version), events(1, "a3"))
        .await
        .unwrap();
    assert_eq!(a3.version, Version::new(4));
    store.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_cache_of_other_store_is_refreshed() {
    let server = shared_single_node().await;
    let first = support::connect(&server, 1).await;
    let second =
        support::connect_with(JetStreamConfig::new(server.urls()).namespace(first.stream_name()))
            .await;
    let a = actor("shared");

    first
        .append(&a, ExpectedVersion::NoEvents, events(1, "x"))
        .await
        .unwrap();
    let by_second = second
        .append(&a, ExpectedVersion::Exact(Version::new(1)), events(2, "y"))
        .await
        .unwrap();
    assert_eq!(by_second.version, Version::new(3));

    // `first` still caches version 1; a stale expectation conflicts with the real version.
    let stale = first
        .append(&a, ExpectedVersion::Exact(Version::new(1)), events(1, "z"))
        .await;
    match stale {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, Version::new(3)),
        other => panic!("expected a conflict at version 3, got {other:?}"),
    }
    // The current expectation succeeds although `first` cached an older head.
    let current = first
        .append(&a, ExpectedVersion::Exact(Version::new(3)), events(1, "z"))
        .await
        .unwrap();
    assert_eq!(current.version, Version::new(4));
    assert_eq!(read(&second, &a, 1).await.len(), 4);
    first.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_command_returns_original_outcome() {
    let server = shared_single_node().await;
    let store = support::connect(&server, 1).await;
    let a = actor("dup");
    let b = actor("dup-other");

    let original = store
        .append(
            &a,
            ExpectedVersion::NoEvents,
            with_command("first", "cmd-1"),
        )
        .await
        .unwrap();
    let later = store
        .append(
            &a,
            ExpectedVersion::Exact(Version::new(1)),
            events(1, "later"),
        )
        .await
        .unwrap();
    // A retry of the first command with its original expectation is a duplicate, not a
    // conflict, and reports where the original was stored.
    let retry = store
        .append(
            &a,
            ExpectedVersion::NoEvents,
            with_command("first", "cmd-1"),
        )
        .await
        .unwrap();
    assert_eq!(retry, original);
    assert_eq!(read(&store, &a, 1).await.len(), 2);
    assert_eq!(store.head(&a).await.unwrap(), later.version);

    // The same command id on another actor is another append.
    let on_b = store
        .append(
            &b,
            ExpectedVersion::NoEvents,
            with_command("first", "cmd-1"),
        )
        .await
        .unwrap();
    assert_eq!(on_b.version, Version::new(1));
    assert_ne!(on_b.position, original.position);

    // After the duplicate the cache was dropped; the next append still uses the right head.
    let next = store
        .append(&a, ExpectedVersion::Exact(later.version), events(1, "next"))
        .await
        .unwrap();
    assert_eq!(next.version, Version::new(3));
    store.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_encode_sequence_and_index() {
    let server = shared_single_node().await;
    let store = support::connect(&server, 1).await;
    let a = actor("positions");

    let outcome = store
        .append(&a, ExpectedVersion::NoEvents, events(3, "p"))
        .await
        .unwrap();
    let stored = read(&store, &a, 0).await;
    let positions: Vec<u64> = stored.iter().map(|e| e.position.get()).collect();
    let sequence = outcome.position.get() >> 16;
    assert_eq!(
        positions,
        vec![sequence << 16, (sequence << 16) + 1, (sequence << 16) + 2]
    );
    assert_eq!(outcome.position.get(), positions[2]);

    // Resuming in the middle of a message delivers the rest of it.
    let rest: Vec<_> = store
        .read_all(Position::new(positions[0]), EventFilter::all())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].version, Version::new(2));
    store.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_follow_server_max_payload() {
    let server = shared_single_node().await;
    let store = support::connect(&server, 1).await;
    let max_payload = store.client().server_info().max_payload;
    let limits = store.limits();
    assert!(limits.max_event_bytes < max_payload);
    assert!(limits.max_event_bytes > max_payload / 2);
    assert_eq!(limits.max_append_bytes, limits.max_event_bytes);

    // Payloads within the limit, but metadata that pushes the message over max_payload.
    let a = actor("big-metadata");
    let metadata = EventMetadata::now().with_reply(vec![7u8; max_payload / 2]);
    let event = NewEvent::new("Big", vec![1u8; limits.max_event_bytes / 2 + 16 * 1024])
        .with_metadata(metadata);
    let err = store
        .append(&a, ExpectedVersion::NoEvents, vec![event])
        .await
        .unwrap_err();
    match err {
        StoreError::PayloadTooLarge {
            what, size, limit, ..
        } => {
            assert_eq!(what, "encoded append");
            assert!(size > limit, "{size} {limit}");
            assert!(limit < max_payload, "{limit} {max_payload}");
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert_eq!(store.head(&a).await.unwrap(), Version::ZERO);

    let too_many = (0..70_000).map(|_| NewEvent::new("Tiny", "")).collect();
    let err = store
        .append(&a, ExpectedVersion::NoEvents, too_many)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("65535"), "{err}");
    store.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_message_reads_as_corrupt() {
    let server = shared_single_node().await;
    let store = support::connect(&server, 1).await;
    let a = actor("corrupt");
    store
        .append(&a, ExpectedVersion::NoEvents, events(1, "ok"))
        .await
        .unwrap();

    // Another program writes bytes that are no envelope to the actor's subject.
    let ack = store
        .jetstream()
        .publish(store.subject_of(&a), "not an envelope".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.sequence > 0);

    let head = store.head(&a).await.unwrap_err();
    assert!(matches!(head, StoreError::Corrupt { .. }), "{head}");
    let read = store
        .read(&a, Version::new(1))
        .try_collect::<Vec<_>>()
        .await;
    assert!(matches!(read, Err(StoreError::Corrupt { .. })), "{read:?}");
    let all = store
        .read_all(Position::START, EventFilter::all())
        .try_collect::<Vec<_>>()
        .await;
    assert!(matches!(all, Err(StoreError::Corrupt { .. })), "{all:?}");
    let append = store
        .append(&a, ExpectedVersion::Any, events(1, "after"))
        .await;
    assert!(
        matches!(append, Err(StoreError::Corrupt { .. })),
        "{append:?}"
    );
    store.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_read_path_matches_direct_get() {
    let server = shared_single_node().await;
    let direct = support::connect(&server, 1).await;
    let consumer = support::connect_with(
        JetStreamConfig::new(server.urls())
            .namespace(direct.stream_name())
            .batch_direct_get(false),
    )
    .await;
    // A first direct get of 8 messages, then the consumer for the rest.
    let mixed = support::connect_with(
        JetStreamConfig::new(server.urls())
            .namespace(direct.stream_name())
            .read_batch(8),
    )
    .await;
    assert!(direct.uses_batch_direct_get());
    assert!(!consumer.uses_batch_direct_get());

    let a = actor("paths");
    let noise = actor("noise");
    let mut version = Version::ZERO;
    for round in 0..40 {
        let outcome = direct
            .append(
                &a,
                version.into(),
                events(1 + round % 3, &format!("r{round}")),
            )
            .await
            .unwrap();
        version = outcome.version;
        direct
            .append(&noise, ExpectedVersion::Any, events(1, "n"))
            .await
            .unwrap();
    }
    for from in [0, 1, 2, 37, version.get(), version.get() + 1] {
        let by_direct = read(&direct, &a, from).await;
        let by_consumer = read(&consumer, &a, from).await;
        let by_mixed = read(&mixed, &a, from).await;
        assert_eq!(by_direct, by_consumer, "from version {from}");
        assert_eq!(by_direct, by_mixed, "from version {from}");
        let expected = version.get() + 1 - from.max(1);
        assert_eq!(by_direct.len() as u64, expected, "from version {from}");
    }
    direct.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_snapshot_saves_keep_highest() {
    let server = shared_single_node().await;
    let store = support::connect(&server, 1).await;
    let a = actor("snap");
    store
        .append(&a, ExpectedVersion::NoEvents, events(20, "s"))
        .await
        .unwrap();

    let saves: Vec<_> = (1..=20u64)
        .map(|v| {
            let store = store.clone();
            let a = a.clone();
            tokio::spawn(async move {
                store
                    .save_snapshot(&a, Snapshot::new(Version::new(v), format!("state {v}")))
                    .await
            })
        })
        .collect();
    for save in saves {
        save.await.unwrap().unwrap();
    }
    let loaded = store.load_snapshot(&a).await.unwrap().unwrap();
    assert_eq!(loaded.version, Version::new(20));
    assert_eq!(loaded.state, "state 20");
    store.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_rejects_bad_config_and_server() {
    let err = JetStreamStore::connect(JetStreamConfig::default().namespace("a.b"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::InvalidConfig {
                field: "namespace",
                ..
            }
        ),
        "{err}"
    );

    let err = JetStreamStore::connect(JetStreamConfig::new(["not a url::"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::InvalidConfig {
                field: "servers",
                ..
            }
        ),
        "{err}"
    );

    // A port without a server: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = JetStreamConfig::new([format!("nats://127.0.0.1:{port}")])
        .namespace(unique_namespace("t"))
        .request_timeout(Duration::from_secs(2));
    let err = JetStreamStore::connect(config).await.unwrap_err();
    assert!(matches!(err, ConnectError::Connect { .. }), "{err}");
    let as_store: StoreError = err.into();
    assert!(as_store.is_retryable(), "{as_store}");

    let server = shared_single_node().await;
    let err = JetStreamStore::connect(
        JetStreamConfig::new(server.urls())
            .namespace(unique_namespace("t"))
            .replicas(3),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::Setup { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_retries_until_stream_responds() {
    let server = shared_single_node().await;
    let namespace = unique_namespace("t");
    let config = JetStreamConfig::new(server.urls())
        .namespace(namespace.clone())
        .request_timeout(Duration::from_secs(10));
    let first = support::connect_with(config.clone()).await;
    let a = actor("unrouted");
    first
        .append(&a, ExpectedVersion::NoEvents, events(1, "one"))
        .await
        .unwrap();

    // With the stream gone, nothing responds to a publish to the actor's subject. The store has
    // the actor's head cached, so it publishes straight away and has to wait for a stream.
    // `Any` lets the append land whichever of the two writers below the new stream sees first.
    first.delete_namespace().await.unwrap();
    let waiting = tokio::spawn({
        let first = first.clone();
        let a = a.clone();
        async move {
            first
                .append(&a, ExpectedVersion::Any, events(1, "two"))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the append gave up at once");

    // A second store creates the stream again and appends too.
    let second = support::connect_with(config).await;
    let other = second
        .append(&a, ExpectedVersion::Any, events(1, "other"))
        .await
        .unwrap();

    let outcome = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the waiting append did not finish")
        .unwrap()
        .expect("the waiting append failed");
    let mut versions = vec![outcome.version.get(), other.version.get()];
    versions.sort_unstable();
    assert_eq!(versions, vec![1, 2]);
    let stored = read(&second, &a, 1).await;
    assert_eq!(stored.len(), 2);
    let waiting_event = &stored[outcome.version.get() as usize - 1];
    assert_eq!(waiting_event.payload, "two-0".as_bytes());
    let other_event = &stored[other.version.get() as usize - 1];
    assert_eq!(other_event.payload, "other-0".as_bytes());
    second.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_without_stream_times_out() {
    let server = shared_single_node().await;
    let config = JetStreamConfig::new(server.urls())
        .namespace(unique_namespace("t"))
        .request_timeout(Duration::from_secs(1));
    let store = support::connect_with(config).await;
    let a = actor("no-stream");
    store
        .append(&a, ExpectedVersion::NoEvents, events(1, "one"))
        .await
        .unwrap();
    store.delete_namespace().await.unwrap();

    let started = std::time::Instant::now();
    let err = store
        .append(
            &a,
            ExpectedVersion::Exact(Version::new(1)),
            events(1, "two"),
        )
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("account/no-stream"), "{err}");
    assert!(
        waited >= Duration::from_millis(500),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
}
