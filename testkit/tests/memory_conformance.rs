//! Runs the conformance suite against the in-memory store of `aether-core`, once with its
//! default page size and once with pages of 7 events, so every read spans many pages.

use aether_core::MemoryStore;
use aether_testkit::Fixture;

async fn memory_store() -> Fixture<MemoryStore> {
    Fixture::new(MemoryStore::new())
}

aether_testkit::conformance_suite!(memory_store);

mod small_pages {
    use super::*;

    async fn memory_store_with_small_pages() -> Fixture<MemoryStore> {
        Fixture::new(MemoryStore::new().with_page_size(7))
    }

    aether_testkit::conformance_suite!(memory_store_with_small_pages);
}
