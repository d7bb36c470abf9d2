//! Failures specific to the sled store, and how they map onto [`StoreError`].
//!
//! Every sled failure becomes [`StoreError::Backend`] with a [`SledError`] as its source, I/O
//! errors included. sled 0.34 is fail-stop: after an I/O error in its log it keeps returning that
//! error from the same handle until the database is reopened, so
//! [`StoreError::Unavailable`], which promises that a retry may succeed, would mislead callers.
//!
//! An append that fails while its batch is flushed may still be stored: sled applied it in
//! memory, and a later successful flush writes it. Read the actor's head before writing again.

use std::path::PathBuf;
use std::time::Duration;

use aether_core::StoreError;

/// Name of this backend in [`StoreError::Backend`].
pub(crate) const BACKEND: &str = "sled";

/// A failure of the sled store itself, kept as the source of a [`StoreError`] or returned when
/// opening a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SledError {
    /// Another handle held the database's file lock for the whole
    /// [`SledOptions::lock_timeout`](crate::SledOptions::lock_timeout). The holder is another
    /// process, or a handle of this process that is still open or still closing. Opening again
    /// after the holder has closed the folder can succeed.
    #[error(
        "the sled database at {} is in use by another process or handle (waited {waited:?} for its lock)",
        path.display()
    )]
    Locked {
        /// The database folder.
        path: PathBuf,
        /// How long opening waited for the lock.
        waited: Duration,
        /// sled's error, which reports the held lock as an I/O error.
        #[source]
        source: sled::Error,
    },

    /// sled could not open the database for a reason other than a held lock, for example
    /// because the folder cannot be created or read.
    #[error("could not open the sled database at {path}")]
    Open {
        /// The database folder, or `temporary`.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },

    /// A read, write or flush of sled failed.
    #[error("sled operation failed")]
    Sled(#[from] sled::Error),

    /// The folder contains a sled database with data but without the aether layout marker.
    #[error("the sled database at {path} was not created by aether-sled")]
    ForeignDatabase {
        /// The database folder.
        path: PathBuf,
    },

    /// The store was written by a version of aether-sled with another key or record layout.
    #[error("the store's layout version is {found}, this version of aether-sled reads {supported}")]
    UnsupportedLayout {
        /// The layout version found in the store.
        found: u8,
        /// The layout version this crate reads and writes.
        supported: u8,
    },

    /// Stored data needed to open the store could not be decoded.
    #[error("corrupt data at {location}: {reason}")]
    Corrupt {
        /// The key of the data.
        location: String,
        /// The decoding failure.
        reason: String,
    },

    /// A thread of the store could not be started.
    #[error("could not start the store's {thread} thread")]
    Spawn {
        /// The thread's role.
        thread: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The writer or the flusher thread has stopped, so appends and snapshots cannot be stored.
    /// This follows a panic in one of them. Reopen the store.
    #[error("the store's writer or flusher thread has stopped")]
    Stopped,

    /// A blocking read task panicked or was cancelled.
    #[error("a read task of the store failed")]
    ReadTask(#[source] tokio::task::JoinError),
}

/// Wraps a sled-specific failure in [`StoreError::Backend`].
pub(crate) fn backend(operation: impl Into<String>, error: impl Into<SledError>) -> StoreError {
    StoreError::backend(BACKEND, operation, error.into())
}
