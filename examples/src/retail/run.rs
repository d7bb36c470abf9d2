//! The whole retail job: check the input, open the chosen store, ingest, then verify on a new
//! runtime.

use std::error::Error as _;
use std::path::PathBuf;
use std::time::Duration;

use aether::{BuildError, ErrorKind, MemoryStore, RuntimeError, StoreError};
use aether_jetstream::{ConnectError, JetStreamConfig, JetStreamStore};
use aether_postgres::{ConfigError, PostgresConfig, PostgresStore};
use aether_sled::{SledError, SledOptions, SledStore};
use tracing::info;

use super::expected::{Expected, ExpectedError};
use super::job::{IngestOptions, ingest};
use super::progress::Progress;
use super::report::Report;
use super::source::{ReadError, check_input};
use super::store::{CountingStore, DataDirError, StoreKind, prepare_data_dir};
use super::verify::verify;

/// How long reopening the sled folder waits for the previous handle's lock. sled releases it a
/// moment after the last handle is dropped, once its background threads are done.
const REOPEN_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings of one run.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// The Online Retail CSV, gzip-compressed or plain.
    pub input: PathBuf,
    /// The store to use.
    pub store: StoreKind,
    /// The folder of the sled store.
    pub data_dir: PathBuf,
    /// Whether to start from an empty store.
    pub fresh: bool,
    /// The NATS server of the JetStream store.
    pub nats_url: String,
    /// The PostgreSQL server of the PostgreSQL store.
    pub database_url: Option<String>,
    /// The JetStream namespace or PostgreSQL schema.
    pub namespace: String,
    /// Only the first this many data lines, or all.
    pub limit: Option<u64>,
    /// Invoices sent to at once.
    pub concurrency: usize,
    /// Whether to read every actor back and compare it with the expected totals.
    pub verify: bool,
    /// The target of the progress bars.
    pub progress: Progress,
}

/// An error that stops the job before its summary.
///
/// [`JobError::hint`] suggests what to do next, and [`JobError::exit_code`] separates invalid
/// arguments from other failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// `--store postgres` without a server.
    #[error("--store postgres needs --database-url or the DATABASE_URL environment variable")]
    MissingDatabaseUrl,
    /// `--database-url` does not parse. The message leaves the URL out, because it may contain a
    /// password.
    #[error("invalid --database-url (or DATABASE_URL)")]
    DatabaseUrl(#[source] ConfigError),
    /// The input file cannot be used; found before the store was opened, so nothing was stored.
    #[error(transparent)]
    Input(ReadError),
    /// The JetStream store could not connect.
    #[error("failed to open the JetStream store")]
    JetStream {
        /// The server URL.
        url: String,
        /// The underlying error.
        #[source]
        source: ConnectError,
    },
    /// The PostgreSQL store could not be opened.
    #[error("failed to open the PostgreSQL store")]
    Postgres(#[source] StoreError),
    /// Deleting the previous data failed.
    #[error("failed to delete the previous data of namespace {namespace}")]
    Fresh {
        /// The namespace.
        namespace: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The data folder cannot be used.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// Another process holds the lock of the sled database in the data folder.
    #[error(
        "the sled store in {} is in use by another process (waited {waited:?} for its lock); \
         wait until that process ends or choose another --data-dir",
        path.display()
    )]
    SledInUse {
        /// The data folder.
        path: PathBuf,
        /// How long opening waited for the lock.
        waited: Duration,
    },
    /// The sled store could not be opened.
    #[error("failed to open the sled store")]
    Sled(#[source] SledError),
    /// The runtime could not be built.
    #[error("failed to build the runtime")]
    Build(#[from] BuildError),
    /// The input file could not be read to its end during the ingest, after some lines were
    /// sent.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The expected totals could not be computed.
    #[error("failed to compute the expected totals")]
    Expected(#[from] ExpectedError),
    /// The policies did not deliver every event in time.
    #[error("the policies did not catch up")]
    Policies(#[source] RuntimeError),
    /// A task of the job panicked or was cancelled.
    #[error("a task of the job failed")]
    Task(#[from] tokio::task::JoinError),
}

impl JobError {
    /// Returns the process exit code for this error: 2 for a missing or invalid argument
    /// (`--database-url`, `--namespace`), and 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        let invalid_argument = match self {
            JobError::MissingDatabaseUrl | JobError::DatabaseUrl(_) => true,
            JobError::JetStream { source, .. } => {
                matches!(source, ConnectError::InvalidConfig { .. })
            }
            JobError::Postgres(error) => invalid_postgres_config(error),
            _ => false,
        };
        if invalid_argument { 2 } else { 1 }
    }

    /// Returns what the user can do next, where the message alone does not say it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            JobError::Input(_) => Some(
                "the store was left as it was, nothing stored or deleted; --input takes the \
                 Online Retail CSV, gzip-compressed or plain",
            ),
            JobError::MissingDatabaseUrl => Some(
                "pass --database-url postgres://USER:PASSWORD@HOST:PORT/DATABASE; in the source \
                 tree, eval \"$(scripts/postgres.sh start)\" starts a throwaway server",
            ),
            JobError::Read(_) => Some(
                "the lines before the failure were sent to the store; a rerun with the complete \
                 file skips them, because each line keeps its command id",
            ),
            JobError::DatabaseUrl(_) => {
                Some("the URL has the form postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            }
            JobError::Postgres(error) if invalid_postgres_config(error) => {
                Some("choose another --namespace: lowercase letters, digits and _")
            }
            JobError::Postgres(error) if error.kind() == ErrorKind::Unavailable => Some(
                "check that a PostgreSQL server is running at the host and port of --database-url",
            ),
            JobError::JetStream { source, .. } => match source {
                ConnectError::Connect { .. } => Some(
                    "check that a NATS server with JetStream enabled is running at --nats-url \
                     (default: $AETHER_NATS_URL, then nats://127.0.0.1:4222)",
                ),
                ConnectError::InvalidConfig {
                    field: "namespace", ..
                } => Some("choose another --namespace"),
                _ => None,
            },
            JobError::DataDir(DataDirError::Io { .. }) | JobError::Sled(SledError::Open { .. }) => {
                Some("choose another --data-dir, or one that this user may create and write")
            }
            JobError::Sled(
                SledError::ForeignDatabase { .. }
                | SledError::UnsupportedLayout { .. }
                | SledError::Corrupt { .. },
            ) => Some("--fresh deletes the store in --data-dir and starts an empty one"),
            _ => None,
        }
    }
}

/// Returns whether the PostgreSQL store rejected its settings, such as the schema name, before
/// connecting.
fn invalid_postgres_config(error: &StoreError) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.downcast_ref::<ConfigError>().is_some() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Runs the job with `options` and returns its report. A mismatch found by the verification is
/// in the report, not an error; see [`Report::is_success`].
///
/// The arguments and the input file's header are checked before any store is opened, so that a
/// wrong argument or file leaves a store, and with `--fresh` its previous data, as it was.
///
/// # Errors
///
/// A [`JobError`] when an argument is invalid, the input cannot be read, the store cannot be
/// opened, or the runtime fails as a whole.
pub async fn run(options: &JobOptions) -> Result<Report, JobError> {
    let postgres_config = match options.store {
        StoreKind::Postgres => Some(postgres_config(options)?),
        _ => None,
    };
    let format = check_input(&options.input).map_err(JobError::Input)?;
    info!(input = %options.input.display(), ?format, "input checked");

    let ingest_options = IngestOptions {
        input: options.input.clone(),
        limit: options.limit,
        concurrency: options.concurrency,
        progress: options.progress.clone(),
    };
    let mut report = Report {
        input: options.input.clone(),
        limit: options.limit,
        store: options.store,
        data_dir: None,
        deleted_store: false,
        ingest: Default::default(),
        verification: None,
    };

    match options.store {
        StoreKind::Jetstream => {
            let store = open_jetstream(options).await?;
            report.ingest = ingest(CountingStore::new(store.clone()), &ingest_options).await?;
            if options.verify {
                let expected = expected_totals(options).await?;
                let checked = verify(store, &expected, &report.ingest, &options.progress).await?;
                report.verification = Some(checked);
            }
        }
        StoreKind::Postgres => {
            let config = postgres_config.expect("built above for --store postgres");
            let store = open_postgres(config, options).await?;
            report.ingest = ingest(CountingStore::new(store.clone()), &ingest_options).await?;
            if options.verify {
                let expected = expected_totals(options).await?;
                let checked =
                    verify(store.clone(), &expected, &report.ingest, &options.progress).await?;
                report.verification = Some(checked);
            }
            store.close().await;
        }
        StoreKind::Memory => {
            let store = MemoryStore::new();
            report.ingest = ingest(CountingStore::new(store.clone()), &ingest_options).await?;
            if options.verify {
                let expected = expected_totals(options).await?;
                let checked = verify(store, &expected, &report.ingest, &options.progress).await?;
                report.verification = Some(checked);
            }
        }
        StoreKind::Sled => {
            // The folder stays locked against other retail jobs until `data_dir` is dropped at
            // the end of this block, across the ingest, the reopen and the verification.
            let data_dir = prepare_data_dir(&options.data_dir, options.fresh)?;
            report.data_dir = Some(data_dir.path().to_owned());
            report.deleted_store = data_dir.deleted_previous();
            let store = open_sled(SledOptions::new(data_dir.path())).await?;
            // The ingest's runtime owns the only handle. sled releases the folder once the
            // runtime and its tasks are dropped, which the reopen below waits for.
            report.ingest = ingest(CountingStore::new(store), &ingest_options).await?;
            if options.verify {
                let expected = expected_totals(options).await?;
                let reopen = SledOptions::new(data_dir.path()).lock_timeout(REOPEN_LOCK_TIMEOUT);
                let store = open_sled(reopen).await?;
                let checked = verify(store, &expected, &report.ingest, &options.progress).await?;
                report.verification = Some(checked);
            }
            drop(data_dir);
        }
    }
    Ok(report)
}

/// Opens a sled store on a blocking thread, because opening replays sled's log.
async fn open_sled(options: SledOptions) -> Result<SledStore, JobError> {
    let opened = tokio::task::spawn_blocking(move || options.open()).await?;
    let store = opened.map_err(|error| match error {
        SledError::Locked { path, waited, .. } => JobError::SledInUse { path, waited },
        other => JobError::Sled(other),
    })?;
    info!(store = ?store, "sled store open");
    Ok(store)
}

/// Connects to JetStream, deleting the namespace first with `--fresh`.
async fn open_jetstream(options: &JobOptions) -> Result<JetStreamStore, JobError> {
    let connect = || async {
        let config = JetStreamConfig::new([options.nats_url.as_str()])
            .namespace(options.namespace.clone())
            .connection_name("aether-retail");
        JetStreamStore::connect(config)
            .await
            .map_err(|source| JobError::JetStream {
                url: options.nats_url.clone(),
                source,
            })
    };
    let mut store = connect().await?;
    if options.fresh {
        store
            .delete_namespace()
            .await
            .map_err(|source| JobError::Fresh {
                namespace: options.namespace.clone(),
                source: Box::new(source),
            })?;
        store = connect().await?;
    }
    info!(
        stream = store.stream_name(),
        server = store.server_version(),
        "JetStream store open"
    );
    Ok(store)
}

/// Builds the PostgreSQL settings from `--database-url` and `--namespace`, without connecting.
fn postgres_config(options: &JobOptions) -> Result<PostgresConfig, JobError> {
    // An empty DATABASE_URL counts as unset, as shells leave it after `DATABASE_URL=`.
    let url = options
        .database_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
        .ok_or(JobError::MissingDatabaseUrl)?;
    let config = PostgresConfig::from_url(url)
        .map_err(JobError::DatabaseUrl)?
        .schema(options.namespace.clone())
        .max_connections(16);
    Ok(config)
}

/// Opens the PostgreSQL store in the schema named by the namespace, dropping that schema first
/// with `--fresh`.
async fn open_postgres(
    config: PostgresConfig,
    options: &JobOptions,
) -> Result<PostgresStore, JobError> {
    let connect = || async {
        PostgresStore::connect(config.clone())
            .await
            .map_err(JobError::Postgres)
    };
    let store = connect().await?;
    if !options.fresh {
        return Ok(store);
    }

    // The schema name was validated by the configuration (lowercase letters, digits and `_`),
    // so it can stand in the statement as it is.
    let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", options.namespace);
    let dropped = sqlx::QueryBuilder::<sqlx::Postgres>::new(statement)
        .build()
        .execute(store.pool())
        .await;
    store.close().await;
    dropped.map_err(|source| JobError::Fresh {
        namespace: options.namespace.clone(),
        source: Box::new(source),
    })?;
    connect().await
}

/// Computes the expected totals over the same lines as the ingest, on a blocking thread.
async fn expected_totals(options: &JobOptions) -> Result<Expected, JobError> {
    let input = options.input.clone();
    let limit = options.limit;
    let expected =
        tokio::task::spawn_blocking(move || Expected::from_file_prefix(input, limit)).await??;
    Ok(expected)
}
