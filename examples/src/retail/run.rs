//! The whole retail job: open the chosen store, ingest, then verify on a new runtime.

use std::path::PathBuf;
use std::time::Duration;

use aether::{BuildError, MemoryStore, RuntimeError};
use aether_jetstream::{JetStreamConfig, JetStreamStore};
use aether_postgres::{PostgresConfig, PostgresStore};
use aether_sled::{SledError, SledOptions, SledStore};
use tracing::info;

use super::expected::{Expected, ExpectedError};
use super::job::{IngestOptions, ingest};
use super::progress::Progress;
use super::report::Report;
use super::source::ReadError;
use super::store::{CountingStore, DataDirError, StoreKind, prepare_data_dir};
use super::verify::verify;

/// How long reopening the sled folder waits for the previous handle's lock. sled releases it a
/// moment after the last handle is dropped, once its background threads are done.
const REOPEN_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings of one run.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// The gzip-compressed Online Retail CSV.
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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// `--store postgres` without a server.
    #[error("--store postgres needs --database-url or the DATABASE_URL environment variable")]
    MissingDatabaseUrl,
    /// The JetStream store could not connect.
    #[error("failed to open the JetStream store")]
    JetStream {
        /// The server URL.
        url: String,
        /// The underlying error.
        #[source]
        source: aether_jetstream::ConnectError,
    },
    /// The PostgreSQL store could not be configured or opened.
    #[error("failed to open the PostgreSQL store")]
    Postgres(#[source] Box<dyn std::error::Error + Send + Sync>),
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
    /// The sled store could not be opened.
    #[error("failed to open the sled store")]
    Sled(#[from] SledError),
    /// The runtime could not be built.
    #[error("failed to build the runtime")]
    Build(#[from] BuildError),
    /// The input file could not be read.
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
    /// Returns the process exit code for this error: 2 for missing arguments, and 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            JobError::MissingDatabaseUrl => 2,
            _ => 1,
        }
    }
}

/// Runs the job with `options` and returns its report. A mismatch found by the verification is
/// in the report, not an error; see [`Report::is_success`].
///
/// # Errors
///
/// A [`JobError`] when the store cannot be opened, the input cannot be read, or the runtime
/// fails as a whole.
pub async fn run(options: &JobOptions) -> Result<Report, JobError> {
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
            let store = open_postgres(options).await?;
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
            report.data_dir = Some(options.data_dir.clone());
            report.deleted_store = prepare_data_dir(&options.data_dir, options.fresh)?;
            let store = open_sled(SledOptions::new(&options.data_dir)).await?;
            // The ingest's runtime owns the only handle. sled releases the folder once the
            // runtime and its tasks are dropped, which the reopen below waits for.
            report.ingest = ingest(CountingStore::new(store), &ingest_options).await?;
            if options.verify {
                let expected = expected_totals(options).await?;
                let reopen = SledOptions::new(&options.data_dir).lock_timeout(REOPEN_LOCK_TIMEOUT);
                let store = open_sled(reopen).await?;
                let checked = verify(store, &expected, &report.ingest, &options.progress).await?;
                report.verification = Some(checked);
            }
        }
    }
    Ok(report)
}

/// Opens a sled store on a blocking thread, because opening replays sled's log.
async fn open_sled(options: SledOptions) -> Result<SledStore, JobError> {
    let store = tokio::task::spawn_blocking(move || options.open()).await??;
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

/// Opens the PostgreSQL store in the schema named by the namespace, dropping that schema first
/// with `--fresh`.
async fn open_postgres(options: &JobOptions) -> Result<PostgresStore, JobError> {
    let url = options
        .database_url
        .as_deref()
        .ok_or(JobError::MissingDatabaseUrl)?;
    let config = PostgresConfig::from_url(url)
        .map_err(|err| JobError::Postgres(Box::new(err)))?
        .schema(options.namespace.clone())
        .max_connections(16);
    let connect = || async {
        PostgresStore::connect(config.clone())
            .await
            .map_err(|err| JobError::Postgres(Box::new(err)))
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
        tokio::task::spawn_blocking(move || Expected::from_gz_prefix(input, limit)).await??;
    Ok(expected)
}
