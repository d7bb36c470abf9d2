//! The conformance suite: the promises of [`EventStore`](aether_core::EventStore) and
//! [`Snapshotter`](aether_core::Snapshotter) as test cases that every backend runs.
//!
//! Each case is a public async function taking a [`Fixture`] with a fresh, empty store. It panics
//! with a message naming the broken promise. [`conformance_suite!`](crate::conformance_suite)
//! turns the whole list into one `#[tokio::test]` per case:
//!
//! ```ignore
//! // tests/conformance.rs of a backend crate
//! async fn sled_store() -> aether_testkit::Fixture<aether_sled::SledStore> {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = aether_sled::SledStore::open(dir.path()).unwrap();
//!     aether_testkit::Fixture::new(store).with_guard(dir)
//! }
//!
//! aether_testkit::conformance_suite!(sled_store);
//! ```
//!
//! Every wait in a case is bounded: single operations and short reads by [`WAIT`], reads of
//! thousands of events by [`LONG_WAIT`], the whole case by [`CASE_TIMEOUT`].
//!
//! The cases, by concern:
//!
//! - appends and conflicts: [`concurrent_first_appends_have_one_winner`],
//!   [`append_expecting_version_on_new_actor_conflicts`],
//!   [`stale_expectation_conflicts_and_stores_nothing`], [`concurrent_appends_have_one_winner`],
//!   [`any_expectation_always_appends`], [`multi_event_append_is_stored_whole`],
//!   [`failed_multi_event_append_stores_nothing`], [`returned_version_is_next_expectation`],
//!   [`interleaved_actors_append_independently`], [`empty_append_is_rejected`];
//! - reads of one actor: [`read_long_stream_from_any_version`],
//!   [`read_actor_without_events_is_empty`], [`read_ends_at_head`],
//!   [`read_stops_at_head_seen_at_start`];
//! - store-wide reads: [`read_all_orders_every_event_once`],
//!   [`read_all_filters_by_kind_and_actor`], [`read_all_after_last_position_is_empty`],
//!   [`read_all_stops_at_head_seen_at_start`], [`last_position_follows_appends`];
//! - subscriptions: [`subscribe_delivers_stored_then_live`],
//!   [`subscribe_resumes_from_checkpoint`], [`subscribe_receives_concurrent_appends`],
//!   [`subscribe_applies_filter`];
//! - actor ids: [`unusual_ids_stay_separate`], [`invalid_ids_are_rejected`];
//! - payloads and limits: [`payload_bytes_round_trip`], [`metadata_round_trips`],
//!   [`payload_over_limit_is_rejected`], [`payload_at_limit_is_accepted`],
//!   [`append_over_total_limit_is_rejected`];
//! - snapshots: [`snapshot_never_goes_back`], [`snapshot_ahead_of_events_is_rejected`],
//!   [`missing_snapshot_loads_none`], [`snapshot_state_round_trips`],
//!   [`snapshot_over_limit_is_rejected`], [`snapshot_same_version_replaces`].

mod append;
mod conflicts;
mod helpers;
mod ids;
mod payloads;
mod read;
mod read_all;
mod snapshots;
mod subscribe;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use append::{
    empty_append_is_rejected, failed_multi_event_append_stores_nothing,
    interleaved_actors_append_independently, multi_event_append_is_stored_whole,
    returned_version_is_next_expectation,
};
pub use conflicts::{
    any_expectation_always_appends, append_expecting_version_on_new_actor_conflicts,
    concurrent_appends_have_one_winner, concurrent_first_appends_have_one_winner,
    stale_expectation_conflicts_and_stores_nothing,
};
pub use helpers::{
    collect_within, event, expect_conflict, next_events, numbered_events, unique_actor, unique_kind,
};
pub use ids::{invalid_ids_are_rejected, unusual_ids_stay_separate};
pub use payloads::{
    append_over_total_limit_is_rejected, metadata_round_trips, payload_at_limit_is_accepted,
    payload_bytes_round_trip, payload_over_limit_is_rejected,
};
pub use read::{
    read_actor_without_events_is_empty, read_ends_at_head, read_long_stream_from_any_version,
    read_stops_at_head_seen_at_start,
};
pub use read_all::{
    last_position_follows_appends, read_all_after_last_position_is_empty,
    read_all_filters_by_kind_and_actor, read_all_orders_every_event_once,
    read_all_stops_at_head_seen_at_start,
};
pub use snapshots::{
    missing_snapshot_loads_none, snapshot_ahead_of_events_is_rejected, snapshot_never_goes_back,
    snapshot_over_limit_is_rejected, snapshot_same_version_replaces, snapshot_state_round_trips,
};
pub use subscribe::{
    subscribe_applies_filter, subscribe_delivers_stored_then_live,
    subscribe_receives_concurrent_appends, subscribe_resumes_from_checkpoint,
};

/// Bound on one store operation, a short read, or the arrival of a few subscribed events.
pub const WAIT: Duration = Duration::from_secs(10);

/// Bound on reading or receiving thousands of events.
pub const LONG_WAIT: Duration = Duration::from_secs(60);

/// Bound on a whole case, factory excluded.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(300);

/// Bound on the factory, which may start a container or create a database schema.
pub const FACTORY_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a subscription must stay silent to show that no extra event is coming.
pub const QUIET: Duration = Duration::from_millis(300);

/// Largest limit the limit cases allocate a payload for. A store with a larger limit fails those
/// cases with a message naming the limit.
pub const MAX_TESTED_BYTES: usize = 256 * 1024 * 1024;

/// A store under test plus whatever must stay alive while a case uses it.
///
/// The factory given to [`conformance_suite!`](crate::conformance_suite) returns a fresh, empty
/// store for every call: its own temporary folder, stream namespace or database schema. The guard
/// is dropped after the store when the case ends, so it can remove that folder or namespace.
pub struct Fixture<S> {
    // Field order is drop order: the store closes before the guard cleans up behind it.
    store: S,
    guard: Option<Box<dyn Any + Send>>,
}

impl<S> Fixture<S> {
    /// Wraps a store that needs nothing kept alive beside it.
    pub fn new(store: S) -> Self {
        Self { store, guard: None }
    }

    /// Keeps `guard` (a temporary directory, a namespace cleaner, a container handle) alive until
    /// the fixture is dropped. A second call replaces the first guard, dropping it.
    pub fn with_guard(mut self, guard: impl Any + Send) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }

    /// Returns the store under test.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Splits the fixture into its store and its guard.
    pub fn into_parts(self) -> (S, Option<Box<dyn Any + Send>>) {
        (self.store, self.guard)
    }
}

impl<S: fmt::Debug> fmt::Debug for Fixture<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("store", &self.store)
            .field("has_guard", &self.guard.is_some())
            .finish()
    }
}

/// Runs one case against a store made by `factory`, within [`FACTORY_TIMEOUT`] and
/// [`CASE_TIMEOUT`].
///
/// [`conformance_suite!`](crate::conformance_suite) calls this for every case. Call it directly to
/// run one case by hand.
///
/// # Panics
///
/// Panics when the factory or the case does not finish in time, and passes on the case's own
/// panic.
pub async fn run_case<S, F, FFut, C, CFut>(name: &str, factory: F, case: C)
where
    F: FnOnce() -> FFut,
    FFut: Future<Output = Fixture<S>>,
    C: FnOnce(Fixture<S>) -> CFut,
    CFut: Future<Output = ()>,
{
    let Ok(fixture) = tokio::time::timeout(FACTORY_TIMEOUT, factory()).await else {
        panic!("{name}: the store factory did not return within {FACTORY_TIMEOUT:?}");
    };
    if tokio::time::timeout(CASE_TIMEOUT, case(fixture))
        .await
        .is_err()
    {
        panic!("{name}: the case did not finish within {CASE_TIMEOUT:?}");
    }
}

/// Expands to one test per conformance case, each run against a fresh store from `factory`.
///
/// `factory` is a path to an `async fn() -> Fixture<S>` where `S: EventStore + Snapshotter +
/// Clone`. Each generated test is a `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]`
/// named after its case, so `cargo test read_all` runs the store-wide read cases only. The calling
/// crate needs `aether-testkit` under its own name (`aether_testkit`), because the expanded tokio
/// attribute names its runtime through it.
///
/// ```
/// async fn memory_store() -> aether_testkit::Fixture<aether_core::MemoryStore> {
///     aether_testkit::Fixture::new(aether_core::MemoryStore::new())
/// }
///
/// aether_testkit::conformance_suite!(memory_store);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path $(,)?) => {
        $crate::__conformance_cases! {
            $factory;
            // appends and conflicts
            concurrent_first_appends_have_one_winner,
            append_expecting_version_on_new_actor_conflicts,
            stale_expectation_conflicts_and_stores_nothing,
            concurrent_appends_have_one_winner,
            any_expectation_always_appends,
            multi_event_append_is_stored_whole,
            failed_multi_event_append_stores_nothing,
            returned_version_is_next_expectation,
            interleaved_actors_append_independently,
            empty_append_is_rejected,
            // reads of one actor
            read_long_stream_from_any_version,
            read_actor_without_events_is_empty,
            read_ends_at_head,
            read_stops_at_head_seen_at_start,
            // store-wide reads
            read_all_orders_every_event_once,
            read_all_filters_by_kind_and_actor,
            read_all_after_last_position_is_empty,
            read_all_stops_at_head_seen_at_start,
            last_position_follows_appends,
            // subscriptions
            subscribe_delivers_stored_then_live,
            subscribe_resumes_from_checkpoint,
            subscribe_receives_concurrent_appends,
            subscribe_applies_filter,
            // actor ids
            unusual_ids_stay_separate,
            invalid_ids_are_rejected,
            // payloads and limits
            payload_bytes_round_trip,
            metadata_round_trips,
            payload_over_limit_is_rejected,
            payload_at_limit_is_accepted,
            append_over_total_limit_is_rejected,
            // snapshots
            snapshot_never_goes_back,
            snapshot_same_version_replaces,
            snapshot_ahead_of_events_is_rejected,
            missing_snapshot_loads_none,
            snapshot_state_round_trips,
            snapshot_over_limit_is_rejected,
        }
    };
}

/// Expands the case list of [`conformance_suite!`](crate::conformance_suite). Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($factory:path; $($case:ident),* $(,)?) => {
        $(
            #[$crate::__private::tokio::test(
                flavor = "multi_thread",
                worker_threads = 4,
                crate = "aether_testkit::__private::tokio"
            )]
            async fn $case() {
                $crate::conformance::run_case(
                    ::core::stringify!($case),
                    $factory,
                    $crate::conformance::$case,
                )
                .await;
            }
        )*
    };
}
