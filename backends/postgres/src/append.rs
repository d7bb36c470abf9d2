//! Writing appends of several actors in one call, with a version check for each.
//!
//! The work happens in the `aether_append` function that the migrations create (its steps are
//! described there): one round trip writes a whole batch inside the caller's transaction. This
//! module lays the batch out as the function's arrays and turns its rows into results.

use aether_core::{ActorRef, AppendOutcome, EventMetadata, ExpectedVersion, NewEvent, StoreError};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use crate::decode::{stored_position, stored_version};
use crate::error::corrupt;

/// One append waiting to be written.
#[derive(Debug)]
pub(crate) struct AppendRequest {
    pub(crate) actor: ActorRef,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<NewEvent>,
}

/// The advisory lock key and the notification channel of one store schema.
#[derive(Clone, Debug)]
pub(crate) struct Namespace {
    /// Key of the advisory lock that orders position assignment.
    pub(crate) lock_key: i64,
    /// Channel of the `NOTIFY` sent by every append.
    pub(crate) channel: String,
}

impl Namespace {
    /// Derives the lock key and channel of a store in `schema` (`None` for the default schema).
    pub(crate) fn new(schema: Option<&str>) -> Self {
        let channel = match schema {
            Some(schema) => format!("aether_events_{schema}"),
            None => "aether_events".to_owned(),
        };
        Self {
            lock_key: fnv1a(channel.as_bytes()),
            channel,
        }
    }
}

/// 64-bit FNV-1a, a hash that stays the same across processes and Rust versions, so every
/// process that writes a schema derives the same advisory lock key.
fn fnv1a(bytes: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The lock function takes a bigint; only the bits matter.
    hash as i64
}

/// Rejects text that PostgreSQL cannot store before it reaches a batch, where it would fail
/// every append of the batch: text columns reject the NUL character.
pub(crate) fn check_text(actor: &ActorRef, events: &[NewEvent]) -> Result<(), StoreError> {
    for event in events {
        let EventMetadata {
            command_id,
            correlation_id,
            causation_id,
            node,
            ..
        } = &event.metadata;
        let fields = [
            ("event type", Some(&event.event_type)),
            ("command id", command_id.as_ref()),
            ("correlation id", correlation_id.as_ref()),
            ("causation id", causation_id.as_ref()),
            ("node", node.as_ref()),
        ];
        for (name, value) in fields {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(StoreError::invalid_input(
                    actor,
                    format!("{name} contains a NUL character, which PostgreSQL text cannot store"),
                ));
            }
        }
    }
    Ok(())
}

const APPEND: &str = "\
SELECT version_before, last_position
FROM aether_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// Writes `batch` on `conn`. Outside a transaction the call is a transaction of its own, which
/// commits before this returns. Inside one, the caller commits.
///
/// Returns one result per request, in order: the outcome, or [`StoreError::Conflict`] when its
/// expectation did not match. An outer error means the call failed as a whole and stored
/// nothing, and a transaction around it must be rolled back. Each actor may appear at most once
/// in `batch` (checked in debug builds), and the committer defers duplicates to a later batch.
pub(crate) async fn write_batch(
    conn: &mut PgConnection,
    namespace: &Namespace,
    batch: &[&AppendRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, BatchError> {
    debug_assert!(
        {
            let mut actors: Vec<_> = batch.iter().map(|r| &r.actor).collect();
            actors.sort();
            actors.windows(2).all(|w| w[0] != w[1])
        },
        "an actor appears twice in one batch"
    );

    // The function's first locking step visits the actors in argument order, so two batches
    // that share actors lock them in the same order there.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| batch[a].actor.cmp(&batch[b].actor));
    let columns = BatchColumns::build(batch, &order)?;
    let rows = columns.call(namespace).fetch_all(&mut *conn).await?;
    if rows.len() != batch.len() {
        return Err(BatchError::Store(corrupt(
            "aether_append",
            format!("{} rows returned for {} appends", rows.len(), batch.len()),
        )));
    }

    // Rows come back in lock order; put each result in its request's place.
    let mut results: Vec<Option<Result<AppendOutcome, StoreError>>> =
        (0..batch.len()).map(|_| None).collect();
    for (row, &index) in rows.iter().zip(&order) {
        let request = batch[index];
        let before: i64 = row.try_get(0)?;
        let last_position: Option<i64> = row.try_get(1)?;
        let before = stored_version(before, "aether_heads")?;
        results[index] = Some(match last_position {
            None => Err(StoreError::Conflict {
                actor: request.actor.clone(),
                expected: request.expected,
                actual: before,
            }),
            Some(position) => Ok(AppendOutcome {
                first_version: before.next(),
                version: before.advance(request.events.len() as u64),
                position: stored_position(position)?,
            }),
        });
    }
    Ok(results.into_iter().flatten().collect())
}

/// Failure of a whole batch.
#[derive(Debug)]
pub(crate) enum BatchError {
    /// A statement failed; the transaction must be rolled back.
    Sql(sqlx::Error),
    /// A value read back broke the store's invariants, or a version does not fit a column.
    Store(StoreError),
}

impl From<sqlx::Error> for BatchError {
    fn from(err: sqlx::Error) -> Self {
        BatchError::Sql(err)
    }
}

impl From<StoreError> for BatchError {
    fn from(err: StoreError) -> Self {
        BatchError::Store(err)
    }
}

/// Converts an expectation for the function's `bigint` argument: -1 for any version.
pub(crate) fn expected_column(
    expected: ExpectedVersion,
    actor: &ActorRef,
) -> Result<i64, StoreError> {
    match expected.exact() {
        None => Ok(-1),
        Some(version) => i64::try_from(version.get()).map_err(|_| {
            StoreError::invalid_input(actor, format!("expected {expected} does not fit a bigint"))
        }),
    }
}

/// A batch as the arrays of `aether_append`: one entry per append, then one per event.
struct BatchColumns<'a> {
    kinds: Vec<&'a str>,
    ids: Vec<&'a [u8]>,
    expected: Vec<i64>,
    counts: Vec<i64>,
    event_appends: Vec<i64>,
    event_offsets: Vec<i64>,
    types: Vec<&'a str>,
    schema_versions: Vec<i64>,
    payloads: Vec<&'a [u8]>,
    occurred_at: Vec<DateTime<Utc>>,
    command_ids: Vec<Option<&'a str>>,
    correlation_ids: Vec<Option<&'a str>>,
    causation_ids: Vec<Option<&'a str>>,
    nodes: Vec<Option<&'a str>>,
    replies: Vec<Option<&'a [u8]>>,
}

impl<'a> BatchColumns<'a> {
    /// Lays out the requests of `batch` in the order `order`.
    fn build(batch: &[&'a AppendRequest], order: &[usize]) -> Result<Self, StoreError> {
        let events: usize = batch.iter().map(|r| r.events.len()).sum();
        let mut columns = BatchColumns {
            kinds: Vec::with_capacity(batch.len()),
            ids: Vec::with_capacity(batch.len()),
            expected: Vec::with_capacity(batch.len()),
            counts: Vec::with_capacity(batch.len()),
            event_appends: Vec::with_capacity(events),
            event_offsets: Vec::with_capacity(events),
            types: Vec::with_capacity(events),
            schema_versions: Vec::with_capacity(events),
            payloads: Vec::with_capacity(events),
            occurred_at: Vec::with_capacity(events),
            command_ids: Vec::with_capacity(events),
            correlation_ids: Vec::with_capacity(events),
            causation_ids: Vec::with_capacity(events),
            nodes: Vec::with_capacity(events),
            replies: Vec::with_capacity(events),
        };
        for (place, &index) in order.iter().enumerate() {
            let request = batch[index];
            columns.kinds.push(request.actor.kind.as_str());
            columns.ids.push(request.actor.id.as_str().as_bytes());
            columns
                .expected
                .push(expected_column(request.expected, &request.actor)?);
            columns.counts.push(request.events.len() as i64);
            for (offset, event) in request.events.iter().enumerate() {
                let meta = &event.metadata;
                columns.event_appends.push(place as i64 + 1);
                columns.event_offsets.push(offset as i64 + 1);
                columns.types.push(&event.event_type);
                columns
                    .schema_versions
                    .push(i64::from(event.schema_version));
                columns.payloads.push(&event.payload);
                columns.occurred_at.push(meta.timestamp);
                columns.command_ids.push(meta.command_id.as_deref());
                columns.correlation_ids.push(meta.correlation_id.as_deref());
                columns.causation_ids.push(meta.causation_id.as_deref());
                columns.nodes.push(meta.node.as_deref());
                columns.replies.push(meta.reply.as_deref());
            }
        }
        Ok(columns)
    }

    fn call(
        &self,
        namespace: &Namespace,
    ) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(APPEND)
            .bind(namespace.lock_key)
            .bind(&namespace.channel)
            .bind(&self.kinds)
            .bind(&self.ids)
            .bind(&self.expected)
            .bind(&self.counts)
            .bind(&self.event_appends)
            .bind(&self.event_offsets)
            .bind(&self.types)
            .bind(&self.schema_versions)
            .bind(&self.payloads)
            .bind(&self.occurred_at)
            .bind(&self.command_ids)
            .bind(&self.correlation_ids)
            .bind(&self.causation_ids)
            .bind(&self.nodes)
            .bind(&self.replies)
    }
}

#[cfg(test)]
mod tests {
    use aether_core::Version;

    use super::*;

    #[test]
    fn namespace_per_schema() {
        let default = Namespace::new(None);
        let orders = Namespace::new(Some("orders"));
        assert_eq!(default.channel, "aether_events");
        assert_eq!(orders.channel, "aether_events_orders");
        assert_ne!(default.lock_key, orders.lock_key);
        assert_eq!(orders.lock_key, Namespace::new(Some("orders")).lock_key);
    }

    #[test]
    fn fnv1a_known_value() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
        assert_eq!(fnv1a(b"a") as u64, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn nul_in_text_is_rejected() {
        let actor = ActorRef::parse("t", "1").unwrap();
        let ok = vec![NewEvent::new("Added", "x\0y")];
        assert!(check_text(&actor, &ok).is_ok());
        let bad = vec![NewEvent::new("Add\0ed", "x")];
        assert!(check_text(&actor, &bad).is_err());
        let bad_meta =
            vec![NewEvent::new("Added", "x").with_metadata(EventMetadata::now().with_node("n\0"))];
        assert!(check_text(&actor, &bad_meta).is_err());
    }

    #[test]
    fn expectation_columns() {
        let actor = ActorRef::parse("t", "1").unwrap();
        let column = |expected| expected_column(expected, &actor).unwrap();
        assert_eq!(column(ExpectedVersion::Any), -1);
        assert_eq!(column(ExpectedVersion::NoEvents), 0);
        assert_eq!(column(ExpectedVersion::Exact(Version::new(7))), 7);
        let too_high = ExpectedVersion::Exact(Version::new(u64::MAX));
        assert!(expected_column(too_high, &actor).is_err());
    }
}
