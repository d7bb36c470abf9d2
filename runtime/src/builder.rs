//! Building a runtime: registering actor kinds and policies and choosing settings.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aether_core::{ActorId, ActorKind, ActorRef, EventStore, IdError, Snapshotter};
use dashmap::DashMap;
use tokio::sync::Semaphore;

use crate::actor::Actor;
use crate::codec::PayloadCodec;
use crate::config::RuntimeConfig;
use crate::kind::{ErasedKind, KindEntry};
use crate::policy::{CHECKPOINT_KIND, ErasedPolicy, TypedPolicy};
use crate::runtime::Runtime;
use crate::shared::{KindRuntime, Shared};

/// The reasons a runtime cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An actor kind name is invalid.
    #[error("actor kind {kind:?} is invalid")]
    InvalidKind {
        /// The kind name.
        kind: &'static str,
        /// The reason it is invalid.
        #[source]
        source: IdError,
    },
    /// Two actor types were registered under one kind name.
    #[error("actor kind {kind:?} is registered twice")]
    DuplicateKind {
        /// The kind name.
        kind: &'static str,
    },
    /// A kind name is reserved by the runtime.
    #[error("actor kind {kind:?} is reserved for policy checkpoints")]
    ReservedKind {
        /// The kind name.
        kind: &'static str,
    },
    /// A policy names an actor kind that is not registered.
    #[error("policy {policy:?} uses actor kind {kind:?}, which is not registered")]
    PolicyKindMissing {
        /// The policy name.
        policy: String,
        /// The missing kind.
        kind: &'static str,
    },
    /// Two policies have the same name, which would make them share a checkpoint.
    #[error("policy {policy:?} is registered twice")]
    DuplicatePolicy {
        /// The policy name.
        policy: String,
    },
    /// A policy name cannot be used as a checkpoint id.
    #[error("policy name {policy:?} is invalid")]
    InvalidPolicyName {
        /// The policy name.
        policy: String,
        /// The reason it is invalid.
        #[source]
        source: IdError,
    },
    /// A setting is out of range.
    #[error("setting {setting} is invalid: {reason}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// The problem with it.
        reason: &'static str,
    },
}

struct Registration<S> {
    name: &'static str,
    type_id: TypeId,
    erased: Arc<dyn ErasedKind<S>>,
    typed: Arc<dyn Any + Send + Sync>,
}

struct PolicyRegistration<S> {
    name: String,
    source: &'static str,
    target: &'static str,
    erased: Arc<dyn ErasedPolicy<S>>,
}

/// Builds a [`Runtime`]: registers actor kinds and policies and sets the [`RuntimeConfig`].
#[must_use]
pub struct RuntimeBuilder<S> {
    store: S,
    config: RuntimeConfig,
    codec: PayloadCodec,
    kinds: Vec<Registration<S>>,
    policies: Vec<PolicyRegistration<S>>,
    errors: Vec<BuildError>,
}

impl<S: EventStore + Snapshotter> RuntimeBuilder<S> {
    pub(crate) fn new(store: S) -> Self {
        Self {
            store,
            config: RuntimeConfig::default(),
            codec: PayloadCodec::default(),
            kinds: Vec::new(),
            policies: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Registers actor type `A` under [`Actor::KIND`], with the configured snapshot interval.
    pub fn register<A: Actor>(self) -> Self {
        let every = self.config.snapshot_every;
        self.register_with_snapshots::<A>(every)
    }

    /// Registers actor type `A` with its own snapshot interval: a snapshot after every
    /// `snapshot_every` events, or none by count when `None`.
    pub fn register_with_snapshots<A: Actor>(mut self, snapshot_every: Option<u64>) -> Self {
        let kind = match ActorKind::new(A::KIND) {
            Ok(kind) => kind,
            Err(source) => {
                self.errors.push(BuildError::InvalidKind {
                    kind: A::KIND,
                    source,
                });
                return self;
            }
        };
        if A::KIND == CHECKPOINT_KIND {
            self.errors.push(BuildError::ReservedKind { kind: A::KIND });
            return self;
        }
        if self.kinds.iter().any(|k| k.name == A::KIND) {
            self.errors
                .push(BuildError::DuplicateKind { kind: A::KIND });
            return self;
        }
        let runtime = Arc::new(KindRuntime::<A> {
            kind,
            vms: DashMap::new(),
            generations: AtomicU64::new(0),
            snapshot_every,
        });
        self.kinds.push(Registration {
            name: A::KIND,
            type_id: TypeId::of::<A>(),
            erased: Arc::new(KindEntry(runtime.clone())),
            typed: runtime,
        });
        self
    }

    /// Registers a policy named `name`: for every stored event of `A`, `function` returns the
    /// commands to send to `B` actors, as (target id, command) pairs. Both kinds must be
    /// registered. The function must be pure; it may be called more than once per event.
    pub fn policy<A, B, F>(mut self, name: impl Into<String>, function: F) -> Self
    where
        A: Actor,
        B: Actor,
        F: Fn(&ActorId, &A::Event) -> Vec<(String, B::Command)> + Send + Sync + 'static,
    {
        let name = name.into();
        if let Err(source) = ActorRef::parse(CHECKPOINT_KIND, name.clone()) {
            self.errors.push(BuildError::InvalidPolicyName {
                policy: name,
                source,
            });
            return self;
        }
        if self.policies.iter().any(|p| p.name == name) {
            self.errors
                .push(BuildError::DuplicatePolicy { policy: name });
            return self;
        }
        let erased = Arc::new(TypedPolicy::<A, B, F> {
            name: name.clone(),
            function,
            _actors: PhantomData,
        });
        self.policies.push(PolicyRegistration {
            name,
            source: A::KIND,
            target: B::KIND,
            erased,
        });
        self
    }

    /// Replaces every setting at once.
    pub fn config(mut self, config: RuntimeConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the payload codec. Default: [`PayloadCodec::Json`].
    pub fn codec(mut self, codec: PayloadCodec) -> Self {
        self.codec = codec;
        self
    }

    /// Sets [`RuntimeConfig::node`].
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.config.node = node.into();
        self
    }

    /// Sets [`RuntimeConfig::mailbox_capacity`].
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.config.mailbox_capacity = capacity;
        self
    }

    /// Sets [`RuntimeConfig::max_batch`].
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.config.max_batch = max_batch;
        self
    }

    /// Sets [`RuntimeConfig::idle_timeout`].
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.config.idle_timeout = idle_timeout;
        self
    }

    /// Sets [`RuntimeConfig::max_active`].
    pub fn max_active(mut self, max_active: usize) -> Self {
        self.config.max_active = max_active;
        self
    }

    /// Sets [`RuntimeConfig::max_concurrent_activations`].
    pub fn max_concurrent_activations(mut self, max: usize) -> Self {
        self.config.max_concurrent_activations = max;
        self
    }

    /// Sets [`RuntimeConfig::max_conflict_retries`].
    pub fn max_conflict_retries(mut self, retries: u32) -> Self {
        self.config.max_conflict_retries = retries;
        self
    }

    /// Sets [`RuntimeConfig::snapshot_every`] for kinds registered after this call.
    pub fn snapshot_every(mut self, every: Option<u64>) -> Self {
        self.config.snapshot_every = every;
        self
    }

    /// Sets [`RuntimeConfig::snapshot_on_stop`].
    pub fn snapshot_on_stop(mut self, enabled: bool) -> Self {
        self.config.snapshot_on_stop = enabled;
        self
    }

    /// Sets [`RuntimeConfig::idempotency_window`].
    pub fn idempotency_window(mut self, commands: usize) -> Self {
        self.config.idempotency_window = commands;
        self
    }

    /// Sets [`RuntimeConfig::idempotency_max_age`].
    pub fn idempotency_max_age(mut self, max_age: Duration) -> Self {
        self.config.idempotency_max_age = max_age;
        self
    }

    /// Sets [`RuntimeConfig::ask_timeout`].
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.config.ask_timeout = timeout;
        self
    }

    /// Sets [`RuntimeConfig::policy_checkpoint_every`].
    pub fn policy_checkpoint_every(mut self, events: u64) -> Self {
        self.config.policy_checkpoint_every = events;
        self
    }

    /// Sets [`RuntimeConfig::policy_concurrency`].
    pub fn policy_concurrency(mut self, in_flight: usize) -> Self {
        self.config.policy_concurrency = in_flight;
        self
    }

    /// Sets [`RuntimeConfig::follow_store`].
    pub fn follow_store(mut self, enabled: bool) -> Self {
        self.config.follow_store = enabled;
        self
    }

    /// Checks the registrations and settings and starts the runtime and its policy runners.
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// The first [`BuildError`] found.
    pub fn build(mut self) -> Result<Runtime<S>, BuildError> {
        if let Some(err) = self.errors.drain(..).next() {
            return Err(err);
        }
        self.check_settings()?;
        for policy in &self.policies {
            for kind in [policy.source, policy.target] {
                if !self.kinds.iter().any(|k| k.name == kind) {
                    return Err(BuildError::PolicyKindMissing {
                        policy: policy.name.clone(),
                        kind,
                    });
                }
            }
        }

        let mut kinds = HashMap::new();
        let mut typed = HashMap::new();
        for registration in self.kinds {
            kinds.insert(registration.name, registration.erased);
            typed.insert(registration.type_id, registration.typed);
        }
        let shared = Arc::new(Shared {
            store: self.store,
            codec: self.codec,
            activations: Semaphore::new(self.config.max_concurrent_activations),
            config: self.config,
            kinds,
            typed,
            active: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            evicting: AtomicBool::new(false),
            started: Instant::now(),
            appended: DashMap::new(),
        });

        let runners = self
            .policies
            .iter()
            .map(|policy| policy.erased.clone().start(shared.clone()))
            .collect();
        let follower = shared
            .config
            .follow_store
            .then(|| crate::follower::start(shared.clone()));
        let models = self.policies.iter().map(|p| p.erased.model()).collect();
        Ok(Runtime::from_parts(
            shared,
            Arc::new(Mutex::new(runners)),
            Arc::new(Mutex::new(follower)),
            models,
        ))
    }

    fn check_settings(&self) -> Result<(), BuildError> {
        let c = &self.config;
        let checks: [(bool, &'static str, &'static str); 5] = [
            (
                c.mailbox_capacity == 0,
                "mailbox_capacity",
                "must be at least 1",
            ),
            (c.max_batch == 0, "max_batch", "must be at least 1"),
            (c.max_active == 0, "max_active", "must be at least 1"),
            (
                c.max_concurrent_activations == 0,
                "max_concurrent_activations",
                "must be at least 1",
            ),
            (
                c.snapshot_every == Some(0),
                "snapshot_every",
                "must be at least 1 or None",
            ),
        ];
        for (failed, setting, reason) in checks {
            if failed {
                return Err(BuildError::InvalidSetting { setting, reason });
            }
        }
        Ok(())
    }
}
