//! Event-sourced virtual actors with pluggable storage.
//!
//! An actor is a kind and an id. The first message to it activates it: its state is rebuilt from
//! the newest snapshot and the events after it. Commands are then decided one batch at a time
//! against that state. The resulting events are appended with an optimistic version check and
//! applied, and only then does the caller get the reply. An idle actor is passivated and comes
//! back on its next message.
//!
//! ```text
//!  ask/tell ──▶ mailbox ──▶ handle(state, command) ──▶ events ──append(expected version)──▶ store
//!                               ▲                                   │
//!                               └──── apply(state, event) ◀─────────┘ ──▶ policies ──▶ other actors
//! ```
//!
//! A complete actor, registered and asked:
//!
//! ```
//! use aether::{Actor, MemoryStore, Runtime};
//! use serde::{Deserialize, Serialize};
//!
//! struct Account;
//!
//! #[derive(Serialize, Deserialize)]
//! enum Command { Deposit(u64), Withdraw(u64) }
//!
//! #[derive(Serialize, Deserialize)]
//! enum Event { Deposited(u64), Withdrew(u64) }
//!
//! #[derive(Debug, thiserror::Error, Serialize, Deserialize)]
//! #[error("insufficient funds: balance {balance}, requested {requested}")]
//! struct Insufficient { balance: u64, requested: u64 }
//!
//! impl Actor for Account {
//!     const KIND: &'static str = "account";
//!     type Command = Command;
//!     type Event = Event;
//!     type State = u64;
//!     type Reply = u64;
//!     type Error = Insufficient;
//!
//!     fn handle(balance: &u64, command: &Command) -> Result<(Vec<Event>, u64), Insufficient> {
//!         match *command {
//!             Command::Deposit(amount) => Ok((vec![Event::Deposited(amount)], balance + amount)),
//!             Command::Withdraw(amount) if amount > *balance => {
//!                 Err(Insufficient { balance: *balance, requested: amount })
//!             }
//!             Command::Withdraw(amount) => Ok((vec![Event::Withdrew(amount)], balance - amount)),
//!         }
//!     }
//!
//!     fn apply(balance: &mut u64, event: &Event) {
//!         match event {
//!             Event::Deposited(amount) => *balance += amount,
//!             Event::Withdrew(amount) => *balance -= amount,
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder(MemoryStore::new()).register::<Account>().build()?;
//! assert_eq!(runtime.ask::<Account>("alice", Command::Deposit(100)).await?, 100);
//! assert_eq!(runtime.ask::<Account>("alice", Command::Withdraw(30)).await?, 70);
//! let refused = runtime.ask::<Account>("alice", Command::Withdraw(500)).await;
//! assert!(refused.unwrap_err().rejection().is_some());
//! runtime.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Stores: [`MemoryStore`] here, `aether::sled::SledStore` with the `sled` feature (the
//! default), `aether::jetstream::JetStreamStore` with `jetstream` and
//! `aether::postgres::PostgresStore` with `postgres`.

mod actor;
mod builder;
mod codec;
mod config;
mod error;
mod follower;
mod idempotency;
mod kind;
mod mailbox;
pub mod metrics;
mod model;
mod names;
mod passivation;
mod policy;
mod runtime;
mod shared;
mod untyped;
mod vm;

pub use actor::{Actor, Decided};
pub use builder::{BuildError, RuntimeBuilder};
pub use codec::PayloadCodec;
pub use config::RuntimeConfig;
pub use error::{AskError, RuntimeError};
pub use model::{KindModel, Model, PolicyModel};
pub use policy::CHECKPOINT_KIND;
pub use runtime::Runtime;
pub use shared::CommandOptions;
pub use untyped::{Rejection, UntypedMessage, UntypedReply};

/// The storage contracts and shared types, re-exported from `aether-core`.
pub use aether_core as core;
pub use aether_core::{
    ActorId, ActorKind, ActorRef, Codec, ErrorKind, EventStore, ExpectedVersion, MemoryStore,
    Position, Snapshotter, StoreError, Version,
};

/// The embedded sled store.
#[cfg(feature = "sled")]
pub use aether_sled as sled;

/// The NATS JetStream store.
#[cfg(feature = "jetstream")]
pub use aether_jetstream as jetstream;

/// The PostgreSQL store.
#[cfg(feature = "postgres")]
pub use aether_postgres as postgres;

/// Compiles the README's Rust examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
