//! Closing and reopening a store folder: state continues, and unusable folders are rejected.

use aether_core::{
    ActorRef, ErrorKind, EventFilter, EventStore, ExpectedVersion, NewEvent, Position,
    RecordedEvent, Snapshot, Snapshotter, Version,
};
use aether_sled::{SledError, SledOptions, SledStore};
use futures::{StreamExt, TryStreamExt};

fn actor(id: &str) -> ActorRef {
    ActorRef::parse("reopen", id).unwrap()
}

fn events(prefix: &str, count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|i| NewEvent::new("Added", format!("{prefix}-{i}")))
        .collect()
}

async fn read_all(store: &SledStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, EventFilter::all())
        .try_collect()
        .await
        .unwrap()
}

/// The key of an event as the crate documents it: `a`, kind length (u8), kind, id length
/// (u16 BE), id, `e`, version (u64 BE).
fn event_key(actor: &ActorRef, version: u64) -> Vec<u8> {
    let kind = actor.kind.as_str().as_bytes();
    let id = actor.id.as_str().as_bytes();
    let mut key = vec![b'a', kind.len() as u8];
    key.extend_from_slice(kind);
    key.extend_from_slice(&(id.len() as u16).to_be_bytes());
    key.extend_from_slice(id);
    key.push(b'e');
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Opens the folder with sled directly, waiting up to 5 s for the store's lock to be released.
fn raw_open(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(err) if std::time::Instant::now() > deadline => {
                panic!("cannot open {path:?}: {err}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_continues_versions_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (actor("a"), actor("a b"));

    // First session: two actors whose ids share a prefix, and a snapshot.
    let store = SledStore::open(dir.path()).unwrap();
    store
        .append(&a, ExpectedVersion::NoEvents, events("a", 3))
        .await
        .unwrap();
    store
        .append(&b, ExpectedVersion::NoEvents, events("b", 2))
        .await
        .unwrap();
    assert!(
        store
            .save_snapshot(&a, Snapshot::new(Version::new(2), "state-2"))
            .await
            .unwrap()
    );
    let before = read_all(&store).await;
    let last_position = store.last_position().await.unwrap();
    drop(store);

    // Second session: everything is back and appends continue after it.
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.last_position().await.unwrap(), last_position);
    assert_eq!(store.head(&a).await.unwrap(), Version::new(3));
    assert_eq!(store.head(&b).await.unwrap(), Version::new(2));
    assert_eq!(read_all(&store).await, before);
    let a_events: Vec<_> = store.read(&a, Version::new(1)).try_collect().await.unwrap();
    let payloads: Vec<_> = a_events.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(payloads, ["a-0", "a-1", "a-2"]);
    let snapshot = store.load_snapshot(&a).await.unwrap().unwrap();
    assert_eq!(snapshot.version, Version::new(2));
    assert_eq!(snapshot.state, "state-2");

    let outcome = store
        .append(&a, ExpectedVersion::Exact(Version::new(3)), events("a2", 2))
        .await
        .unwrap();
    assert_eq!(outcome.first_version, Version::new(4));
    assert_eq!(outcome.version, Version::new(5));
    assert!(
        outcome.position > last_position,
        "{outcome:?} after {last_position}"
    );
    let stale = store
        .append(&b, ExpectedVersion::Exact(Version::new(1)), events("b2", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(stale, aether_core::StoreError::Conflict { actual, .. } if actual == Version::new(2)),
        "{stale}"
    );
    drop(store);

    // Third session: the second session's append is there, positions strictly increase.
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.head(&a).await.unwrap(), Version::new(5));
    let all = read_all(&store).await;
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(all.last().unwrap().position, outcome.position);
}

#[tokio::test]
async fn second_open_of_same_folder_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SledStore::open(dir.path()).unwrap();
    let timeout = std::time::Duration::from_millis(200);
    let started = std::time::Instant::now();
    let second = SledOptions::new(dir.path())
        .lock_timeout(timeout)
        .open()
        .unwrap_err();
    assert!(started.elapsed() >= timeout);
    let SledError::Locked { path, waited, .. } = &second else {
        panic!("expected SledError::Locked, got {second:?}");
    };
    assert_eq!(path, dir.path());
    assert_eq!(*waited, timeout);
    let message = second.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("in use by another process"), "{message}");
}

#[test]
fn unusable_folder_is_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let under_file = file.join("store");
    let started = std::time::Instant::now();
    let err = SledStore::open(&under_file).unwrap_err();
    // Only a held lock is waited for, so this fails at once rather than after the timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let SledError::Open { path, .. } = &err else {
        panic!("expected SledError::Open, got {err:?}");
    };
    assert_eq!(path, &under_file);
}

#[test]
fn foreign_database_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert("someone else's key", "value").unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, SledError::ForeignDatabase { .. }), "{err}");
}

#[test]
fn unknown_layout_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    drop(SledStore::open(dir.path()).unwrap());
    {
        let db = raw_open(dir.path());
        db.insert("mformat", &[99]).unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            SledError::UnsupportedLayout {
                found: 99,
                supported: 1
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn corrupt_event_record_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = actor("x y");
    let store = SledStore::open(dir.path()).unwrap();
    store
        .append(&a, ExpectedVersion::NoEvents, events("x", 3))
        .await
        .unwrap();
    drop(store);

    // Overwrite version 2 with bytes that are no event record.
    {
        let db = raw_open(dir.path());
        let key = event_key(&a, 2);
        assert!(
            db.get(&key).unwrap().is_some(),
            "the documented key layout is wrong"
        );
        db.insert(key, &[1, 0, 0]).unwrap();
        db.flush().unwrap();
    }

    let store = SledStore::open(dir.path()).unwrap();
    let read: Result<Vec<_>, _> = store.read(&a, Version::new(1)).try_collect().await;
    let err = read.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(
        err.to_string().contains(r#"reopen/"x y" version 2"#),
        "{err}"
    );

    let all: Result<Vec<_>, _> = store
        .read_all(Position::START, EventFilter::all())
        .try_collect()
        .await;
    assert_eq!(all.unwrap_err().kind(), ErrorKind::Corrupt);
}

#[tokio::test]
async fn missing_event_is_reported_as_gap() {
    let dir = tempfile::tempdir().unwrap();
    let a = actor("gap");
    let store = SledStore::open(dir.path()).unwrap();
    store
        .append(&a, ExpectedVersion::NoEvents, events("g", 3))
        .await
        .unwrap();
    drop(store);
    {
        let db = raw_open(dir.path());
        db.remove(event_key(&a, 2)).unwrap();
        db.flush().unwrap();
    }

    let store = SledStore::open(dir.path()).unwrap();
    let err = store
        .read(&a, Version::new(1))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[tokio::test]
async fn temporary_store_round_trips() {
    let store = SledStore::temporary().unwrap();
    let a = actor("temporary");
    store
        .append(&a, ExpectedVersion::NoEvents, events("t", 2))
        .await
        .unwrap();
    let read: Vec<_> = store.read(&a, Version::new(2)).try_collect().await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].payload, "t-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_read_releases_folder() {
    let dir = tempfile::tempdir().unwrap();
    let a = actor("long");
    let store = SledStore::open(dir.path()).unwrap();
    for chunk in 0..4u64 {
        store
            .append(
                &a,
                ExpectedVersion::from(Version::new(chunk * 500)),
                events("l", 500),
            )
            .await
            .unwrap();
    }

    // Take a few events of a long read, then drop the stream and the store.
    let first: Vec<_> = store
        .read(&a, Version::new(1))
        .take(10)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(first.len(), 10);
    drop(store);

    // The background reader stops, so the folder opens again.
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.head(&a).await.unwrap(), Version::new(2000));
}
