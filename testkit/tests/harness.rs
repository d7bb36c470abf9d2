//! The given/when/then harness on a small stock actor.

use aether::Actor;
use aether_testkit::ActorTest;
use serde::{Deserialize, Serialize};

struct Stock;

#[derive(Serialize, Deserialize)]
enum Command {
    Receive(u32),
    Ship(u32),
    Count,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Event {
    Received(u32),
    Shipped(u32),
}

#[derive(Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("cannot ship {requested}, only {available} in stock")]
struct OutOfStock {
    requested: u32,
    available: u32,
}

impl Actor for Stock {
    const KIND: &'static str = "stock";
    type Command = Command;
    type Event = Event;
    type State = u32;
    type Reply = u32;
    type Error = OutOfStock;

    fn handle(available: &u32, command: &Command) -> Result<(Vec<Event>, u32), OutOfStock> {
        match *command {
            Command::Receive(n) => Ok((vec![Event::Received(n)], available + n)),
            Command::Ship(n) if n > *available => Err(OutOfStock {
                requested: n,
                available: *available,
            }),
            Command::Ship(n) => Ok((vec![Event::Shipped(n)], available - n)),
            Command::Count => Ok((Vec::new(), *available)),
        }
    }

    fn apply(available: &mut u32, event: &Event) {
        match event {
            Event::Received(n) => *available += n,
            Event::Shipped(n) => *available -= n,
        }
    }
}

#[test]
fn accepted_command_checks_events_reply_state() {
    ActorTest::<Stock>::given([Event::Received(5)])
        .when(Command::Ship(2))
        .then_events([Event::Shipped(2)])
        .then_reply(3)
        .then_state(3);
}

#[test]
fn rejected_command_leaves_state() {
    let outcome = ActorTest::<Stock>::given([Event::Received(1)])
        .when(Command::Ship(4))
        .then_rejected(|err| err.requested == 4 && err.available == 1)
        .then_state(1);
    assert_eq!(
        outcome.rejection().to_string(),
        "cannot ship 4, only 1 in stock"
    );
}

#[test]
fn commands_chain_with_and_when() {
    ActorTest::<Stock>::new()
        .when(Command::Receive(10))
        .and_when(Command::Ship(7))
        .and_when(Command::Count)
        .then_no_events()
        .then_reply(3);
}

#[test]
#[should_panic(expected = "events decided for command Ship")]
fn wrong_events_fail_the_test() {
    ActorTest::<Stock>::given([Event::Received(5)])
        .when(Command::Ship(2))
        .then_events([Event::Shipped(3)]);
}

#[test]
#[should_panic(expected = "was rejected")]
fn reply_of_rejected_command_fails_the_test() {
    ActorTest::<Stock>::new()
        .when(Command::Ship(1))
        .then_reply(0);
}
