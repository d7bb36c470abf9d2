//! A given/when/then harness for one actor's decisions, without a store or a runtime.
//!
//! `given` events build the state through [`Actor::apply`], `when` runs [`Actor::handle`], and the
//! `then_*` assertions check the decided events, the reply, the rejection and the state after the
//! events. Every decided event and the resulting state also go through a JSON round trip, so an
//! event that would not survive storage fails the test here rather than in production.
//!
//! ```
//! use aether::Actor;
//! use aether_testkit::ActorTest;
//! use serde::{Deserialize, Serialize};
//!
//! struct Light;
//!
//! #[derive(Serialize, Deserialize)]
//! enum Command { Switch }
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! enum Event { SwitchedOn, SwitchedOff }
//!
//! #[derive(Debug, thiserror::Error, Serialize, Deserialize)]
//! #[error("never")]
//! struct Never;
//!
//! impl Actor for Light {
//!     const KIND: &'static str = "light";
//!     type Command = Command;
//!     type Event = Event;
//!     type State = bool;
//!     type Reply = bool;
//!     type Error = Never;
//!
//!     fn handle(on: &bool, _: &Command) -> Result<(Vec<Event>, bool), Never> {
//!         let event = if *on { Event::SwitchedOff } else { Event::SwitchedOn };
//!         Ok((vec![event], !on))
//!     }
//!
//!     fn apply(on: &mut bool, event: &Event) {
//!         *on = *event == Event::SwitchedOn;
//!     }
//! }
//!
//! ActorTest::<Light>::given([Event::SwitchedOn])
//!     .when(Command::Switch)
//!     .then_events([Event::SwitchedOff])
//!     .then_reply(false)
//!     .then_state(false);
//! ```

use std::fmt::Debug;

use aether::{Actor, Decided};
use aether_core::{Codec, JsonCodec};

/// The state of one actor before a command: the `given` part of a test.
pub struct ActorTest<A: Actor> {
    state: A::State,
}

impl<A: Actor> ActorTest<A> {
    /// Starts from the default state with `events` applied in order.
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Self {
        let mut state = A::State::default();
        for event in events {
            A::apply(&mut state, &event);
        }
        Self { state }
    }

    /// Starts from the default state, as a new actor has.
    pub fn new() -> Self {
        Self {
            state: A::State::default(),
        }
    }

    /// Starts from `state`.
    pub fn given_state(state: A::State) -> Self {
        Self { state }
    }

    /// Decides `command` against the state.
    pub fn when(self, command: A::Command) -> Outcome<A> {
        Outcome::decide(self.state, command)
    }
}

impl<A: Actor> Default for ActorTest<A> {
    fn default() -> Self {
        Self::new()
    }
}

/// The decision of `handle` on one command, and the state after applying its events.
pub struct Outcome<A: Actor> {
    command_name: &'static str,
    result: Decided<A>,
    state: A::State,
}

impl<A: Actor> Outcome<A> {
    fn decide(mut state: A::State, command: A::Command) -> Self {
        let command_name = A::command_name(&command);
        let result = A::handle(&state, &command);
        if let Ok((events, _)) = &result {
            for event in events {
                let stored = round_trip::<A::Event>(event, "event");
                A::apply(&mut state, &stored);
            }
            round_trip::<A::State>(&state, "state");
        }
        Self {
            command_name,
            result,
            state,
        }
    }

    /// Decides another command against the state this outcome left.
    pub fn and_when(self, command: A::Command) -> Outcome<A> {
        Outcome::decide(self.state, command)
    }

    /// Returns the decided events.
    ///
    /// # Panics
    ///
    /// Panics when the command was rejected.
    pub fn events(&self) -> &[A::Event] {
        match &self.result {
            Ok((events, _)) => events,
            Err(err) => panic!("command {} was rejected: {err}", self.command_name),
        }
    }

    /// Returns the reply.
    ///
    /// # Panics
    ///
    /// Panics when the command was rejected.
    pub fn reply(&self) -> &A::Reply {
        match &self.result {
            Ok((_, reply)) => reply,
            Err(err) => panic!("command {} was rejected: {err}", self.command_name),
        }
    }

    /// Returns the rejection.
    ///
    /// # Panics
    ///
    /// Panics when the command was accepted.
    pub fn rejection(&self) -> &A::Error {
        match &self.result {
            Ok((events, _)) => panic!(
                "command {} was accepted with {} events, expected a rejection",
                self.command_name,
                events.len()
            ),
            Err(err) => err,
        }
    }

    /// Returns the state after the decided events (unchanged after a rejection).
    pub fn state(&self) -> &A::State {
        &self.state
    }

    /// Asserts the decided events.
    ///
    /// # Panics
    ///
    /// Panics when the events differ or the command was rejected.
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) -> Self
    where
        A::Event: PartialEq + Debug,
    {
        let expected: Vec<_> = expected.into_iter().collect();
        assert_eq!(
            self.events(),
            expected.as_slice(),
            "events decided for command {}",
            self.command_name
        );
        self
    }

    /// Asserts that the command was accepted without events.
    ///
    /// # Panics
    ///
    /// Panics when there are events or the command was rejected.
    pub fn then_no_events(self) -> Self {
        let count = self.events().len();
        assert_eq!(
            count, 0,
            "command {} decided {count} events",
            self.command_name
        );
        self
    }

    /// Asserts the reply.
    ///
    /// # Panics
    ///
    /// Panics when the reply differs or the command was rejected.
    pub fn then_reply(self, expected: A::Reply) -> Self
    where
        A::Reply: PartialEq + Debug,
    {
        assert_eq!(
            self.reply(),
            &expected,
            "reply to command {}",
            self.command_name
        );
        self
    }

    /// Asserts that the command was rejected and that `check` accepts the rejection.
    ///
    /// # Panics
    ///
    /// Panics when the command was accepted or `check` returns false.
    pub fn then_rejected(self, check: impl FnOnce(&A::Error) -> bool) -> Self {
        let rejection = self.rejection();
        assert!(
            check(rejection),
            "command {} was rejected with an unexpected error: {rejection}",
            self.command_name
        );
        self
    }

    /// Asserts the state after the decided events.
    ///
    /// # Panics
    ///
    /// Panics when the state differs.
    pub fn then_state(self, expected: A::State) -> Self
    where
        A::State: PartialEq + Debug,
    {
        assert_eq!(
            &self.state, &expected,
            "state after command {}",
            self.command_name
        );
        self
    }
}

/// Encodes and decodes `value` as a store and a snapshot would.
fn round_trip<T>(value: &T, what: &str) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let bytes = JsonCodec
        .encode(value)
        .unwrap_or_else(|err| panic!("{what} does not encode: {err}"));
    JsonCodec
        .decode(&bytes)
        .unwrap_or_else(|err| panic!("{what} does not decode after encoding: {err}"))
}
