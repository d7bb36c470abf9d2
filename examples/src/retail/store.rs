//! Choosing and preparing the store of the retail job, and counting what the job writes to it.
//!
//! The sled store lives in a data folder that the job marks with [`MARKER_FILE`] when it creates
//! the folder. `--fresh` deletes only a folder with that marker, so a mistyped `--data-dir`
//! cannot delete anything else. While a job runs it holds an exclusive lock on the marker file,
//! so a second job on the same folder stops before it reads, writes or deletes anything.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
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
`retail --fresh` empties the folder but keeps this file.\n";

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
    /// The path exists but is not a folder.
    #[error(
        "{} is not a folder; choose another --data-dir for the sled store",
        path.display()
    )]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
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
    /// Another retail job holds the lock on the folder's marker file.
    #[error(
        "the data folder {} is in use by another retail job; wait until that job ends \
         or choose another --data-dir",
        path.display()
    )]
    InUse {
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

/// A data folder made ready by [`prepare_data_dir`]. It holds the lock on the folder's marker
/// file until it is dropped, so no other retail job can use or delete the folder meanwhile.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    deleted: bool,
    // The lock belongs to this open file and ends when it is closed, also when the process dies.
    _marker: File,
}

impl DataDir {
    /// Returns the folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns whether `--fresh` deleted the previous store in the folder.
    pub fn deleted_previous(&self) -> bool {
        self.deleted
    }
}

/// Makes `path` ready for a sled store and locks it. Creates the folder with the marker if
/// needed and takes the lock on the marker file. Then, when `fresh` is set and the folder
/// already had the marker, deletes everything in it but the marker.
///
/// The lock is an advisory `flock` lock on Linux (`File::try_lock` of the standard library). It
/// keeps out other retail jobs, not other programs.
///
/// # Errors
///
/// - [`DataDirError::NotAFolder`] when `path` is a file.
/// - [`DataDirError::NotRetailStore`] when the folder has files but no marker, whether or not
///   `fresh` is set.
/// - [`DataDirError::InUse`] when another retail job holds the lock. Nothing is deleted then.
/// - [`DataDirError::Io`] when a file operation fails.
pub fn prepare_data_dir(path: &Path, fresh: bool) -> Result<DataDir, DataDirError> {
    let io_error = |action, path: &Path| {
        let path = path.to_owned();
        move |source| DataDirError::Io {
            action,
            path,
            source,
        }
    };
    if fs::metadata(path).is_ok_and(|metadata| !metadata.is_dir()) {
        return Err(DataDirError::NotAFolder {
            path: path.to_owned(),
        });
    }
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

    fs::create_dir_all(path).map_err(io_error("create", path))?;
    let marker_file = lock_marker(path, &marker)?;
    let deleted = fresh && has_marker;
    if deleted {
        delete_all_but_marker(path)?;
    }
    Ok(DataDir {
        path: path.to_owned(),
        deleted,
        _marker: marker_file,
    })
}

/// Opens the marker file of the folder `path`, creating it if it is missing, and takes its lock.
fn lock_marker(path: &Path, marker: &Path) -> Result<File, DataDirError> {
    let io_error = |action, source| DataDirError::Io {
        action,
        path: marker.to_owned(),
        source,
    };
    // A lock needs no write access, so an existing marker is opened for reading only.
    let (file, created) = match OpenOptions::new().write(true).create_new(true).open(marker) {
        Ok(file) => (file, true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            (File::open(marker).map_err(|e| io_error("open", e))?, false)
        }
        Err(error) => return Err(io_error("create", error)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(DataDirError::InUse {
                path: path.to_owned(),
            });
        }
        Err(fs::TryLockError::Error(error)) => return Err(io_error("lock", error)),
    }
    if created {
        fs::write(marker, MARKER_TEXT).map_err(|e| io_error("write", e))?;
    }
    Ok(file)
}

/// Deletes every file and folder in `path` except the marker file, whose lock must survive.
fn delete_all_but_marker(path: &Path) -> Result<(), DataDirError> {
    let entries = fs::read_dir(path).map_err(|source| DataDirError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| DataDirError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
        if entry.file_name() == MARKER_FILE {
            continue;
        }
        let entry_path = entry.path();
        let is_folder = entry.file_type().is_ok_and(|kind| kind.is_dir());
        let deleted = if is_folder {
            fs::remove_dir_all(&entry_path)
        } else {
            fs::remove_file(&entry_path)
        };
        deleted.map_err(|source| DataDirError::Io {
            action: "delete",
            path: entry_path,
            source,
        })?;
    }
    Ok(())
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
        let data_dir = prepare_data_dir(&path, false).unwrap();
        assert!(!data_dir.deleted_previous());
        assert_eq!(data_dir.path(), path);
        assert_eq!(
            fs::read_to_string(path.join(MARKER_FILE)).unwrap(),
            MARKER_TEXT
        );
    }

    #[test]
    fn fresh_deletes_marked_folder() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("store");
        drop(prepare_data_dir(&path, false).unwrap());
        fs::write(path.join("db"), b"old").unwrap();
        fs::create_dir(path.join("blobs")).unwrap();
        fs::write(path.join("blobs").join("1"), b"old").unwrap();

        assert!(prepare_data_dir(&path, true).unwrap().deleted_previous());
        assert!(!path.join("db").exists());
        assert!(!path.join("blobs").exists());
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
        assert!(
            !prepare_data_dir(parent.path(), true)
                .unwrap()
                .deleted_previous()
        );
        assert!(parent.path().join(MARKER_FILE).is_file());
    }

    #[test]
    fn file_is_not_a_folder() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("store");
        fs::write(&path, b"a file").unwrap();
        let error = prepare_data_dir(&path, true).unwrap_err();
        assert!(matches!(error, DataDirError::NotAFolder { .. }), "{error}");
        assert!(error.to_string().contains("--data-dir"), "{error}");
        assert_eq!(fs::read(&path).unwrap(), b"a file");
    }

    #[test]
    fn locked_folder_is_in_use() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("store");
        let first_job = prepare_data_dir(&path, false).unwrap();
        fs::write(path.join("db"), b"in use").unwrap();

        // A second open of the marker is a separate lock holder, even in this process.
        for fresh in [false, true] {
            let error = prepare_data_dir(&path, fresh).unwrap_err();
            assert!(
                matches!(&error, DataDirError::InUse { path: p } if p == &path),
                "{error}"
            );
            assert!(error.to_string().contains("in use"), "{error}");
        }
        assert_eq!(fs::read(path.join("db")).unwrap(), b"in use");

        drop(first_job);
        assert!(prepare_data_dir(&path, true).unwrap().deleted_previous());
        assert!(!path.join("db").exists());
    }
}
