//! The programming model: what a user implements to define a kind of actor.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::names;

/// The result of [`Actor::handle`]: the events to store and the reply, or the rejection.
pub type Decided<A> = Result<(Vec<<A as Actor>::Event>, <A as Actor>::Reply), <A as Actor>::Error>;

/// A kind of event-sourced actor.
///
/// `handle` decides: given the current state and a command it returns the events to store and a
/// reply, or a domain error. `apply` evolves the state by one event. Both must be pure, because
/// the runtime may call them again: `apply` on every activation, `handle` after a conflict, which
/// is also why `handle` borrows the command.
/// Effects belong in policies, which run after the events are stored.
///
/// Commands and events are usually enums; their serde variant names become the command names of
/// the untyped path and the stored event type names. Override [`Actor::command_name`] and
/// [`Actor::event_name`] for other shapes.
pub trait Actor: Send + Sync + 'static {
    /// The kind name, such as `invoice`: lowercase ASCII letters, digits, `_` and `-`.
    const KIND: &'static str;

    /// Version of the state's schema. Raise it when `State` changes incompatibly, so stored
    /// snapshots of the old shape are ignored and the state is rebuilt from the events.
    const STATE_SCHEMA_VERSION: u32 = 1;

    /// Version of the events' schema, stored with every event.
    const EVENT_SCHEMA_VERSION: u32 = 1;

    /// The commands callers send.
    type Command: Serialize + DeserializeOwned + Send + 'static;
    /// The events `handle` decides and the store keeps.
    type Event: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The state `apply` builds from the events. `Default` is the state before the first event.
    type State: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The reply a caller gets for an accepted command.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    /// The domain error of a rejected command.
    type Error: std::error::Error + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Decides on `command` against `state`: the events to store and the reply, or a rejection.
    /// An empty event list stores nothing and replies at once.
    ///
    /// # Errors
    ///
    /// The domain error when the command is rejected. Nothing is stored for it.
    fn handle(state: &Self::State, command: &Self::Command) -> Decided<Self>;

    /// Applies one stored event to the state.
    fn apply(state: &mut Self::State, event: &Self::Event);

    /// Returns the name of a command, such as `AddLine`. Defaults to its serde variant name.
    fn command_name(command: &Self::Command) -> &'static str {
        names::variant_name(command).unwrap_or("command")
    }

    /// Returns the stored type name of an event, such as `LineAdded`. Defaults to its serde
    /// variant name.
    fn event_name(event: &Self::Event) -> &'static str {
        names::variant_name(event).unwrap_or("event")
    }

    /// Lists every command name this kind accepts. Defaults to the serde variants of `Command`.
    fn command_names() -> Vec<&'static str> {
        names::variant_names::<Self::Command>().to_vec()
    }

    /// Lists every event name this kind stores. Defaults to the serde variants of `Event`.
    fn event_names() -> Vec<&'static str> {
        names::variant_names::<Self::Event>().to_vec()
    }
}
