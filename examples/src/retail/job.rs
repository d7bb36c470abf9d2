//! The retail job: every CSV line becomes an `AddLine` command to its invoice, and the policies
//! carry the accepted lines on to customers and products.
//!
//! Each line is sent with the command id `line-<n>`, so running the job again on the same store
//! stores nothing new: every invoice replies to a repeated id with its first reply.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aether::{AskError, CommandOptions, EventStore, Runtime, Snapshotter};
use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::groups::{Group, Item, read_groups};
use super::invoice::{Invoice, InvoiceCommand, RejectReason};
use super::line::MalformedLine;
use super::policies;
use super::progress::Progress;
use super::report::keep_lowest;
use super::run::JobError;
use super::source::count_data_lines_in_file;
use super::store::{CountingStore, KindWrites};

/// Command ids stay remembered for this long, so a run years later still stores nothing twice.
const IDEMPOTENCY_MAX_AGE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long the job waits for the policies to deliver the last events.
const POLICY_TIMEOUT: Duration = Duration::from_secs(600);

/// Groups of lines the reader thread may read ahead of the senders.
const READ_AHEAD_GROUPS: usize = 1024;

/// The settings of the ingest.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// The Online Retail CSV, gzip-compressed or plain.
    pub input: PathBuf,
    /// Only the first this many data lines, or all.
    pub limit: Option<u64>,
    /// Groups of lines sent at once. A group is one invoice's consecutive lines.
    pub concurrency: usize,
    /// The target of the progress bars.
    pub progress: Progress,
}

/// The counts and timings of one ingest.
#[derive(Clone, Debug, Default)]
pub struct IngestReport {
    /// Data lines read, malformed ones included.
    pub lines_read: u64,
    /// `AddLine` commands sent, one per well-formed line.
    pub commands: u64,
    /// Commands the invoices accepted, repeated ones included.
    pub accepted: u64,
    /// Rejected lines by reason.
    pub rejected: BTreeMap<RejectReason, u64>,
    /// The rejected lines with the lowest numbers, with their reason.
    pub rejected_examples: Vec<(u64, RejectReason)>,
    /// Malformed lines.
    pub malformed: u64,
    /// The malformed lines with the lowest numbers.
    pub malformed_examples: Vec<MalformedLine>,
    /// Commands that failed in the runtime or the store, by line.
    pub failed: u64,
    /// The failed commands with the lowest line numbers, with the error.
    pub failed_examples: Vec<(u64, String)>,
    /// Actors active when the policies caught up, by kind: those that received a command.
    pub active_actors: BTreeMap<String, u64>,
    /// Events and snapshots written, by kind, policy checkpoints excluded.
    pub writes: BTreeMap<String, KindWrites>,
    /// Time to read the file and get a reply to every command.
    pub send_time: Duration,
    /// Time from the last reply until the policies had delivered every event.
    pub policy_time: Duration,
    /// Time to stop the runtime, including the snapshots taken on stop.
    pub shutdown_time: Duration,
}

impl IngestReport {
    /// Events appended by this run, all kinds together.
    pub fn events(&self) -> u64 {
        self.writes.values().map(|kind| kind.events).sum()
    }

    /// Snapshots stored by this run, all kinds together.
    pub fn snapshots(&self) -> u64 {
        self.writes.values().map(|kind| kind.snapshots).sum()
    }

    /// Time from the first command until the policies caught up.
    pub fn ingest_time(&self) -> Duration {
        self.send_time + self.policy_time
    }

    /// Commands per second over [`IngestReport::ingest_time`].
    pub fn commands_per_second(&self) -> f64 {
        per_second(self.commands, self.ingest_time())
    }

    /// Events per second over [`IngestReport::ingest_time`].
    pub fn events_per_second(&self) -> f64 {
        per_second(self.events(), self.ingest_time())
    }

    /// Rejected lines, all reasons together.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Runs the ingest on `store`: builds the runtime, sends every line, waits for the policies and
/// shuts the runtime down, which snapshots every active actor.
///
/// # Errors
///
/// A [`JobError`] when the runtime cannot be built, the file cannot be read or the policies do
/// not catch up in time. Rejected, malformed and failed lines are counted, not errors.
pub async fn ingest<S: EventStore + Snapshotter>(
    store: CountingStore<S>,
    options: &IngestOptions,
) -> Result<IngestReport, JobError> {
    // Size a shown progress bar by counting newlines first, which takes a fraction of the ingest.
    // Nothing has been sent yet, so a file that fails here is an input error.
    let bar = if options.progress.is_shown() {
        let input = options.input.clone();
        let total = tokio::task::spawn_blocking(move || count_data_lines_in_file(input))
            .await?
            .map_err(JobError::Input)?;
        let total = options.limit.map_or(total, |limit| limit.min(total));
        options.progress.bar(total, "lines")
    } else {
        ProgressBar::hidden()
    };

    let counts = store.counts();
    let runtime = policies::register(Runtime::builder(store))
        .idempotency_max_age(IDEMPOTENCY_MAX_AGE)
        .build()?;
    info!(input = %options.input.display(), limit = ?options.limit, "ingest started");

    // Read on a blocking thread and send the groups as they arrive. When sending stops early,
    // the dropped receiver stops the reader too.
    let started = Instant::now();
    let (sender, receiver) = mpsc::channel(READ_AHEAD_GROUPS);
    let input = options.input.clone();
    let limit = options.limit;
    let reader = tokio::task::spawn_blocking(move || read_groups(&input, limit, &sender));
    let sent = send_all(&runtime, receiver, options, &bar).await;
    let read = reader.await;
    let send_time = started.elapsed();
    bar.finish_and_clear();

    let mut outcome = match (sent, read) {
        (Ok(mut report), Ok(Ok(lines_read))) => {
            report.lines_read = lines_read;
            report.send_time = send_time;
            Ok(report)
        }
        (Err(error), _) => Err(error),
        (Ok(_), Err(panicked)) => Err(JobError::Task(panicked)),
        (Ok(_), Ok(Err(unreadable))) => Err(JobError::Read(unreadable)),
    };
    if let Ok(report) = &mut outcome {
        let waited = Instant::now();
        let spinner = options
            .progress
            .spinner("waiting for the policies to update customers and products");
        let caught_up = runtime.wait_for_policies(POLICY_TIMEOUT).await;
        spinner.finish_and_clear();
        report.policy_time = waited.elapsed();
        if let Err(error) = caught_up {
            outcome = Err(JobError::Policies(error));
        }
    }

    // Stop cleanly whatever happened, so that what was stored gets its snapshots.
    let mut active_actors = BTreeMap::new();
    for actor in runtime.active_vms() {
        *active_actors
            .entry(actor.kind.as_str().to_owned())
            .or_default() += 1;
    }
    let stopping = Instant::now();
    let spinner = options
        .progress
        .spinner("stopping the runtime and writing final snapshots");
    runtime.shutdown().await;
    spinner.finish_and_clear();
    let mut report = outcome?;
    report.shutdown_time = stopping.elapsed();
    report.active_actors = active_actors;
    report.writes = counts.by_kind();
    info!(
        commands = report.commands,
        events = report.events(),
        "ingest finished"
    );
    Ok(report)
}

/// Sends every group from its own task, at most `options.concurrency` at once, and tallies the
/// replies.
async fn send_all<S: EventStore + Snapshotter>(
    runtime: &Runtime<S>,
    mut items: mpsc::Receiver<Item>,
    options: &IngestOptions,
    bar: &ProgressBar,
) -> Result<IngestReport, JobError> {
    let mut report = IngestReport::default();
    let mut tasks = JoinSet::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let concurrency = options.concurrency.max(1);

    while let Some(item) = items.recv().await {
        let group = match item {
            Item::Group(group) => group,
            Item::Malformed(malformed) => {
                warn!("{malformed}; going on with the next line");
                report.malformed += 1;
                keep_lowest(&mut report.malformed_examples, malformed, |m| m.line);
                bar.inc(1);
                continue;
            }
        };

        // An invoice whose lines are split over two groups must get the second group only after
        // the first, so a group waits while another of its invoice is in flight.
        while tasks.len() >= concurrency || in_flight.contains(&group.invoice) {
            let Some(done) = tasks.join_next().await else {
                break;
            };
            let done: GroupOutcome = done?;
            in_flight.remove(&done.invoice);
            done.add_to(&mut report);
        }
        in_flight.insert(group.invoice.clone());
        tasks.spawn(send_group(runtime.clone(), group, bar.clone()));
    }

    while let Some(done) = tasks.join_next().await {
        done?.add_to(&mut report);
    }
    Ok(report)
}

/// The replies to one group.
struct GroupOutcome {
    invoice: String,
    commands: u64,
    accepted: u64,
    rejected: Vec<(u64, RejectReason)>,
    failed: Vec<(u64, String)>,
}

/// Sends the lines of one group in order, each after the reply to the one before.
async fn send_group<S: EventStore + Snapshotter>(
    runtime: Runtime<S>,
    group: Group,
    bar: ProgressBar,
) -> GroupOutcome {
    let mut outcome = GroupOutcome {
        invoice: group.invoice,
        commands: 0,
        accepted: 0,
        rejected: Vec::new(),
        failed: Vec::new(),
    };
    for line in group.lines {
        let number = line.line;
        let options = CommandOptions::with_command_id(format!("line-{number}"));
        let command = InvoiceCommand::AddLine(line);
        outcome.commands += 1;
        match runtime
            .ask_with::<Invoice>(outcome.invoice.as_str(), command, options)
            .await
        {
            Ok(()) => outcome.accepted += 1,
            Err(AskError::Rejected(rejected)) => {
                debug!(%rejected, invoice = %outcome.invoice, "line rejected");
                outcome.rejected.push((number, rejected.reason));
            }
            Err(AskError::Runtime(error)) => {
                warn!(line = number, invoice = %outcome.invoice, error = %error, "command failed");
                outcome.failed.push((number, error.to_string()));
            }
        }
        bar.inc(1);
    }
    outcome
}

impl GroupOutcome {
    fn add_to(self, report: &mut IngestReport) {
        report.commands += self.commands;
        report.accepted += self.accepted;
        for (line, reason) in self.rejected {
            *report.rejected.entry(reason).or_default() += 1;
            keep_lowest(&mut report.rejected_examples, (line, reason), |e| e.0);
        }
        for (line, error) in self.failed {
            report.failed += 1;
            keep_lowest(&mut report.failed_examples, (line, error), |e| e.0);
        }
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}
