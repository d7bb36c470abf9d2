//! Reads of one actor that span several pages, by event count and by bytes.

use aether_core::{ActorRef, EventStore, ExpectedVersion, NewEvent, Version};
use aether_sled::SledStore;
use futures::TryStreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_read_in_order() {
    let store = SledStore::temporary().unwrap();
    let actor = ActorRef::parse("large", "a").unwrap();

    // Ten events of 300 KiB pass the 1 MiB page size after four events.
    for version in 0..10u64 {
        let payload = vec![version as u8; 300 * 1024];
        store
            .append(
                &actor,
                ExpectedVersion::from(Version::new(version)),
                vec![NewEvent::new("Big", payload)],
            )
            .await
            .unwrap();
    }

    let events: Vec<_> = store
        .read(&actor, Version::new(3))
        .try_collect()
        .await
        .unwrap();
    let versions: Vec<_> = events.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (3..=10).collect::<Vec<_>>());
    for event in &events {
        assert_eq!(event.payload.len(), 300 * 1024);
        assert!(
            event
                .payload
                .iter()
                .all(|b| u64::from(*b) == event.version.get() - 1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_boundaries_keep_every_event() {
    let store = SledStore::temporary().unwrap();
    let actor = ActorRef::parse("pages", "a").unwrap();

    // 256 events fill exactly one page, and 513 needs three.
    let mut version = 0;
    for count in [256u64, 257] {
        let events = (0..count)
            .map(|i| NewEvent::new("N", (version + i + 1).to_string()))
            .collect();
        version = store
            .append(&actor, ExpectedVersion::from(Version::new(version)), events)
            .await
            .unwrap()
            .version
            .get();
    }

    for from in [1u64, 2, 256, 257, 512, 513, 514] {
        let events: Vec<_> = store
            .read(&actor, Version::new(from))
            .try_collect()
            .await
            .unwrap();
        let expected: Vec<_> = (from..=513).collect();
        let versions: Vec<_> = events.iter().map(|e| e.version.get()).collect();
        assert_eq!(versions, expected, "read from {from}");
        for event in &events {
            assert_eq!(event.payload, event.version.get().to_string());
        }
    }
}
