//! The VM: the one running activation of an actor, serving its mailbox a batch at a time.

use std::collections::{HashMap, hash_map};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aether_core::{
    ActorId, ActorRef, Codec, ErrorKind, EventMetadata, EventStore, ExpectedVersion, NewEvent,
    Snapshot, Snapshotter, StoreError, Version,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, info_span, warn};

use crate::actor::Actor;
use crate::error::{AskError, RuntimeError};
use crate::idempotency::{RecentCommand, RecentCommands};
use crate::mailbox::{Envelope, Message, VmHandle};
use crate::metrics as m;
use crate::shared::{KindRuntime, Shared};

/// Maximum batch length for which repeated command ids are found by scanning. Longer batches use a hash
/// map, so the search time does not grow with the square of the batch length.
const SCAN_BATCH_LEN: usize = 8;

pub(crate) struct Vm<A: Actor, S> {
    shared: Arc<Shared<S>>,
    kind: Arc<KindRuntime<A>>,
    actor: ActorRef,
    generation: u64,
    rx: mpsc::Receiver<Message<A>>,
    state: A::State,
    version: Version,
    snapshot_version: Version,
    recent: RecentCommands,
}

/// The next step of a VM after a message.
enum Flow {
    Continue,
    Stop(oneshot::Sender<()>),
}

/// The decision on one command of a batch.
enum Decision<A: Actor> {
    /// Already stored earlier: the stored reply.
    Duplicate(Option<Bytes>),
    /// Same command id as an earlier command of this batch.
    SameAs(usize),
    Rejected(A::Error),
    /// Accepted without events.
    Answered(A::Reply),
    Accepted {
        events: Vec<A::Event>,
        reply: A::Reply,
        reply_bytes: Bytes,
    },
    /// Encoding failed; nothing of this command is stored.
    Failed(RuntimeError),
}

#[derive(Serialize)]
struct SnapshotOut<'a, T> {
    state: &'a T,
    recent_commands: Vec<RecentCommand>,
}

#[derive(Deserialize)]
struct SnapshotIn<T> {
    state: T,
    recent_commands: Vec<RecentCommand>,
}

impl<A: Actor, S: EventStore + Snapshotter> Vm<A, S> {
    /// Starts a VM task for `id` and returns the handle to reach it. The task activates the actor
    /// before it serves the first message.
    pub(crate) fn spawn(
        shared: Arc<Shared<S>>,
        kind: Arc<KindRuntime<A>>,
        id: ActorId,
    ) -> VmHandle<A> {
        let (tx, rx) = mpsc::channel(shared.config.mailbox_capacity.max(1));
        let generation = kind.generations.fetch_add(1, Ordering::Relaxed);
        let last_used = Arc::new(AtomicU64::new(shared.now_ms()));
        let actor = ActorRef::new(kind.kind.clone(), id);
        let recent = RecentCommands::new(
            shared.config.idempotency_window,
            shared.config.idempotency_max_age,
        );
        shared.active.fetch_add(1, Ordering::Relaxed);

        let span = info_span!(
            "actor",
            actor.kind = A::KIND,
            actor.id = %actor.id,
            version = tracing::field::Empty
        );
        let vm = Vm {
            shared,
            kind,
            actor,
            generation,
            rx,
            state: A::State::default(),
            version: Version::ZERO,
            snapshot_version: Version::ZERO,
            recent,
        };
        tokio::spawn(vm.run().instrument(span));
        VmHandle {
            tx,
            generation,
            last_used,
        }
    }

    async fn run(mut self) {
        let activated = {
            // The permit caps concurrent activations so a restart storm cannot exhaust the store.
            let shared = self.shared.clone();
            let _permit = shared.activations.acquire().await;
            self.activate().await
        };
        match activated {
            Ok(()) => self.serve().await,
            Err(err) => self.fail_activation(err).await,
        }
        self.shared.active.fetch_sub(1, Ordering::Relaxed);
    }

    // ----- activation -------------------------------------------------------------------------

    async fn activate(&mut self) -> Result<(), RuntimeError> {
        let started = Instant::now();
        self.load_snapshot().await?;
        let replayed = self.catch_up().await?;
        m::activated(A::KIND, replayed, started.elapsed());
        tracing::Span::current().record("version", self.version.get());
        debug!(version = %self.version, replayed, "activated");
        Ok(())
    }

    async fn load_snapshot(&mut self) -> Result<(), RuntimeError> {
        let snapshot = match self.shared.store.load_snapshot(&self.actor).await {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return Ok(()),
            Err(err) if err.kind() == ErrorKind::Corrupt => {
                warn!(error = %err, "ignoring unreadable snapshot; replaying all events");
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        };
        if snapshot.schema_version != A::STATE_SCHEMA_VERSION {
            warn!(
                stored = snapshot.schema_version,
                current = A::STATE_SCHEMA_VERSION,
                "ignoring snapshot of another state schema; replaying all events"
            );
            return Ok(());
        }
        match self
            .shared
            .codec
            .decode::<SnapshotIn<A::State>>(&snapshot.state)
        {
            Ok(decoded) => {
                self.state = decoded.state;
                self.version = snapshot.version;
                self.snapshot_version = snapshot.version;
                self.recent.restore(decoded.recent_commands);
            }
            Err(err) => {
                warn!(error = %err, version = %snapshot.version,
                    "ignoring snapshot that does not decode; replaying all events");
            }
        }
        Ok(())
    }

    /// Applies the events stored after the VM's version. Returns how many there were.
    async fn catch_up(&mut self) -> Result<u64, RuntimeError> {
        let mut events = self.shared.store.read(&self.actor, self.version.next());
        let mut count = 0;
        while let Some(event) = events.next().await {
            let event = event?;
            let expected = self.version.next();
            if event.version != expected {
                return Err(StoreError::corrupt(
                    format!("{} version {}", self.actor, event.version),
                    format!("expected version {expected} next"),
                )
                .into());
            }
            let decoded: A::Event =
                self.shared
                    .codec
                    .decode(&event.payload)
                    .map_err(|err| StoreError::Corrupt {
                        location: format!("{} version {}", self.actor, event.version),
                        reason: format!("{} event does not decode", event.event_type),
                        source: Some(Box::new(err)),
                    })?;
            A::apply(&mut self.state, &decoded);
            self.version = event.version;
            self.recent.record_event(&event);
            count += 1;
        }
        Ok(count)
    }

    async fn fail_activation(&mut self, err: RuntimeError) {
        tracing::error!(error = %err, "activation failed");
        let err = Arc::new(err);
        self.detach();
        while let Some(message) = self.rx.recv().await {
            let failure = || RuntimeError::Activation {
                actor: self.actor.clone(),
                source: err.clone(),
            };
            match message {
                Message::Command(envelope) => {
                    if let Some(reply_to) = envelope.reply_to {
                        let _ = reply_to.send(Err(AskError::Runtime(failure())));
                    }
                }
                Message::Inspect(reply_to) => {
                    let _ = reply_to.send(Err(failure()));
                }
                Message::Stop(ack) => {
                    let _ = ack.send(());
                }
                Message::CatchUp(_) => {}
            }
        }
    }

    // ----- serving ----------------------------------------------------------------------------

    async fn serve(&mut self) {
        let idle = self.shared.config.idle_timeout;
        let mut last_activity = tokio::time::Instant::now();
        let sleep = tokio::time::sleep(idle);
        tokio::pin!(sleep);

        loop {
            tokio::select! {
                biased;
                message = self.rx.recv() => {
                    // The map keeps a sender while the VM is attached, so the channel cannot
                    // close here; treat it as a stop all the same.
                    let Some(message) = message else {
                        self.stop(Vec::new()).await;
                        return;
                    };
                    last_activity = tokio::time::Instant::now();
                    if let Flow::Stop(ack) = self.dispatch(message).await {
                        self.stop(vec![ack]).await;
                        return;
                    }
                }
                () = &mut sleep => {
                    let deadline = last_activity + idle;
                    if tokio::time::Instant::now() >= deadline {
                        debug!("passivating idle actor");
                        self.stop(Vec::new()).await;
                        return;
                    }
                    sleep.as_mut().reset(deadline);
                }
            }
        }
    }

    async fn dispatch(&mut self, message: Message<A>) -> Flow {
        match message {
            Message::Command(first) => {
                // Take the commands already waiting so one append can carry them all.
                let mut batch = vec![first];
                let mut deferred = None;
                while batch.len() < self.shared.config.max_batch {
                    match self.rx.try_recv() {
                        Ok(Message::Command(envelope)) => batch.push(envelope),
                        Ok(other) => {
                            deferred = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                m::mailbox_depth(A::KIND, batch.len() + self.rx.len());
                self.process(batch).await;
                match deferred {
                    Some(message) => Box::pin(self.dispatch(message)).await,
                    None => Flow::Continue,
                }
            }
            Message::Inspect(reply_to) => {
                let _ = reply_to.send(Ok((self.state.clone(), self.version)));
                Flow::Continue
            }
            Message::Stop(ack) => Flow::Stop(ack),
            Message::CatchUp(version) => {
                self.follow(version).await;
                Flow::Continue
            }
        }
    }

    /// Reads the events another writer stored, when `version` is ahead of the VM.
    async fn follow(&mut self, version: Version) {
        if version <= self.version {
            return;
        }
        match self.catch_up().await {
            Ok(count) => debug!(count, version = %self.version, "applied events of another writer"),
            // The next append conflicts and catches up again, so nothing is lost here.
            Err(err) => warn!(error = %err, "could not read events of another writer"),
        }
    }

    /// Removes the VM from the kind's map, so new messages go to a new VM.
    fn detach(&mut self) {
        let generation = self.generation;
        self.kind
            .vms
            .remove_if(&self.actor.id, |_, handle| handle.generation == generation);
        self.rx.close();
    }

    /// Passivates: detaches, serves the messages that were already queued (none is lost), takes
    /// a final snapshot and acknowledges the stop requests.
    async fn stop(&mut self, mut acks: Vec<oneshot::Sender<()>>) {
        self.detach();
        while let Some(message) = self.rx.recv().await {
            match message {
                Message::Command(envelope) => self.process(vec![envelope]).await,
                Message::Inspect(reply_to) => {
                    let _ = reply_to.send(Ok((self.state.clone(), self.version)));
                }
                Message::Stop(ack) => acks.push(ack),
                Message::CatchUp(_) => {}
            }
        }
        if self.shared.config.snapshot_on_stop && self.version > self.snapshot_version {
            self.save_snapshot().await;
        }
        m::passivated(A::KIND);
        for ack in acks {
            let _ = ack.send(());
        }
    }

    // ----- the command path -------------------------------------------------------------------

    /// Decides every command of the batch, stores all their events in one append, applies them
    /// and replies. On a conflict it catches up and decides again, a bounded number of times.
    async fn process(&mut self, batch: Vec<Envelope<A>>) {
        let started = Instant::now();
        let commands = batch.len() as u64;
        let mut attempt = 0;
        loop {
            // One clock reading serves the whole batch: idempotency ages, event timestamps and
            // the recorded command times.
            let now = chrono::Utc::now();
            let (decisions, events) = self.decide(&batch, now);
            if events.is_empty() {
                self.reply(batch, decisions, None);
                break;
            }

            let count = events.len() as u64;
            let expected = ExpectedVersion::from(self.version);
            let appended = self
                .shared
                .store
                .append(&self.actor, expected, events)
                .await;
            match appended {
                Ok(outcome) => {
                    m::appended(A::KIND, count, started.elapsed());
                    self.commit(&batch, &decisions, now);
                    if outcome.version != self.version {
                        warn!(store = %outcome.version, vm = %self.version,
                            "store returned another version than the VM counted; following the store");
                        self.version = outcome.version;
                    }
                    self.shared.note_append(A::KIND, outcome.position);
                    self.reply(batch, decisions, None);
                    self.maybe_snapshot().await;
                    break;
                }
                Err(StoreError::Conflict { actual, .. })
                    if attempt < self.shared.config.max_conflict_retries =>
                {
                    attempt += 1;
                    m::conflict(A::KIND, true);
                    debug!(attempt, vm = %self.version, store = %actual, "conflict; catching up");
                    if let Err(err) = self.catch_up().await {
                        self.reply(batch, decisions, Some(&err));
                        break;
                    }
                }
                Err(err) => {
                    if err.kind() == ErrorKind::Conflict {
                        m::conflict(A::KIND, false);
                    }
                    warn!(error = %err, commands = batch.len(), "append failed");
                    let err = RuntimeError::Store(err);
                    self.reply(batch, decisions, Some(&err));
                    break;
                }
            }
        }
        m::commands(A::KIND, commands);
        tracing::Span::current().record("version", self.version.get());
    }

    /// Decides the batch against the current state. Returns each command's decision and the
    /// events to append.
    fn decide(
        &self,
        batch: &[Envelope<A>],
        now: DateTime<Utc>,
    ) -> (Vec<Decision<A>>, Vec<NewEvent>) {
        let mut decisions: Vec<Decision<A>> = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        // A copy of the state is needed only when a later command must see earlier events.
        let mut working: Option<A::State> = None;
        // First index of each command id, for batches too long to search by scanning.
        let mut first_index: HashMap<&str, usize> = HashMap::new();

        for (index, envelope) in batch.iter().enumerate() {
            if let Some(recent) = self.recent.get(&envelope.command_id, now) {
                decisions.push(Decision::Duplicate(recent.reply.clone()));
                continue;
            }
            let earlier = if batch.len() <= SCAN_BATCH_LEN {
                batch[..index]
                    .iter()
                    .position(|e| e.command_id == envelope.command_id)
            } else {
                match first_index.entry(envelope.command_id.as_str()) {
                    hash_map::Entry::Occupied(entry) => Some(*entry.get()),
                    hash_map::Entry::Vacant(entry) => {
                        entry.insert(index);
                        None
                    }
                }
            };
            if let Some(earlier) = earlier {
                decisions.push(Decision::SameAs(earlier));
                continue;
            }

            let state = working.as_ref().unwrap_or(&self.state);
            let (decided, reply) = match A::handle(state, &envelope.command) {
                Err(rejection) => {
                    decisions.push(Decision::Rejected(rejection));
                    continue;
                }
                Ok(decided) => decided,
            };
            if decided.is_empty() {
                decisions.push(Decision::Answered(reply));
                continue;
            }

            match self.encode(envelope, &decided, &reply, now, &mut events) {
                Ok(reply_bytes) => {
                    if index + 1 < batch.len() {
                        let working = working.get_or_insert_with(|| self.state.clone());
                        for event in &decided {
                            A::apply(working, event);
                        }
                    }
                    decisions.push(Decision::Accepted {
                        events: decided,
                        reply,
                        reply_bytes,
                    });
                }
                Err(err) => decisions.push(Decision::Failed(err)),
            }
        }
        (decisions, events)
    }

    /// Encodes the reply and the events of one command, appending the events to `out`. On an
    /// error `out` is left as it was.
    fn encode(
        &self,
        envelope: &Envelope<A>,
        events: &[A::Event],
        reply: &A::Reply,
        timestamp: DateTime<Utc>,
        out: &mut Vec<NewEvent>,
    ) -> Result<Bytes, RuntimeError> {
        let codec = self.shared.codec;
        let reply_bytes = Bytes::from(codec.encode(reply)?);
        let last = events.len() - 1;
        let start = out.len();
        for (index, event) in events.iter().enumerate() {
            let metadata = EventMetadata {
                timestamp,
                command_id: Some(envelope.command_id.clone()),
                correlation_id: envelope.correlation_id.clone(),
                causation_id: envelope.causation_id.clone(),
                node: Some(self.shared.config.node.clone()),
                reply: (index == last).then(|| reply_bytes.clone()),
            };
            let payload = match codec.encode(event) {
                Ok(payload) => Bytes::from(payload),
                Err(err) => {
                    out.truncate(start);
                    return Err(err.into());
                }
            };
            out.push(NewEvent {
                event_type: A::event_name(event).to_owned(),
                schema_version: A::EVENT_SCHEMA_VERSION,
                payload,
                metadata,
            });
        }
        Ok(reply_bytes)
    }

    /// Applies the stored events of the accepted commands and remembers their command ids.
    fn commit(&mut self, batch: &[Envelope<A>], decisions: &[Decision<A>], now: DateTime<Utc>) {
        for (envelope, decision) in batch.iter().zip(decisions) {
            if let Decision::Accepted {
                events,
                reply_bytes,
                ..
            } = decision
            {
                for event in events {
                    A::apply(&mut self.state, event);
                }
                self.version = self.version.advance(events.len() as u64);
                self.recent.record(RecentCommand {
                    id: envelope.command_id.clone(),
                    version: self.version,
                    at: now,
                    reply: Some(reply_bytes.clone()),
                });
            }
        }
    }

    /// Sends every command its outcome. With `failure`, the append failed: commands whose
    /// decision depended on it get the error; duplicates of stored commands keep their reply.
    fn reply(
        &self,
        batch: Vec<Envelope<A>>,
        decisions: Vec<Decision<A>>,
        failure: Option<&RuntimeError>,
    ) {
        let codec = self.shared.codec;
        // Encoded copies of earlier outcomes, kept only when a command repeats an earlier one of
        // the same batch.
        let keep_copies = decisions.iter().any(|d| matches!(d, Decision::SameAs(_)));
        let mut encoded: Vec<Option<Result<Bytes, String>>> = Vec::new();
        let mut after_accepted = false;

        for (envelope, decision) in batch.into_iter().zip(decisions) {
            let (outcome, copy) = match decision {
                Decision::Duplicate(reply) => {
                    m::duplicate(A::KIND);
                    let outcome = decode_reply::<A>(codec, reply.as_ref());
                    (outcome, reply.map(Ok))
                }
                Decision::SameAs(earlier) => {
                    let outcome = match encoded.get(earlier).cloned().flatten() {
                        Some(Ok(bytes)) => decode_reply::<A>(codec, Some(&bytes)),
                        Some(Err(message)) => Err(AskError::Runtime(RuntimeError::Store(
                            StoreError::backend("runtime", message, "repeated command failed"),
                        ))),
                        None => decode_reply::<A>(codec, None),
                    };
                    (outcome, None)
                }
                _ if failure.is_some() && (after_accepted || is_accepted(&decision)) => {
                    after_accepted |= is_accepted(&decision);
                    let err = copy_runtime_error(failure.unwrap_or(&RuntimeError::ShuttingDown));
                    let message = err.to_string();
                    (Err(AskError::Runtime(err)), Some(Err(message)))
                }
                Decision::Rejected(rejection) => {
                    let copy = codec
                        .encode(&rejection)
                        .map(|_| Err(format!("rejected: {rejection}")))
                        .ok();
                    (Err(AskError::Rejected(rejection)), copy)
                }
                Decision::Answered(reply) => {
                    let copy = codec.encode(&reply).ok().map(|b| Ok(Bytes::from(b)));
                    (Ok(reply), copy)
                }
                Decision::Accepted {
                    reply, reply_bytes, ..
                } => {
                    after_accepted = true;
                    (Ok(reply), Some(Ok(reply_bytes)))
                }
                Decision::Failed(err) => {
                    let message = err.to_string();
                    (Err(AskError::Runtime(err)), Some(Err(message)))
                }
            };
            if keep_copies {
                encoded.push(copy);
            }
            if let Some(reply_to) = envelope.reply_to {
                let _ = reply_to.send(outcome);
            }
        }
    }

    // ----- snapshots --------------------------------------------------------------------------

    async fn maybe_snapshot(&mut self) {
        if let Some(every) = self.kind.snapshot_every
            && self.version.get() - self.snapshot_version.get() >= every
        {
            self.save_snapshot().await;
        }
    }

    async fn save_snapshot(&mut self) {
        let envelope = SnapshotOut {
            state: &self.state,
            recent_commands: self.recent.to_vec(),
        };
        let bytes = match self.shared.codec.encode(&envelope) {
            Ok(bytes) => bytes,
            Err(err) => {
                warn!(error = %err, "snapshot state does not encode; skipping snapshot");
                return;
            }
        };
        let snapshot =
            Snapshot::new(self.version, bytes).with_schema_version(A::STATE_SCHEMA_VERSION);
        match self.shared.store.save_snapshot(&self.actor, snapshot).await {
            Ok(_) => {
                self.snapshot_version = self.version;
                m::snapshot(A::KIND);
            }
            Err(err) => warn!(error = %err, version = %self.version, "snapshot failed"),
        }
    }
}

fn is_accepted<A: Actor>(decision: &Decision<A>) -> bool {
    matches!(decision, Decision::Accepted { .. })
}

fn decode_reply<A: Actor>(
    codec: crate::codec::PayloadCodec,
    reply: Option<&Bytes>,
) -> Result<A::Reply, AskError<A::Error>> {
    let Some(bytes) = reply else {
        return Err(AskError::Runtime(RuntimeError::Store(StoreError::corrupt(
            "command reply",
            "the command was already stored but its reply was not",
        ))));
    };
    codec
        .decode(bytes)
        .map_err(|err| AskError::Runtime(RuntimeError::Codec(err)))
}

/// Makes a copy of `err` for one more caller. Store errors keep their kind and message; their
/// source becomes text, because backend errors cannot be cloned.
fn copy_runtime_error(err: &RuntimeError) -> RuntimeError {
    match err {
        RuntimeError::Store(store) => RuntimeError::Store(copy_store_error(store)),
        RuntimeError::Activation { actor, source } => RuntimeError::Activation {
            actor: actor.clone(),
            source: source.clone(),
        },
        RuntimeError::Timeout { actor, after } => RuntimeError::Timeout {
            actor: actor.clone(),
            after: *after,
        },
        other => RuntimeError::Store(StoreError::backend("runtime", other.to_string(), "failed")),
    }
}

fn copy_store_error(err: &StoreError) -> StoreError {
    let source_text = || {
        std::error::Error::source(err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    match err {
        StoreError::Conflict {
            actor,
            expected,
            actual,
        } => StoreError::Conflict {
            actor: actor.clone(),
            expected: *expected,
            actual: *actual,
        },
        StoreError::InvalidId(id) => StoreError::InvalidId(id.clone()),
        StoreError::InvalidInput { actor, reason } => StoreError::InvalidInput {
            actor: actor.clone(),
            reason: reason.clone(),
        },
        StoreError::PayloadTooLarge {
            actor,
            what,
            size,
            limit,
        } => StoreError::PayloadTooLarge {
            actor: actor.clone(),
            what,
            size: *size,
            limit: *limit,
        },
        StoreError::Unavailable { operation, .. } => {
            StoreError::unavailable(operation.clone(), source_text())
        }
        StoreError::Corrupt {
            location, reason, ..
        } => StoreError::corrupt(location.clone(), reason.clone()),
        StoreError::Backend {
            backend, operation, ..
        } => StoreError::backend(backend, operation.clone(), source_text()),
        other => StoreError::backend("runtime", other.to_string(), source_text()),
    }
}
