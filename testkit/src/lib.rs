//! Test support for aether: mocks of the store traits and the conformance suite that every
//! storage backend runs.
//!
//! Its parts:
//!
//! - [`mock`]: mockall mocks of [`EventStore`](aether_core::EventStore) and
//!   [`Snapshotter`](aether_core::Snapshotter), for unit tests of code that calls a store and
//!   needs to script its results, failures included.
//! - [`harness`]: given/when/then tests of one actor's decisions, without a store.
//! - [`conformance`]: the behaviour every backend promises, written once as async test cases.
//!   A backend proves itself with one line in its `tests/conformance.rs`:
//!
//! ```
//! use aether_testkit::Fixture;
//!
//! async fn memory_store() -> Fixture<aether_core::MemoryStore> {
//!     Fixture::new(aether_core::MemoryStore::new())
//! }
//!
//! aether_testkit::conformance_suite!(memory_store);
//! # fn main() {}
//! ```
//!
//! ```text
//! factory() ──▶ Fixture { store, guard } ──▶ case(fixture) ──▶ panics on the first broken promise
//!    ▲                                                        │
//!    └────────────── once per case: a fresh, empty store ─────┘
//! ```

pub mod conformance;
pub mod harness;
pub mod mock;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "nats", feature = "postgres"))]
mod watchdog;

pub use conformance::Fixture;
pub use harness::{ActorTest, Outcome};
pub use mock::{MockEventStore, MockSnapshotter, MockStore};

/// Items the exported macros refer to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use tokio;
}
