//! Reads of one actor: its stream, paged by version, and its current version.

use aether_core::{ActorRef, EventMetadata, EventStream, RecordedEvent, StoreError, Version};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool};

use crate::decode::{get, schema_version, stored_position, stored_version};
use crate::error::map_sqlx;
use crate::pages::{PageEvents, PagedRead, grow, read_ahead};

/// One page of an actor's events from version `$3` up to `$4`. Each row also carries the
/// actor's head in the same snapshot, which bounds the following pages.
const READ_ACTOR: &str = "\
SELECT version, position, event_type, schema_version, payload,
       occurred_at, command_id, correlation_id, causation_id, node, reply,
       (SELECT version FROM aether_heads WHERE actor_kind = $1 AND actor_id = $2) AS head
FROM aether_events
WHERE actor_kind = $1 AND actor_id = $2 AND version >= $3 AND version <= $4
ORDER BY version
LIMIT $5";

const ACTOR_VERSION: &str = "\
SELECT coalesce(max(version), 0) FROM aether_events WHERE actor_kind = $1 AND actor_id = $2";

const ACTOR_HEAD: &str = "SELECT version FROM aether_heads WHERE actor_kind = $1 AND actor_id = $2";

/// Reads `actor`'s events from `from` up to its head when the first page is read.
pub(crate) fn read_actor(
    pool: PgPool,
    actor: ActorRef,
    from: Version,
    page_size: usize,
) -> EventStream {
    let read = ActorRead {
        actor,
        next: i64::try_from(from.get().max(1)).unwrap_or(i64::MAX),
        end: i64::MAX,
        page_size,
        limit: page_size,
        done: false,
    };
    read_ahead(pool, read)
}

/// The position of a read of one actor: the next version to read and the last one to read.
struct ActorRead {
    actor: ActorRef,
    next: i64,
    /// The actor's head when the first page was read (`i64::MAX` before).
    end: i64,
    /// The configured page size.
    page_size: usize,
    /// The size of the next page.
    limit: usize,
    done: bool,
}

impl PagedRead for ActorRead {
    fn operation(&self) -> String {
        format!("reading {}", self.actor)
    }

    fn is_done(&self) -> bool {
        self.done || self.next > self.end
    }

    fn next_page<'a>(&'a mut self, conn: &'a mut PgConnection) -> BoxFuture<'a, PageEvents> {
        Box::pin(async move {
            // Decode rows as they arrive, so decoding overlaps the transfer of the page.
            let mut rows = sqlx::query(READ_ACTOR)
                .bind(self.actor.kind.as_str())
                .bind(self.actor.id.as_str().as_bytes())
                .bind(self.next)
                .bind(self.end)
                .bind(i64::try_from(self.limit).unwrap_or(i64::MAX))
                .fetch(conn);
            let mut events = Vec::with_capacity(self.limit.min(4096));
            let mut fetched = 0usize;
            loop {
                let row = match rows.try_next().await {
                    Ok(Some(row)) => row,
                    Ok(None) => break,
                    Err(err) => {
                        self.done = true;
                        events.push(Err(map_sqlx(format!("reading {}", self.actor), err)));
                        return events;
                    }
                };
                fetched += 1;
                match decode_row(&row, &self.actor) {
                    Ok((event, head)) => {
                        self.end = self.end.min(head);
                        self.next = i64::try_from(event.version.get())
                            .unwrap_or(i64::MAX)
                            .saturating_add(1);
                        events.push(Ok(event));
                    }
                    Err(err) => {
                        self.done = true;
                        events.push(Err(err));
                        return events;
                    }
                }
            }
            if fetched < self.limit {
                self.done = true;
            }
            self.limit = grow(self.limit, self.page_size);
            events
        })
    }
}

/// Decodes a row of [`READ_ACTOR`] into the event and the actor's head.
fn decode_row(row: &PgRow, actor: &ActorRef) -> Result<(RecordedEvent, i64), StoreError> {
    let location = || format!("aether_events row of {actor}");
    let version: i64 = get(row, 0, &location)?;
    let location = || format!("aether_events row of {actor} at version {version}");
    let head: Option<i64> = get(row, 11, &location)?;
    let event = RecordedEvent {
        actor: actor.clone(),
        version: stored_version(version, "aether_events")?,
        position: stored_position(get(row, 1, &location)?)?,
        event_type: get(row, 2, &location)?,
        schema_version: schema_version(get(row, 3, &location)?, &location)?,
        payload: Bytes::from(get::<Vec<u8>>(row, 4, &location)?),
        metadata: EventMetadata {
            timestamp: get::<DateTime<Utc>>(row, 5, &location)?,
            command_id: get(row, 6, &location)?,
            correlation_id: get(row, 7, &location)?,
            causation_id: get(row, 8, &location)?,
            node: get(row, 9, &location)?,
            reply: get::<Option<Vec<u8>>>(row, 10, &location)?.map(Bytes::from),
        },
    };
    // An event without a heads row breaks the store's invariants, but the event itself is valid.
    Ok((event, head.unwrap_or(version)))
}

/// Returns the highest version stored for `actor`, from its events rather than its heads row.
pub(crate) async fn stream_version(pool: &PgPool, actor: &ActorRef) -> Result<Version, StoreError> {
    let version: i64 = sqlx::query_scalar(ACTOR_VERSION)
        .bind(actor.kind.as_str())
        .bind(actor.id.as_str().as_bytes())
        .fetch_one(pool)
        .await
        .map_err(|err| map_sqlx(format!("reading the version of {actor}"), err))?;
    stored_version(version, "aether_events")
}

/// Returns `actor`'s current version from its heads row.
pub(crate) async fn actor_head(pool: &PgPool, actor: &ActorRef) -> Result<Version, StoreError> {
    let version: Option<i64> = sqlx::query_scalar(ACTOR_HEAD)
        .bind(actor.kind.as_str())
        .bind(actor.id.as_str().as_bytes())
        .fetch_optional(pool)
        .await
        .map_err(|err| map_sqlx(format!("reading the head of {actor}"), err))?;
    match version {
        Some(version) => stored_version(version, "aether_heads"),
        None => Ok(Version::ZERO),
    }
}
