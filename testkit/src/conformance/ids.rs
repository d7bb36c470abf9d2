//! Cases for actor ids: unusual characters stay distinct, invalid ids are rejected.

use aether_core::{
    ActorRef, ErrorKind, EventFilter, EventStore, ExpectedVersion, IdError, MAX_ID_LEN, Position,
    Snapshotter, StoreError, Version,
};

use super::helpers::{
    append_ok, assert_all_of, assert_silent, assert_versions_from, head_of, next_events,
    numbered_events, read_all_events, read_events, unique_kind,
};
use super::{Fixture, WAIT};

/// Ids that backends must store as they are or encode: separators, wildcards of NATS subjects,
/// whitespace, control characters, non-ASCII text, case differences and the maximum length.
fn unusual_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "a b",
        "a.b",
        "a",
        "A",
        "a*",
        "a>",
        "*",
        ">",
        ".",
        "a/b",
        "x\r\ny",
        "nul\0byte",
        "ü/ß",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    ids.push("k".repeat(MAX_ID_LEN));
    // 512 two-byte characters: 1,024 bytes of UTF-8.
    ids.push("ü".repeat(MAX_ID_LEN / 2));
    ids
}

/// Checks that unusual ids all work and stay separate. Each actor gets its own number of events
/// back from `read`, `head`, `read_all` and `subscribe`.
pub async fn unusual_ids_stay_separate<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let kind = unique_kind("ids");
    let other_kind = unique_kind("ids");
    let actors: Vec<ActorRef> = unusual_ids()
        .into_iter()
        .map(|id| {
            ActorRef::parse(kind.as_str(), id.clone())
                .unwrap_or_else(|err| panic!("id {id:?} must be valid: {err}"))
        })
        .collect();

    // Actor i gets i + 1 events, written one append at a time in rounds so the actors interleave.
    for round in 0..actors.len() as u64 {
        for (index, actor) in actors.iter().enumerate() {
            if (index as u64) >= round {
                let expected = ExpectedVersion::from(Version::new(round));
                append_ok(&store, actor, expected, numbered_events(round + 1, 1)).await;
            }
        }
    }
    // The same id under another kind is another actor.
    let twin = ActorRef::parse(other_kind.as_str(), "a").unwrap();
    append_ok(
        &store,
        &twin,
        ExpectedVersion::NoEvents,
        numbered_events(1, 1),
    )
    .await;

    for (index, actor) in actors.iter().enumerate() {
        let count = index + 1;
        let context = format!("read of {actor}");
        let events = read_events(&store, actor, Version::ZERO).await;
        assert_eq!(events.len(), count, "{context}: event count");
        assert_all_of(&context, &events, actor);
        assert_versions_from(&context, &events, 1);
        assert_eq!(
            head_of(&store, actor).await,
            Version::new(count as u64),
            "head of {actor}"
        );

        let context = format!("read_all of {actor}");
        let filtered =
            read_all_events(&store, Position::START, EventFilter::actor(actor.clone())).await;
        assert_eq!(filtered, events, "{context} and read disagree");
    }

    let of_kind =
        read_all_events(&store, Position::START, EventFilter::kinds([kind.clone()])).await;
    let expected_total = actors.len() * (actors.len() + 1) / 2;
    assert_eq!(of_kind.len(), expected_total, "read_all of kind {kind}");
    let of_other = read_all_events(&store, Position::START, EventFilter::kinds([other_kind])).await;
    assert_eq!(
        of_other.len(),
        1,
        "read_all of the kind holding only {twin}"
    );
    assert_eq!(
        of_other[0].actor, twin,
        "read_all of the kind holding only {twin}"
    );

    // Subscriptions to ids that look like subject wildcards see only their own actor.
    for id in ["a", "a*", "a>", "*", ">"] {
        let index = actors
            .iter()
            .position(|a| a.id.as_str() == id)
            .expect("the id is in the list");
        let actor = &actors[index];
        let context = format!("subscription to {actor}");
        let mut subscription = store.subscribe(Position::START, EventFilter::actor(actor.clone()));
        let events = next_events(&context, &mut subscription, index + 1, WAIT).await;
        assert_all_of(&context, &events, actor);
        assert_silent(&context, &mut subscription).await;
    }
}

/// Checks that the empty id and ids one byte over the maximum are rejected with an invalid-id error
/// before anything reaches the store, and that the store is unchanged.
pub async fn invalid_ids_are_rejected<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let kind = unique_kind("ids");
    let valid = ActorRef::parse(kind.as_str(), "valid").unwrap();
    append_ok(
        &store,
        &valid,
        ExpectedVersion::NoEvents,
        numbered_events(1, 2),
    )
    .await;
    let before = read_all_events(&store, Position::START, EventFilter::all()).await;

    // 1,025 bytes, once in ASCII and once ending in the middle of what would be a 1 KiB id of
    // two-byte characters.
    let too_long_ascii = "k".repeat(MAX_ID_LEN + 1);
    let too_long_utf8 = format!("{}k", "ü".repeat(MAX_ID_LEN / 2));
    let cases = [
        (String::new(), "empty id"),
        (too_long_ascii, "1,025-byte ASCII id"),
        (too_long_utf8, "1,025-byte UTF-8 id"),
    ];
    for (id, name) in cases {
        let err = match ActorRef::parse(kind.as_str(), id) {
            Ok(actor) => panic!("the {name} must be rejected, got {actor}"),
            Err(err) => err,
        };
        match (&err, name) {
            (IdError::EmptyId, "empty id") => {}
            (IdError::IdTooLong { len, .. }, _) if *len == MAX_ID_LEN + 1 => {}
            _ => panic!("the {name} was rejected for the wrong reason: {err:?}"),
        }
        let err = StoreError::from(err);
        assert_eq!(err.kind(), ErrorKind::InvalidId, "the {name}: error kind");
    }

    let after = read_all_events(&store, Position::START, EventFilter::all()).await;
    assert_eq!(after, before, "rejected ids changed the store");
}
