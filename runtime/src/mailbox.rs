//! Messages an actor's VM receives, and the handle senders use to reach it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aether_core::Version;
use tokio::sync::{mpsc, oneshot};

use crate::actor::Actor;
use crate::error::{AskError, RuntimeError};

/// The outcome an asking caller receives.
pub(crate) type AskResult<A> = Result<<A as Actor>::Reply, AskError<<A as Actor>::Error>>;

/// The sender of a command's reply.
pub(crate) type ReplyTo<A> = oneshot::Sender<AskResult<A>>;

/// A command on its way to an actor.
pub(crate) struct Envelope<A: Actor> {
    pub(crate) command: A::Command,
    pub(crate) command_id: String,
    pub(crate) correlation_id: Option<String>,
    pub(crate) causation_id: Option<String>,
    /// `None` for `tell`, which does not wait for the outcome.
    pub(crate) reply_to: Option<ReplyTo<A>>,
}

/// Everything a VM's mailbox carries.
pub(crate) enum Message<A: Actor> {
    Command(Envelope<A>),
    /// Returns a copy of the state and its version once the actor is active.
    Inspect(oneshot::Sender<Result<(A::State, Version), RuntimeError>>),
    /// Stops the VM after the messages queued before it.
    Stop(oneshot::Sender<()>),
    /// Another writer stored this version of the actor; the VM reads it if it is behind.
    CatchUp(Version),
}

/// A sender's way into a running VM.
pub(crate) struct VmHandle<A: Actor> {
    pub(crate) tx: mpsc::Sender<Message<A>>,
    /// Distinguishes this VM from a later one of the same actor, so a stopping VM removes only
    /// its own map entry.
    pub(crate) generation: u64,
    /// Milliseconds since the runtime started at the last message, for least-recently-used
    /// passivation.
    pub(crate) last_used: Arc<AtomicU64>,
}

impl<A: Actor> Clone for VmHandle<A> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            generation: self.generation,
            last_used: self.last_used.clone(),
        }
    }
}

impl<A: Actor> VmHandle<A> {
    pub(crate) fn touch(&self, now_ms: u64) {
        self.last_used.store(now_ms, Ordering::Relaxed);
    }
}
