//! Cases for snapshots: never going back, never ahead of the events, exact state bytes, limits.

use aether_core::{
    ActorRef, ErrorKind, EventStore, ExpectedVersion, Snapshot, Snapshotter, StoreError, Version,
};
use bytes::Bytes;
use chrono::{TimeZone, Utc};

use super::Fixture;
use super::helpers::{append_ok, describe, numbered_events, unique_actor, within};
use super::payloads::{assert_testable, assert_too_large};

/// Checks that saving an older snapshot after a newer one returns false and keeps the newer one,
/// while saving the same version again replaces it.
pub async fn snapshot_never_goes_back<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let actor = unique_actor("account");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 3),
    )
    .await;

    assert!(
        save(&store, &actor, Snapshot::new(Version::new(2), "state 2")).await,
        "save at 2"
    );
    assert_eq!(
        loaded_version(&store, &actor).await,
        Some(Version::new(2)),
        "after saving 2"
    );
    assert!(
        save(&store, &actor, Snapshot::new(Version::new(3), "state 3")).await,
        "save at 3"
    );

    // Older snapshots are not stored.
    for older in [2, 1] {
        let saved = save(&store, &actor, Snapshot::new(Version::new(older), "old")).await;
        assert!(
            !saved,
            "saving version {older} after version 3 must return false"
        );
    }
    let kept = load(&store, &actor).await.expect("a snapshot at version 3");
    assert_eq!(
        kept.version,
        Version::new(3),
        "version kept after older saves"
    );
    assert_eq!(
        kept.state,
        Bytes::from("state 3"),
        "state kept after older saves"
    );

    // The same version replaces, so a state whose schema changed can be rewritten.
    let rewritten = Snapshot::new(Version::new(3), "state 3, schema 2").with_schema_version(2);
    assert!(
        save(&store, &actor, rewritten).await,
        "saving version 3 again"
    );
    let kept = load(&store, &actor).await.expect("a snapshot at version 3");
    assert_eq!(
        kept.state,
        Bytes::from("state 3, schema 2"),
        "state after rewriting"
    );
    assert_eq!(kept.schema_version, 2, "schema version after rewriting");
}

/// Checks that a snapshot ahead of the actor's last event is rejected as invalid input and not
/// stored.
pub async fn snapshot_ahead_of_events_is_rejected<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("account");
    let without_events = unique_actor("account");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 3),
    )
    .await;

    let err = save_err(&store, &actor, Snapshot::new(Version::new(4), "ahead")).await;
    assert_invalid_input(
        &err,
        &actor,
        "a snapshot at version 4 of an actor with 3 events",
    );
    assert!(
        load(&store, &actor).await.is_none(),
        "a rejected snapshot was stored"
    );

    let err = save_err(
        &store,
        &without_events,
        Snapshot::new(Version::new(1), "ahead"),
    )
    .await;
    assert_invalid_input(
        &err,
        &without_events,
        "a snapshot of an actor without events",
    );
    assert!(
        load(&store, &without_events).await.is_none(),
        "a rejected snapshot was stored"
    );

    // A stored snapshot survives a rejected one.
    assert!(
        save(&store, &actor, Snapshot::new(Version::new(3), "at head")).await,
        "save at 3"
    );
    let err = save_err(&store, &actor, Snapshot::new(Version::new(4), "ahead")).await;
    assert_invalid_input(&err, &actor, "a snapshot at version 4 after one at 3");
    assert_eq!(
        loaded_version(&store, &actor).await,
        Some(Version::new(3)),
        "kept snapshot"
    );
}

/// Checks that loading an actor without a snapshot returns none, with or without events, even when
/// another actor with a similar address has one.
pub async fn missing_snapshot_loads_none<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let never_seen = unique_actor("account");
    assert!(
        load(&store, &never_seen).await.is_none(),
        "snapshot of {never_seen}"
    );

    let with_events = unique_actor("account");
    append_ok(
        &store,
        &with_events,
        ExpectedVersion::NoEvents,
        numbered_events(1, 2),
    )
    .await;
    assert!(
        load(&store, &with_events).await.is_none(),
        "snapshot of {with_events}"
    );

    // The same id under another kind, and an id that extends this one, are other actors.
    let other_kind = ActorRef::parse("ledger", with_events.id.as_str()).unwrap();
    let longer_id = ActorRef::parse("account", format!("{}.x", with_events.id)).unwrap();
    for other in [&other_kind, &longer_id] {
        append_ok(
            &store,
            other,
            ExpectedVersion::NoEvents,
            numbered_events(1, 1),
        )
        .await;
        assert!(
            save(&store, other, Snapshot::new(Version::new(1), "other")).await,
            "{other}"
        );
    }
    assert!(
        load(&store, &with_events).await.is_none(),
        "{with_events} must not see another actor's snapshot"
    );
}

/// Checks that snapshot state bytes (including bytes that are not UTF-8 and an empty state), the
/// schema version and the time taken come back exactly. The time must be kept at least to the
/// microsecond.
pub async fn snapshot_state_round_trips<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let all_bytes: Vec<u8> = (0..=255).rev().collect();
    let states: [(Bytes, u32); 4] = [
        (Bytes::from_static(&[0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28]), 1),
        (Bytes::from_static(b"\0\xef\xbb\xbf{\"total\":1}"), 0),
        (Bytes::new(), u32::MAX),
        (Bytes::from(all_bytes), 42),
    ];
    let taken_at = Utc
        .with_ymd_and_hms(2011, 12, 9, 12, 50, 7)
        .single()
        .expect("a valid UTC time")
        + chrono::Duration::nanoseconds(987_654_321);

    for (state, schema_version) in states {
        let actor = unique_actor("account");
        append_ok(
            &store,
            &actor,
            ExpectedVersion::NoEvents,
            numbered_events(1, 2),
        )
        .await;
        let mut snapshot = Snapshot::new(Version::new(2), state.clone());
        snapshot.schema_version = schema_version;
        snapshot.taken_at = taken_at;
        assert!(save(&store, &actor, snapshot).await, "save of {actor}");

        let got = load(&store, &actor)
            .await
            .expect("a snapshot after saving one");
        assert_eq!(got.version, Version::new(2), "snapshot version of {actor}");
        assert_eq!(got.state, state, "state bytes of {actor}");
        assert_eq!(
            got.schema_version, schema_version,
            "schema version of {actor}"
        );
        assert_eq!(
            got.taken_at.timestamp_micros(),
            taken_at.timestamp_micros(),
            "time taken of {actor}, to the microsecond"
        );
    }
}

/// Checks that a state one byte over `max_snapshot_bytes` is rejected with a too-large error naming
/// the limit and is not stored, while a state of exactly the limit is stored.
pub async fn snapshot_over_limit_is_rejected<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let limit = store.limits().max_snapshot_bytes;
    assert_testable(limit, "max_snapshot_bytes");
    let actor = unique_actor("account");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 2),
    )
    .await;

    let over = Snapshot::new(Version::new(1), vec![0x73; limit + 1]);
    let err = save_err(&store, &actor, over).await;
    assert_too_large(&err, &actor, limit + 1, limit);
    assert!(
        load(&store, &actor).await.is_none(),
        "a rejected snapshot was stored"
    );

    let state: Bytes = (0..limit)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<_>>()
        .into();
    let at_limit = Snapshot::new(Version::new(2), state.clone());
    assert!(
        save(&store, &actor, at_limit).await,
        "save of a state at the limit"
    );
    let got = load(&store, &actor)
        .await
        .expect("the snapshot at the limit");
    assert!(
        got.state == state,
        "the state at the limit came back changed"
    );
}

async fn save<S: Snapshotter>(store: &S, actor: &ActorRef, snapshot: Snapshot) -> bool {
    let context = format!("save of a snapshot of {actor} at {:?}", snapshot.version);
    match within(&context, store.save_snapshot(actor, snapshot)).await {
        Ok(saved) => saved,
        Err(err) => panic!("{context} failed: {}", describe(&err)),
    }
}

async fn save_err<S: Snapshotter>(store: &S, actor: &ActorRef, snapshot: Snapshot) -> StoreError {
    let context = format!("save of a snapshot of {actor} at {:?}", snapshot.version);
    match within(&context, store.save_snapshot(actor, snapshot)).await {
        Ok(saved) => panic!("{context} must fail, but it returned {saved}"),
        Err(err) => err,
    }
}

async fn load<S: Snapshotter>(store: &S, actor: &ActorRef) -> Option<Snapshot> {
    let context = format!("load of the snapshot of {actor}");
    match within(&context, store.load_snapshot(actor)).await {
        Ok(snapshot) => snapshot,
        Err(err) => panic!("{context} failed: {}", describe(&err)),
    }
}

async fn loaded_version<S: Snapshotter>(store: &S, actor: &ActorRef) -> Option<Version> {
    load(store, actor).await.map(|s| s.version)
}

fn assert_invalid_input(err: &StoreError, actor: &ActorRef, context: &str) {
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "{context} must be rejected as invalid input, got: {}",
        describe(err)
    );
    if let StoreError::InvalidInput { actor: named, .. } = err {
        assert_eq!(named, actor, "{context}: the error names the wrong actor");
    }
}

/// A snapshot of the same version replaces the stored one, so a state whose schema changed can
/// be rewritten, and an actor without events can keep a snapshot at version 0.
pub async fn snapshot_same_version_replaces<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let actor = unique_actor("account");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 2),
    )
    .await;

    assert!(
        save(&store, &actor, Snapshot::new(Version::new(2), "old shape")).await,
        "first save"
    );
    let rewritten = Snapshot::new(Version::new(2), "new shape").with_schema_version(2);
    assert!(
        save(&store, &actor, rewritten).await,
        "save of the same version"
    );
    let loaded = load(&store, &actor).await.expect("snapshot after rewrite");
    assert_eq!(
        loaded.state,
        Bytes::from_static(b"new shape"),
        "state after rewrite"
    );
    assert_eq!(loaded.schema_version, 2, "schema version after rewrite");

    let idle = unique_actor("checkpoint");
    for round in 0..3u8 {
        let snapshot = Snapshot::new(Version::ZERO, vec![round]);
        assert!(
            save(&store, &idle, snapshot).await,
            "save {round} at version 0"
        );
    }
    let loaded = load(&store, &idle).await.expect("snapshot at version 0");
    assert_eq!(
        loaded.state,
        Bytes::from(vec![2u8]),
        "newest snapshot at version 0"
    );
}
