//! Group commit: committer tasks that write queued appends of many actors in shared
//! transactions.
//!
//! [`PostgresStore::append`](crate::PostgresStore) queues its request and waits for the result.
//! A committer takes every request that is waiting, up to a batch limit, writes them with
//! [`write_batch`] in one transaction and sends each request its result. An actor appears at
//! most once in a batch, so a second request for it waits for the next batch. Several committers
//! share the queue, so one batch is prepared while another commits.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_core::{AppendOutcome, ErrorKind, Position, StoreError};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tracing::{debug, trace, warn};

use crate::append::{AppendRequest, BatchError, Namespace, write_batch};
use crate::error::{
    BACKEND, UNIQUE_VIOLATION, classify, is_transient, is_unavailable, map_sqlx, sqlstate,
};

/// Total payload bytes above which a committer closes a batch, so one transaction's arrays stay
/// far below PostgreSQL's 1 GiB message limit.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Duration above which a batch is logged at `warn`.
const SLOW_BATCH: Duration = Duration::from_secs(1);

/// Number of deferred requests after which a committer stops looking for more requests to add to
/// a batch, so a long queue of appends to one actor is not scanned again for every batch.
const MAX_DEFERRED_SCAN: usize = 1024;

/// How often a batch is run again after PostgreSQL broke a deadlock or a serialization failure
/// by rolling it back.
const TRANSIENT_ATTEMPTS: usize = 3;

/// A queued append and the channel for its result.
pub(crate) struct Job {
    pub(crate) request: AppendRequest,
    pub(crate) reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// Shared state of the committers: pool, lock key and channel, head signal and batch limit.
#[derive(Clone)]
pub(crate) struct CommitContext {
    pub(crate) pool: PgPool,
    pub(crate) namespace: Namespace,
    pub(crate) head: Arc<watch::Sender<Position>>,
    pub(crate) max_batch_events: usize,
}

/// Starts `count` committers and returns the queue they serve. They stop once every sender of
/// the queue is dropped and the queued appends are written.
pub(crate) fn spawn(context: CommitContext, count: usize) -> mpsc::UnboundedSender<Job> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let queue = Arc::new(Mutex::new(Queue {
        receiver,
        deferred: VecDeque::new(),
    }));
    for _ in 0..count {
        let context = context.clone();
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            loop {
                let batch = queue
                    .lock()
                    .await
                    .next_batch(context.max_batch_events)
                    .await;
                if batch.is_empty() {
                    break;
                }
                commit(&context, batch).await;
            }
        });
    }
    sender
}

/// The shared queue: new requests plus those pushed back because their actor was already in the
/// batch being built.
struct Queue {
    receiver: mpsc::UnboundedReceiver<Job>,
    deferred: VecDeque<Job>,
}

impl Queue {
    /// Waits for at least one request, then takes as many as fit in one batch without waiting.
    /// Returns an empty batch once the queue is closed and drained.
    async fn next_batch(&mut self, max_events: usize) -> Vec<Job> {
        let first = match self.deferred.pop_front() {
            Some(job) => job,
            None => match self.receiver.recv().await {
                Some(job) => job,
                None => return Vec::new(),
            },
        };

        let mut events = first.request.events.len();
        let mut bytes = payload_bytes(&first);
        let mut actors = HashSet::from([first.request.actor.clone()]);
        let mut batch = vec![first];
        let mut skipped = Vec::new();
        let mut from_deferred = std::mem::take(&mut self.deferred).into_iter();
        loop {
            let job = match from_deferred.next() {
                Some(job) => job,
                None => match self.receiver.try_recv() {
                    Ok(job) => job,
                    Err(_) => break,
                },
            };
            let job_events = job.request.events.len();
            let job_bytes = payload_bytes(&job);
            if events + job_events > max_events || bytes + job_bytes > MAX_BATCH_BYTES {
                // Full: this request and everything after it waits for the next batch.
                skipped.push(job);
                skipped.extend(from_deferred);
                break;
            }
            if !actors.insert(job.request.actor.clone()) {
                skipped.push(job);
                if skipped.len() >= MAX_DEFERRED_SCAN {
                    skipped.extend(from_deferred);
                    break;
                }
                continue;
            }
            events += job_events;
            bytes += job_bytes;
            batch.push(job);
        }
        self.deferred = skipped.into();
        batch
    }
}

fn payload_bytes(job: &Job) -> usize {
    job.request.events.iter().map(|e| e.payload.len()).sum()
}

/// Writes one batch and sends every request in it its result.
async fn commit(context: &CommitContext, batch: Vec<Job>) {
    let requests: Vec<&AppendRequest> = batch.iter().map(|job| &job.request).collect();
    let started = Instant::now();
    let result = run_with_retries(context, &requests).await;
    let elapsed = started.elapsed();
    if elapsed > SLOW_BATCH {
        warn!(appends = batch.len(), ?elapsed, "slow batch append");
    } else {
        trace!(appends = batch.len(), ?elapsed, "batch append finished");
    }

    match result {
        Ok(results) => {
            drop(requests);
            publish_head(&context.head, &results);
            for (job, result) in batch.into_iter().zip(results) {
                // A caller that stopped waiting no longer needs its result.
                let _ = job.reply.send(result);
            }
        }
        Err(err) if batch.len() == 1 && !batch_error_is_unavailable(&err) => {
            drop(requests);
            if let Some(job) = batch.into_iter().next() {
                let answer = resolve_failure(context, &job.request, err).await;
                let _ = job.reply.send(Err(answer));
            }
        }
        Err(err) if !batch_error_is_unavailable(&err) => {
            // One request broke the whole transaction. Write each alone, so that only the
            // faulty one fails.
            warn!(
                appends = batch.len(),
                error = %ErrorChain(&err),
                "batch append failed, retrying its appends one by one"
            );
            drop(requests);
            for job in batch {
                let result = run_with_retries(context, &[&job.request]).await;
                let answer = match result {
                    Ok(mut results) => {
                        publish_head(&context.head, &results);
                        results.pop().unwrap_or_else(|| {
                            Err(StoreError::backend(
                                BACKEND,
                                format!("appending to {}", job.request.actor),
                                "a batch of one append returned no result",
                            ))
                        })
                    }
                    Err(err) => Err(resolve_failure(context, &job.request, err).await),
                };
                let _ = job.reply.send(answer);
            }
        }
        Err(err) => {
            let shared = SharedError::new(err);
            debug!(appends = batch.len(), error = %ErrorChain(&shared.error), "batch append failed");
            for job in batch {
                let err = shared.to_store_error(&job.request);
                let _ = job.reply.send(Err(err));
            }
        }
    }
}

/// Runs a batch as its own transaction, again after a deadlock or serialization failure.
async fn run_with_retries(
    context: &CommitContext,
    requests: &[&AppendRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, BatchError> {
    let mut attempt = 1;
    loop {
        match run_once(context, requests).await {
            Err(BatchError::Sql(err)) if is_transient(&err) && attempt < TRANSIENT_ATTEMPTS => {
                warn!(attempt, error = %err, "batch append rolled back by the server, running it again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn run_once(
    context: &CommitContext,
    requests: &[&AppendRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, BatchError> {
    // One statement in autocommit mode: PostgreSQL commits it before replying, and rolls it
    // back whole on an error.
    let mut conn = context.pool.acquire().await?;
    write_batch(&mut conn, &context.namespace, requests).await
}

/// Turns the failure of a lone append into its result. A unique violation on the events key means
/// another writer stored the same version first, which is a conflict with that writer's version.
async fn resolve_failure(
    context: &CommitContext,
    request: &AppendRequest,
    err: BatchError,
) -> StoreError {
    let operation = format!("appending to {}", request.actor);
    match err {
        BatchError::Store(err) => err,
        BatchError::Sql(err) if sqlstate(&err).as_deref() == Some(UNIQUE_VIOLATION) => {
            match crate::read::stream_version(&context.pool, &request.actor).await {
                Ok(actual) => StoreError::Conflict {
                    actor: request.actor.clone(),
                    expected: request.expected,
                    actual,
                },
                Err(_) => map_sqlx(operation, err),
            }
        }
        BatchError::Sql(err) => map_sqlx(operation, err),
    }
}

fn batch_error_is_unavailable(err: &BatchError) -> bool {
    match err {
        BatchError::Sql(err) => is_unavailable(err),
        BatchError::Store(err) => err.kind() == ErrorKind::Unavailable,
    }
}

/// Moves the head signal to the highest position written, which wakes local subscribers.
fn publish_head(head: &watch::Sender<Position>, results: &[Result<AppendOutcome, StoreError>]) {
    let highest = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|o| o.position))
        .max();
    if let Some(highest) = highest {
        head.send_if_modified(|current| {
            let moved = highest > *current;
            if moved {
                *current = highest;
            }
            moved
        });
    }
}

/// A batch failure shared by every request of the batch. Each request gets its own
/// [`StoreError`] naming its actor, with this error as the source.
#[derive(Clone)]
struct SharedError {
    kind: ErrorKind,
    error: Arc<BatchError>,
}

impl SharedError {
    fn new(error: BatchError) -> Self {
        let kind = match &error {
            BatchError::Sql(err) => classify(err),
            BatchError::Store(err) => err.kind(),
        };
        Self {
            kind,
            error: Arc::new(error),
        }
    }

    fn to_store_error(&self, request: &AppendRequest) -> StoreError {
        let operation = format!("appending to {}", request.actor);
        match self.kind {
            ErrorKind::Unavailable => StoreError::unavailable(operation, self.clone()),
            ErrorKind::Corrupt => StoreError::Corrupt {
                location: format!("rows read while {operation}"),
                reason: "a stored value could not be decoded".to_owned(),
                source: Some(Box::new(self.clone())),
            },
            _ => StoreError::backend(BACKEND, operation, self.clone()),
        }
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the transaction of the append's batch failed")
    }
}

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.error, f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.error {
            BatchError::Sql(err) => Some(err),
            BatchError::Store(err) => Some(err),
        }
    }
}

/// Formats an error with its sources, for logs.
struct ErrorChain<'a>(&'a BatchError);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first: &(dyn std::error::Error + 'static) = match self.0 {
            BatchError::Sql(err) => err,
            BatchError::Store(err) => err,
        };
        write!(f, "{first}")?;
        let mut source = first.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}
