//! Runtime settings with their defaults.

use std::time::Duration;

/// Settings of a [`Runtime`](crate::Runtime). Each field's default is stated on it; the
/// [`RuntimeBuilder`](crate::RuntimeBuilder) has a setter for each.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Name of this node, stored in the metadata of every event it writes. Default: `node-`
    /// followed by 8 random hex digits.
    pub node: String,
    /// Maximum commands waiting in an actor's mailbox before senders wait. Default: 256.
    pub mailbox_capacity: usize,
    /// Most commands one append may carry when several wait in a mailbox. Default: 64.
    pub max_batch: usize,
    /// An actor without messages for this long is passivated. Default: 5 minutes.
    pub idle_timeout: Duration,
    /// Active actors above this number are passivated, least recently used first.
    /// Default: 100,000.
    pub max_active: usize,
    /// Activations that may load snapshots and replay events at the same time; the rest wait.
    /// Default: 64.
    pub max_concurrent_activations: usize,
    /// Times a command is decided again after a version conflict before the conflict is
    /// returned. Default: 3.
    pub max_conflict_retries: u32,
    /// A snapshot is written once this many events were stored since the last one; `None`
    /// disables snapshots by count. Default: `Some(100)`.
    pub snapshot_every: Option<u64>,
    /// Whether a snapshot is written when an actor stops with events newer than its last
    /// snapshot. Default: true.
    pub snapshot_on_stop: bool,
    /// Command ids each actor remembers for idempotency. Default: 1,024.
    pub idempotency_window: usize,
    /// Command ids older than this are forgotten even within the window. Default: 24 hours.
    pub idempotency_max_age: Duration,
    /// How long `ask` waits for a reply. Default: 30 seconds.
    pub ask_timeout: Duration,
    /// Events a policy runner processes before it saves its checkpoint. Default: 256.
    pub policy_checkpoint_every: u64,
    /// Policy commands in flight at once per policy. Default: 256.
    pub policy_concurrency: usize,
    /// Whether active actors follow events that other writers (other nodes, tools) store for
    /// them, through one store subscription per runtime. Without it an actor still catches up,
    /// but only when its next append conflicts. Default: true.
    pub follow_store: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            node: format!("node-{}", &suffix[..8]),
            mailbox_capacity: 256,
            max_batch: 64,
            idle_timeout: Duration::from_secs(300),
            max_active: 100_000,
            max_concurrent_activations: 64,
            max_conflict_retries: 3,
            snapshot_every: Some(100),
            snapshot_on_stop: true,
            idempotency_window: 1024,
            idempotency_max_age: Duration::from_secs(24 * 3600),
            ask_timeout: Duration::from_secs(30),
            policy_checkpoint_every: 256,
            policy_concurrency: 256,
            follow_store: true,
        }
    }
}
