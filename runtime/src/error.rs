//! Errors of the runtime.

use std::time::Duration;

use aether_core::{ActorRef, CodecError, IdError, StoreError};

/// A failure to carry out a command, other than a domain rejection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The actor kind or id is not valid.
    #[error(transparent)]
    InvalidId(#[from] IdError),

    /// No actor kind of this name is registered.
    #[error("unknown actor kind {kind:?}; registered kinds: {registered}")]
    UnknownKind {
        /// The requested kind.
        kind: String,
        /// The registered kinds, comma separated.
        registered: String,
    },

    /// The kind exists but has no command of this name.
    #[error("actor kind {kind} has no command {command:?}; its commands are: {known}")]
    UnknownCommand {
        /// The actor kind.
        kind: String,
        /// The requested command name.
        command: String,
        /// The kind's command names, comma separated.
        known: String,
    },

    /// The payload of an untyped message is not a valid command.
    #[error("payload of command {command:?} for actor kind {kind} could not be decoded")]
    UndecodablePayload {
        /// The actor kind.
        kind: String,
        /// The command name.
        command: String,
        /// The decoder's error.
        #[source]
        source: CodecError,
    },

    /// The store failed; a [`StoreError::Conflict`] here means the conflict persisted through
    /// every retry.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A command, event, state or reply could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),

    /// The actor could not be activated, for example because a stored event no longer decodes.
    #[error("activation of {actor} failed")]
    Activation {
        /// The actor.
        actor: ActorRef,
        /// The cause, shared by every message that was waiting for the activation.
        #[source]
        source: std::sync::Arc<RuntimeError>,
    },

    /// No reply arrived within the ask timeout. The command may still be carried out.
    #[error("no reply from {actor} within {after:?}")]
    Timeout {
        /// The actor asked.
        actor: ActorRef,
        /// The timeout that passed.
        after: Duration,
    },

    /// The runtime is shutting down and takes no new commands.
    #[error("the runtime is shutting down")]
    ShuttingDown,

    /// The actor's mailbox is full (only from `try_tell`).
    #[error("mailbox of {actor} is full")]
    MailboxFull {
        /// The actor.
        actor: ActorRef,
    },
}

impl RuntimeError {
    /// Returns whether this is a store conflict that outlasted the retries.
    pub fn is_conflict(&self) -> bool {
        matches!(self, RuntimeError::Store(StoreError::Conflict { .. }))
    }
}

/// The outcome of a failed `ask`: the actor rejected the command, or the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum AskError<E> {
    /// The actor's `handle` rejected the command. Nothing was stored.
    #[error("command rejected: {0}")]
    Rejected(E),
    /// The runtime or the store failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl<E> AskError<E> {
    /// Returns the domain rejection, if this is one.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            AskError::Rejected(e) => Some(e),
            AskError::Runtime(_) => None,
        }
    }

    /// Returns the runtime error, if this is one.
    pub fn runtime(&self) -> Option<&RuntimeError> {
        match self {
            AskError::Rejected(_) => None,
            AskError::Runtime(e) => Some(e),
        }
    }
}

impl<E> From<StoreError> for AskError<E> {
    fn from(err: StoreError) -> Self {
        AskError::Runtime(RuntimeError::Store(err))
    }
}

impl<E> From<IdError> for AskError<E> {
    fn from(err: IdError) -> Self {
        AskError::Runtime(RuntimeError::InvalidId(err))
    }
}
