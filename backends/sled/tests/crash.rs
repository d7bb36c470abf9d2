//! Kills a writing process with SIGKILL at random points and checks that every acknowledged
//! append survives the crash.
//!
//! The parent test re-runs this test binary with only [`crash_writer_child`] selected and
//! [`CHILD_DIR`] set. That child opens a store and appends from several tasks to several actors,
//! printing one `ACK` line per acknowledged append. The parent reads those lines, kills the child
//! after a random number of them or after a random time, reopens the folder and checks every
//! acknowledged version.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aether_core::{
    ActorRef, EventFilter, EventStore, ExpectedVersion, NewEvent, Position, StoreError, Version,
};
use aether_sled::SledStore;
use futures::TryStreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Environment variable that turns [`crash_writer_child`] into a writer for this folder.
const CHILD_DIR: &str = "AETHER_SLED_CRASH_DIR";
/// Name of the child test, as passed to `--exact`.
const CHILD_TEST: &str = "crash_writer_child";

const ACTORS: usize = 12;
const WRITER_TASKS: usize = 6;
/// Appends per writer task before a child that was never killed stops on its own.
const MAX_APPENDS_PER_TASK: usize = 20_000;

const MIN_KILLS: usize = 20;
const MAX_KILLS: usize = 40;
/// More kills are made after [`MIN_KILLS`] only while the test has run for less than this.
const TIME_BUDGET: Duration = Duration::from_secs(45);
/// A round whose kill condition is not met in this time fails.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// Rounds that reuse one folder before the next starts empty.
const ROUNDS_PER_FOLDER: usize = 5;

fn actor(index: usize) -> ActorRef {
    // Ids that are prefixes of each other, with a space, so key ranges must stay apart.
    ActorRef::parse(
        "crash",
        format!("actor {}", "x".repeat(index % 4 + 1) + &index.to_string()),
    )
    .unwrap()
}

/// Builds the payload of `actor`'s event at `version`: a header the check can parse, then
/// padding.
fn payload(actor: usize, version: u64) -> Vec<u8> {
    let mut bytes = format!("{actor}:{version}:").into_bytes();
    bytes.resize(bytes.len() + (version as usize * 37) % 400, b'.');
    bytes
}

/// One acknowledged append as the child printed it.
#[derive(Debug, Clone, Copy)]
struct Ack {
    actor: usize,
    first: u64,
    last: u64,
    position: u64,
}

impl Ack {
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.strip_prefix("ACK ")?.split(' ');
        let ack = Ack {
            actor: fields.next()?.parse().ok()?,
            first: fields.next()?.parse().ok()?,
            last: fields.next()?.parse().ok()?,
            position: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(ack)
    }
}

/// The writer side. Without [`CHILD_DIR`] it returns at once, so a plain `cargo test` passes it.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(write_until_killed(PathBuf::from(dir)));
}

async fn write_until_killed(dir: PathBuf) {
    let store = SledStore::open(&dir).expect("child: open the store");
    let tasks: Vec<_> = (0..WRITER_TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(task as u64 ^ now_nanos());
                let mut known: HashMap<usize, Version> = HashMap::new();
                for _ in 0..MAX_APPENDS_PER_TASK {
                    let index = rng.random_range(0..ACTORS);
                    let target = actor(index);
                    let expected = match known.get(&index) {
                        Some(version) => *version,
                        None => store.head(&target).await.expect("child: read a head"),
                    };
                    let count = rng.random_range(1..=3u64);
                    let events = (1..=count)
                        .map(|n| NewEvent::new("Written", payload(index, expected.get() + n)))
                        .collect();

                    match store
                        .append(&target, ExpectedVersion::from(expected), events)
                        .await
                    {
                        Ok(outcome) => {
                            known.insert(index, outcome.version);
                            // One write per line, flushed before the next append starts.
                            let mut out = std::io::stdout().lock();
                            writeln!(
                                out,
                                "ACK {index} {} {} {}",
                                outcome.first_version, outcome.version, outcome.position
                            )
                            .and_then(|()| out.flush())
                            .expect("child: write an ACK line");
                        }
                        Err(StoreError::Conflict { actual, .. }) => {
                            known.insert(index, actual);
                        }
                        Err(err) => panic!("child: append failed: {err}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("child: writer task");
    }
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum KillPlan {
    /// After this many ACK lines.
    AfterAcks(usize),
    /// This long after the child started, whether or not it has acknowledged anything yet.
    AfterTime(Duration),
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let seed = now_nanos();
    println!("crash test seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let started = Instant::now();
    let mut folder = tempfile::tempdir().unwrap();
    let mut acks: Vec<Ack> = Vec::new();
    let (mut kills, mut kills_before_first_ack) = (0, 0);
    let (mut acknowledged, mut checks) = (0, 0);
    while kills < MIN_KILLS || (kills < MAX_KILLS && started.elapsed() < TIME_BUDGET) {
        if kills > 0 && kills % ROUNDS_PER_FOLDER == 0 {
            folder = tempfile::tempdir().unwrap();
            acks.clear();
        }
        let plan = if rng.random_bool(0.5) {
            KillPlan::AfterAcks(rng.random_range(1..=400))
        } else {
            KillPlan::AfterTime(Duration::from_millis(rng.random_range(0..=300)))
        };

        let round_acks = run_and_kill(&exe, folder.path(), plan);
        if round_acks.is_empty() {
            kills_before_first_ack += 1;
        }
        acknowledged += round_acks
            .iter()
            .map(|ack| ack.last - ack.first + 1)
            .sum::<u64>();
        acks.extend(round_acks);
        kills += 1;

        // Every round checks all versions acknowledged in this folder so far, older rounds too.
        checks += runtime.block_on(check_folder(folder.path(), &acks, kills, plan));
    }

    println!(
        "{kills} kills ({kills_before_first_ack} before the first ACK of their round), \
         {acknowledged} acknowledged versions, {checks} version checks after reopening, \
         seed {seed}, {:?}",
        started.elapsed()
    );
}

/// Runs one child on `folder`, kills it as `plan` requests and returns every ACK it printed.
fn run_and_kill(exe: &Path, folder: &Path, plan: KillPlan) -> Vec<Ack> {
    let spawned = Instant::now();
    let mut child = Command::new(exe)
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, folder)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child writer");

    // Lines arrive through a thread, so the wait for them has a deadline.
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // Collect ACKs until the plan calls for the kill.
    let mut acks = Vec::new();
    loop {
        let wait = match plan {
            KillPlan::AfterAcks(count) if acks.len() >= count => break,
            KillPlan::AfterTime(after) => match after.checked_sub(spawned.elapsed()) {
                Some(left) => left,
                None => break,
            },
            KillPlan::AfterAcks(_) => Duration::from_millis(100),
        };
        match lines.recv_timeout(wait) {
            Ok(line) => acks.extend(Ack::parse(&line)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                let stderr = stderr_reader.join().unwrap();
                panic!("the child exited before the kill ({status}); its stderr:\n{stderr}");
            }
        }
        assert!(
            spawned.elapsed() < ROUND_TIMEOUT,
            "plan {plan:?} not reached within {ROUND_TIMEOUT:?}; {} ACKs so far",
            acks.len()
        );
    }

    child.kill().expect("kill the child");
    child.wait().unwrap();

    // Lines already in the pipe were printed after their appends were acknowledged, so they count.
    reader.join().unwrap();
    acks.extend(lines.try_iter().filter_map(|line| Ack::parse(&line)));
    drop(stderr_reader.join());
    acks
}

/// Reopens `folder` and checks every acknowledged version, gapless versions and strictly
/// increasing positions. Returns the number of acknowledged versions checked.
async fn check_folder(folder: &Path, acks: &[Ack], kill: usize, plan: KillPlan) -> usize {
    let context = format!("after kill {kill} ({plan:?})");
    let store = SledStore::open(folder).unwrap_or_else(|err| panic!("{context}: reopen: {err}"));

    // Per actor: gapless versions, the expected payloads, and a matching head.
    let mut positions: HashMap<(usize, u64), Position> = HashMap::new();
    let mut stored = 0;
    for index in 0..ACTORS {
        let target = actor(index);
        let events: Vec<_> = store
            .read(&target, Version::new(1))
            .try_collect()
            .await
            .unwrap_or_else(|err| panic!("{context}: read {target}: {err}"));
        for (offset, event) in events.iter().enumerate() {
            let version = offset as u64 + 1;
            assert_eq!(event.version.get(), version, "{context}: gap in {target}");
            assert_eq!(
                event.payload,
                payload(index, version),
                "{context}: payload of {target} version {version}"
            );
            positions.insert((index, version), event.position);
        }
        let head = store.head(&target).await.unwrap();
        assert_eq!(
            head.get(),
            events.len() as u64,
            "{context}: head of {target}"
        );
        stored += events.len();
    }

    // Every acknowledged version is there, at the position its append returned.
    let mut checked = 0;
    for ack in acks {
        for version in ack.first..=ack.last {
            assert!(
                positions.contains_key(&(ack.actor, version)),
                "{context}: acknowledged {} version {version} is missing",
                actor(ack.actor)
            );
            checked += 1;
        }
        assert_eq!(
            positions[&(ack.actor, ack.last)],
            Position::new(ack.position),
            "{context}: position of {} version {}",
            actor(ack.actor),
            ack.last
        );
    }

    // The store-wide read has every event once, in strictly increasing positions.
    let all: Vec<_> = store
        .read_all(Position::START, EventFilter::all())
        .try_collect()
        .await
        .unwrap_or_else(|err| panic!("{context}: read_all: {err}"));
    assert_eq!(all.len(), stored, "{context}: read_all length");
    assert!(
        all.windows(2)
            .all(|pair| pair[0].position < pair[1].position),
        "{context}: read_all positions are not strictly increasing"
    );
    for event in &all {
        let index = (0..ACTORS).find(|i| actor(*i) == event.actor).unwrap();
        assert_eq!(
            positions.get(&(index, event.version.get())),
            Some(&event.position),
            "{context}: read_all and read disagree on {} version {}",
            event.actor,
            event.version
        );
    }
    checked
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
