//! Metrics recorded through the `metrics` facade.

mod common;

use std::collections::HashMap;

use aether::{MemoryStore, Runtime, metrics as names};
use common::{Counter, CounterCommand};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn runtime_records_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    metrics::with_local_recorder(&recorder, || {
        tokio.block_on(async {
            let store = MemoryStore::new();
            let runtime = Runtime::builder(store)
                .follow_store(false)
                .register::<Counter>()
                .build()
                .unwrap();
            for _ in 0..3 {
                runtime
                    .ask::<Counter>("m", CounterCommand::Add)
                    .await
                    .unwrap();
            }
            let options = aether::CommandOptions::with_command_id("again");
            for _ in 0..2 {
                runtime
                    .ask_with::<Counter>("m", CounterCommand::Add, options.clone())
                    .await
                    .unwrap();
            }
            runtime.stop_vm::<Counter>("m").await.unwrap();
            runtime.shutdown().await;
        });
    });

    let mut counters: HashMap<(String, Vec<String>), u64> = HashMap::new();
    let mut histograms: HashMap<String, usize> = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        let labels = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        match value {
            DebugValue::Counter(count) => {
                *counters.entry((name, labels)).or_default() += count;
            }
            DebugValue::Histogram(samples) => {
                *histograms.entry(name).or_default() += samples.len();
            }
            DebugValue::Gauge(_) => {}
        }
    }
    let counter = |name: &str, labels: &[&str]| {
        let labels = labels.iter().map(|l| l.to_string()).collect();
        counters
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0)
    };

    assert_eq!(counter(names::ACTIVATIONS, &["kind=counter"]), 1);
    assert_eq!(counter(names::PASSIVATIONS, &["kind=counter"]), 1);
    assert_eq!(
        counter(names::COMMANDS, &["kind=counter", "outcome=processed"]),
        5
    );
    assert_eq!(
        counter(names::COMMANDS, &["kind=counter", "outcome=duplicate"]),
        1
    );
    assert_eq!(counter(names::EVENTS_APPENDED, &["kind=counter"]), 4);
    assert_eq!(
        counter(names::SNAPSHOTS, &["kind=counter"]),
        1,
        "snapshot on stop"
    );
    assert_eq!(histograms.get(names::APPEND_SECONDS), Some(&4));
    assert_eq!(histograms.get(names::ACTIVATION_SECONDS), Some(&1));
    assert_eq!(histograms.get(names::MAILBOX_DEPTH), Some(&5));
}
