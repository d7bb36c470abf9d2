//! Cases for store-wide reads: position order, filters and where a read ends.

use aether_core::{
    ActorKind, ActorRef, EventFilter, EventStore, ExpectedVersion, Position, RecordedEvent,
    Snapshotter, Version,
};
use bytes::Bytes;

use super::helpers::{
    append_batches, append_ok, assert_empty_store, assert_positions_increase, assert_versions_from,
    collect_within, event, label, next_events, numbered_events, read_all_events, unique_actor,
    within,
};
use super::read::PAGED_STREAM;
use super::{Fixture, LONG_WAIT, WAIT};

/// Appends in the interleaving case.
const INTERLEAVED_APPENDS: usize = 30;

/// Checks that events of several actors, appended interleaved, come back from `read_all` once each,
/// in append order, with strictly growing positions. Resuming after any position returns exactly
/// the rest.
pub async fn read_all_orders_every_event_once<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    assert_empty_store(&store).await;
    let actors = [
        unique_actor("order"),
        unique_actor("order"),
        unique_actor("customer"),
    ];

    // Round-robin appends of one to four events, remembering what each append stored.
    let mut versions = [Version::ZERO; 3];
    let mut expected: Vec<(ActorRef, Version, Bytes)> = Vec::new();
    let mut outcomes = Vec::new();
    for round in 0..INTERLEAVED_APPENDS {
        let index = round % actors.len();
        let actor = &actors[index];
        let count = (round % 4) as u64 + 1;
        let mut events = Vec::new();
        for offset in 1..=count {
            let version = versions[index].advance(offset);
            let payload = Bytes::from(format!("actor {index} {version:?}"));
            expected.push((actor.clone(), version, payload.clone()));
            events.push(event("Interleaved", payload));
        }
        let outcome = append_ok(&store, actor, versions[index].into(), events).await;
        versions[index] = outcome.version;
        outcomes.push((expected.len() - 1, outcome));
    }

    let all = read_all_events(&store, Position::START, EventFilter::all()).await;
    assert_positions_increase("read_all from the start", &all);
    let got: Vec<_> = all
        .iter()
        .map(|e| (e.actor.clone(), e.version, e.payload.clone()))
        .collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "read_all from the start: event count"
    );
    assert_eq!(
        got, expected,
        "read_all must return every event once, in append order"
    );
    for (last_index, outcome) in &outcomes {
        assert_eq!(
            outcome.position, all[*last_index].position,
            "an append's position must be that of its last event"
        );
    }

    // Resuming after the position of event k returns events k+1.. and nothing else.
    for cut in [1, 2, 10, all.len() - 1, all.len()] {
        let after = all[cut - 1].position;
        let rest = read_all_events(&store, after, EventFilter::all()).await;
        assert_eq!(
            rest,
            all[cut..],
            "read_all after position {after} must return the {} later events",
            all.len() - cut
        );
    }
}

/// Checks that filters by kind, by actor and by both let through exactly the matching events, in
/// position order.
pub async fn read_all_filters_by_kind_and_actor<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    assert_empty_store(&store).await;
    let order = kind("order");
    let customer = kind("customer");
    let a = unique_actor("order");
    let b = unique_actor("order");
    let c = unique_actor("customer");

    // Interleave the actors so every filter must skip events.
    for (actor, count) in [(&a, 2), (&c, 1), (&b, 2), (&c, 3), (&a, 1)] {
        append_ok(
            &store,
            actor,
            ExpectedVersion::Any,
            numbered_events(1, count),
        )
        .await;
    }
    let all = read_all_events(&store, Position::START, EventFilter::all()).await;
    assert_eq!(all.len(), 9, "read_all without filter");

    let only = |keep: &dyn Fn(&RecordedEvent) -> bool| -> Vec<RecordedEvent> {
        all.iter().filter(|e| keep(e)).cloned().collect()
    };
    let filters = [
        (
            EventFilter::kinds([order.clone()]),
            only(&|e| e.actor.kind == order),
        ),
        (
            EventFilter::kinds([customer.clone()]),
            only(&|e| e.actor == c),
        ),
        (
            EventFilter::kinds([order.clone(), customer.clone()]),
            all.clone(),
        ),
        (EventFilter::kinds([kind("invoice")]), Vec::new()),
        (EventFilter::actor(a.clone()), only(&|e| e.actor == a)),
        (EventFilter::actor(unique_actor("order")), Vec::new()),
        (
            EventFilter {
                kinds: vec![order.clone()],
                actor: Some(b.clone()),
            },
            only(&|e| e.actor == b),
        ),
        (
            EventFilter {
                kinds: vec![customer.clone()],
                actor: Some(a.clone()),
            },
            Vec::new(),
        ),
    ];
    for (filter, expected) in filters {
        let got = read_all_events(&store, Position::START, filter.clone()).await;
        assert_eq!(
            got.iter().map(label).collect::<Vec<_>>(),
            expected.iter().map(label).collect::<Vec<_>>(),
            "read_all with {filter:?}"
        );
        assert_eq!(got, expected, "read_all with {filter:?}: event contents");
    }

    let of_a = only(&|e| e.actor == a);
    assert_versions_from("read_all of one actor", &of_a, 1);
    let after_second = of_a[1].position;
    let rest = read_all_events(&store, after_second, EventFilter::actor(a.clone())).await;
    assert_eq!(rest, of_a[2..], "read_all of {a} after its second event");
}

/// Checks that `read_all` after the last position, or far beyond it, returns an empty stream that
/// ends. A later append shows up only in a new read.
pub async fn read_all_after_last_position_is_empty<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    assert_empty_store(&store).await;
    let actor = unique_actor("order");
    let last = append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 5),
    )
    .await
    .position;

    let beyond = Position::new(last.get() + 1_000);
    let filters = [
        EventFilter::all(),
        EventFilter::kinds([actor.kind.clone()]),
        EventFilter::actor(actor.clone()),
    ];
    for after in [last, beyond] {
        for filter in &filters {
            let context = format!("read_all after position {after} with {filter:?}");
            let events =
                collect_within(&context, store.read_all(after, filter.clone()), WAIT).await;
            assert!(
                events.is_empty(),
                "{context}: returned {} events",
                events.len()
            );
        }
    }

    let next = append_ok(
        &store,
        &actor,
        Version::new(5).into(),
        numbered_events(6, 1),
    )
    .await;
    assert!(
        next.position > last,
        "a later append must get a higher position"
    );
    let new = read_all_events(&store, last, EventFilter::all()).await;
    assert_eq!(new.len(), 1, "read_all after the old last position");
    assert_eq!(new[0].position, next.position, "position of the new event");
    assert_eq!(new[0].version, Version::new(6), "version of the new event");
}

/// Checks that a store-wide read stops at the head it saw when it started. An event appended after
/// the read yielded its first event is not part of it.
pub async fn read_all_stops_at_head_seen_at_start<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    assert_empty_store(&store).await;
    let actor = unique_actor("ledger");
    append_batches(&store, &actor, PAGED_STREAM).await;

    let context = "read_all racing an append";
    let mut stream = store.read_all(Position::START, EventFilter::all());
    let first = next_events(context, &mut stream, 1, WAIT).await;
    let late = append_ok(
        &store,
        &actor,
        Version::new(PAGED_STREAM).into(),
        numbered_events(PAGED_STREAM + 1, 1),
    )
    .await;
    let rest = collect_within(context, stream, LONG_WAIT).await;

    assert_eq!(first[0].version, Version::new(1), "{context}: first event");
    assert_eq!(
        rest.len() as u64,
        PAGED_STREAM - 1,
        "{context}: the read must end at the store's head when it started"
    );
    assert!(
        rest.iter().all(|e| e.position < late.position),
        "{context}: the read included the event appended after it started"
    );
    assert_versions_from(context, &rest, 2);
}

fn kind(name: &str) -> ActorKind {
    ActorKind::new(name).unwrap_or_else(|err| panic!("kind {name:?}: {err}"))
}

/// `last_position` is the start on an empty store and then the position of the newest event,
/// and a subscription after it receives only later events.
pub async fn last_position_follows_appends<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    assert_empty_store(&store).await;
    let empty = within("last_position of an empty store", store.last_position()).await;
    assert_eq!(
        empty.unwrap(),
        Position::START,
        "last_position of an empty store"
    );

    let first = unique_actor("ledger");
    let second = unique_actor("ledger");
    let a = append_ok(
        &store,
        &first,
        ExpectedVersion::NoEvents,
        numbered_events(1, 3),
    )
    .await;
    let b = append_ok(
        &store,
        &second,
        ExpectedVersion::NoEvents,
        numbered_events(1, 2),
    )
    .await;
    assert!(b.position > a.position, "positions grow across actors");
    let last = within("last_position after two appends", store.last_position())
        .await
        .unwrap();
    assert_eq!(last, b.position, "last_position after two appends");

    let mut live = store.subscribe(last, EventFilter::all());
    let c = append_ok(
        &store,
        &first,
        Version::new(3).into(),
        numbered_events(4, 1),
    )
    .await;
    let delivered = next_events("subscription after last_position", &mut live, 1, WAIT).await;
    assert_eq!(
        delivered[0].position, c.position,
        "only the later event is delivered"
    );
    assert_eq!(
        delivered[0].version,
        Version::new(4),
        "version of the later event"
    );
}
