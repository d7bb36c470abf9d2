//! The whole retail job: open the chosen store, ingest, then verify on a new runtime.

use std::path::PathBuf;
use std::time::Duration;

use aether::{BuildError, MemoryStore, RuntimeError};
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
    /// Whether to delete the sled store first.
    pub fresh: bool,
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
    /// The store was asked for but its crate is not a dependency of this binary yet.
    #[error(
        "the {store} store is not built into this binary yet; use --store sled or --store memory"
    )]
    StoreNotBuilt {
        /// The store's name on the command line.
        store: &'static str,
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
    /// Returns the process exit code for this error: 2 for a store that is not built in, and 1
    /// otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            JobError::StoreNotBuilt { .. } => 2,
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
        StoreKind::Jetstream => return Err(JobError::StoreNotBuilt { store: "jetstream" }),
        StoreKind::Postgres => return Err(JobError::StoreNotBuilt { store: "postgres" }),
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

/// Computes the expected totals over the same lines as the ingest, on a blocking thread.
async fn expected_totals(options: &JobOptions) -> Result<Expected, JobError> {
    let input = options.input.clone();
    let limit = options.limit;
    let expected =
        tokio::task::spawn_blocking(move || Expected::from_gz_prefix(input, limit)).await??;
    Ok(expected)
}
