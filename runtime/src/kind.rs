//! The type-erased view of a registered actor kind, used by the untyped path, listings,
//! passivation and shutdown.

use std::sync::Arc;

use aether_core::{ActorId, ActorRef, Codec, EventStore, Snapshotter, Version};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::actor::Actor;
use crate::codec::PayloadCodec;
use crate::error::{AskError, RuntimeError};
use crate::mailbox::Message;
use crate::model::KindModel;
use crate::shared::{CommandOptions, KindRuntime, Shared};
use crate::untyped::{Rejection, UntypedMessage, UntypedReply};

#[async_trait]
pub(crate) trait ErasedKind<S>: Send + Sync {
    fn model(&self) -> KindModel;

    async fn send_untyped(&self, shared: &Arc<Shared<S>>, message: UntypedMessage) -> UntypedReply;

    fn active(&self, out: &mut Vec<ActorRef>);

    fn collect_last_used(&self, out: &mut Vec<(u64, ActorRef)>);

    /// Asks a VM to stop without waiting; does nothing when its mailbox is full.
    fn request_stop(&self, id: &ActorId);

    /// Stops a VM and waits until it finished. Returns whether one was running.
    async fn stop(&self, id: &ActorId) -> bool;

    /// Tells an active VM that `version` was stored by another writer. Does nothing when the
    /// actor is not active or its mailbox is full: it reads the store on its next activation or
    /// conflict anyway.
    fn notify(&self, id: &ActorId, version: Version);
}

/// A registered kind behind the erased interface.
pub(crate) struct KindEntry<A: Actor>(pub(crate) Arc<KindRuntime<A>>);

#[async_trait]
impl<A: Actor, S: EventStore + Snapshotter> ErasedKind<S> for KindEntry<A> {
    fn model(&self) -> KindModel {
        KindModel {
            kind: A::KIND,
            commands: A::command_names(),
            events: A::event_names(),
            state_schema_version: A::STATE_SCHEMA_VERSION,
            snapshot_every: self.0.snapshot_every,
        }
    }

    async fn send_untyped(&self, shared: &Arc<Shared<S>>, message: UntypedMessage) -> UntypedReply {
        let id = ActorId::new(message.id.clone()).map_err(RuntimeError::from)?;

        // Check the command name against the model before decoding, so a wrong name is reported
        // as unknown rather than as a bad payload.
        let known = A::command_names();
        if !known.is_empty() && !known.contains(&message.command.as_str()) {
            return Err(RuntimeError::UnknownCommand {
                kind: A::KIND.to_owned(),
                command: message.command,
                known: known.join(", "),
            }
            .into());
        }
        let command: A::Command = decode_command::<A>(shared.codec, &message)?;

        let options = CommandOptions {
            command_id: message.command_id,
            ..CommandOptions::default()
        };
        match shared.ask::<A>(&self.0, id, command, options).await {
            Ok(reply) => Ok(Bytes::from(
                shared.codec.encode(&reply).map_err(RuntimeError::from)?,
            )),
            Err(AskError::Rejected(rejection)) => {
                let payload = shared
                    .codec
                    .encode(&rejection)
                    .map_err(RuntimeError::from)?;
                Err(AskError::Rejected(Rejection {
                    message: rejection.to_string(),
                    payload: Bytes::from(payload),
                }))
            }
            Err(AskError::Runtime(err)) => Err(AskError::Runtime(err)),
        }
    }

    fn active(&self, out: &mut Vec<ActorRef>) {
        out.extend(
            self.0
                .vms
                .iter()
                .map(|entry| ActorRef::new(self.0.kind.clone(), entry.key().clone())),
        );
    }

    fn collect_last_used(&self, out: &mut Vec<(u64, ActorRef)>) {
        out.extend(self.0.vms.iter().map(|entry| {
            let last_used = entry
                .value()
                .last_used
                .load(std::sync::atomic::Ordering::Relaxed);
            (
                last_used,
                ActorRef::new(self.0.kind.clone(), entry.key().clone()),
            )
        }));
    }

    fn request_stop(&self, id: &ActorId) {
        if let Some(handle) = self.0.vms.get(id) {
            let (ack, _) = oneshot::channel();
            let _ = handle.tx.try_send(Message::Stop(ack));
        }
    }

    fn notify(&self, id: &ActorId, version: Version) {
        if let Some(handle) = self.0.vms.get(id) {
            let _ = handle.tx.try_send(Message::CatchUp(version));
        }
    }

    async fn stop(&self, id: &ActorId) -> bool {
        let Some(handle) = self.0.vms.get(id).map(|h| h.clone()) else {
            return false;
        };
        let (ack, done) = oneshot::channel();
        if handle.tx.send(Message::Stop(ack)).await.is_err() {
            return false;
        }
        done.await.is_ok()
    }
}

fn decode_command<A: Actor>(
    codec: PayloadCodec,
    message: &UntypedMessage,
) -> Result<A::Command, RuntimeError> {
    let undecodable = |source| RuntimeError::UndecodablePayload {
        kind: A::KIND.to_owned(),
        command: message.command.clone(),
        source,
    };
    let command: A::Command = codec.decode(&message.payload).map_err(undecodable)?;
    let actual = A::command_name(&command);
    if actual != message.command {
        return Err(undecodable(aether_core::CodecError {
            codec: codec.name(),
            operation: "decode",
            type_name: std::any::type_name::<A::Command>(),
            source: format!("payload holds command {actual:?}").into(),
        }));
    }
    Ok(command)
}
