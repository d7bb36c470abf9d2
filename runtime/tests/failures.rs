//! Store failures injected through mockall mocks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aether::core::{AppendOutcome, ErrorKind, StoreError};
use aether::{AskError, Position, Runtime, RuntimeError, Version};
use aether_testkit::MockStore;
use common::{Counter, CounterCommand};

fn empty_store() -> MockStore {
    let mut store = MockStore::new();
    store.expect_load_snapshot().returning(|_| Ok(None));
    store
        .expect_read()
        .returning(|_, _| Box::pin(futures::stream::empty()));
    store.expect_save_snapshot().returning(|_, _| Ok(true));
    store
}

#[tokio::test]
async fn unavailable_append_keeps_state_and_vm() {
    let mut store = empty_store();
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    store
        .expect_append()
        .returning(move |actor, expected, events| {
            // The second append fails as a lost connection would; the others succeed.
            let call = seen.fetch_add(1, Ordering::SeqCst);
            if call == 1 {
                let lost =
                    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
                return Err(StoreError::unavailable(
                    format!("appending to {actor}"),
                    lost,
                ));
            }
            let start = expected.exact().unwrap_or(Version::ZERO);
            Ok(AppendOutcome {
                first_version: start.next(),
                version: start.advance(events.len() as u64),
                position: Position::new(call + 1),
            })
        });
    let runtime = Runtime::builder(store)
        .follow_store(false)
        .register::<Counter>()
        .build()
        .unwrap();

    assert_eq!(
        runtime
            .ask::<Counter>("f", CounterCommand::Add)
            .await
            .unwrap(),
        1
    );

    let err = runtime
        .ask::<Counter>("f", CounterCommand::Add)
        .await
        .unwrap_err();
    match &err {
        AskError::Runtime(RuntimeError::Store(store_err)) => {
            assert_eq!(store_err.kind(), ErrorKind::Unavailable);
            assert!(store_err.to_string().contains("counter/f"), "{store_err}");
        }
        other => panic!("expected an unavailable store error, got {other}"),
    }

    let (state, version) = runtime.state::<Counter>("f").await.unwrap();
    assert_eq!(state, 1, "the failed command left the state as it was");
    assert_eq!(version.get(), 1);
    assert_eq!(
        runtime
            .ask::<Counter>("f", CounterCommand::Add)
            .await
            .unwrap(),
        2
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn activation_failure_reaches_every_caller() {
    let mut store = MockStore::new();
    store.expect_load_snapshot().returning(|actor| {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        Err(StoreError::unavailable(
            format!("loading snapshot of {actor}"),
            refused,
        ))
    });
    let runtime = Runtime::builder(store)
        .follow_store(false)
        .register::<Counter>()
        .build()
        .unwrap();

    for _ in 0..3 {
        let err = runtime
            .ask::<Counter>("down", CounterCommand::Add)
            .await
            .unwrap_err();
        assert!(
            matches!(err, AskError::Runtime(RuntimeError::Activation { .. })),
            "{err}"
        );
    }
    assert!(
        runtime.active_vms().is_empty(),
        "a failed activation leaves no VM behind"
    );
}

#[tokio::test]
async fn conflict_after_all_retries_is_returned() {
    let mut store = empty_store();
    store.expect_append().returning(|actor, expected, _| {
        Err(StoreError::Conflict {
            actor: actor.clone(),
            expected,
            actual: Version::ZERO,
        })
    });
    let runtime = Runtime::builder(store)
        .follow_store(false)
        .max_conflict_retries(2)
        .register::<Counter>()
        .build()
        .unwrap();
    let err = runtime
        .ask::<Counter>("c", CounterCommand::Add)
        .await
        .unwrap_err();
    assert!(
        err.runtime().is_some_and(RuntimeError::is_conflict),
        "{err}"
    );
    runtime.shutdown().await;
}
