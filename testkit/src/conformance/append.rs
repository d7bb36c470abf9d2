//! Cases for what an append stores and returns: multi-event atomicity, returned versions and
//! positions, interleaved actors, empty appends.

use aether_core::{
    ErrorKind, EventFilter, EventStore, ExpectedVersion, Position, Snapshotter, StoreError, Version,
};
use bytes::Bytes;

use super::Fixture;
use super::helpers::{
    append_err, append_ok, assert_all_of, assert_positions_increase, assert_versions_from,
    describe, event, expect_conflict, head_of, numbered_events, numbered_payload, read_all_events,
    read_events, unique_actor,
};

/// Checks that a five-event append is read back whole and in order, and that its outcome names its
/// first version, last version and last position.
pub async fn multi_event_append_is_stored_whole<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("order");

    let first = append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 5),
    )
    .await;
    assert_eq!(
        first.first_version,
        Version::new(1),
        "first append's first version"
    );
    assert_eq!(first.version, Version::new(5), "first append's version");
    let second = append_ok(&store, &actor, first.version.into(), numbered_events(6, 5)).await;
    assert_eq!(
        second.first_version,
        Version::new(6),
        "second append's first version"
    );
    assert_eq!(second.version, Version::new(10), "second append's version");

    let stored = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(stored.len(), 10, "events of {actor}");
    assert_all_of("read of a multi-event append", &stored, &actor);
    assert_versions_from("read of a multi-event append", &stored, 1);
    assert_positions_increase("read of a multi-event append", &stored);
    for (n, event) in (1..).zip(&stored) {
        assert_eq!(event.payload, numbered_payload(n), "payload of version {n}");
        assert_eq!(event.event_type, "Numbered", "event type of version {n}");
    }
    assert_eq!(
        first.position, stored[4].position,
        "first append's position"
    );
    assert_eq!(
        second.position, stored[9].position,
        "second append's position"
    );

    let everywhere = read_all_events(&store, Position::START, EventFilter::actor(actor)).await;
    assert_eq!(
        everywhere, stored,
        "read_all and read disagree on the appended events"
    );
}

/// Checks that a five-event append that conflicts, or that carries one event over the size limit,
/// stores none of its events.
pub async fn failed_multi_event_append_stores_nothing<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("order");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 2),
    )
    .await;

    // A conflicting append of five events.
    let expected = ExpectedVersion::Exact(Version::new(1));
    let result = store.append(&actor, expected, numbered_events(3, 5)).await;
    expect_conflict(result, &actor, expected, Version::new(2));
    assert_eq!(
        head_of(&store, &actor).await,
        Version::new(2),
        "head after a conflict"
    );

    // Five events whose third is one byte over the limit.
    let limit = store.limits().max_event_bytes;
    let mut events = numbered_events(3, 5);
    events[2] = event("TooLarge", vec![0x5a; limit + 1]);
    let err = append_err(&store, &actor, Version::new(2).into(), events).await;
    assert_eq!(
        err.kind(),
        ErrorKind::PayloadTooLarge,
        "an event over the limit must be rejected as too large, got: {}",
        describe(&err)
    );
    assert_eq!(
        head_of(&store, &actor).await,
        Version::new(2),
        "head after a rejected append"
    );

    let stored = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(stored.len(), 2, "failed appends to {actor} stored events");
    let everywhere =
        read_all_events(&store, Position::START, EventFilter::actor(actor.clone())).await;
    assert_eq!(everywhere.len(), 2, "failed appends show up in read_all");

    // The stream continues at version 3 as if the failed appends never happened.
    let next = append_ok(
        &store,
        &actor,
        Version::new(2).into(),
        numbered_events(3, 1),
    )
    .await;
    assert_eq!(
        next.version,
        Version::new(3),
        "version after failed appends"
    );
}

/// Checks that each append's returned version is accepted as the next append's expectation.
pub async fn returned_version_is_next_expectation<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("order");

    let mut version = Version::ZERO;
    let mut next_number = 1;
    for count in [1, 3, 2, 1, 4] {
        let expected = ExpectedVersion::from(version);
        let outcome = append_ok(
            &store,
            &actor,
            expected,
            numbered_events(next_number, count),
        )
        .await;
        assert_eq!(
            outcome.first_version,
            version.next(),
            "first version of an append"
        );
        assert_eq!(
            outcome.version,
            version.advance(count),
            "version of an append"
        );
        version = outcome.version;
        next_number += count;
    }

    assert_eq!(
        head_of(&store, &actor).await,
        version,
        "head after chained appends"
    );
    let stored = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(
        stored.len() as u64,
        version.get(),
        "events after chained appends"
    );
    assert_versions_from("chained appends", &stored, 1);
}

/// Checks that appends to two actors interleave (A1, B1, A2) without affecting each other's
/// versions.
pub async fn interleaved_actors_append_independently<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let a = unique_actor("order");
    let b = unique_actor("order");

    let a1 = append_ok(
        &store,
        &a,
        ExpectedVersion::NoEvents,
        vec![event("A", "a1")],
    )
    .await;
    let b1 = append_ok(
        &store,
        &b,
        ExpectedVersion::NoEvents,
        vec![event("B", "b1")],
    )
    .await;
    let a2 = append_ok(&store, &a, a1.version.into(), vec![event("A", "a2")]).await;

    assert_eq!(a1.version, Version::new(1), "A's first version");
    assert_eq!(b1.version, Version::new(1), "B's first version");
    assert_eq!(a2.version, Version::new(2), "A's second version");
    assert!(
        a1.position < b1.position && b1.position < a2.position,
        "positions must follow append order: A1 {:?}, B1 {:?}, A2 {:?}",
        a1.position,
        b1.position,
        a2.position
    );

    let events_a = read_events(&store, &a, Version::ZERO).await;
    let events_b = read_events(&store, &b, Version::ZERO).await;
    assert_eq!(events_a.len(), 2, "events of A");
    assert_eq!(events_b.len(), 1, "events of B");
    assert_all_of("read of A", &events_a, &a);
    assert_all_of("read of B", &events_b, &b);
    assert_eq!(events_a[1].payload, Bytes::from("a2"), "A's second payload");
    assert_eq!(events_b[0].payload, Bytes::from("b1"), "B's payload");
}

/// Checks that an append without events is rejected as invalid input, for new and existing actors,
/// and stores nothing.
pub async fn empty_append_is_rejected<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let fresh = unique_actor("order");
    let existing = unique_actor("order");
    append_ok(
        &store,
        &existing,
        ExpectedVersion::NoEvents,
        numbered_events(1, 1),
    )
    .await;
    let before = read_all_events(&store, Position::START, EventFilter::all()).await;

    let cases = [
        (&fresh, ExpectedVersion::NoEvents),
        (&fresh, ExpectedVersion::Any),
        (&existing, ExpectedVersion::Exact(Version::new(1))),
        (&existing, ExpectedVersion::Any),
    ];
    for (actor, expected) in cases {
        let err = append_err(&store, actor, expected, Vec::new()).await;
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "an empty append to {actor} expecting {expected} must be invalid input, got: {}",
            describe(&err)
        );
        if let StoreError::InvalidInput { actor: named, .. } = &err {
            assert_eq!(named, actor, "the error names the wrong actor");
        }
    }

    assert_eq!(
        head_of(&store, &fresh).await,
        Version::ZERO,
        "head of the new actor"
    );
    assert_eq!(
        head_of(&store, &existing).await,
        Version::new(1),
        "head of the existing actor"
    );
    let after = read_all_events(&store, Position::START, EventFilter::all()).await;
    assert_eq!(after, before, "empty appends changed the store");
}
