//! Reads of the store-wide log in position order, for `read_all` and `subscribe`.
//!
//! Appends assign positions in commit order (see the crate documentation), so every position up
//! to the highest visible one is settled: committed and visible, or rolled back for good. Each
//! page reads the highest visible position in the same snapshot as its events, so a short page
//! proves that nothing else exists up to that position.

use aether_core::subscription::Page;
use aether_core::{
    ActorId, ActorKind, ActorRef, EventFilter, EventMetadata, EventStream, Position, RecordedEvent,
    StoreError,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres};

use crate::decode::{get, schema_version, stored_position, stored_version};
use crate::error::{corrupt, map_sqlx};
use crate::pages::{PageEvents, PagedRead, grow, read_ahead};

// One page of the log after position `$1` and up to `$2`, at most `$3` events. The first column
// is the highest visible position. A page without events is one row of NULL event columns.

const READ_ALL: &str = "\
SELECT h.head, e.position, e.actor_kind, e.actor_id, e.version, e.event_type, e.schema_version,
       e.payload, e.occurred_at, e.command_id, e.correlation_id, e.causation_id, e.node, e.reply
FROM (SELECT coalesce(max(position), 0) AS head FROM aether_events) AS h
LEFT JOIN LATERAL (
    SELECT * FROM aether_events
    WHERE position > $1 AND position <= least(h.head, $2)
    ORDER BY position
    LIMIT $3
) AS e ON true
ORDER BY e.position";

const READ_ALL_KINDS: &str = "\
SELECT h.head, e.position, e.actor_kind, e.actor_id, e.version, e.event_type, e.schema_version,
       e.payload, e.occurred_at, e.command_id, e.correlation_id, e.causation_id, e.node, e.reply
FROM (SELECT coalesce(max(position), 0) AS head FROM aether_events) AS h
LEFT JOIN LATERAL (
    SELECT * FROM aether_events
    WHERE position > $1 AND position <= least(h.head, $2) AND actor_kind = ANY($4::text[])
    ORDER BY position
    LIMIT $3
) AS e ON true
ORDER BY e.position";

// An actor's versions grow with its positions, so the version index delivers position order.
const READ_ALL_ACTOR: &str = "\
SELECT h.head, e.position, e.actor_kind, e.actor_id, e.version, e.event_type, e.schema_version,
       e.payload, e.occurred_at, e.command_id, e.correlation_id, e.causation_id, e.node, e.reply
FROM (SELECT coalesce(max(position), 0) AS head FROM aether_events) AS h
LEFT JOIN LATERAL (
    SELECT * FROM aether_events
    WHERE position > $1 AND position <= least(h.head, $2)
      AND actor_kind = $4 AND actor_id = $5
    ORDER BY version
    LIMIT $3
) AS e ON true
ORDER BY e.position";

/// Reads every event after `after` that passes `filter`, up to the highest position visible when
/// the first page is read.
pub(crate) fn read_all(
    pool: PgPool,
    after: Position,
    filter: EventFilter,
    page_size: usize,
) -> EventStream {
    let read = LogRead {
        filter,
        after,
        end: None,
        page_size,
        limit: page_size,
        done: false,
    };
    read_ahead(pool, read)
}

/// The position of a store-wide read.
struct LogRead {
    filter: EventFilter,
    after: Position,
    /// The highest visible position when the first page was read (`None` before).
    end: Option<Position>,
    /// The configured page size.
    page_size: usize,
    /// The size of the next page.
    limit: usize,
    done: bool,
}

impl PagedRead for LogRead {
    fn operation(&self) -> String {
        format!("reading events after position {}", self.after)
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn next_page<'a>(&'a mut self, conn: &'a mut PgConnection) -> BoxFuture<'a, PageEvents> {
        Box::pin(async move {
            match read_page(conn, self.after, self.end, &self.filter, self.limit).await {
                Ok((page, head, full)) => {
                    let end = *self.end.get_or_insert(head);
                    self.after = page.scanned_to;
                    if !full || self.after >= end {
                        self.done = true;
                    }
                    self.limit = grow(self.limit, self.page_size);
                    page.events.into_iter().map(Ok).collect()
                }
                Err(err) => {
                    self.done = true;
                    vec![Err(err)]
                }
            }
        })
    }
}

/// Reads one page of the log after `after` and up to `end` (no bound when `None`).
///
/// Returns the page, the highest visible position when the page was read, and whether the page
/// was full, in which case more events may follow within the bound.
pub(crate) async fn read_page<'e, E>(
    executor: E,
    after: Position,
    end: Option<Position>,
    filter: &EventFilter,
    page_size: usize,
) -> Result<(Page, Position, bool), StoreError>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let after_column = i64::try_from(after.get()).unwrap_or(i64::MAX);
    let end_column = end.map_or(i64::MAX, |end| i64::try_from(end.get()).unwrap_or(i64::MAX));
    let limit = i64::try_from(page_size).unwrap_or(i64::MAX);

    let query = if let Some(actor) = &filter.actor {
        sqlx::query(READ_ALL_ACTOR)
            .bind(after_column)
            .bind(end_column)
            .bind(limit)
            .bind(actor.kind.as_str())
            .bind(actor.id.as_str().as_bytes())
    } else if !filter.kinds.is_empty() {
        let kinds: Vec<&str> = filter.kinds.iter().map(ActorKind::as_str).collect();
        sqlx::query(READ_ALL_KINDS)
            .bind(after_column)
            .bind(end_column)
            .bind(limit)
            .bind(kinds)
    } else {
        sqlx::query(READ_ALL)
            .bind(after_column)
            .bind(end_column)
            .bind(limit)
    };
    let rows = query
        .fetch_all(executor)
        .await
        .map_err(|err| map_sqlx(format!("reading events after position {after}"), err))?;

    let location = || "aether_events".to_owned();
    let mut head = Position::START;
    let mut fetched = 0usize;
    let mut last_fetched = after;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let raw_head: i64 = get(row, 0, &location)?;
        head = Position::new(u64::try_from(raw_head).unwrap_or(0));
        if let Some(event) = decode_row(row)? {
            fetched += 1;
            last_fetched = event.position;
            // The query filters already. Checking again keeps the filter's contract even if the
            // SQL and EventFilter::matches ever disagree.
            if filter.matches(&event.actor) {
                events.push(event);
            }
        }
    }

    let full = fetched == page_size;
    let scanned_to = if full {
        last_fetched
    } else {
        end.map_or(head, |end| end.min(head)).max(after)
    };
    Ok((Page { events, scanned_to }, head, full))
}

/// Decodes a row of a log page; `None` for the row of a page without events.
fn decode_row(row: &PgRow) -> Result<Option<RecordedEvent>, StoreError> {
    let location = || "aether_events".to_owned();
    let Some(position) = get::<Option<i64>>(row, 1, &location)? else {
        return Ok(None);
    };
    let location = || format!("aether_events at position {position}");
    let kind: String = get(row, 2, &location)?;
    let id: Vec<u8> = get(row, 3, &location)?;
    let kind = ActorKind::new(kind).map_err(|err| corrupt(location(), err.to_string()))?;
    let id = String::from_utf8(id)
        .map_err(|_| corrupt(location(), "actor id is not valid UTF-8"))
        .and_then(|id| ActorId::new(id).map_err(|err| corrupt(location(), err.to_string())))?;
    let version: i64 = get(row, 4, &location)?;
    Ok(Some(RecordedEvent {
        actor: ActorRef::new(kind, id),
        version: stored_version(version, "aether_events")?,
        position: stored_position(position)?,
        event_type: get(row, 5, &location)?,
        schema_version: schema_version(get(row, 6, &location)?, &location)?,
        payload: Bytes::from(get::<Vec<u8>>(row, 7, &location)?),
        metadata: EventMetadata {
            timestamp: get::<DateTime<Utc>>(row, 8, &location)?,
            command_id: get(row, 9, &location)?,
            correlation_id: get(row, 10, &location)?,
            causation_id: get(row, 11, &location)?,
            node: get(row, 12, &location)?,
            reply: get::<Option<Vec<u8>>>(row, 13, &location)?.map(Bytes::from),
        },
    }))
}
