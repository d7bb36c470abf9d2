//! State shared by a runtime's handles, VMs and policy runners.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use aether_core::{ActorId, ActorKind, ActorRef, EventStore, Position, Snapshotter};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::error::SendError;

use crate::actor::Actor;
use crate::codec::PayloadCodec;
use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::kind::ErasedKind;
use crate::mailbox::{Message, VmHandle};
use crate::vm::Vm;

/// Times a sender looks up a VM again after finding it stopped, before it gives up.
const SEND_ATTEMPTS: usize = 8;

pub(crate) struct Shared<S> {
    pub(crate) store: S,
    pub(crate) codec: PayloadCodec,
    pub(crate) config: RuntimeConfig,
    /// Registered kinds by name, for the untyped path, listings and shutdown.
    pub(crate) kinds: HashMap<&'static str, Arc<dyn ErasedKind<S>>>,
    /// The same kinds by actor type, each an `Arc<KindRuntime<A>>`.
    pub(crate) typed: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    pub(crate) activations: Semaphore,
    pub(crate) active: AtomicUsize,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) evicting: AtomicBool,
    pub(crate) started: Instant,
    /// The highest position this runtime appended at, per kind, so callers can wait until the
    /// policies reading that kind have caught up.
    pub(crate) appended: DashMap<&'static str, Position>,
}

/// The running VMs of one actor kind.
pub(crate) struct KindRuntime<A: Actor> {
    pub(crate) kind: ActorKind,
    pub(crate) vms: DashMap<ActorId, VmHandle<A>>,
    pub(crate) generations: AtomicU64,
    pub(crate) snapshot_every: Option<u64>,
}

impl<S: EventStore + Snapshotter> Shared<S> {
    pub(crate) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn kind_of<A: Actor>(&self) -> Result<Arc<KindRuntime<A>>, RuntimeError> {
        self.typed
            .get(&TypeId::of::<A>())
            .and_then(|any| any.clone().downcast::<KindRuntime<A>>().ok())
            .ok_or_else(|| self.unknown_kind(A::KIND))
    }

    pub(crate) fn unknown_kind(&self, kind: &str) -> RuntimeError {
        let mut registered: Vec<_> = self.kinds.keys().copied().collect();
        registered.sort_unstable();
        RuntimeError::UnknownKind {
            kind: kind.to_owned(),
            registered: registered.join(", "),
        }
    }

    pub(crate) fn note_append(&self, kind: &'static str, position: Position) {
        let mut entry = self.appended.entry(kind).or_insert(Position::START);
        if position > *entry {
            *entry = position;
        }
    }

    /// Delivers `message` to the actor's VM, activating one when there is none. A VM that
    /// stopped between the look-up and the send returns the message, which then goes to a new VM.
    pub(crate) async fn send<A: Actor>(
        self: &Arc<Self>,
        kind: &Arc<KindRuntime<A>>,
        id: &ActorId,
        mut message: Message<A>,
    ) -> Result<(), RuntimeError> {
        for _ in 0..SEND_ATTEMPTS {
            let handle = self.vm_handle(kind, id)?;
            handle.touch(self.now_ms());
            match handle.tx.send(message).await {
                Ok(()) => return Ok(()),
                Err(SendError(returned)) => {
                    message = returned;
                    kind.vms
                        .remove_if(id, |_, current| current.generation == handle.generation);
                }
            }
        }
        Err(RuntimeError::ShuttingDown)
    }

    /// Like [`Shared::send`] but fails instead of waiting when the mailbox is full.
    pub(crate) fn try_send<A: Actor>(
        self: &Arc<Self>,
        kind: &Arc<KindRuntime<A>>,
        id: &ActorId,
        mut message: Message<A>,
    ) -> Result<(), RuntimeError> {
        use tokio::sync::mpsc::error::TrySendError;
        for _ in 0..SEND_ATTEMPTS {
            let handle = self.vm_handle(kind, id)?;
            handle.touch(self.now_ms());
            match handle.tx.try_send(message) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(_)) => {
                    return Err(RuntimeError::MailboxFull {
                        actor: ActorRef::new(kind.kind.clone(), id.clone()),
                    });
                }
                Err(TrySendError::Closed(returned)) => {
                    message = returned;
                    kind.vms
                        .remove_if(id, |_, current| current.generation == handle.generation);
                }
            }
        }
        Err(RuntimeError::ShuttingDown)
    }

    fn vm_handle<A: Actor>(
        self: &Arc<Self>,
        kind: &Arc<KindRuntime<A>>,
        id: &ActorId,
    ) -> Result<VmHandle<A>, RuntimeError> {
        if let Some(handle) = kind.vms.get(id) {
            return Ok(handle.clone());
        }
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(RuntimeError::ShuttingDown);
        }

        // The entry lock makes concurrent first messages create exactly one VM.
        let handle = match kind.vms.entry(id.clone()) {
            Entry::Occupied(entry) => entry.get().clone(),
            Entry::Vacant(entry) => {
                let handle = Vm::spawn(self.clone(), kind.clone(), id.clone());
                entry.insert(handle.clone());
                handle
            }
        };
        if self.active.load(Ordering::Relaxed) > self.config.max_active {
            crate::passivation::evict_least_recently_used(self);
        }
        Ok(handle)
    }
}

/// Ids that travel with a command into the metadata of the events it produces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandOptions {
    /// The command id for idempotency: a command whose id the actor already stored is not
    /// decided again; it gets the original reply. A new id is generated when `None`.
    pub command_id: Option<String>,
    /// Id shared by every message of one business flow.
    pub correlation_id: Option<String>,
    /// Id of the message that caused this command.
    pub causation_id: Option<String>,
}

impl CommandOptions {
    /// Options with the given command id.
    pub fn with_command_id(command_id: impl Into<String>) -> Self {
        Self {
            command_id: Some(command_id.into()),
            ..Self::default()
        }
    }
}

pub(crate) fn new_command_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl<S: EventStore + Snapshotter> Shared<S> {
    /// Sends a command and waits for its outcome, at most the configured ask timeout.
    pub(crate) async fn ask<A: Actor>(
        self: &Arc<Self>,
        kind: &Arc<KindRuntime<A>>,
        id: ActorId,
        command: A::Command,
        options: CommandOptions,
    ) -> Result<A::Reply, crate::error::AskError<A::Error>> {
        let (reply_to, reply) = tokio::sync::oneshot::channel();
        let envelope = crate::mailbox::Envelope {
            command,
            command_id: options.command_id.unwrap_or_else(new_command_id),
            correlation_id: options.correlation_id,
            causation_id: options.causation_id,
            reply_to: Some(reply_to),
        };
        self.send(kind, &id, Message::Command(envelope)).await?;

        let after = self.config.ask_timeout;
        match tokio::time::timeout(after, reply).await {
            Ok(Ok(outcome)) => outcome,
            // The VM dropped the reply sender without a reply, so its task ended abnormally.
            Ok(Err(_)) => Err(RuntimeError::ShuttingDown.into()),
            Err(_) => Err(RuntimeError::Timeout {
                actor: ActorRef::new(kind.kind.clone(), id),
                after,
            }
            .into()),
        }
    }

    /// Sends a command without waiting for its outcome; waits only for mailbox space.
    pub(crate) async fn tell<A: Actor>(
        self: &Arc<Self>,
        kind: &Arc<KindRuntime<A>>,
        id: ActorId,
        command: A::Command,
        options: CommandOptions,
    ) -> Result<(), RuntimeError> {
        let envelope = crate::mailbox::Envelope {
            command,
            command_id: options.command_id.unwrap_or_else(new_command_id),
            correlation_id: options.correlation_id,
            causation_id: options.causation_id,
            reply_to: None,
        };
        self.send(kind, &id, Message::Command(envelope)).await
    }
}
