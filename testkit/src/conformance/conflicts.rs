//! Cases for optimistic version checks: conflicts, racing writers and appends expecting any
//! version.

use std::collections::BTreeSet;
use std::sync::Arc;

use aether_core::{EventFilter, EventStore, ExpectedVersion, Position, Snapshotter, Version};
use bytes::Bytes;
use tokio::sync::Barrier;

use super::Fixture;
use super::helpers::{
    append_ok, assert_versions_from, describe, event, expect_conflict, head_of, join_tasks,
    numbered_events, numbered_payload, read_all_events, read_events, unique_actor,
};

/// Rounds of the first-append race. Each round uses a new actor.
const FIRST_APPEND_ROUNDS: usize = 10;

/// Writers racing on one expected version.
const RACING_WRITERS: usize = 10;

/// Checks that of two writers appending the first event of one actor at once, exactly one wins and
/// the other gets a conflict reporting version 1.
pub async fn concurrent_first_appends_have_one_winner<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();

    for round in 0..FIRST_APPEND_ROUNDS {
        let actor = unique_actor("race");
        let barrier = Arc::new(Barrier::new(2));

        // Both tasks wait at the barrier so the appends leave as close together as possible.
        let mut tasks = Vec::new();
        for writer in 0..2 {
            let (store, actor, barrier) = (store.clone(), actor.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let payload = format!("writer {writer}");
                store
                    .append(
                        &actor,
                        ExpectedVersion::NoEvents,
                        vec![event("Created", payload)],
                    )
                    .await
            }));
        }
        let context = format!("round {round}: two first appends to {actor}");
        let results = join_tasks(&context, tasks).await;

        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "{context}: exactly one must succeed, {} did",
            winners.len()
        );
        assert_eq!(
            winners[0].version,
            Version::new(1),
            "{context}: winner's version"
        );
        for result in results.into_iter().filter(Result::is_err) {
            expect_conflict(result, &actor, ExpectedVersion::NoEvents, Version::new(1));
        }

        let stored = read_events(&store, &actor, Version::ZERO).await;
        assert_eq!(stored.len(), 1, "{context}: events stored");
        assert_eq!(
            head_of(&store, &actor).await,
            Version::new(1),
            "{context}: head"
        );
    }
}

/// Checks that an append expecting version 5 of an actor without events conflicts with actual
/// version 0 and stores nothing.
pub async fn append_expecting_version_on_new_actor_conflicts<
    S: EventStore + Snapshotter + Clone,
>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("order");
    let expected = ExpectedVersion::Exact(Version::new(5));

    let result = store
        .append(&actor, expected, vec![event("Added", "1")])
        .await;
    expect_conflict(result, &actor, expected, Version::ZERO);

    assert!(
        read_events(&store, &actor, Version::ZERO).await.is_empty(),
        "a conflicting append to {actor} stored events"
    );
    assert_eq!(
        head_of(&store, &actor).await,
        Version::ZERO,
        "head of {actor}"
    );
    let everywhere = read_all_events(&store, Position::START, EventFilter::actor(actor)).await;
    assert!(
        everywhere.is_empty(),
        "a conflicting append shows up in read_all"
    );
}

/// Checks that appends expecting a version below or above the actual one conflict and store
/// nothing.
pub async fn stale_expectation_conflicts_and_stores_nothing<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("order");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 3),
    )
    .await;

    for expected in [
        ExpectedVersion::Exact(Version::new(1)),
        ExpectedVersion::Exact(Version::new(7)),
        ExpectedVersion::NoEvents,
    ] {
        let result = store
            .append(&actor, expected, vec![event("Stale", "x")])
            .await;
        expect_conflict(result, &actor, expected, Version::new(3));
    }

    let stored = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(
        stored.len(),
        3,
        "conflicting appends to {actor} stored events"
    );
    for (n, event) in (1..).zip(&stored) {
        assert_eq!(
            event.payload,
            numbered_payload(n),
            "payload of {actor} v{n}"
        );
    }
    assert_eq!(
        head_of(&store, &actor).await,
        Version::new(3),
        "head of {actor}"
    );
}

/// Checks that of ten writers appending at once with version 3 expected, one wins with version 4
/// and nine conflict. The stream then runs from 1 to 4 without gaps.
pub async fn concurrent_appends_have_one_winner<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("order");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 3),
    )
    .await;
    let expected = ExpectedVersion::Exact(Version::new(3));

    // All writers start together behind a barrier.
    let barrier = Arc::new(Barrier::new(RACING_WRITERS));
    let mut tasks = Vec::new();
    for writer in 0..RACING_WRITERS {
        let (store, actor, barrier) = (store.clone(), actor.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let result = store
                .append(
                    &actor,
                    expected,
                    vec![event("Raced", format!("writer {writer}"))],
                )
                .await;
            (writer, result)
        }));
    }
    let results = join_tasks("ten racing appends", tasks).await;

    // Exactly one winner, at version 4. Every loser gets the winner's version.
    let mut winner = None;
    let mut losers = 0;
    for (writer, result) in results {
        match result {
            Ok(outcome) => {
                assert!(
                    winner.is_none(),
                    "two appends expecting version 3 of {actor} both succeeded"
                );
                assert_eq!(
                    outcome.first_version,
                    Version::new(4),
                    "winner's first version"
                );
                assert_eq!(outcome.version, Version::new(4), "winner's version");
                winner = Some(writer);
            }
            Err(err) => {
                expect_conflict(Err(err), &actor, expected, Version::new(4));
                losers += 1;
            }
        }
    }
    let winner = winner.unwrap_or_else(|| panic!("none of {RACING_WRITERS} appends succeeded"));
    assert_eq!(losers, RACING_WRITERS - 1, "conflicts");

    let stored = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(stored.len(), 4, "events of {actor} after the race");
    assert_versions_from("events after the race", &stored, 1);
    assert_eq!(
        stored[3].payload,
        Bytes::from(format!("writer {winner}")),
        "version 4 must be the winner's event"
    );
    assert_eq!(
        head_of(&store, &actor).await,
        Version::new(4),
        "head of {actor}"
    );
}

/// Checks that appends expecting any version succeed on a new actor, on an existing one and when
/// ten run at once, and that the stream stays without gaps.
pub async fn any_expectation_always_appends<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("log");

    let first = append_ok(&store, &actor, ExpectedVersion::Any, numbered_events(1, 1)).await;
    assert_eq!(first.version, Version::new(1), "first append expecting any");
    let second = append_ok(&store, &actor, ExpectedVersion::Any, numbered_events(2, 2)).await;
    assert_eq!(
        second.first_version,
        Version::new(2),
        "second append's first version"
    );
    assert_eq!(second.version, Version::new(3), "second append's version");

    // Concurrent writers that expect any version never conflict.
    let barrier = Arc::new(Barrier::new(RACING_WRITERS));
    let mut tasks = Vec::new();
    for writer in 0..RACING_WRITERS {
        let (store, actor, barrier) = (store.clone(), actor.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .append(
                    &actor,
                    ExpectedVersion::Any,
                    vec![event("Any", format!("{writer}"))],
                )
                .await
        }));
    }
    let results = join_tasks("ten appends expecting any version", tasks).await;
    let mut versions = BTreeSet::new();
    for result in results {
        match result {
            Ok(outcome) => {
                assert_eq!(outcome.first_version, outcome.version, "one-event append");
                versions.insert(outcome.version.get());
            }
            Err(err) => panic!(
                "an append to {actor} expecting any version failed: {}",
                describe(&err)
            ),
        }
    }
    let expected: BTreeSet<u64> = (4..4 + RACING_WRITERS as u64).collect();
    assert_eq!(
        versions, expected,
        "versions returned to concurrent writers"
    );

    let stored = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(stored.len(), 3 + RACING_WRITERS, "events of {actor}");
    assert_versions_from("events appended expecting any", &stored, 1);
}
