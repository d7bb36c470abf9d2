//! Runtime throughput on the memory store, beside a raw Tokio ask round trip in the same run.
//!
//! Run with `cargo bench -p aether --bench runtime` (add `-- --quick` for a short run). Prints a
//! markdown table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use aether::{Actor, MemoryStore, Runtime};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// The system allocator, counting the bytes currently allocated.
struct CountingAllocator;

static ALLOCATED: AtomicI64 = AtomicI64::new(0);

/// Number of allocations made so far.
static ALLOCATIONS: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

struct Counter;

#[derive(Serialize, Deserialize)]
enum Command {
    Add,
    Get,
}

#[derive(Serialize, Deserialize)]
enum Event {
    Added,
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[error("never")]
struct Never;

impl Actor for Counter {
    const KIND: &'static str = "counter";
    type Command = Command;
    type Event = Event;
    type State = u64;
    type Reply = u64;
    type Error = Never;

    fn handle(state: &u64, command: &Command) -> Result<(Vec<Event>, u64), Never> {
        match command {
            Command::Add => Ok((vec![Event::Added], state + 1)),
            Command::Get => Ok((Vec::new(), *state)),
        }
    }

    fn apply(state: &mut u64, _: &Event) {
        *state += 1;
    }
}

struct Row {
    name: String,
    ops: u64,
    elapsed: Duration,
    /// Allocations made while the case ran.
    allocations: i64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn allocations_per_op(&self) -> f64 {
        self.allocations as f64 / self.ops as f64
    }
}

fn allocations() -> i64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Raw round trip: send a request to a spawned task over mpsc, reply on a oneshot.
async fn raw_round_trips(total: u64, concurrency: usize) -> Row {
    let (tx, mut rx) = mpsc::channel::<oneshot::Sender<u64>>(1024);
    tokio::spawn(async move {
        let mut n = 0;
        while let Some(reply) = rx.recv().await {
            n += 1;
            let _ = reply.send(n);
        }
    });
    let allocated_before = allocations();
    let started = Instant::now();
    futures::stream::iter(0..total)
        .map(|_| {
            let tx = tx.clone();
            async move {
                let (reply, answer) = oneshot::channel();
                tx.send(reply).await.unwrap();
                answer.await.unwrap()
            }
        })
        .buffer_unordered(concurrency)
        .for_each(|_| async {})
        .await;
    Row {
        name: format!("raw tokio mpsc+oneshot, {concurrency} in flight"),
        ops: total,
        elapsed: started.elapsed(),
        allocations: allocations() - allocated_before,
    }
}

fn runtime(store: MemoryStore) -> Runtime<MemoryStore> {
    runtime_following(store, true)
}

/// Builds a runtime with snapshots off and `follow_store` as given.
fn runtime_following(store: MemoryStore, follow: bool) -> Runtime<MemoryStore> {
    Runtime::builder(store)
        .follow_store(follow)
        .snapshot_every(None)
        .snapshot_on_stop(false)
        .max_active(1_000_000)
        .register::<Counter>()
        .build()
        .unwrap()
}

async fn ask_rate(actors: u64, total: u64, concurrency: usize, follow: bool) -> Row {
    let runtime = runtime_following(MemoryStore::new(), follow);
    let allocated_before = allocations();
    let started = Instant::now();
    futures::stream::iter(0..total)
        .map(|i| {
            let runtime = runtime.clone();
            async move {
                runtime
                    .ask::<Counter>(format!("a{}", i % actors), Command::Add)
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(concurrency)
        .for_each(|_| async {})
        .await;
    let row = Row {
        name: format!(
            "ask, {actors} actors, {concurrency} in flight{}",
            if follow { "" } else { ", follow_store off" }
        ),
        ops: total,
        elapsed: started.elapsed(),
        allocations: allocations() - allocated_before,
    };
    runtime.shutdown().await;
    row
}

async fn tell_rate(actors: u64, total: u64) -> Row {
    let runtime = runtime(MemoryStore::new());
    let allocated_before = allocations();
    let started = Instant::now();
    for i in 0..total {
        runtime
            .tell::<Counter>(format!("a{}", i % actors), Command::Add)
            .await
            .unwrap();
    }
    // A final ask to every actor waits until its mailbox is drained.
    for a in 0..actors {
        runtime
            .ask::<Counter>(format!("a{a}"), Command::Get)
            .await
            .unwrap();
    }
    let row = Row {
        name: format!("tell, {actors} actors"),
        ops: total,
        elapsed: started.elapsed(),
        allocations: allocations() - allocated_before,
    };
    runtime.shutdown().await;
    row
}

async fn activation(events: u64, snapshot: bool) -> Row {
    let store = MemoryStore::new();
    let writer = Runtime::builder(store.clone())
        .snapshot_every(None)
        .snapshot_on_stop(snapshot)
        .register::<Counter>()
        .build()
        .unwrap();
    let batches = events / 1000;
    for _ in 0..batches {
        futures::stream::iter(0..1000)
            .map(|_| writer.tell::<Counter>("big", Command::Add))
            .buffered(64)
            .for_each(|r| async move { r.unwrap() })
            .await;
    }
    writer.ask::<Counter>("big", Command::Get).await.unwrap();
    writer.shutdown().await;

    let reader = runtime(store);
    let started = Instant::now();
    let (state, _) = reader.state::<Counter>("big").await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(state, batches * 1000);
    reader.shutdown().await;
    Row {
        name: format!(
            "activation of {events} events, {}",
            if snapshot {
                "from a snapshot"
            } else {
                "full replay"
            }
        ),
        ops: 1,
        elapsed,
        allocations: 0,
    }
}

fn allocated_bytes() -> i64 {
    ALLOCATED.load(Ordering::Relaxed)
}

async fn memory_per_actor(actors: u64) -> f64 {
    let runtime = runtime(MemoryStore::new());
    // Warm up allocator arenas so the measurement counts the actors, not the first allocations.
    runtime.ask::<Counter>("warm", Command::Add).await.unwrap();
    let before = allocated_bytes();
    for i in 0..actors {
        runtime
            .ask::<Counter>(format!("idle{i}"), Command::Get)
            .await
            .unwrap();
    }
    let after = allocated_bytes();
    runtime.shutdown().await;
    (after - before) as f64 / actors as f64
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // The cases run inside a spawned task, on a worker thread as application code does, rather
    // than on the thread that blocks on the runtime, which would need a wake-up per reply.
    let cases = rt.spawn(async move {
        let total = 400_000 / scale;
        let raw = raw_round_trips(total, 256).await;
        let rows = vec![
            ask_rate(1, total / 4, 256, true).await,
            ask_rate(10_000, total, 256, true).await,
            ask_rate(10_000, total, 256, false).await,
            tell_rate(1, total).await,
            tell_rate(10_000, total).await,
        ];

        println!("| case | operations | elapsed | per second | vs raw | allocations per op |");
        println!("|---|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {} | {:.2?} | {:.0} | 1.00 | {:.1} |",
            raw.name,
            raw.ops,
            raw.elapsed,
            raw.rate(),
            raw.allocations_per_op()
        );
        for row in &rows {
            println!(
                "| {} | {} | {:.2?} | {:.0} | {:.2} | {:.1} |",
                row.name,
                row.ops,
                row.elapsed,
                row.rate(),
                row.rate() / raw.rate(),
                row.allocations_per_op()
            );
        }

        let events = 100_000 / scale;
        println!();
        println!("| activation | elapsed |");
        println!("|---|---:|");
        for snapshot in [false, true] {
            let row = activation(events, snapshot).await;
            println!("| {} | {:.2?} |", row.name, row.elapsed);
        }

        let actors = 10_000 / scale;
        let per_actor = memory_per_actor(actors).await;
        println!();
        println!("heap per idle active actor ({actors} actors, bytes allocated and not freed): {per_actor:.0} bytes");
    });
    rt.block_on(cases).unwrap();
}
