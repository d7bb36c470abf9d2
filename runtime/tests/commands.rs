//! Idempotency, rejections, untyped messages, policies and the model listing.

mod common;

use std::time::Duration;

use aether::{Actor, AskError, CommandOptions, MemoryStore, Runtime, RuntimeError, UntypedMessage};
use bytes::Bytes;
use common::{Counter, CounterCommand, counter, stored_versions};
use serde::{Deserialize, Serialize};

fn runtime(store: &MemoryStore) -> Runtime<MemoryStore> {
    Runtime::builder(store.clone())
        .register::<Counter>()
        .register::<Tally>()
        .policy::<Counter, Tally, _>("counter-tally", |id, _event| {
            vec![(format!("tally-of-{id}"), TallyCommand::Count)]
        })
        .build()
        .unwrap()
}

/// Counts the events of counters, fed by the `counter-tally` policy.
struct Tally;

#[derive(Serialize, Deserialize)]
enum TallyCommand {
    Count,
}

#[derive(Serialize, Deserialize)]
enum TallyEvent {
    Counted,
}

impl Actor for Tally {
    const KIND: &'static str = "tally";
    type Command = TallyCommand;
    type Event = TallyEvent;
    type State = u64;
    type Reply = ();
    type Error = common::Refused;

    fn handle(_: &u64, _: &TallyCommand) -> Result<(Vec<TallyEvent>, ()), common::Refused> {
        Ok((vec![TallyEvent::Counted], ()))
    }

    fn apply(state: &mut u64, _: &TallyEvent) {
        *state += 1;
    }
}

#[tokio::test]
async fn repeated_command_id_returns_original_reply() {
    let store = MemoryStore::new();
    let first = runtime(&store);
    let options = CommandOptions::with_command_id("cmd-1");
    let reply = first
        .ask_with::<Counter>("i", CounterCommand::AddMany(3), options.clone())
        .await
        .unwrap();
    assert_eq!(reply, 3);
    first
        .ask::<Counter>("i", CounterCommand::Add)
        .await
        .unwrap();

    let again = first
        .ask_with::<Counter>("i", CounterCommand::AddMany(3), options.clone())
        .await
        .unwrap();
    assert_eq!(again, 3, "the original reply, not the current state");
    assert_eq!(stored_versions(&store, &counter("i")).await.len(), 4);

    // After passivation the window is rebuilt from the snapshot or the events.
    first.stop_vm::<Counter>("i").await.unwrap();
    let after_stop = first
        .ask_with::<Counter>("i", CounterCommand::AddMany(3), options.clone())
        .await
        .unwrap();
    assert_eq!(after_stop, 3);
    first.shutdown().await;

    // After a restart without snapshots it is rebuilt from event metadata.
    let second = Runtime::builder(store.clone())
        .snapshot_every(None)
        .snapshot_on_stop(false)
        .register::<Counter>()
        .build()
        .unwrap();
    let after_restart = second
        .ask_with::<Counter>("i", CounterCommand::AddMany(3), options)
        .await
        .unwrap();
    assert_eq!(after_restart, 3);
    assert_eq!(
        stored_versions(&store, &counter("i")).await.len(),
        4,
        "nothing new stored"
    );
    second.shutdown().await;
}

#[tokio::test]
async fn repeated_id_within_one_batch_is_stored_once() {
    let store = MemoryStore::new();
    let runtime = runtime(&store);
    for _ in 0..20 {
        runtime
            .tell_with::<Counter>(
                "b",
                CounterCommand::Add,
                CommandOptions::with_command_id("same"),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        runtime
            .ask::<Counter>("b", CounterCommand::Get)
            .await
            .unwrap(),
        1
    );
    assert_eq!(stored_versions(&store, &counter("b")).await, vec![1]);
    runtime.shutdown().await;
}

#[tokio::test]
async fn long_batch_repeats_share_replies() {
    let store = MemoryStore::new();
    let runtime = runtime(&store);
    // On the test's single thread all 30 commands reach the mailbox before the actor runs, so
    // they form one batch, longer than the batches searched by scanning.
    let asks = (0..30).map(|i| {
        runtime.ask_with::<Counter>(
            "long",
            CounterCommand::Add,
            CommandOptions::with_command_id(format!("id-{}", i % 3)),
        )
    });
    let replies: Vec<u64> = futures::future::join_all(asks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(
            *reply,
            replies[i % 3],
            "ask {i} got another reply than its first id"
        );
    }
    let mut first = replies[..3].to_vec();
    first.sort_unstable();
    assert_eq!(first, vec![1, 2, 3]);
    assert_eq!(
        stored_versions(&store, &counter("long")).await,
        vec![1, 2, 3]
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn rejection_stores_nothing_and_keeps_serving() {
    let store = MemoryStore::new();
    let runtime = runtime(&store);
    runtime
        .ask::<Counter>("r", CounterCommand::Add)
        .await
        .unwrap();
    let err = runtime
        .ask::<Counter>("r", CounterCommand::Fail)
        .await
        .unwrap_err();
    assert_eq!(err.rejection().map(|r| r.0), Some(1));
    assert_eq!(
        runtime
            .ask::<Counter>("r", CounterCommand::Add)
            .await
            .unwrap(),
        2
    );
    assert_eq!(stored_versions(&store, &counter("r")).await, vec![1, 2]);
    runtime.shutdown().await;
}

#[tokio::test]
async fn invalid_ids_are_rejected() {
    let runtime = runtime(&MemoryStore::new());
    let empty = runtime
        .ask::<Counter>("", CounterCommand::Add)
        .await
        .unwrap_err();
    assert!(
        matches!(empty, AskError::Runtime(RuntimeError::InvalidId(_))),
        "{empty}"
    );
    let long = runtime
        .ask::<Counter>("x".repeat(1025), CounterCommand::Add)
        .await
        .unwrap_err();
    assert!(long.to_string().contains("1025"), "{long}");
    runtime.shutdown().await;
}

fn untyped(kind: &str, command: &str, payload: &[u8]) -> UntypedMessage {
    UntypedMessage {
        kind: kind.into(),
        id: "u".into(),
        command: command.into(),
        payload: Bytes::copy_from_slice(payload),
        command_id: None,
    }
}

#[tokio::test]
async fn untyped_messages_are_checked() {
    let runtime = runtime(&MemoryStore::new());

    let reply = runtime
        .send_untyped(untyped("counter", "AddMany", br#"{"AddMany":2}"#))
        .await;
    assert_eq!(reply.unwrap(), Bytes::from_static(b"2"));

    let unknown_kind = runtime
        .send_untyped(untyped("invoice", "Add", b"\"Add\""))
        .await;
    let err = unknown_kind.unwrap_err();
    assert!(
        matches!(err, AskError::Runtime(RuntimeError::UnknownKind { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("\"invoice\""), "{err}");
    assert!(err.to_string().contains("counter, tally"), "{err}");

    let unknown_command = runtime
        .send_untyped(untyped("counter", "Subtract", b"{}"))
        .await;
    let err = unknown_command.unwrap_err();
    assert!(
        matches!(err, AskError::Runtime(RuntimeError::UnknownCommand { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("\"Subtract\""), "{err}");

    let malformed = runtime
        .send_untyped(untyped("counter", "AddMany", b"{\"AddMany\":"))
        .await;
    let err = malformed.unwrap_err();
    assert!(
        matches!(
            err,
            AskError::Runtime(RuntimeError::UndecodablePayload { .. })
        ),
        "{err}"
    );

    let mismatched = runtime
        .send_untyped(untyped("counter", "AddMany", b"\"Add\""))
        .await;
    let err = mismatched.unwrap_err();
    assert!(
        matches!(
            err,
            AskError::Runtime(RuntimeError::UndecodablePayload { .. })
        ),
        "{err}"
    );

    let rejected = runtime
        .send_untyped(untyped("counter", "Fail", b"\"Fail\""))
        .await;
    match rejected.unwrap_err() {
        AskError::Rejected(rejection) => {
            assert_eq!(rejection.message, "counter refused the command at 2");
            assert_eq!(rejection.payload, Bytes::from_static(b"2"));
        }
        other => panic!("expected a rejection, got {other}"),
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn policy_delivers_each_event_once() {
    let store = MemoryStore::new();
    let first = runtime(&store);
    for _ in 0..10 {
        first
            .ask::<Counter>("p", CounterCommand::Add)
            .await
            .unwrap();
    }
    first
        .ask::<Counter>("p", CounterCommand::AddMany(5))
        .await
        .unwrap();
    first
        .wait_for_policies(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(first.state::<Tally>("tally-of-p").await.unwrap().0, 15);
    first.shutdown().await;

    // Forget the checkpoint: every event is delivered again, and the derived command ids make
    // the repeats harmless.
    let checkpoint = aether::ActorRef::parse(aether::CHECKPOINT_KIND, "counter-tally").unwrap();
    let reset = aether::core::Snapshot::new(aether::Version::ZERO, 0u64.to_be_bytes().to_vec());
    aether::Snapshotter::save_snapshot(&store, &checkpoint, reset)
        .await
        .unwrap();

    let second = runtime(&store);
    second
        .ask::<Counter>("p", CounterCommand::Add)
        .await
        .unwrap();
    second
        .wait_for_policies(Duration::from_secs(10))
        .await
        .unwrap();
    let (tally, version) = second.state::<Tally>("tally-of-p").await.unwrap();
    assert_eq!(tally, 16);
    assert_eq!(version.get(), 16);
    second.shutdown().await;
}

#[tokio::test]
async fn model_lists_kinds_and_policies() {
    let runtime = runtime(&MemoryStore::new());
    let model = runtime.model();
    let kinds: Vec<_> = model.kinds.iter().map(|k| k.kind).collect();
    assert_eq!(kinds, ["counter", "tally"]);
    assert_eq!(model.kinds[0].commands, ["Add", "AddMany", "Get", "Fail"]);
    assert_eq!(model.kinds[0].events, ["Added"]);
    assert_eq!(model.policies[0].name, "counter-tally");
    assert!(
        model
            .to_string()
            .contains("policy counter-tally: counter events -> tally commands")
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn builder_rejects_bad_registrations() {
    let duplicate = Runtime::builder(MemoryStore::new())
        .register::<Counter>()
        .register::<Counter>()
        .build();
    assert!(
        duplicate
            .err()
            .unwrap()
            .to_string()
            .contains("registered twice")
    );

    let missing = Runtime::builder(MemoryStore::new())
        .register::<Counter>()
        .policy::<Counter, Tally, _>("p", |_, _| Vec::new())
        .build();
    assert!(missing.err().unwrap().to_string().contains("\"tally\""));

    let zero = Runtime::builder(MemoryStore::new()).max_batch(0).build();
    assert!(zero.err().unwrap().to_string().contains("max_batch"));
}
