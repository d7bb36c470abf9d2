//! Cases for what events carry: exact payload bytes, metadata, and the size limits.

use aether_core::{
    ActorRef, ErrorKind, EventFilter, EventMetadata, EventStore, ExpectedVersion, NewEvent,
    Position, RecordedEvent, Snapshotter, StoreError, StoreLimits, Version,
};
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Timelike, Utc};

use super::helpers::{
    append_err, append_ok, describe, head_of, numbered_events, read_all_events, read_events,
    unique_actor,
};
use super::{Fixture, MAX_TESTED_BYTES};

/// Events whose payloads need exact byte handling: NUL, byte-order mark, emoji, bytes that are not
/// UTF-8, nothing at all, and every byte value.
fn awkward_events() -> Vec<NewEvent> {
    let all_bytes: Vec<u8> = (0..=255).collect();
    vec![
        NewEvent::new("HasNul", &b"before\0after"[..]),
        NewEvent::new("BomAndEmoji", "\u{feff}payment received 😀").with_schema_version(2),
        NewEvent::new("NotUtf8", &[0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28][..]).with_schema_version(0),
        NewEvent::new("Empty", Bytes::new()).with_schema_version(u32::MAX),
        NewEvent::new("Every byte", all_bytes).with_schema_version(7),
        NewEvent::new("Zahlung.eingegangen/ü", "{}"),
    ]
}

/// Checks that payloads with NUL bytes, a byte-order mark and emoji, bytes that are not UTF-8, and
/// no bytes at all come back exactly from `read` and `read_all`, with their event type and schema
/// version.
pub async fn payload_bytes_round_trip<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let together = unique_actor("payload");
    let one_by_one = unique_actor("payload");
    let events = awkward_events();

    // Once as one multi-event append, once as one append per event.
    append_ok(&store, &together, ExpectedVersion::NoEvents, events.clone()).await;
    for (n, event) in (0..).zip(&events) {
        append_ok(
            &store,
            &one_by_one,
            Version::new(n).into(),
            vec![event.clone()],
        )
        .await;
    }

    for actor in [&together, &one_by_one] {
        let stored = read_events(&store, actor, Version::ZERO).await;
        assert_eq!(stored.len(), events.len(), "events of {actor}");
        for (sent, got) in events.iter().zip(&stored) {
            assert_same_event(&format!("read of {actor}"), sent, got);
        }
        let everywhere =
            read_all_events(&store, Position::START, EventFilter::actor(actor.clone())).await;
        for (sent, got) in events.iter().zip(&everywhere) {
            assert_same_event(&format!("read_all of {actor}"), sent, got);
        }
    }
}

/// Checks that metadata comes back exactly: every field set (the command reply in bytes that are
/// not UTF-8), empty values, unset fields, and a timestamp with nanoseconds kept at least to the
/// microsecond.
pub async fn metadata_round_trips<S: EventStore + Snapshotter + Clone>(fixture: Fixture<S>) {
    let store = fixture.store().clone();
    let actor = unique_actor("payload");
    let at = timestamp(2011, 12, 9, 123_456_789);

    let full = EventMetadata {
        timestamp: at,
        command_id: Some("cmd-536365/1".to_owned()),
        correlation_id: Some("flow ü 😀".to_owned()),
        causation_id: Some("evt\r\n42".to_owned()),
        node: Some("node-a.example".to_owned()),
        reply: Some(Bytes::from_static(&[0x92, 0xc3, 0x00, 0xff])),
    };
    let empty_strings = EventMetadata {
        timestamp: timestamp(2010, 12, 1, 1_000),
        command_id: Some(String::new()),
        correlation_id: Some(String::new()),
        causation_id: None,
        node: Some(String::new()),
        reply: Some(Bytes::new()),
    };
    let unset = EventMetadata {
        timestamp: timestamp(2030, 1, 1, 999_999_000),
        command_id: None,
        correlation_id: None,
        causation_id: None,
        node: None,
        reply: None,
    };
    let events: Vec<NewEvent> = [full, empty_strings, unset]
        .into_iter()
        .map(|metadata| NewEvent::new("Stamped", "{}").with_metadata(metadata))
        .collect();
    append_ok(&store, &actor, ExpectedVersion::NoEvents, events.clone()).await;

    let stored = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(stored.len(), events.len(), "events of {actor}");
    for (sent, got) in events.iter().zip(&stored) {
        assert_same_event("metadata round trip", sent, got);
    }
    assert_eq!(
        stored[0].metadata.timestamp.nanosecond() / 1_000,
        123_456,
        "the store must keep timestamps to the microsecond"
    );
}

/// Checks that a payload one byte over `max_event_bytes` is rejected with a too-large error naming
/// the limit, and that nothing is stored.
pub async fn payload_over_limit_is_rejected<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let limits = store.limits();
    let limit = limits.max_event_bytes;
    assert_testable(limit, "max_event_bytes");
    let fresh = unique_actor("payload");
    let existing = unique_actor("payload");
    append_ok(
        &store,
        &existing,
        ExpectedVersion::NoEvents,
        numbered_events(1, 1),
    )
    .await;
    let before = read_all_events(&store, Position::START, EventFilter::all()).await;

    let payload = Bytes::from(vec![0x5a; limit + 1]);
    for (actor, expected) in [
        (&fresh, ExpectedVersion::NoEvents),
        (&fresh, ExpectedVersion::Any),
        (&existing, ExpectedVersion::Exact(Version::new(1))),
    ] {
        let events = vec![NewEvent::new("TooLarge", payload.clone())];
        let err = append_err(&store, actor, expected, events).await;
        assert_too_large(&err, actor, limit + 1, limit);
    }

    assert_eq!(
        head_of(&store, &fresh).await,
        Version::ZERO,
        "head of {fresh}"
    );
    assert_eq!(
        head_of(&store, &existing).await,
        Version::new(1),
        "head of {existing}"
    );
    let after = read_all_events(&store, Position::START, EventFilter::all()).await;
    assert_eq!(after, before, "rejected payloads changed the store");
}

/// Checks that a payload of exactly `max_event_bytes` is stored and read back exactly.
pub async fn payload_at_limit_is_accepted<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let limits = store.limits();
    let limit = limits.max_event_bytes;
    assert_testable(limit, "max_event_bytes");
    assert_limits_consistent(limits);
    let actor = unique_actor("payload");

    // A pattern that is not one repeated byte, so a truncated or shifted copy shows.
    let payload: Bytes = (0..limit)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let events = vec![NewEvent::new("AtLimit", payload.clone())];
    append_ok(&store, &actor, ExpectedVersion::NoEvents, events).await;

    let stored = read_events(&store, &actor, Version::ZERO).await;
    assert_eq!(stored.len(), 1, "events of {actor}");
    assert_eq!(
        stored[0].payload.len(),
        limit,
        "length of the payload at the limit"
    );
    assert!(
        stored[0].payload == payload,
        "the payload at the limit came back changed"
    );
}

/// Checks that an append whose payloads total one byte over `max_append_bytes` is rejected with a
/// too-large error naming that limit and stores nothing. A total of exactly the limit is accepted.
pub async fn append_over_total_limit_is_rejected<S: EventStore + Snapshotter + Clone>(
    fixture: Fixture<S>,
) {
    let store = fixture.store().clone();
    let limits = store.limits();
    assert_limits_consistent(limits);
    assert_testable(limits.max_append_bytes, "max_append_bytes");
    let actor = unique_actor("payload");
    append_ok(
        &store,
        &actor,
        ExpectedVersion::NoEvents,
        numbered_events(1, 1),
    )
    .await;

    let over = split_into_events(limits.max_append_bytes + 1, limits.max_event_bytes);
    let count = over.len();
    let err = append_err(&store, &actor, Version::new(1).into(), over).await;
    assert_too_large(
        &err,
        &actor,
        limits.max_append_bytes + 1,
        limits.max_append_bytes,
    );
    assert_eq!(
        head_of(&store, &actor).await,
        Version::new(1),
        "an append of {count} events over the total limit stored some of them"
    );

    let exact = split_into_events(limits.max_append_bytes, limits.max_event_bytes);
    let count = exact.len() as u64;
    let outcome = append_ok(&store, &actor, Version::new(1).into(), exact).await;
    assert_eq!(
        outcome.version,
        Version::new(1 + count),
        "version after the append at the limit"
    );
    let stored = read_events(&store, &actor, Version::new(2)).await;
    let total: usize = stored.iter().map(|e| e.payload.len()).sum();
    assert_eq!(
        total, limits.max_append_bytes,
        "payload bytes of the append at the limit"
    );
}

/// Checks every field of a stored event against what was appended, the timestamp to the
/// microsecond.
fn assert_same_event(context: &str, sent: &NewEvent, got: &RecordedEvent) {
    let at = format!("{context}, {} {:?}", got.actor, got.version);
    assert_eq!(got.event_type, sent.event_type, "{at}: event type");
    assert_eq!(
        got.schema_version, sent.schema_version,
        "{at}: schema version"
    );
    assert_eq!(got.payload, sent.payload, "{at}: payload bytes");
    assert_eq!(
        got.metadata.timestamp.timestamp_micros(),
        sent.metadata.timestamp.timestamp_micros(),
        "{at}: timestamp to the microsecond (sent {:?}, got {:?})",
        sent.metadata.timestamp,
        got.metadata.timestamp
    );
    assert_eq!(
        got.metadata.command_id, sent.metadata.command_id,
        "{at}: command id"
    );
    assert_eq!(
        got.metadata.correlation_id, sent.metadata.correlation_id,
        "{at}: correlation id"
    );
    assert_eq!(
        got.metadata.causation_id, sent.metadata.causation_id,
        "{at}: causation id"
    );
    assert_eq!(got.metadata.node, sent.metadata.node, "{at}: node");
    assert_eq!(
        got.metadata.reply, sent.metadata.reply,
        "{at}: command reply"
    );
}

/// Checks a too-large error for its kind, actor, size and limit, and that its message names the
/// limit.
pub(crate) fn assert_too_large(err: &StoreError, actor: &ActorRef, size: usize, limit: usize) {
    match err {
        StoreError::PayloadTooLarge {
            actor: named,
            size: got_size,
            limit: got_limit,
            ..
        } => {
            assert_eq!(named, actor, "the too-large error names the wrong actor");
            assert_eq!(*got_size, size, "the too-large error's size");
            assert_eq!(*got_limit, limit, "the too-large error's limit");
            assert!(
                err.to_string().contains(&limit.to_string()),
                "the message must name the limit {limit}: {err}"
            );
        }
        other => panic!(
            "{size} bytes for {actor} must be rejected as too large (limit {limit}), got {:?}: {}",
            other.kind(),
            describe(other)
        ),
    }
    assert_eq!(err.kind(), ErrorKind::PayloadTooLarge, "error kind");
}

/// Fails the case when a limit is too large to allocate a payload of that size.
pub(crate) fn assert_testable(limit: usize, name: &str) {
    assert!(
        limit < MAX_TESTED_BYTES,
        "{name} is {limit} bytes, but the suite only tests limits below {MAX_TESTED_BYTES} bytes"
    );
}

/// Fails the case when the limits cannot all be reached: an event at its limit must fit into an
/// append.
fn assert_limits_consistent(limits: StoreLimits) {
    assert!(
        limits.max_event_bytes > 0 && limits.max_append_bytes >= limits.max_event_bytes,
        "max_append_bytes must be at least max_event_bytes, both above 0: {limits:?}"
    );
    let events = limits.max_append_bytes.div_ceil(limits.max_event_bytes);
    assert!(
        events <= 4_096,
        "reaching max_append_bytes takes {events} events of max_event_bytes: {limits:?}"
    );
}

/// Events of at most `per_event` bytes each that add up to `total` bytes. The payloads share one
/// allocation.
fn split_into_events(total: usize, per_event: usize) -> Vec<NewEvent> {
    let block = Bytes::from(vec![0x61; per_event]);
    let mut events = Vec::new();
    let mut left = total;
    while left > 0 {
        let size = left.min(per_event);
        events.push(NewEvent::new("Chunk", block.slice(..size)));
        left -= size;
    }
    events
}

fn timestamp(year: i32, month: u32, day: u32, nanos: u32) -> DateTime<Utc> {
    let second = Utc
        .with_ymd_and_hms(year, month, day, 12, 50, 7)
        .single()
        .expect("a valid UTC time");
    second
        .with_nanosecond(nanos)
        .expect("nanoseconds below one second")
}
