//! Snapshot rows: one per actor, replaced only by a snapshot of the same or a higher version.

use aether_core::{ActorRef, Snapshot, StoreError, Version};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::decode::{schema_version, stored_version};
use crate::error::{corrupt, map_sqlx};
use crate::read::actor_head;

const UPSERT: &str = "\
INSERT INTO aether_snapshots AS s (actor_kind, actor_id, version, schema_version, state, taken_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (actor_kind, actor_id) DO UPDATE
SET version = excluded.version,
    schema_version = excluded.schema_version,
    state = excluded.state,
    taken_at = excluded.taken_at,
    saved_at = now()
WHERE s.version <= excluded.version
RETURNING true";

const LOAD: &str = "\
SELECT version, schema_version, state, taken_at
FROM aether_snapshots
WHERE actor_kind = $1 AND actor_id = $2";

/// Saves `snapshot` unless a newer one is stored; returns whether it was saved.
pub(crate) async fn save(
    pool: &PgPool,
    actor: &ActorRef,
    snapshot: &Snapshot,
) -> Result<bool, StoreError> {
    // An actor's head only grows, so a snapshot within the head stays within it.
    let head = actor_head(pool, actor).await?;
    if snapshot.version > head {
        return Err(StoreError::invalid_input(
            actor,
            format!(
                "snapshot version {} is ahead of the last stored event {head}",
                snapshot.version
            ),
        ));
    }
    let version = i64::try_from(snapshot.version.get())
        .map_err(|_| StoreError::invalid_input(actor, "snapshot version does not fit a bigint"))?;

    let saved: Option<bool> = sqlx::query_scalar(UPSERT)
        .bind(actor.kind.as_str())
        .bind(actor.id.as_str().as_bytes())
        .bind(version)
        .bind(i64::from(snapshot.schema_version))
        .bind(snapshot.state.as_ref())
        .bind(snapshot.taken_at)
        .fetch_optional(pool)
        .await
        .map_err(|err| map_sqlx(format!("saving a snapshot of {actor}"), err))?;
    Ok(saved.is_some())
}

/// Loads the stored snapshot of `actor`, if there is one.
pub(crate) async fn load(pool: &PgPool, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
    let row = sqlx::query(LOAD)
        .bind(actor.kind.as_str())
        .bind(actor.id.as_str().as_bytes())
        .fetch_optional(pool)
        .await
        .map_err(|err| map_sqlx(format!("loading the snapshot of {actor}"), err))?;
    let Some(row) = row else {
        return Ok(None);
    };

    let location = || format!("aether_snapshots row of {actor}");
    let decode_error = |err: sqlx::Error| StoreError::Corrupt {
        location: location(),
        reason: "a column could not be decoded".to_owned(),
        source: Some(Box::new(err)),
    };
    let version: i64 = row.try_get(0).map_err(decode_error)?;
    let schema: i64 = row.try_get(1).map_err(decode_error)?;
    let state: Vec<u8> = row.try_get(2).map_err(decode_error)?;
    let taken_at: DateTime<Utc> = row.try_get(3).map_err(decode_error)?;
    let version: Version = stored_version(version, "aether_snapshots")
        .map_err(|err| corrupt(location(), err.to_string()))?;
    Ok(Some(Snapshot {
        version,
        schema_version: schema_version(schema, &location)?,
        state: Bytes::from(state),
        taken_at,
    }))
}
