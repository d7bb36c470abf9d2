//! Cases for live subscriptions: stored then live events, resuming from a checkpoint, concurrent
//! writers and filters.

use std::collections::HashMap;
use std::sync::Arc;

use aether_core::{
    ActorRef, EventFilter, EventStore, ExpectedVersion, Position, RecordedEvent, Snapshotter,
    Version,
};
use tokio::sync::Barrier;

use super::helpers::{
    append_ok, assert_empty_store, assert_positions_increase, assert_silent, assert_versions_from,
    event, join_tasks, label, next_events, numbered_events, read_all_events, unique_actor,
};
use super::{Fixture, LONG_WAIT, WAIT};

/// Tasks appending at once in the concurrent case.
const WRITERS: usize = 4;

/// One-event appends each writer makes to its own actor.
const OWN_APPENDS: u64 = 25;

/// One-event appends each writer makes to the actor all writers share.
const SHARED_APPENDS: u64 = 5;

/// Events a consumer processes before it stops and resumes from its checkpoint.
const CHUNK: usize = 3;

/// Checks that a subscription from the start delivers the stored events and then the events
/// appended while it is open, in position order, and stays open.
pub async fn subscribe_delivers_stored_then_live<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    assert_empty_store(&store).await;
    let a = unique_actor("order");
    let b = unique_actor("order");
    append_ok(&store, &a, ExpectedVersion::NoEvents, numbered_events(1, 3)).await;

    let context = "subscription from the start";
    let mut subscription = store.subscribe(Position::START, EventFilter::all());
    let stored = next_events(context, &mut subscription, 3, WAIT).await;
    assert_versions_from(context, &stored, 1);
    assert!(
        stored.iter().all(|e| e.actor == a),
        "{context}: stored events"
    );

    // Events appended now reach the open subscription.
    append_ok(&store, &a, Version::new(3).into(), numbered_events(4, 1)).await;
    append_ok(&store, &b, ExpectedVersion::NoEvents, numbered_events(1, 2)).await;
    let live = next_events(context, &mut subscription, 3, WAIT).await;
    assert_eq!(
        live.iter()
            .map(|e| (&e.actor, e.version.get()))
            .collect::<Vec<_>>(),
        [(&a, 4), (&b, 1), (&b, 2)],
        "{context}: live events"
    );
    assert_silent(context, &mut subscription).await;

    let delivered: Vec<_> = stored.into_iter().chain(live).collect();
    assert_positions_increase(context, &delivered);
    let all = read_all_events(&store, Position::START, EventFilter::all()).await;
    assert_eq!(delivered, all, "{context} and read_all disagree");
}

/// Checks that a consumer that stops after a few events and resumes after the position of the last
/// one it processed gets every event exactly once, including events appended while it was away.
pub async fn subscribe_resumes_from_checkpoint<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    assert_empty_store(&store).await;
    let a = unique_actor("order");
    let b = unique_actor("customer");
    for (actor, count) in [(&a, 4), (&b, 2), (&a, 2), (&b, 2)] {
        append_ok(
            &store,
            actor,
            ExpectedVersion::Any,
            numbered_events(1, count),
        )
        .await;
    }

    // Process CHUNK events per subscription. After each of the first two chunks, append one event
    // while the consumer is away.
    let total = 12;
    let mut processed: Vec<RecordedEvent> = Vec::new();
    let mut checkpoint = Position::START;
    let mut live_appends = 0;
    for round in 0..total {
        if processed.len() == total {
            break;
        }
        let context = format!("subscription {round} after checkpoint {checkpoint}");
        let mut subscription = store.subscribe(checkpoint, EventFilter::all());
        let take = CHUNK.min(total - processed.len());
        let chunk = next_events(&context, &mut subscription, take, WAIT).await;
        drop(subscription);

        checkpoint = chunk.last().map_or(checkpoint, |e| e.position);
        processed.extend(chunk);
        if live_appends < 2 {
            append_ok(
                &store,
                &a,
                ExpectedVersion::Any,
                vec![event("Late", "late")],
            )
            .await;
            live_appends += 1;
        }
    }
    assert_eq!(
        processed.len(),
        total,
        "events processed across resumptions"
    );

    // Nothing is left after the last checkpoint, and nothing was missed or repeated.
    let context = format!("subscription after the final checkpoint {checkpoint}");
    let mut subscription = store.subscribe(checkpoint, EventFilter::all());
    assert_silent(&context, &mut subscription).await;
    assert_positions_increase("events processed across resumptions", &processed);
    let all = read_all_events(&store, Position::START, EventFilter::all()).await;
    assert_eq!(
        processed.iter().map(label).collect::<Vec<_>>(),
        all.iter().map(label).collect::<Vec<_>>(),
        "a resuming consumer must see every stored event once"
    );
}

/// Checks that events appended by several tasks at once while a subscription is open all arrive
/// once each, with every actor's versions in order.
pub async fn subscribe_receives_concurrent_appends<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let shared = unique_actor("counter");
    let earlier = append_ok(
        &store,
        &shared,
        ExpectedVersion::NoEvents,
        numbered_events(1, 2),
    )
    .await;

    let context = "subscription during concurrent appends";
    let mut subscription = store.subscribe(earlier.position, EventFilter::all());

    // Each writer appends one event at a time to its own actor and to the shared actor.
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, shared, barrier) = (store.clone(), shared.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let own = unique_actor("counter");
            barrier.wait().await;
            for n in 1..=OWN_APPENDS {
                append_ok(
                    &store,
                    &own,
                    Version::new(n - 1).into(),
                    numbered_events(n, 1),
                )
                .await;
                if n <= SHARED_APPENDS {
                    let payload = format!("writer {writer} shared {n}");
                    append_ok(
                        &store,
                        &shared,
                        ExpectedVersion::Any,
                        vec![event("Shared", payload)],
                    )
                    .await;
                }
            }
            own
        }));
    }
    let own_actors = join_tasks("concurrent writers", tasks).await;

    let expected = WRITERS * (OWN_APPENDS + SHARED_APPENDS) as usize;
    let delivered = next_events(context, &mut subscription, expected, LONG_WAIT).await;
    assert_silent(context, &mut subscription).await;

    assert_positions_increase(context, &delivered);
    assert!(
        delivered.iter().all(|e| e.position > earlier.position),
        "{context}: delivered an event from before the subscription's start"
    );
    let by_actor = group_by_actor(&delivered);
    for own in &own_actors {
        let events = by_actor.get(own).map_or(&[][..], Vec::as_slice);
        assert_eq!(
            events.len() as u64,
            OWN_APPENDS,
            "{context}: events of {own}"
        );
        assert_versions_from(context, events, 1);
    }
    let shared_events = by_actor.get(&shared).map_or(&[][..], Vec::as_slice);
    assert_eq!(
        shared_events.len(),
        WRITERS * SHARED_APPENDS as usize,
        "{context}: events of the shared actor"
    );
    assert_versions_from(context, shared_events, 3);

    let stored = read_all_events(&store, earlier.position, EventFilter::all()).await;
    assert_eq!(delivered, stored, "{context} and read_all disagree");
}

/// Checks that subscriptions filtered by kind and by actor deliver only matching events, stored and
/// live.
pub async fn subscribe_applies_filter<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let a = unique_actor("order");
    let b = unique_actor("order");
    let c = unique_actor("customer");
    append_ok(&store, &a, ExpectedVersion::NoEvents, numbered_events(1, 1)).await;
    append_ok(&store, &c, ExpectedVersion::NoEvents, numbered_events(1, 1)).await;
    append_ok(&store, &b, ExpectedVersion::NoEvents, numbered_events(1, 1)).await;

    let mut by_kind = store.subscribe(Position::START, EventFilter::kinds([c.kind.clone()]));
    let mut by_actor = store.subscribe(Position::START, EventFilter::actor(a.clone()));

    // Live events of every actor, the matching ones last, so a leaky filter is caught first.
    append_ok(&store, &b, Version::new(1).into(), numbered_events(2, 1)).await;
    append_ok(&store, &c, Version::new(1).into(), numbered_events(2, 1)).await;
    append_ok(&store, &a, Version::new(1).into(), numbered_events(2, 1)).await;

    let context = format!("subscription to kind {}", c.kind);
    let got = next_events(&context, &mut by_kind, 2, WAIT).await;
    assert!(
        got.iter().all(|e| e.actor == c),
        "{context}: delivered {:?}",
        labels(&got)
    );
    assert_versions_from(&context, &got, 1);
    assert_silent(&context, &mut by_kind).await;

    let context = format!("subscription to actor {a}");
    let got = next_events(&context, &mut by_actor, 2, WAIT).await;
    assert!(
        got.iter().all(|e| e.actor == a),
        "{context}: delivered {:?}",
        labels(&got)
    );
    assert_versions_from(&context, &got, 1);
    assert_silent(&context, &mut by_actor).await;
}

fn group_by_actor(events: &[RecordedEvent]) -> HashMap<ActorRef, Vec<RecordedEvent>> {
    let mut groups: HashMap<ActorRef, Vec<RecordedEvent>> = HashMap::new();
    for event in events {
        groups
            .entry(event.actor.clone())
            .or_default()
            .push(event.clone());
    }
    groups
}

fn labels(events: &[RecordedEvent]) -> Vec<String> {
    events.iter().map(label).collect()
}
