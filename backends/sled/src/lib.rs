//! The embedded sled store of aether: an [`EventStore`](aether_core::EventStore) and
//! [`Snapshotter`](aether_core::Snapshotter) in a local folder, with no server to run.
//!
//! ```text
//! append ─┐                         ┌─ flusher: one fsync per group ─▶ durable position ─▶ replies
//! append ─┼─▶ writer thread ─batch─▶┤                                     │
//! snapshot┘   (version checks)      └─ sled tree ◀── read / read_all / subscribe (up to durable)
//! ```
//!
//! - **Atomic appends.** One writer thread checks every expectation and writes each batch of
//!   appends with one sled `Batch`, which sled recovers whole or not at all. So an append's
//!   events, its entries in the position index and the actor's head (the version in its last
//!   event key) never disagree.
//! - **Durable acknowledgements, shared flushes.** With [`FlushMode::Sync`] (the default) an append
//!   returns only after sled has synced it. Appends that arrive while a flush runs go into the
//!   next batch, so many concurrent writers share one fsync. A conflict or any other rejected
//!   append in a batch fails alone.
//! - **Reads** page through the tree 256 events at a time on tokio's blocking threads, and never
//!   show an event before its flush has finished. `subscribe` follows the durable position.
//! - **Ids** are stored as they are: any valid UTF-8 id up to 1 KiB, length-prefixed in keys so
//!   that no actor's key range overlaps another's.
//!
//! Every sled failure is [`StoreError::Backend`](aether_core::StoreError::Backend) with a
//! [`SledError`] source; see the [`error`] module for why none is reported as unavailable.
//!
//! ```no_run
//! use aether_sled::{SledOptions, SledStore};
//!
//! let store: SledStore = SledOptions::new("data/events").cache_capacity(256 << 20).open()?;
//! # Ok::<(), aether_sled::SledError>(())
//! ```

pub mod error;
mod keys;
mod options;
mod read;
mod record;
mod store;
mod writer;

pub use error::SledError;
pub use options::{DEFAULT_LIMITS, FlushMode, SledOptions};
pub use store::{SledStats, SledStore};
