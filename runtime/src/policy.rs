//! Policies: events of one actor kind become commands to another.
//!
//! A policy runner subscribes to the source kind's events from its checkpoint, calls the policy
//! function for each event and sends commands to the target actors. Delivery is at least once:
//! after a crash the runner resumes from its last checkpoint and delivers some events again.
//! Each command id is derived from the policy name, the source actor, the event version and the
//! command's index, so the target's idempotency window turns a repeated delivery into a no-op.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use aether_core::{
    ActorId, ActorKind, ActorRef, EventFilter, EventStore, Position, RecordedEvent, Snapshot,
    Snapshotter, StoreError, Version,
};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::actor::Actor;
use crate::error::{AskError, RuntimeError};
use crate::model::PolicyModel;
use crate::shared::{CommandOptions, Shared};
use aether_core::Codec;

/// The actor kind under which policy checkpoints are stored as snapshots.
pub const CHECKPOINT_KIND: &str = "aether-policy";

/// Times a policy command is retried after a runtime error before the runner stops.
const DELIVERY_ATTEMPTS: u32 = 6;

/// Namespace of the derived command ids (UUID v5).
const COMMAND_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6165_7468_6572_2d70_6f6c_6963_792d_6964);

pub(crate) trait ErasedPolicy<S>: Send + Sync {
    fn model(&self) -> PolicyModel;
    fn start(self: Arc<Self>, shared: Arc<Shared<S>>) -> PolicyRunner;
}

/// A running policy.
pub(crate) struct PolicyRunner {
    pub(crate) name: String,
    pub(crate) source: &'static str,
    /// The position of the last event delivered, in order.
    pub(crate) progress: watch::Receiver<Position>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) task: JoinHandle<()>,
}

pub(crate) struct TypedPolicy<A, B, F> {
    pub(crate) name: String,
    pub(crate) function: F,
    pub(crate) _actors: PhantomData<fn() -> (A, B)>,
}

impl<A, B, F, S> ErasedPolicy<S> for TypedPolicy<A, B, F>
where
    A: Actor,
    B: Actor,
    F: Fn(&ActorId, &A::Event) -> Vec<(String, B::Command)> + Send + Sync + 'static,
    S: EventStore + Snapshotter,
{
    fn model(&self) -> PolicyModel {
        PolicyModel {
            name: self.name.clone(),
            source: A::KIND,
            target: B::KIND,
        }
    }

    fn start(self: Arc<Self>, shared: Arc<Shared<S>>) -> PolicyRunner {
        let (progress_tx, progress) = watch::channel(Position::START);
        let (stop, stop_rx) = watch::channel(false);
        let name = self.name.clone();
        let task = tokio::spawn(self.run(shared, stop_rx, progress_tx));
        PolicyRunner {
            name,
            source: A::KIND,
            progress,
            stop,
            task,
        }
    }
}

impl<A, B, F> TypedPolicy<A, B, F>
where
    A: Actor,
    B: Actor,
    F: Fn(&ActorId, &A::Event) -> Vec<(String, B::Command)> + Send + Sync + 'static,
{
    async fn run<S: EventStore + Snapshotter>(
        self: Arc<Self>,
        shared: Arc<Shared<S>>,
        mut stop: watch::Receiver<bool>,
        progress: watch::Sender<Position>,
    ) {
        let checkpoint = match ActorRef::parse(CHECKPOINT_KIND, self.name.clone()) {
            Ok(actor) => actor,
            Err(err) => {
                error!(policy = %self.name, error = %err, "invalid policy name; policy not started");
                return;
            }
        };
        let mut after = match load_checkpoint(&shared.store, &checkpoint).await {
            Ok(position) => position,
            Err(err) => {
                error!(policy = %self.name, error = %err, "could not load checkpoint; policy not started");
                return;
            }
        };
        progress.send_replace(after);
        info!(policy = %self.name, source = A::KIND, target = B::KIND, after = %after, "policy started");

        // Events are delivered concurrently but completed in order, so the checkpoint never
        // passes an event whose commands are still in flight.
        let source = ActorKind::new(A::KIND).expect("registered kinds are valid");
        let events = shared.store.subscribe(after, EventFilter::kinds([source]));
        let this = self.clone();
        let deliverer = shared.clone();
        let mut deliveries = events
            .map(move |item| {
                let this = this.clone();
                let shared = deliverer.clone();
                async move { this.deliver(&shared, item).await }
            })
            .buffered(shared.config.policy_concurrency.max(1));

        let every = shared.config.policy_checkpoint_every.max(1);
        let mut since_checkpoint = 0;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                next = deliveries.next() => match next {
                    Some(Ok(position)) => {
                        after = position;
                        progress.send_replace(position);
                        since_checkpoint += 1;
                        if since_checkpoint >= every {
                            save_checkpoint(&shared.store, &checkpoint, after, &self.name).await;
                            since_checkpoint = 0;
                        }
                    }
                    Some(Err(err)) => {
                        error!(policy = %self.name, error = %err, after = %after,
                            "policy stopped; it resumes from its checkpoint on the next start");
                        break;
                    }
                    None => break,
                }
            }
        }
        save_checkpoint(&shared.store, &checkpoint, after, &self.name).await;
        debug!(policy = %self.name, after = %after, "policy stopped");
    }

    /// Sends the commands for one event and returns its position once every one was handled.
    async fn deliver<S: EventStore + Snapshotter>(
        &self,
        shared: &Arc<Shared<S>>,
        item: Result<RecordedEvent, StoreError>,
    ) -> Result<Position, RuntimeError> {
        let event = item?;
        let decoded: A::Event = match shared.codec.decode(&event.payload) {
            Ok(decoded) => decoded,
            Err(err) => {
                // An event that does not decode can never be delivered; stopping here would stop
                // the policy for good, so it is logged and passed over.
                error!(policy = %self.name, actor = %event.actor, version = %event.version,
                    error = %err, "skipping event that does not decode");
                return Ok(event.position);
            }
        };
        let target = shared.kind_of::<B>()?;
        let count = (self.function)(&event.actor.id, &decoded).len();

        for index in 0..count {
            let key = format!(
                "{}\n{}\n{}\n{}\n{}",
                self.name, event.actor.kind, event.actor.id, event.version, index
            );
            let options = CommandOptions {
                command_id: Some(
                    uuid::Uuid::new_v5(&COMMAND_ID_NAMESPACE, key.as_bytes()).to_string(),
                ),
                correlation_id: event
                    .metadata
                    .correlation_id
                    .clone()
                    .or_else(|| event.metadata.command_id.clone()),
                causation_id: event.metadata.command_id.clone(),
            };

            let mut attempt = 0;
            loop {
                // The policy function is pure, so it is called again for each attempt instead of
                // requiring commands to be `Clone`.
                let Some((target_id, command)) = (self.function)(&event.actor.id, &decoded)
                    .into_iter()
                    .nth(index)
                else {
                    break;
                };
                let id = match ActorId::new(target_id) {
                    Ok(id) => id,
                    Err(err) => {
                        error!(policy = %self.name, error = %err, "policy produced an invalid target id; skipping command");
                        break;
                    }
                };
                match shared.ask::<B>(&target, id, command, options.clone()).await {
                    Ok(_) => break,
                    Err(AskError::Rejected(rejection)) => {
                        debug!(policy = %self.name, %rejection, "policy command rejected");
                        break;
                    }
                    Err(AskError::Runtime(err)) if attempt + 1 < DELIVERY_ATTEMPTS => {
                        attempt += 1;
                        let backoff = Duration::from_millis(50 << attempt);
                        warn!(policy = %self.name, error = %err, attempt, ?backoff, "policy command failed; retrying");
                        tokio::time::sleep(backoff).await;
                    }
                    Err(AskError::Runtime(err)) => return Err(err),
                }
            }
        }
        Ok(event.position)
    }
}

async fn load_checkpoint<S: Snapshotter>(
    store: &S,
    checkpoint: &ActorRef,
) -> Result<Position, StoreError> {
    let Some(snapshot) = store.load_snapshot(checkpoint).await? else {
        return Ok(Position::START);
    };
    match <[u8; 8]>::try_from(snapshot.state.as_ref()) {
        Ok(bytes) => Ok(Position::new(u64::from_be_bytes(bytes))),
        Err(_) => {
            warn!(%checkpoint, len = snapshot.state.len(), "checkpoint is not 8 bytes; starting from the beginning");
            Ok(Position::START)
        }
    }
}

async fn save_checkpoint<S: Snapshotter>(
    store: &S,
    checkpoint: &ActorRef,
    position: Position,
    name: &str,
) {
    // A checkpoint actor has no events, so its snapshot is always at version 0; a snapshot of the
    // same version replaces the previous one.
    let snapshot = Snapshot::new(Version::ZERO, position.get().to_be_bytes().to_vec());
    if let Err(err) = store.save_snapshot(checkpoint, snapshot).await {
        warn!(policy = %name, error = %err, "could not save policy checkpoint");
    }
}
