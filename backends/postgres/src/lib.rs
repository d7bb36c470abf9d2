//! PostgreSQL backend of aether: an [`EventStore`](aether_core::EventStore) and
//! [`Snapshotter`](aether_core::Snapshotter) on sqlx.
//!
//! ```text
//! append ──▶ queue ──▶ committer ── SELECT … FROM aether_append(arrays) ──▶ aether_heads
//! append ──▶   │       (group        check and move heads, advisory lock,     aether_events
//! append ──▶   ┘        commit)      INSERT … UNNEST, NOTIFY; autocommit         │
//!                                                                                │
//! read / read_all ◀── keyset pages (version / position) ◀─────────────────────────┤
//! subscribe ◀── pages after the last position, woken by LISTEN and a slow poll ◀──┘
//! ```
//!
//! # Tables
//!
//! The embedded migrations (run by [`PostgresStore::connect`], recorded in
//! `_aether_migrations`) create three tables and the function `aether_append` in the configured
//! schema:
//!
//! - `aether_events`: one row per event with its store-wide `position` (an identity column),
//!   actor kind and id, version, event type, schema version, payload (`bytea`), the metadata
//!   fields as columns and `recorded_at`, the start time of the appending transaction. A unique
//!   key on (kind, id, version) backs the version check.
//! - `aether_heads`: each actor's current version, the row that appends check and lock.
//! - `aether_snapshots`: each actor's newest snapshot.
//!
//! Actor ids are stored as their UTF-8 bytes in `bytea` columns, because PostgreSQL text cannot
//! hold the NUL character that ids may contain. Event types and metadata strings are text: an
//! append whose event type or metadata contains NUL fails with
//! [`StoreError::InvalidInput`](aether_core::StoreError::InvalidInput) before it is queued.
//!
//! # Appends and group commit
//!
//! [`EventStore::append`](aether_core::EventStore::append) queues the append and waits.
//! Committer tasks (two by default) take every queued append, up to
//! [`PostgresConfig::max_batch_events`] events, and write them with one call of the
//! `aether_append` function, which is one transaction and one round trip. It moves the heads
//! rows of the appends whose expectation matches with a conditional `UPDATE`, which locks each
//! row. The other appends fail with [`StoreError::Conflict`](aether_core::StoreError::Conflict)
//! carrying the actual version read under a row lock, and store nothing. The events of the
//! accepted appends are inserted with one statement. One actor's conflict never fails another
//! actor's append. Because the check locks a row in the database, it holds across several store
//! instances and processes writing the same actor. The first append of an actor creates its
//! heads row first, so two concurrent first appends also meet on one row, and one of them gets
//! the conflict.
//!
//! [`PostgresStore::append_in_transaction`] appends inside a transaction of the caller instead,
//! so the events commit together with the caller's own writes, such as a read model.
//!
//! If a batch fails for a reason other than a lost connection, its appends are written again one
//! by one, so a single bad append fails alone. When the connection is lost the appends of the
//! batch fail with [`StoreError::Unavailable`](aether_core::StoreError::Unavailable): the
//! outcome of a commit whose answer was lost is unknown.
//!
//! # Gap-safe positions
//!
//! Positions come from a sequence, and a sequence hands out numbers when rows are inserted, not
//! when transactions commit: a transaction holding position 10 can commit after one holding 11.
//! A reader that had already moved past 11 would skip 10 for good.
//!
//! This store prevents that by taking a transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`, keyed by the schema) right before inserting events, which holds it
//! until commit. PostgreSQL makes a commit visible before it releases the transaction's locks,
//! so positions are assigned in commit order: when a reader sees position `p` committed, every
//! transaction that took a lower position has already committed or rolled back. `read_all` and `subscribe` read up to the highest visible position, in the same
//! snapshot as the page, and never skip an event. The cost is that the insert-and-commit part of
//! appends is serialized per schema across all processes; group commit keeps that to one
//! transaction per batch. Rows inserted into `aether_events` by other means than this crate
//! must take the same lock.
//!
//! # Subscriptions
//!
//! Every append sends `NOTIFY` on a channel named after the schema (`aether_events` or
//! `aether_events_<schema>`), with the highest position as the payload. The first
//! [`EventStore::subscribe`](aether_core::EventStore::subscribe) of a store opens one extra
//! connection that `LISTEN`s on it and wakes subscribers. Notifications sent while that
//! connection is down are lost, so the store also reads the highest position after every
//! reconnect and every [`PostgresConfig::poll_interval`] (5 s by default). A subscriber never
//! misses an event, but after lost notifications it may see one up to an interval late.
//!
//! # Errors
//!
//! Refused or lost connections, pool timeouts and server shutdowns map to
//! [`StoreError::Unavailable`](aether_core::StoreError::Unavailable), rows that cannot be decoded
//! to [`StoreError::Corrupt`](aether_core::StoreError::Corrupt), and other failures to
//! [`StoreError::Backend`](aether_core::StoreError::Backend) with the sqlx error as the source.
//! Rejected logins and TLS failures, such as a server certificate that does not verify, are
//! `Backend` errors too, because a retry fails the same way.
//! The pool reconnects on its own once the server is back.
//!
//! # Example
//!
//! ```no_run
//! use aether_core::{ActorRef, EventStore, ExpectedVersion, NewEvent};
//! use aether_postgres::{PostgresConfig, PostgresStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = PostgresConfig::from_url("postgres://app@127.0.0.1/app")?.schema("orders");
//! let store = PostgresStore::connect(config).await?;
//! let actor = ActorRef::parse("invoice", "536365")?;
//! let outcome = store
//!     .append(&actor, ExpectedVersion::NoEvents, vec![NewEvent::new("Opened", "{}")])
//!     .await?;
//! assert_eq!(outcome.version.get(), 1);
//! # Ok(())
//! # }
//! ```

mod append;
mod committer;
mod config;
mod decode;
mod error;
mod log;
mod pages;
mod read;
mod snapshot;
mod store;
mod watch;

pub use config::{ConfigError, MAX_SCHEMA_LEN, PostgresConfig};
pub use sqlx::postgres::{PgConnectOptions, PgSslMode};
pub use store::PostgresStore;
