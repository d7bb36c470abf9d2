//! Choosing and preparing the store of the retail job, and counting what the job writes to it.
//!
//! The sled store lives in a data folder that the job marks with [`MARKER_FILE`] when it creates
//! the folder. `--fresh` deletes only a folder with that marker, so a mistyped `--data-dir`
//! cannot delete anything else.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aether::core::{AppendOutcome, EventFilter, EventStream, NewEvent, Snapshot, StoreLimits};
use aether::{ActorRef, CHECKPOINT_KIND, EventStore, ExpectedVersion, Snapshotter, StoreError};
use aether::{Position, Version};
use async_trait::async_trait;

/// The file the job writes into a data folder it created.
pub const MARKER_FILE: &str = "aether-retail-store.txt";

const MARKER_TEXT: &str = "This folder is the sled store of the aether retail job. \
`retail --fresh` deletes it.\n";

/// The stores the retail job can be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// The in-memory store: nothing survives the process.
    Memory,
    /// The embedded sled store in the data folder.
    Sled,
    /// NATS JetStream at `--nats-url`, in the stream of `--namespace`.
    Jetstream,
    /// PostgreSQL at `--database-url`, in the schema named by `--namespace`.
    Postgres,
}

/// An error that makes the data folder unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// The folder has files but no marker, so it is not a store this job created.
    #[error(
        "{} is not empty and has no {MARKER_FILE}, so it is not a retail store; \
         choose another --data-dir or delete the folder yourself",
        path.display()
    )]
    NotRetailStore {
        /// The folder.
        path: PathBuf,
    },
    /// A file operation on the folder failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// The failed operation, such as `delete`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
}

/// Makes `path` ready for a sled store: deletes it first when `fresh` is set and it carries the
/// marker, then creates it with the marker if needed. Returns whether the folder was deleted.
///
/// # Errors
///
/// [`DataDirError::NotRetailStore`] when the folder has files but no marker, whether or not
/// `fresh` is set, and [`DataDirError::Io`] when a file operation fails.
pub fn prepare_data_dir(path: &Path, fresh: bool) -> Result<bool, DataDirError> {
    let io_error = |action, path: &Path| {
        let path = path.to_owned();
        move |source| DataDirError::Io {
            action,
            path,
            source,
        }
    };
    let marker = path.join(MARKER_FILE);
    let has_marker = marker.is_file();
    let is_empty = match fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => true,
        Err(error) => return Err(io_error("read", path)(error)),
    };
    if !has_marker && !is_empty {
        return Err(DataDirError::NotRetailStore {
            path: path.to_owned(),
        });
    }

    let deleted = fresh && has_marker;
    if deleted {
        fs::remove_dir_all(path).map_err(io_error("delete", path))?;
    }
    fs::create_dir_all(path).map_err(io_error("create", path))?;
    if !marker.is_file() {
        fs::write(&marker, MARKER_TEXT).map_err(io_error("write", &marker))?;
    }
    Ok(deleted)
}

/// Counts of what one runtime wrote through a [`CountingStore`].
#[derive(Debug, Default)]
pub struct WriteCounts {
    appends: AtomicU64,
    by_kind: Mutex<BTreeMap<String, KindWrites>>,
}

/// The writes of one actor kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindWrites {
    /// Events appended.
    pub events: u64,
    /// Snapshots stored.
    pub snapshots: u64,
    /// Size of the largest snapshot stored, in bytes.
    pub largest_snapshot: usize,
}

impl WriteCounts {
    /// Returns the number of successful appends.
    pub fn appends(&self) -> u64 {
        self.appends.load(Ordering::Relaxed)
    }

    /// Returns the writes per actor kind, policy checkpoints excluded.
    pub fn by_kind(&self) -> BTreeMap<String, KindWrites> {
        self.lock().clone()
    }

    /// Returns the number of events appended, all kinds together.
    pub fn events(&self) -> u64 {
        self.lock().values().map(|kind| kind.events).sum()
    }

    /// Returns the number of snapshots stored, all kinds together, policy checkpoints excluded.
    pub fn snapshots(&self) -> u64 {
        self.lock().values().map(|kind| kind.snapshots).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, KindWrites>> {
        // The map only ever holds finished additions, so a poisoned lock still has valid counts.
        self.by_kind
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, actor: &ActorRef, change: impl FnOnce(&mut KindWrites)) {
        let mut by_kind = self.lock();
        match by_kind.get_mut(actor.kind.as_str()) {
            Some(writes) => change(writes),
            None => change(by_kind.entry(actor.kind.as_str().to_owned()).or_default()),
        }
    }
}

/// A store that passes every call through to `S` and counts the events and snapshots written.
#[derive(Clone)]
pub struct CountingStore<S> {
    inner: S,
    counts: Arc<WriteCounts>,
}

impl<S> CountingStore<S> {
    /// Wraps `inner` with fresh counts.
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            counts: Arc::default(),
        }
    }

    /// Returns the counts, which every clone shares.
    pub fn counts(&self) -> Arc<WriteCounts> {
        self.counts.clone()
    }
}

#[async_trait]
impl<S: EventStore> EventStore for CountingStore<S> {
    async fn append(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let count = events.len() as u64;
        let outcome = self.inner.append(actor, expected, events).await?;
        self.counts.appends.fetch_add(1, Ordering::Relaxed);
        self.counts.update(actor, |writes| writes.events += count);
        Ok(outcome)
    }

    fn read(&self, actor: &ActorRef, from: Version) -> EventStream {
        self.inner.read(actor, from)
    }

    async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError> {
        self.inner.head(actor).await
    }

    fn read_all(&self, after: Position, filter: EventFilter) -> EventStream {
        self.inner.read_all(after, filter)
    }

    async fn last_position(&self) -> Result<Position, StoreError> {
        self.inner.last_position().await
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        self.inner.subscribe(after, filter)
    }

    fn limits(&self) -> StoreLimits {
        self.inner.limits()
    }
}

#[async_trait]
impl<S: Snapshotter> Snapshotter for CountingStore<S> {
    async fn save_snapshot(
        &self,
        actor: &ActorRef,
        snapshot: Snapshot,
    ) -> Result<bool, StoreError> {
        let size = snapshot.state.len();
        let stored = self.inner.save_snapshot(actor, snapshot).await?;
        if stored && actor.kind.as_str() != CHECKPOINT_KIND {
            self.counts.update(actor, |writes| {
                writes.snapshots += 1;
                writes.largest_snapshot = writes.largest_snapshot.max(size);
            });
        }
        Ok(stored)
    }

    async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(actor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_folder_gets_marker() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("store");
        assert!(!prepare_data_dir(&path, false).unwrap());
        assert!(path.join(MARKER_FILE).is_file());
    }

    #[test]
    fn fresh_deletes_marked_folder() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("store");
        prepare_data_dir(&path, false).unwrap();
        fs::write(path.join("db"), b"old").unwrap();
        assert!(prepare_data_dir(&path, true).unwrap());
        assert!(!path.join("db").exists());
        assert!(path.join(MARKER_FILE).is_file());
    }

    #[test]
    fn unmarked_folder_is_kept() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().to_owned();
        fs::write(path.join("notes.txt"), b"keep me").unwrap();
        for fresh in [false, true] {
            let error = prepare_data_dir(&path, fresh).unwrap_err();
            assert!(
                matches!(error, DataDirError::NotRetailStore { .. }),
                "{error}"
            );
        }
        assert!(path.join("notes.txt").is_file());
    }

    #[test]
    fn empty_folder_is_used() {
        let parent = tempfile::tempdir().unwrap();
        assert!(!prepare_data_dir(parent.path(), true).unwrap());
        assert!(parent.path().join(MARKER_FILE).is_file());
    }
}
