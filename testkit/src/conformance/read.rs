//! Cases for reading one actor's stream: long streams, starting versions and where a read ends.

use aether_core::{EventStore, ExpectedVersion, Snapshotter, Version};

use super::helpers::{
    append_batches, append_ok, assert_all_of, assert_versions_from, collect_within, head_of,
    next_events, numbered_events, numbered_payload, read_events, unique_actor,
};
use super::{Fixture, LONG_WAIT, WAIT};

/// Events in the long stream.
const LONG_STREAM: u64 = 10_000;

/// Events in the stream whose read races an append, so the read spans several pages.
pub(crate) const PAGED_STREAM: u64 = 2_500;

/// Checks that reading 10,000 events from versions 0, 1, 2, 5000, 9999, 10000 and 10001 returns the
/// right events, in order, without gaps.
pub async fn read_long_stream_from_any_version<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("ledger");
    append_batches(&store, &actor, LONG_STREAM).await;
    assert_eq!(
        head_of(&store, &actor).await,
        Version::new(LONG_STREAM),
        "head"
    );

    for from in [0, 1, 2, 5_000, 9_999, 10_000, 10_001] {
        let context = format!("read of {LONG_STREAM} events from version {from}");
        let events =
            collect_within(&context, store.read(&actor, Version::new(from)), LONG_WAIT).await;

        // Versions 0 and 1 both mean the first event.
        let first = from.max(1);
        let expected_count = (LONG_STREAM + 1).saturating_sub(first);
        assert_eq!(
            events.len() as u64,
            expected_count,
            "{context}: event count"
        );
        if expected_count == 0 {
            continue;
        }
        assert_versions_from(&context, &events, first);
        assert_all_of(&context, &events, &actor);
        assert_eq!(
            events.last().map(|e| e.version),
            Some(Version::new(LONG_STREAM)),
            "{context}: last version"
        );
        for event in &events {
            assert_eq!(
                event.payload,
                numbered_payload(event.version.get()),
                "{context}: payload of {:?}",
                event.version
            );
        }
    }
}

/// Checks that reading an actor without events returns an empty stream that ends, also from later
/// versions and while other actors have events.
pub async fn read_actor_without_events_is_empty<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let other = unique_actor("ledger");
    append_ok(
        &store,
        &other,
        ExpectedVersion::NoEvents,
        numbered_events(1, 3),
    )
    .await;
    let empty = unique_actor("ledger");

    for from in [0, 1, 2, 100] {
        let events = read_events(&store, &empty, Version::new(from)).await;
        assert!(
            events.is_empty(),
            "read of {empty} from version {from} returned {} events of an actor without events",
            events.len()
        );
    }
    assert_eq!(
        head_of(&store, &empty).await,
        Version::ZERO,
        "head of {empty}"
    );
}

/// Checks that a read ends at the head without waiting for new events, and that an event appended
/// afterwards shows up only in a new read.
pub async fn read_ends_at_head<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let actor = unique_actor("ledger");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 3),
    )
    .await;

    let context = format!("read of {actor} at the head");
    let before = collect_within(&context, store.read(&actor, Version::ZERO), WAIT).await;
    assert_eq!(before.len(), 3, "{context}: event count");

    append_ok(
        &store,
        &actor,
        Version::new(3).into(),
        numbered_events(4, 1),
    )
    .await;
    assert_eq!(before.len(), 3, "{context}: the finished read changed");

    let after = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(after.len(), 4, "a new read must include the new event");
    assert_versions_from("a new read", &after, 1);
    let tail = read_events(&store, &actor, Version::new(4)).await;
    assert_eq!(tail.len(), 1, "a read from the new version");
}

/// Checks that a read stops at the head it saw when it started. An event appended after the read
/// yielded its first event is not part of it.
pub async fn read_stops_at_head_seen_at_start<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("ledger");
    append_batches(&store, &actor, PAGED_STREAM).await;

    let context = format!("read of {actor} racing an append");
    let mut stream = store.read(&actor, Version::ZERO);
    let first = next_events(&context, &mut stream, 1, WAIT).await;
    append_ok(
        &store,
        &actor,
        Version::new(PAGED_STREAM).into(),
        numbered_events(PAGED_STREAM + 1, 1),
    )
    .await;
    let rest = collect_within(&context, stream, LONG_WAIT).await;

    assert_eq!(
        first[0].version,
        Version::new(1),
        "{context}: first version"
    );
    assert_eq!(
        rest.len() as u64,
        PAGED_STREAM - 1,
        "{context}: the read must end at version {PAGED_STREAM}, the head when it started"
    );
    assert_versions_from(&context, &rest, 2);
}
