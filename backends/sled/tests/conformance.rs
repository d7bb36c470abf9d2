//! The backend conformance suite of `aether-testkit`, run against a sled store in a fresh
//! temporary folder per case.

use aether_sled::SledStore;
use aether_testkit::Fixture;

async fn sled_store() -> Fixture<SledStore> {
    let dir = tempfile::tempdir().expect("temporary folder for the sled store");
    let store = SledStore::open(dir.path()).expect("open a sled store in a fresh folder");
    Fixture::new(store).with_guard(dir)
}

aether_testkit::conformance_suite!(sled_store);
