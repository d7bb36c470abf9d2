//! The runtime handle: sending commands, inspecting and stopping actors, shutting down.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aether_core::{ActorId, ActorRef, EventStore, Position, Snapshotter, Version};
use tokio::sync::oneshot;
use tracing::info;

use crate::actor::Actor;
use crate::builder::RuntimeBuilder;
use crate::config::RuntimeConfig;
use crate::error::{AskError, RuntimeError};
use crate::follower::Follower;
use crate::mailbox::Message;
use crate::model::{Model, PolicyModel};
use crate::policy::PolicyRunner;
use crate::shared::{CommandOptions, Shared};
use crate::untyped::{UntypedMessage, UntypedReply};

/// A running set of virtual actors over one store. Cheap to clone; clones share everything.
///
/// An actor is activated by its first message: its snapshot is loaded, the events after it are
/// replayed, and then its mailbox is served one batch at a time. Every accepted command's events
/// are appended with the actor's version as the expectation, so a second writer (another
/// runtime, another node) causes a conflict, a catch-up and a new decision rather than a lost
/// update.
pub struct Runtime<S> {
    shared: Arc<Shared<S>>,
    runners: Arc<Mutex<Vec<PolicyRunner>>>,
    follower: Arc<Mutex<Option<Follower>>>,
    policy_models: Arc<Vec<PolicyModel>>,
}

impl<S> Clone for Runtime<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            runners: self.runners.clone(),
            follower: self.follower.clone(),
            policy_models: self.policy_models.clone(),
        }
    }
}

impl<S: EventStore + Snapshotter> Runtime<S> {
    /// Starts building a runtime over `store`.
    pub fn builder(store: S) -> RuntimeBuilder<S> {
        RuntimeBuilder::new(store)
    }

    pub(crate) fn from_parts(
        shared: Arc<Shared<S>>,
        runners: Arc<Mutex<Vec<PolicyRunner>>>,
        follower: Arc<Mutex<Option<Follower>>>,
        policy_models: Vec<PolicyModel>,
    ) -> Self {
        Self {
            shared,
            runners,
            follower,
            policy_models: Arc::new(policy_models),
        }
    }

    /// Sends `command` to actor `id` of kind `A` and waits for the reply, which comes only after
    /// the command's events are durably stored. A new command id is generated.
    ///
    /// # Errors
    ///
    /// [`AskError::Rejected`] with the actor's domain error, or [`AskError::Runtime`]: an invalid
    /// id, an unregistered kind, a store failure (a conflict only after every retry), a timeout.
    pub async fn ask<A: Actor>(
        &self,
        id: impl Into<String>,
        command: A::Command,
    ) -> Result<A::Reply, AskError<A::Error>> {
        self.ask_with::<A>(id, command, CommandOptions::default())
            .await
    }

    /// Like [`Runtime::ask`], with a caller-chosen command id and tracing ids. Asking again with
    /// the same command id returns the original reply and stores nothing.
    ///
    /// # Errors
    ///
    /// As [`Runtime::ask`].
    pub async fn ask_with<A: Actor>(
        &self,
        id: impl Into<String>,
        command: A::Command,
        options: CommandOptions,
    ) -> Result<A::Reply, AskError<A::Error>> {
        let id = ActorId::new(id)?;
        let kind = self.shared.kind_of::<A>()?;
        self.shared.ask(&kind, id, command, options).await
    }

    /// Sends `command` without waiting for the outcome. Waits only while the mailbox is full.
    ///
    /// # Errors
    ///
    /// An invalid id, an unregistered kind, or a runtime that is shutting down.
    pub async fn tell<A: Actor>(
        &self,
        id: impl Into<String>,
        command: A::Command,
    ) -> Result<(), RuntimeError> {
        self.tell_with::<A>(id, command, CommandOptions::default())
            .await
    }

    /// Like [`Runtime::tell`], with a caller-chosen command id and tracing ids.
    ///
    /// # Errors
    ///
    /// As [`Runtime::tell`].
    pub async fn tell_with<A: Actor>(
        &self,
        id: impl Into<String>,
        command: A::Command,
        options: CommandOptions,
    ) -> Result<(), RuntimeError> {
        let id = ActorId::new(id)?;
        let kind = self.shared.kind_of::<A>()?;
        self.shared.tell(&kind, id, command, options).await
    }

    /// Sends `command` without waiting at all.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::MailboxFull`] when the mailbox is full, and the errors of
    /// [`Runtime::tell`].
    pub fn try_tell<A: Actor>(
        &self,
        id: impl Into<String>,
        command: A::Command,
    ) -> Result<(), RuntimeError> {
        let id = ActorId::new(id)?;
        let kind = self.shared.kind_of::<A>()?;
        let envelope = crate::mailbox::Envelope {
            command,
            command_id: crate::shared::new_command_id(),
            correlation_id: None,
            causation_id: None,
            reply_to: None,
        };
        self.shared.try_send(&kind, &id, Message::Command(envelope))
    }

    /// Sends an encoded command, checked against the registered model: an unknown kind, an
    /// unknown command and an undecodable payload are three distinct [`RuntimeError`]s.
    ///
    /// # Errors
    ///
    /// The encoded domain rejection, or a runtime error.
    pub async fn send_untyped(&self, message: UntypedMessage) -> UntypedReply {
        let Some(kind) = self.shared.kinds.get(message.kind.as_str()).cloned() else {
            return Err(self.shared.unknown_kind(&message.kind).into());
        };
        kind.send_untyped(&self.shared, message).await
    }

    /// Activates actor `id` of kind `A` if it is not active, and returns its version.
    ///
    /// # Errors
    ///
    /// An invalid id, an unregistered kind, or a failed activation.
    pub async fn create_vm<A: Actor>(
        &self,
        id: impl Into<String>,
    ) -> Result<Version, RuntimeError> {
        self.state::<A>(id).await.map(|(_, version)| version)
    }

    /// Returns a copy of the state of actor `id` and its version, activating it if needed.
    ///
    /// # Errors
    ///
    /// As [`Runtime::create_vm`].
    pub async fn state<A: Actor>(
        &self,
        id: impl Into<String>,
    ) -> Result<(A::State, Version), RuntimeError> {
        let id = ActorId::new(id)?;
        let kind = self.shared.kind_of::<A>()?;
        let (reply_to, reply) = oneshot::channel();
        self.shared
            .send(&kind, &id, Message::Inspect(reply_to))
            .await?;
        reply.await.map_err(|_| RuntimeError::ShuttingDown)?
    }

    /// Stops actor `id` of kind `A` after the messages already in its mailbox, taking a final
    /// snapshot. Returns whether it was active.
    ///
    /// # Errors
    ///
    /// An invalid id or an unregistered kind.
    pub async fn stop_vm<A: Actor>(&self, id: impl Into<String>) -> Result<bool, RuntimeError> {
        let actor = ActorRef::new(aether_core::ActorKind::new(A::KIND)?, ActorId::new(id)?);
        self.stop_actor(&actor).await
    }

    /// Stops an actor given by kind name and id. Returns whether it was active.
    ///
    /// # Errors
    ///
    /// An unregistered kind.
    pub async fn stop_actor(&self, actor: &ActorRef) -> Result<bool, RuntimeError> {
        let Some(kind) = self.shared.kinds.get(actor.kind.as_str()) else {
            return Err(self.shared.unknown_kind(actor.kind.as_str()));
        };
        Ok(kind.stop(&actor.id).await)
    }

    /// Returns the actors that are active now.
    pub fn active_vms(&self) -> Vec<ActorRef> {
        let mut active = Vec::new();
        for kind in self.shared.kinds.values() {
            kind.active(&mut active);
        }
        active.sort();
        active
    }

    /// Returns the number of running VMs, including those still activating or stopping.
    pub fn active_count(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Returns the registered kinds, their commands and events, and the policies.
    pub fn model(&self) -> Model {
        let mut kinds: Vec<_> = self.shared.kinds.values().map(|k| k.model()).collect();
        kinds.sort_by_key(|k| k.kind);
        Model {
            kinds,
            policies: self.policy_models.as_ref().clone(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// The settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// Waits until every policy has delivered the events this runtime appended so far,
    /// including events appended by policy commands along the way.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Timeout`] when `timeout` passes first, naming the lagging policy's
    /// checkpoint actor, and [`RuntimeError::ShuttingDown`] when a policy runner has stopped.
    pub async fn wait_for_policies(&self, timeout: Duration) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut progress: Vec<_> = {
            let runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
            runners
                .iter()
                .map(|r| (r.name.clone(), r.source, r.progress.clone()))
                .collect()
        };
        loop {
            let mut caught_up = true;
            for (name, source, progress) in &mut progress {
                let target = self
                    .shared
                    .appended
                    .get(source)
                    .map_or(Position::START, |p| *p);
                while *progress.borrow_and_update() < target {
                    caught_up = false;
                    match tokio::time::timeout_at(deadline, progress.changed()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Err(RuntimeError::ShuttingDown),
                        Err(_) => {
                            return Err(RuntimeError::Timeout {
                                actor: ActorRef::parse(
                                    crate::policy::CHECKPOINT_KIND,
                                    name.clone(),
                                )?,
                                after: timeout,
                            });
                        }
                    }
                }
            }
            // Policy commands append events that other policies may read, so check again until
            // one pass finds nothing to wait for.
            if caught_up {
                return Ok(());
            }
        }
    }

    /// Stops the runtime: policy runners save their checkpoints, then every actor serves the
    /// messages already in its mailbox, takes a final snapshot and stops. New commands are
    /// rejected with [`RuntimeError::ShuttingDown`].
    pub async fn shutdown(&self) {
        let runners = {
            let mut runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *runners)
        };
        info!(
            policies = runners.len(),
            active = self.active_count(),
            "shutting down"
        );
        for runner in &runners {
            runner.stop.send_replace(true);
        }
        for runner in runners {
            let _ = runner.task.await;
        }
        let follower = self
            .follower
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(follower) = follower {
            follower.stop().await;
        }

        self.shared.shutting_down.store(true, Ordering::Release);
        let actors = self.active_vms();
        let stops = actors.iter().map(|actor| self.stop_actor(actor));
        futures::future::join_all(stops).await;

        // VMs still activating when the flag was set stop once their queued messages are served;
        // wait for them, bounded.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.active_count() > 0 && tokio::time::Instant::now() < deadline {
            for actor in self.active_vms() {
                let _ = self.stop_actor(&actor).await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        info!("runtime stopped");
    }
}
