//! The writer thread, which applies every append and snapshot, and the flusher thread, which
//! makes them durable before they are acknowledged.
//!
//! ```text
//! append/save_snapshot ──mpsc──▶ writer: check versions, build one sled Batch, apply it
//!                                    │ applied batches, in order
//!                                    ▼
//!                                flusher: one flush for every batch waiting ──▶ replies
//! ```
//!
//! Only the writer changes the tree, so a version check and the write it guards cannot be
//! separated by another writer. The writer keeps each actor's head in memory, read from the tree
//! the first time the actor appears, and the next position. While the flusher syncs one group of
//! batches, the writer goes on applying the requests that arrive meanwhile. The flusher then
//! syncs all of those with one flush (group commit). A request that fails its check gets its
//! error in the same reply pass and leaves the rest of its batch untouched.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aether_core::{
    ActorRef, AppendOutcome, ExpectedVersion, NewEvent, Position, Snapshot, StoreError, Version,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, trace, warn};

use crate::error::{SledError, backend};
use crate::keys;
use crate::options::FlushMode;
use crate::read;
use crate::record::{self, GroupBuilder};

/// A batch takes no more requests once their payloads pass this many bytes.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// A position group is closed after this many runs (appends)…
const MAX_GROUP_RUNS: usize = 256;

/// …or once its value passes this many bytes, so groups stay well below sled's blob size.
const MAX_GROUP_BYTES: usize = 32 * 1024;

/// Flushes slower than this are logged as warnings.
const SLOW_FLUSH: Duration = Duration::from_secs(1);

/// A write handed to the writer thread.
pub(crate) enum Request {
    /// Append `events` to `actor` if its version matches `expected`.
    Append {
        actor: ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    /// Store `snapshot` unless a newer one is stored.
    Snapshot {
        actor: ActorRef,
        snapshot: Snapshot,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

impl Request {
    fn payload_bytes(&self) -> usize {
        match self {
            Request::Append { events, .. } => events.iter().map(|e| e.payload.len()).sum(),
            Request::Snapshot { snapshot, .. } => snapshot.state.len(),
        }
    }
}

/// Counters of the writer and flusher threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) appends: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) flushes: AtomicU64,
}

/// Settings the writer needs from the options.
pub(crate) struct WriterSettings {
    pub(crate) flush_mode: FlushMode,
    pub(crate) max_batch: usize,
    pub(crate) head_cache_capacity: usize,
    pub(crate) next_position: Position,
}

/// The running writer and flusher threads. Dropping this waits for both to finish, which they
/// do once every request sender is gone and the queued requests are stored.
#[derive(Debug)]
pub(crate) struct Workers {
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                error!("a sled store thread panicked");
            }
        }
    }
}

/// Starts the writer (and in [`FlushMode::Sync`] the flusher) on `db`.
pub(crate) fn spawn(
    db: sled::Db,
    settings: WriterSettings,
    requests: mpsc::Receiver<Request>,
    durable: Arc<watch::Sender<Position>>,
    counters: Arc<Counters>,
) -> Result<Workers, SledError> {
    let mut threads = Vec::new();
    let sink = match settings.flush_mode {
        FlushMode::Sync => {
            let (applied_tx, applied_rx) = std::sync::mpsc::channel();
            let flusher = Flusher {
                db: db.clone(),
                durable: durable.clone(),
                counters: counters.clone(),
            };
            threads.push(spawn_thread("flusher", move || flusher.run(applied_rx))?);
            Sink::Flusher(applied_tx)
        }
        FlushMode::Periodic(_) => Sink::Direct,
    };

    let writer = Writer {
        db,
        heads: HashMap::new(),
        head_cache_capacity: settings.head_cache_capacity,
        next_position: settings.next_position,
        max_batch: settings.max_batch,
        durable,
        counters,
    };
    threads.push(spawn_thread("writer", move || writer.run(requests, sink))?);
    Ok(Workers { threads })
}

fn spawn_thread(
    role: &'static str,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, SledError> {
    std::thread::Builder::new()
        .name(format!("aether-sled-{role}"))
        .spawn(body)
        .map_err(|source| SledError::Spawn {
            thread: role,
            source,
        })
}

/// The result of one request, sent once its batch is durable.
enum Reply {
    Append {
        to: oneshot::Sender<Result<AppendOutcome, StoreError>>,
        result: Result<AppendOutcome, StoreError>,
    },
    Snapshot {
        to: oneshot::Sender<Result<bool, StoreError>>,
        result: Result<bool, StoreError>,
    },
}

impl Reply {
    /// Returns whether the request put data into its batch.
    fn wrote(&self) -> bool {
        match self {
            Reply::Append { result, .. } => result.is_ok(),
            Reply::Snapshot { result, .. } => matches!(result, Ok(true)),
        }
    }

    /// Replaces a successful write with `error()`, for a batch that failed to apply or flush.
    fn fail_write(self, error: impl FnOnce() -> StoreError) -> Self {
        if !self.wrote() {
            return self;
        }
        match self {
            Reply::Append { to, .. } => Reply::Append {
                to,
                result: Err(error()),
            },
            Reply::Snapshot { to, .. } => Reply::Snapshot {
                to,
                result: Err(error()),
            },
        }
    }

    fn send(self) {
        // A caller that stopped waiting has dropped its receiver; its outcome is in the store
        // either way.
        match self {
            Reply::Append { to, result } => {
                let _ = to.send(result);
            }
            Reply::Snapshot { to, result } => {
                let _ = to.send(result);
            }
        }
    }
}

/// One applied batch on its way to the flusher.
struct Applied {
    replies: Vec<Reply>,
    /// Position of the batch's last event, or [`Position::START`] when it stored no event.
    last_position: Position,
    /// Whether the batch changed the tree.
    wrote: bool,
}

/// The receiver of the writer's applied batches.
enum Sink {
    /// To the flusher thread ([`FlushMode::Sync`]).
    Flusher(std::sync::mpsc::Sender<Applied>),
    /// Straight to the callers ([`FlushMode::Periodic`]).
    Direct,
}

struct Writer {
    db: sled::Db,
    /// Head of every actor seen since the cache was last emptied, including batches not yet
    /// flushed.
    heads: HashMap<ActorRef, Version>,
    head_cache_capacity: usize,
    next_position: Position,
    max_batch: usize,
    durable: Arc<watch::Sender<Position>>,
    counters: Arc<Counters>,
}

impl Writer {
    fn run(mut self, mut requests: mpsc::Receiver<Request>, sink: Sink) {
        let mut pending = Vec::with_capacity(self.max_batch);
        while let Some(first) = requests.blocking_recv() {
            // Take whatever else is already queued, up to the batch limits.
            let mut bytes = first.payload_bytes();
            pending.push(first);
            while pending.len() < self.max_batch && bytes < MAX_BATCH_BYTES {
                let Ok(request) = requests.try_recv() else {
                    break;
                };
                bytes += request.payload_bytes();
                pending.push(request);
            }

            let applied = self.apply(pending.drain(..));
            match &sink {
                Sink::Flusher(flusher) => {
                    if let Err(unsent) = flusher.send(applied) {
                        // The flusher is gone, so nothing can be made durable any more.
                        for reply in unsent.0.replies {
                            reply
                                .fail_write(|| backend("flushing a batch", SledError::Stopped))
                                .send();
                        }
                    }
                }
                Sink::Direct => {
                    publish(&self.durable, applied.last_position);
                    applied.replies.into_iter().for_each(Reply::send);
                }
            }
        }

        // Every handle is gone, and the flusher syncs what it still has. In periodic mode this
        // last flush keeps a clean shutdown from losing the final interval.
        if matches!(sink, Sink::Direct)
            && let Err(err) = self.db.flush()
        {
            error!(error = %err, "final sled flush failed");
        }
    }

    /// Checks and stages every request of one batch, then applies the batch atomically.
    fn apply(&mut self, requests: impl Iterator<Item = Request>) -> Applied {
        if self.heads.len() > self.head_cache_capacity {
            self.heads.clear();
        }

        let start_position = self.next_position;
        let mut staged = Staged {
            batch: sled::Batch::default(),
            group: GroupBuilder::new(start_position),
            snapshots: HashMap::new(),
            key: Vec::new(),
            value: Vec::new(),
        };
        let mut replies = Vec::new();
        let mut appends = 0;
        for request in requests {
            match request {
                Request::Append {
                    actor,
                    expected,
                    events,
                    reply,
                } => {
                    let result = self.stage_append(&mut staged, actor, expected, &events);
                    appends += u64::from(result.is_ok());
                    replies.push(Reply::Append { to: reply, result });
                }
                Request::Snapshot {
                    actor,
                    snapshot,
                    reply,
                } => {
                    let result = self.stage_snapshot(&mut staged, &actor, &snapshot);
                    replies.push(Reply::Snapshot { to: reply, result });
                }
            }
        }
        staged.close_group(self.next_position);

        let wrote = replies.iter().any(Reply::wrote);
        if !wrote {
            return Applied {
                replies,
                last_position: Position::START,
                wrote,
            };
        }

        // One sled batch is recovered whole or not at all, so an append's events, its position
        // group entry and any snapshot in the batch stay consistent after a crash.
        if let Err(err) = self.db.apply_batch(staged.batch) {
            error!(error = %err, "applying a sled batch failed");
            // The cached heads and positions counted the failed batch; start over from the tree.
            self.heads.clear();
            self.next_position = start_position;
            let replies = replies
                .into_iter()
                .map(|reply| reply.fail_write(|| backend("applying a batch", err.clone())))
                .collect();
            return Applied {
                replies,
                last_position: Position::START,
                wrote: false,
            };
        }

        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters.appends.fetch_add(appends, Ordering::Relaxed);
        let last_position = Position::new(self.next_position.get() - 1);
        trace!(
            requests = replies.len(),
            appends,
            first_position = %start_position,
            last_position = %last_position,
            "applied sled batch"
        );
        Applied {
            replies,
            last_position,
            wrote,
        }
    }

    fn stage_append(
        &mut self,
        staged: &mut Staged,
        actor: ActorRef,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        let prefix = keys::event_prefix(&actor);
        let current = self.head(&actor, &prefix)?;
        if !expected.matches(current) {
            return Err(StoreError::Conflict {
                actor,
                expected,
                actual: current,
            });
        }
        let Ok(count) = u32::try_from(events.len()) else {
            return Err(StoreError::invalid_input(
                &actor,
                format!(
                    "append has {} events, the maximum is {}",
                    events.len(),
                    u32::MAX
                ),
            ));
        };

        // Stage the events, each at the next version and position.
        let first_position = self.next_position;
        for (offset, event) in (0u64..).zip(events) {
            let version = current.advance(offset + 1);
            let position = Position::new(first_position.get() + offset);
            staged.key.clear();
            staged.key.extend_from_slice(&prefix);
            staged.key.extend_from_slice(&version.get().to_be_bytes());
            staged.value.clear();
            record::encode_event(&mut staged.value, position, event);
            staged
                .batch
                .insert(staged.key.as_slice(), staged.value.as_slice());
        }
        let version = current.advance(u64::from(count));
        self.next_position = Position::new(first_position.get() + u64::from(count));

        // Record the events in the position index.
        staged
            .group
            .push(keys::actor_of_prefix(&prefix), current.next(), count);
        if staged.group.runs() >= MAX_GROUP_RUNS || staged.group.len() >= MAX_GROUP_BYTES {
            staged.close_group(self.next_position);
        }

        self.heads.insert(actor, version);
        Ok(AppendOutcome {
            first_version: current.next(),
            version,
            position: Position::new(self.next_position.get() - 1),
        })
    }

    fn stage_snapshot(
        &mut self,
        staged: &mut Staged,
        actor: &ActorRef,
        snapshot: &Snapshot,
    ) -> Result<bool, StoreError> {
        let head = self.head(actor, &keys::event_prefix(actor))?;
        if snapshot.version > head {
            return Err(StoreError::invalid_input(
                actor,
                format!(
                    "snapshot version {} is ahead of the last stored event {head}",
                    snapshot.version
                ),
            ));
        }

        // Newer wins: compare with a snapshot staged earlier in this batch, else the stored one.
        let key = keys::snapshot_key(actor);
        let stored = match staged.snapshots.get(&key) {
            Some(version) => Some(*version),
            None => self.stored_snapshot_version(actor, &key)?,
        };
        if stored.is_some_and(|stored| stored > snapshot.version) {
            return Ok(false);
        }

        staged
            .batch
            .insert(key.as_slice(), record::encode_snapshot(snapshot));
        staged.snapshots.insert(key, snapshot.version);
        Ok(true)
    }

    fn stored_snapshot_version(
        &self,
        actor: &ActorRef,
        key: &[u8],
    ) -> Result<Option<Version>, StoreError> {
        let value = self
            .db
            .get(key)
            .map_err(|err| backend(format!("reading the snapshot of {actor}"), err))?;
        let Some(value) = value else {
            return Ok(None);
        };
        match record::snapshot_version(&value) {
            Ok(version) => Ok(Some(version)),
            Err(err) => {
                // A snapshot only saves replay time, so an unreadable one is replaced.
                warn!(actor = %actor, error = %err, "replacing an unreadable snapshot record");
                Ok(None)
            }
        }
    }

    /// Returns the head of `actor` from the cache, or else from its last event key.
    fn head(&mut self, actor: &ActorRef, prefix: &[u8]) -> Result<Version, StoreError> {
        if let Some(version) = self.heads.get(actor) {
            return Ok(*version);
        }
        let version = read::last_version(&self.db, actor, prefix)?;
        self.heads.insert(actor.clone(), version);
        Ok(version)
    }
}

/// The parts of a batch being built.
struct Staged {
    batch: sled::Batch,
    group: GroupBuilder,
    /// Snapshot versions staged in this batch, by key.
    snapshots: HashMap<Vec<u8>, Version>,
    /// Reused buffers for event keys and records.
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Staged {
    /// Adds the open position group to the batch, if it has events, and starts a new one at
    /// `next_position`.
    fn close_group(&mut self, next_position: Position) {
        let group = std::mem::replace(&mut self.group, GroupBuilder::new(next_position));
        if group.events() > 0 {
            let key = keys::position_key(group.first());
            self.batch.insert(&key[..], group.finish());
        }
    }
}

struct Flusher {
    db: sled::Db,
    durable: Arc<watch::Sender<Position>>,
    counters: Arc<Counters>,
}

impl Flusher {
    fn run(self, applied: std::sync::mpsc::Receiver<Applied>) {
        while let Ok(first) = applied.recv() {
            // Everything applied so far is covered by the next flush.
            let mut waiting = vec![first];
            waiting.extend(applied.try_iter());

            let result = if waiting.iter().any(|batch| batch.wrote) {
                self.flush()
            } else {
                Ok(())
            };
            let last_position = waiting
                .iter()
                .map(|batch| batch.last_position)
                .max()
                .unwrap_or(Position::START);

            match result {
                Ok(()) => {
                    // Publish first, so a caller can read its events as soon as it has its reply.
                    publish(&self.durable, last_position);
                    for batch in waiting {
                        batch.replies.into_iter().for_each(Reply::send);
                    }
                }
                Err(err) => {
                    error!(error = %err, "sled flush failed; appends in the flushed batches are reported as failed");
                    for batch in waiting {
                        for reply in batch.replies {
                            reply
                                .fail_write(|| backend("flushing a batch", err.clone()))
                                .send();
                        }
                    }
                }
            }
        }
    }

    fn flush(&self) -> sled::Result<()> {
        let started = Instant::now();
        let bytes = self.db.flush()?;
        let elapsed = started.elapsed();
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        if elapsed > SLOW_FLUSH {
            warn!(
                elapsed_ms = elapsed.as_millis() as u64,
                bytes, "slow sled flush"
            );
        }
        Ok(())
    }
}

/// Raises the durable position to `position` if it is higher.
fn publish(durable: &watch::Sender<Position>, position: Position) {
    durable.send_if_modified(|current| {
        if position > *current {
            *current = position;
            true
        } else {
            false
        }
    });
}
