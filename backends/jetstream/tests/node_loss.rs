//! Node loss: appends from many actors to a three-node cluster with three replicas while the
//! stream leader is killed. Appends that fail as unavailable are retried with the same
//! expectation and command id. Afterwards every acknowledged event must be stored exactly
//! once, with gapless versions.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aether_core::{ActorRef, EventMetadata, EventStore, ExpectedVersion, NewEvent, Version};
use aether_jetstream::{JetStreamConfig, JetStreamStore};
use aether_testkit::nats::{NatsOptions, start_cluster, unique_namespace};
use futures::TryStreamExt;
use tokio::time::Instant;

const ACTORS: usize = 64;
const APPENDS_PER_ACTOR: usize = 40;
/// Acknowledged appends after which the leader is killed.
const KILL_AFTER: usize = 600;
/// Bound on the whole load phase.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// What one actor's writer saw.
#[derive(Debug, Default)]
struct Writer {
    /// Payloads of acknowledged appends, in order.
    acknowledged: Vec<String>,
    /// Appends that failed as unavailable and were retried.
    retries: usize,
    /// The append still unacknowledged when the load phase ended, if any.
    unresolved: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_survive_leader_loss() {
    let cluster = start_cluster(NatsOptions::default()).await;
    let config = JetStreamConfig::new(cluster.urls())
        .namespace(unique_namespace("loss"))
        .replicas(3)
        .request_timeout(Duration::from_secs(2));
    let store = support::connect_with(config).await;

    let mut stream = store
        .jetstream()
        .get_stream(store.stream_name())
        .await
        .expect("stream info");
    let leader = stream
        .info()
        .await
        .expect("stream info")
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("a replicated stream has a leader");

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let writers: Vec<_> = (0..ACTORS)
        .map(|n| {
            let store = store.clone();
            let acknowledged = acknowledged.clone();
            let actor = ActorRef::parse("loss", format!("actor-{n}")).unwrap();
            tokio::spawn(async move { write(store, actor, acknowledged, deadline).await })
        })
        .collect();

    // Kill the stream leader once the load is running.
    let wait_until = Instant::now() + Duration::from_secs(60);
    while acknowledged.load(Ordering::Relaxed) < KILL_AFTER && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before_kill = acknowledged.load(Ordering::Relaxed);
    eprintln!("killing stream leader {leader} after {before_kill} acknowledged appends");
    cluster.kill_node(&leader).await;
    let killed_at = Instant::now();

    let mut results = Vec::new();
    for writer in writers {
        results.push(writer.await.expect("writer task panicked"));
    }
    let total: usize = results.iter().map(|(_, w)| w.acknowledged.len()).sum();
    let retries: usize = results.iter().map(|(_, w)| w.retries).sum();
    eprintln!(
        "{total} appends acknowledged, {retries} retried after unavailable, load ended {:?} after the kill",
        killed_at.elapsed()
    );
    assert!(
        before_kill >= KILL_AFTER,
        "only {before_kill} appends before the kill"
    );
    assert!(
        total > before_kill,
        "no append was acknowledged after the leader was killed"
    );

    let mut new_leader = None;
    for _ in 0..50 {
        if let Ok(info) = stream.info().await {
            new_leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
            if new_leader.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new_leader = new_leader.expect("the stream elected no new leader");
    assert_ne!(new_leader, leader);

    for (actor, writer) in &results {
        let events = read_back(&store, actor).await;
        let payloads: Vec<String> = events
            .iter()
            .map(|e| String::from_utf8(e.payload.to_vec()).unwrap())
            .collect();
        for (index, event) in events.iter().enumerate() {
            assert_eq!(
                event.version,
                Version::new(index as u64 + 1),
                "{actor}: versions must be gapless"
            );
        }
        let unique: HashSet<&String> = payloads.iter().collect();
        assert_eq!(
            unique.len(),
            payloads.len(),
            "{actor}: an event is stored twice: {payloads:?}"
        );
        for payload in &writer.acknowledged {
            assert!(
                unique.contains(payload),
                "{actor}: acknowledged event {payload} is missing"
            );
        }
        // Only the append whose outcome stayed unknown may be stored without an ack.
        let extra: Vec<&String> = payloads
            .iter()
            .filter(|p| !writer.acknowledged.contains(p))
            .collect();
        assert!(
            extra.is_empty() || (extra.len() == 1 && writer.unresolved.as_ref() == Some(extra[0])),
            "{actor}: unexpected events {extra:?}"
        );
    }
    drop(store);
    drop(cluster);
}

/// Appends `APPENDS_PER_ACTOR` events one at a time, retrying unavailable ones with the same
/// expectation and command id until `deadline`.
async fn write(
    store: JetStreamStore,
    actor: ActorRef,
    acknowledged: Arc<AtomicUsize>,
    deadline: Instant,
) -> (ActorRef, Writer) {
    let mut writer = Writer::default();
    let mut version = Version::ZERO;
    for k in 0..APPENDS_PER_ACTOR {
        let payload = format!("{actor}-{k}");
        let command_id = format!("{actor}-command-{k}");
        let expected = ExpectedVersion::from(version);
        loop {
            if Instant::now() >= deadline {
                writer.unresolved = Some(payload);
                return (actor, writer);
            }
            let metadata = EventMetadata::now().with_command_id(&command_id);
            let event = NewEvent::new("Written", payload.clone()).with_metadata(metadata);
            match store.append(&actor, expected, vec![event]).await {
                Ok(outcome) => {
                    assert_eq!(outcome.first_version, version.next(), "{actor}: append {k}");
                    version = outcome.version;
                    writer.acknowledged.push(payload);
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(err) if err.is_retryable() => {
                    writer.retries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("{actor}: append {k} expecting {expected} failed: {err:?}"),
            }
        }
    }
    (actor, writer)
}

/// Reads every event of `actor`, retrying while the cluster is unavailable.
async fn read_back(store: &JetStreamStore, actor: &ActorRef) -> Vec<aether_core::RecordedEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            store.read(actor, Version::new(1)).try_collect::<Vec<_>>(),
        )
        .await;
        match read {
            Ok(Ok(events)) => return events,
            Ok(Err(err)) if err.is_retryable() && Instant::now() < deadline => {
                eprintln!("reading {actor} failed, retrying: {err}");
            }
            Ok(Err(err)) => panic!("reading {actor} failed: {err:?}"),
            Err(_) if Instant::now() < deadline => eprintln!("reading {actor} timed out, retrying"),
            Err(_) => panic!("reading {actor} did not finish"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
