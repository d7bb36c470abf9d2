//! Metric names and the helpers that record them through the `metrics` facade.
//!
//! Every metric has a `kind` label with the actor kind. Nothing is recorded unless the
//! application installs a `metrics` recorder.

use std::time::Duration;

/// Counter of activations.
pub const ACTIVATIONS: &str = "aether_activations_total";
/// Counter of passivations (idle, least recently used, stop and shutdown).
pub const PASSIVATIONS: &str = "aether_passivations_total";
/// Counter of commands, labelled `outcome` = `processed` (every command taken from a mailbox)
/// or `duplicate` (those replied to from the idempotency window).
pub const COMMANDS: &str = "aether_commands_total";
/// Counter of version conflicts, labelled `retried` = `true` or `false` (given up).
pub const CONFLICTS: &str = "aether_conflicts_total";
/// Histogram of append latency in seconds, per append.
pub const APPEND_SECONDS: &str = "aether_append_seconds";
/// Counter of events appended.
pub const EVENTS_APPENDED: &str = "aether_events_appended_total";
/// Counter of events replayed during activations and catch-ups.
pub const EVENTS_REPLAYED: &str = "aether_events_replayed_total";
/// Histogram of activation time in seconds.
pub const ACTIVATION_SECONDS: &str = "aether_activation_seconds";
/// Histogram of mailbox depth when a VM takes a batch.
pub const MAILBOX_DEPTH: &str = "aether_mailbox_depth";
/// Counter of snapshots written.
pub const SNAPSHOTS: &str = "aether_snapshots_total";

pub(crate) fn activated(kind: &'static str, replayed: u64, elapsed: Duration) {
    metrics::counter!(ACTIVATIONS, "kind" => kind).increment(1);
    metrics::counter!(EVENTS_REPLAYED, "kind" => kind).increment(replayed);
    metrics::histogram!(ACTIVATION_SECONDS, "kind" => kind).record(elapsed.as_secs_f64());
}

pub(crate) fn passivated(kind: &'static str) {
    metrics::counter!(PASSIVATIONS, "kind" => kind).increment(1);
}

/// Records commands taken from a mailbox (duplicates included).
pub(crate) fn commands(kind: &'static str, count: u64) {
    metrics::counter!(COMMANDS, "kind" => kind, "outcome" => "processed").increment(count);
}

/// Records a command replied to from the idempotency window.
pub(crate) fn duplicate(kind: &'static str) {
    metrics::counter!(COMMANDS, "kind" => kind, "outcome" => "duplicate").increment(1);
}

pub(crate) fn conflict(kind: &'static str, retried: bool) {
    let retried = if retried { "true" } else { "false" };
    metrics::counter!(CONFLICTS, "kind" => kind, "retried" => retried).increment(1);
}

pub(crate) fn appended(kind: &'static str, events: u64, elapsed: Duration) {
    metrics::counter!(EVENTS_APPENDED, "kind" => kind).increment(events);
    metrics::histogram!(APPEND_SECONDS, "kind" => kind).record(elapsed.as_secs_f64());
}

pub(crate) fn mailbox_depth(kind: &'static str, depth: usize) {
    metrics::histogram!(MAILBOX_DEPTH, "kind" => kind).record(depth as f64);
}

pub(crate) fn snapshot(kind: &'static str) {
    metrics::counter!(SNAPSHOTS, "kind" => kind).increment(1);
}
