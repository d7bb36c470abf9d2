//! [`PostgresStore`]: the [`EventStore`] and [`Snapshotter`] on PostgreSQL.

use std::sync::{Arc, Mutex};

use aether_core::subscription::follow;
use aether_core::{
    ActorRef, AppendOutcome, EventFilter, EventStore, EventStream, ExpectedVersion, NewEvent,
    Position, Snapshot, Snapshotter, StoreError, StoreLimits, Version,
};
use async_trait::async_trait;
use futures::{StreamExt, stream};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool, Postgres, QueryBuilder, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info};

use crate::append::{
    AppendRequest, BatchError, Namespace, check_text, expected_column, write_batch,
};
use crate::committer::{self, CommitContext, Job};
use crate::config::PostgresConfig;
use crate::error::{BACKEND, map_sqlx};
use crate::snapshot;
use crate::watch::HeadWatch;
use crate::{log, read};

/// Name of the table in which the store records its applied migrations. It differs from sqlx's
/// default so the store's migrations never mix with an application's own.
const MIGRATIONS_TABLE: &str = "_aether_migrations";

/// An [`EventStore`] and [`Snapshotter`] on PostgreSQL.
///
/// Clones share the connection pool, the append queue and the committers. The committers stop
/// when the last clone is dropped, after writing the appends already queued.
///
/// See the [crate documentation](crate) for the tables, group commit and how positions stay
/// gap-safe.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    connect: PgConnectOptions,
    config: PostgresConfig,
    namespace: Namespace,
    queue: mpsc::UnboundedSender<Job>,
    head: Arc<watch::Sender<Position>>,
    /// Started by the first [`EventStore::subscribe`].
    head_watch: Mutex<Option<HeadWatch>>,
}

impl PostgresStore {
    /// Connects to the server, creates the schema when one is configured, runs the embedded
    /// migrations unless [`PostgresConfig::migrate`] is off, and starts the committers.
    ///
    /// Must be called within a Tokio runtime, which then runs the store's background tasks.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when no connection could be opened within the acquire
    /// timeout, and [`StoreError::Backend`] for an invalid schema name, a failed migration, a
    /// rejected login or a failed TLS handshake. The connect errors name the server, the user
    /// and the `sslmode`.
    pub async fn connect(config: PostgresConfig) -> Result<Self, StoreError> {
        config
            .validate()
            .map_err(|err| StoreError::backend(BACKEND, "checking the configuration", err))?;

        // Every connection resolves unqualified table names in the configured schema.
        let mut connect = config.connect.clone();
        if let Some(schema) = &config.schema {
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = match PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(connect.clone())
            .await
        {
            Ok(pool) => pool,
            Err(sqlx::Error::PoolTimedOut) => {
                return Err(explain_timeout(&connect, config.acquire_timeout).await);
            }
            Err(err) => return Err(map_sqlx(connect_operation(&connect), err)),
        };

        if let Some(schema) = &config.schema {
            create_schema(&pool, schema).await?;
        }
        if config.migrate {
            let mut migrator = sqlx::migrate!();
            migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
            migrator.run(&pool).await.map_err(|err| {
                StoreError::backend(BACKEND, "running the embedded migrations", err)
            })?;
        }

        let namespace = Namespace::new(config.schema.as_deref());
        let (head, _) = watch::channel(Position::START);
        let head = Arc::new(head);
        let queue = committer::spawn(
            CommitContext {
                pool: pool.clone(),
                namespace: namespace.clone(),
                head: Arc::clone(&head),
                max_batch_events: config.max_batch_events,
            },
            config.committers,
        );
        info!(
            schema = config.schema.as_deref().unwrap_or("(search_path)"),
            max_connections = config.max_connections,
            committers = config.committers,
            "PostgreSQL event store connected"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                connect,
                config,
                namespace,
                queue,
                head,
                head_watch: Mutex::new(None),
            }),
        })
    }

    /// Returns the connection pool. Its connections use the store's schema as their `search_path`.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Begins a transaction on the store's pool, for use with
    /// [`PostgresStore::append_in_transaction`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when no connection is available in time.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.inner
            .pool
            .begin()
            .await
            .map_err(|err| map_sqlx("beginning a transaction", err))
    }

    /// Appends `events` inside the caller's transaction, so that they commit or roll back
    /// together with the caller's own writes. Open the transaction with
    /// [`PostgresStore::begin`], so that it uses the store's schema.
    ///
    /// The version check is the same as [`EventStore::append`]'s, and a conflict leaves the
    /// transaction usable. The outcome is final once the caller commits. Subscribers learn of
    /// the events through the `NOTIFY` sent at commit.
    ///
    /// NOTE: from this call until the transaction ends, it holds the store's position lock, so
    /// every other append to the store waits. Commit or roll back promptly. Under `REPEATABLE
    /// READ` or `SERIALIZABLE`, a concurrent append to the same actor makes the call fail with
    /// a serialization error ([`StoreError::Backend`]) instead of a conflict.
    ///
    /// # Errors
    ///
    /// As [`EventStore::append`]. After an error other than a conflict the transaction is
    /// aborted and can only be rolled back.
    pub async fn append_in_transaction(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.check(actor, expected, &events)?;
        let request = AppendRequest {
            actor: actor.clone(),
            expected,
            events,
        };
        let operation = || format!("appending to {actor}");
        let mut results = write_batch(tx, &self.inner.namespace, &[&request])
            .await
            .map_err(|err| match err {
                BatchError::Sql(err) => map_sqlx(operation(), err),
                BatchError::Store(err) => err,
            })?;
        results.pop().unwrap_or_else(|| {
            Err(StoreError::backend(
                BACKEND,
                operation(),
                "a batch of one append returned no result",
            ))
        })
    }

    /// Closes the connection pool after the running queries end. Later calls fail with
    /// [`StoreError::Backend`].
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    fn check(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        self.inner.config.limits.check_append(actor, events)?;
        expected_column(expected, actor)?;
        check_text(actor, events)
    }

    fn start_head_watch(&self) {
        let mut slot = self
            .inner
            .head_watch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.is_none() {
            debug!(channel = %self.inner.namespace.channel, "starting LISTEN for subscriptions");
            *slot = Some(HeadWatch::start(
                self.inner.connect.clone(),
                self.inner.config.acquire_timeout,
                self.inner.pool.clone(),
                self.inner.namespace.channel.clone(),
                Arc::clone(&self.inner.head),
                self.inner.config.poll_interval,
            ));
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.config.schema)
            .field("pool_size", &self.inner.pool.size())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    /// Queues the append for a committer, which writes it in a transaction shared with other
    /// queued appends, and waits for the commit.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(actor.kind = %actor.kind, actor.id = %actor.id, events = events.len())
    )]
    async fn append(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.check(actor, expected, &events)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request: AppendRequest {
                actor: actor.clone(),
                expected,
                events,
            },
            reply,
        };
        let stopped = || {
            StoreError::backend(
                BACKEND,
                format!("appending to {actor}"),
                "the committer tasks stopped, most likely because their Tokio runtime shut down",
            )
        };
        self.inner.queue.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn read(&self, actor: &ActorRef, from: Version) -> EventStream {
        read::read_actor(
            self.inner.pool.clone(),
            actor.clone(),
            from,
            self.inner.config.page_size,
        )
    }

    async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError> {
        read::actor_head(&self.inner.pool, actor).await
    }

    fn read_all(&self, after: Position, filter: EventFilter) -> EventStream {
        log::read_all(
            self.inner.pool.clone(),
            after,
            filter,
            self.inner.config.page_size,
        )
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        let store = self.clone();
        let page_size = self.inner.config.page_size;
        let filter = Arc::new(filter);
        // Start LISTEN on the first poll, which runs inside the caller's runtime, so that
        // `subscribe` itself may be called anywhere.
        let start = stream::once(async move {
            store.start_head_watch();
            let pool = store.inner.pool.clone();
            follow(after, store.inner.head.subscribe(), move |after| {
                let pool = pool.clone();
                let filter = Arc::clone(&filter);
                async move {
                    let (page, _, _) =
                        log::read_page(&pool, after, None, &filter, page_size).await?;
                    Ok(page)
                }
            })
        });
        Box::pin(start.flatten())
    }

    fn limits(&self) -> StoreLimits {
        self.inner.config.limits
    }
}

#[async_trait]
impl Snapshotter for PostgresStore {
    async fn save_snapshot(
        &self,
        actor: &ActorRef,
        snapshot: Snapshot,
    ) -> Result<bool, StoreError> {
        self.inner.config.limits.check_snapshot(actor, &snapshot)?;
        snapshot::save(&self.inner.pool, actor, &snapshot).await
    }

    async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
        snapshot::load(&self.inner.pool, actor).await
    }
}

/// Describes a connection attempt for errors, with the server, the user and the TLS mode, such
/// as `connecting to PostgreSQL at 127.0.0.1:5432 as app with sslmode=verify-full`.
/// Longest wait for the extra connection that [`explain_timeout`] opens.
const EXPLAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Builds the error for a pool that opened no connection within `waited`.
///
/// sqlx's pool keeps retrying refused or failing connections until its acquire timeout and then
/// reports only the timeout. One more connection outside the pool gives the cause, such as a
/// refused connection, and its error kind decides whether the failure is retryable. A server
/// that does not respond at all adds up to [`EXPLAIN_TIMEOUT`] to the time `connect` takes.
async fn explain_timeout(connect: &PgConnectOptions, waited: std::time::Duration) -> StoreError {
    let operation = format!(
        "{}: no connection within the acquire timeout of {waited:?}",
        connect_operation(connect)
    );
    let attempt = PgConnection::connect_with(connect);
    match tokio::time::timeout(EXPLAIN_TIMEOUT.min(waited), attempt).await {
        Ok(Err(err)) => map_sqlx(operation, err),
        Ok(Ok(connection)) => {
            // The server accepts connections again; the caller may retry.
            let _ = connection.close().await;
            map_sqlx(operation, sqlx::Error::PoolTimedOut)
        }
        Err(_) => map_sqlx(operation, sqlx::Error::PoolTimedOut),
    }
}

fn connect_operation(options: &PgConnectOptions) -> String {
    let server = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    let sslmode = match options.get_ssl_mode() {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    };
    format!(
        "connecting to PostgreSQL at {server} as {} with sslmode={sslmode}",
        options.get_username()
    )
}

/// Creates `schema` if it is missing. The name was validated, so quoting it is enough; an
/// identifier cannot be a bind parameter.
async fn create_schema(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        let mut query = QueryBuilder::<Postgres>::new("CREATE SCHEMA IF NOT EXISTS ");
        query.push(format_args!("\"{schema}\""));
        match query.build().execute(pool).await {
            Ok(_) => return Ok(()),
            // Two sessions creating the same schema at once can collide on the catalog's unique
            // index even with IF NOT EXISTS; the second attempt finds the schema.
            Err(err)
                if attempt == 1
                    && crate::error::sqlstate(&err).as_deref()
                        == Some(crate::error::UNIQUE_VIOLATION) =>
            {
                attempt += 1;
            }
            Err(err) => return Err(map_sqlx(format!("creating schema {schema}"), err)),
        }
    }
}
