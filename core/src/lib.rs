//! Storage contracts and shared types of aether, the event-sourced virtual actor toolkit.
//!
//! An actor is addressed by an [`ActorRef`]: a kind and an id. Its history is a stream of
//! [`RecordedEvent`]s numbered by [`Version`] 1, 2, 3…, and every stored event also has a
//! store-wide [`Position`]. Writers call [`EventStore::append`] with an [`ExpectedVersion`], which
//! fails with a conflict when another writer got there first:
//!
//! ```text
//! command ──decide──▶ Vec<NewEvent> ──append(actor, expected)──▶ EventStore
//!                                                                  │
//!        state ◀──apply── read(actor, from) ◀──────────────────────┤
//!  projections ◀── read_all / subscribe(after position) ◀──────────┘
//! ```
//!
//! A [`Snapshotter`] keeps an actor's encoded state at a version so that activation can skip
//! the events before it. Backends live in their own crates (`aether-sled`, `aether-jetstream`,
//! `aether-postgres`); this crate has the [`MemoryStore`] and no network or database code.
//!
//! ```
//! use aether_core::{ActorRef, EventStore, ExpectedVersion, MemoryStore, NewEvent, Version};
//! use futures::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let actor = ActorRef::parse("counter", "a")?;
//!
//! let first = store
//!     .append(&actor, ExpectedVersion::NoEvents, vec![NewEvent::new("Added", "1")])
//!     .await?;
//! assert_eq!(first.version, Version::new(1));
//!
//! // A second writer that still expects an empty stream is rejected.
//! let stale = store
//!     .append(&actor, ExpectedVersion::NoEvents, vec![NewEvent::new("Added", "1")])
//!     .await;
//! assert!(stale.is_err());
//!
//! let events: Vec<_> = store.read(&actor, Version::new(1)).try_collect().await?;
//! assert_eq!(events.len(), 1);
//! # Ok(())
//! # }
//! ```

pub mod codec;
pub mod error;
pub mod event;
pub mod id;
pub mod memory;
pub mod snapshot;
pub mod store;
pub mod subscription;
pub mod version;

#[cfg(feature = "msgpack")]
pub use codec::MsgPackCodec;
pub use codec::{Codec, CodecError, JsonCodec};
pub use error::{BoxError, ErrorChain, ErrorKind, StoreError};
pub use event::{EventFilter, EventMetadata, NewEvent, RecordedEvent};
pub use id::{ActorId, ActorKind, ActorRef, IdError, MAX_ID_LEN, MAX_KIND_LEN};
pub use memory::MemoryStore;
pub use snapshot::Snapshot;
pub use store::{AppendOutcome, EventStore, EventStream, Snapshotter, StoreLimits};
pub use version::{ExpectedVersion, Position, Version};
