//! Options for opening a [`SledStore`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use aether_core::StoreLimits;

use crate::error::SledError;
use crate::store::SledStore;

/// The limits of a sled store unless [`SledOptions::limits`] sets others: 1 MiB per event,
/// 4 MiB per append and 16 MiB per snapshot.
///
/// One writer thread applies every append, so the append limit bounds how long one append can
/// hold up the others and how much memory a batch takes. sled stores values above a quarter of
/// its 512 KiB log segment as separate blob files, so events near the limit work but cost a file
/// each.
pub const DEFAULT_LIMITS: StoreLimits = StoreLimits {
    max_event_bytes: 1024 * 1024,
    max_append_bytes: 4 * 1024 * 1024,
    max_snapshot_bytes: 16 * 1024 * 1024,
};

/// When an append is acknowledged relative to sled's flush to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushMode {
    /// Acknowledge an append only after its batch was written and synced to disk. Appends that
    /// arrive while a flush runs share the next flush (group commit). The default, and the only
    /// mode in which an acknowledged append survives a crash.
    #[default]
    Sync,
    /// Acknowledge an append once it is applied in memory and let sled flush in the background
    /// at this interval. A crash or power loss can lose the appends of the last interval, and
    /// readers may see events that such a crash later loses.
    Periodic(Duration),
}

/// How to open a [`SledStore`]: where, how durably, and with which limits.
///
/// Every setter states its default.
///
/// ```no_run
/// use aether_sled::{FlushMode, SledOptions};
///
/// let store = SledOptions::new("data/events")
///     .flush_mode(FlushMode::Sync)
///     .cache_capacity(256 * 1024 * 1024)
///     .open()?;
/// # Ok::<(), aether_sled::SledError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SledOptions {
    pub(crate) path: Option<PathBuf>,
    pub(crate) flush_mode: FlushMode,
    pub(crate) cache_capacity: u64,
    pub(crate) max_batch: usize,
    pub(crate) head_cache_capacity: usize,
    pub(crate) limits: StoreLimits,
    pub(crate) lock_timeout: Duration,
}

impl SledOptions {
    /// Options for a store in the folder `path`, created if missing.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: Some(path.as_ref().to_path_buf()),
            ..Self::temporary()
        }
    }

    /// Options for a store that sled deletes when the last handle is dropped. It lives in
    /// `/dev/shm` on Linux and in the system's temporary folder elsewhere, so it suits tests.
    pub fn temporary() -> Self {
        Self {
            path: None,
            flush_mode: FlushMode::Sync,
            cache_capacity: 1024 * 1024 * 1024,
            max_batch: 1024,
            head_cache_capacity: 100_000,
            limits: DEFAULT_LIMITS,
            lock_timeout: Duration::from_secs(1),
        }
    }

    /// Sets the folder of the store. Default: the folder given to [`SledOptions::new`], or a
    /// temporary one.
    pub fn path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Sets when appends are acknowledged. Default: [`FlushMode::Sync`].
    pub fn flush_mode(mut self, mode: FlushMode) -> Self {
        self.flush_mode = mode;
        self
    }

    /// Sets the maximum size of sled's page cache in bytes. Default: 1 GiB, sled's own default.
    /// sled caps it at the cgroup memory limit when there is one.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    /// Sets the maximum number of appends and snapshots the writer applies in one sled batch.
    /// Default: 1024. A value of 0 is treated as 1.
    ///
    /// A batch also ends when its payloads pass 16 MiB. With [`FlushMode::Sync`] several batches
    /// may share one flush.
    pub fn max_batch(mut self, requests: usize) -> Self {
        self.max_batch = requests.max(1);
        self
    }

    /// Sets how many actor heads the writer keeps in memory. Default: 100,000. When the cache is
    /// full it is emptied, and heads are read back from the tree as actors append again.
    pub fn head_cache_capacity(mut self, actors: usize) -> Self {
        self.head_cache_capacity = actors;
        self
    }

    /// Sets how long opening waits for the folder's lock. Default: 1 second.
    ///
    /// sled locks the database file while a handle is open, and releases it a moment after the
    /// last handle is dropped, once its background threads have finished writing. Opening again
    /// right after closing, in the same process, can therefore find the lock still held. When
    /// another process has the folder open, opening fails after this time with
    /// [`SledError::Locked`].
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Sets the size limits. Default: [`DEFAULT_LIMITS`].
    pub fn limits(mut self, limits: StoreLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Opens the store; the same as [`SledStore::open_with`].
    ///
    /// # Errors
    ///
    /// See [`SledStore::open_with`].
    pub fn open(&self) -> Result<SledStore, SledError> {
        SledStore::open_with(self.clone())
    }
}
