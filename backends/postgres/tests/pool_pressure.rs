//! Many actors activated at once on a tiny pool: every replay and append must succeed, without
//! retries, within the pool's acquire timeout.
//!
//! Needs a server: `eval "$(scripts/postgres.sh start)"` sets `DATABASE_URL`.

mod common;

use std::time::Duration;

use aether_core::{EventStore, ExpectedVersion, Version};
use common::{WAIT, actor, connect, event, schema_and_config};
use futures::TryStreamExt;

const ACTORS: usize = 50;
/// Events each actor has before the storm, so every activation replays a stream.
const HISTORY: u64 = 30;
/// Read-then-append rounds each actor runs during the storm.
const ROUNDS: u64 = 3;

async fn activation_storm(pool_size: u32) {
    let (_schema, config) = schema_and_config().await;
    let config = config
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_secs(1))
        // Small pages make each replay take several queries, so they contend for the pool.
        .page_size(8);
    let store = connect(config).await;

    // Give every actor its history first.
    for a in 0..ACTORS {
        let events = (0..HISTORY).map(|i| event(format!("{a}-{i}"))).collect();
        store
            .append(&actor(format!("a{a}")), ExpectedVersion::NoEvents, events)
            .await
            .unwrap();
    }

    // Activate all actors at once: replay, then append expecting the replayed version.
    let mut tasks = Vec::new();
    for a in 0..ACTORS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let actor = actor(format!("a{a}"));
            for round in 0..ROUNDS {
                let events: Vec<_> = store
                    .read(&actor, Version::new(1))
                    .try_collect()
                    .await
                    .unwrap_or_else(|err| {
                        panic!("replay of {actor} in round {round} failed: {err}")
                    });
                let version = Version::new(events.len() as u64);
                assert_eq!(version, Version::new(HISTORY + round), "replay of {actor}");
                for (i, e) in events.iter().enumerate() {
                    assert_eq!(e.version, Version::new(i as u64 + 1));
                }
                let outcome = store
                    .append(&actor, ExpectedVersion::Exact(version), vec![event("more")])
                    .await
                    .unwrap_or_else(|err| {
                        panic!("append to {actor} in round {round} failed: {err}")
                    });
                assert_eq!(outcome.version, version.next());
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    }

    for a in 0..ACTORS {
        let head = store.head(&actor(format!("a{a}"))).await.unwrap();
        assert_eq!(head, Version::new(HISTORY + ROUNDS));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storm_on_pool_of_one() {
    activation_storm(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storm_on_pool_of_two() {
    activation_storm(2).await;
}
