//! NATS JetStream event store and snapshotter for aether.
//!
//! [`JetStreamStore`] implements [`EventStore`](aether_core::EventStore) and
//! [`Snapshotter`](aether_core::Snapshotter) on a NATS server 2.10 or newer with JetStream,
//! single node or cluster.
//!
//! ```text
//! append(actor, expected, events)
//!   │  head cache: actor → (last stream sequence, version), fetched from the leader on a miss
//!   ▼
//! one message on <namespace>.<kind>.<base64url id>
//!   headers: Nats-Expected-Last-Subject-Sequence, Nats-Msg-Id
//!   payload: envelope { format 1, first version, events… }
//!   │
//!   ▼
//! stream <namespace> ──▶ read(actor): batched direct gets (2.11+) or an ordered consumer
//!                    ──▶ read_all / subscribe: ordered consumer, position = sequence·2¹⁶ + index
//! bucket <namespace>_snapshots ──▶ key <kind>.<base64url id>, newest version wins
//! ```
//!
//! ```no_run
//! use aether_core::{ActorRef, EventStore, ExpectedVersion, NewEvent};
//! use aether_jetstream::{JetStreamConfig, JetStreamStore};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = JetStreamConfig::new(["nats://127.0.0.1:4222"]).namespace("shop");
//! let store = JetStreamStore::connect(config).await?;
//! let actor = ActorRef::parse("invoice", "536365")?;
//! let outcome = store
//!     .append(&actor, ExpectedVersion::NoEvents, vec![NewEvent::new("Opened", "{}")])
//!     .await?;
//! assert_eq!(outcome.version.get(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - One stream per namespace, named like the namespace, with the subjects `<namespace>.>`,
//!   direct gets allowed, and message deletion and purging denied (both would leave gaps in
//!   actor versions). [`JetStreamStore::connect`] creates it with the configured storage (file
//!   by default) and replicas, or uses an existing one as it is.
//! - One subject per actor: `<namespace>.<kind>.<id>`, the id always encoded as unpadded
//!   base64url, so every UTF-8 id (dots, `*`, `>`, spaces, control characters) becomes one
//!   subject token and decodes back unambiguously.
//! - One message per append, holding all its events in a binary envelope with a format
//!   version byte. One message is stored whole or not at all on every server version, so an
//!   append is atomic. Decoding checks every length; bad bytes read as
//!   [`StoreError::Corrupt`](aether_core::StoreError::Corrupt), never as a panic.
//! - Versions: the envelope stores the version of its first event, so an actor's version is
//!   the first version plus the event count, minus one, of its last message.
//! - Positions: the event at index `i` of the message at stream sequence `s` has position
//!   `s · 65,536 + i`. Positions grow strictly in stream order and a reader resumes inside a
//!   message. Hence at most [`MAX_EVENTS_PER_APPEND`] (65,535) events per append.
//! - Snapshots: the KV bucket `<namespace>_snapshots` (history 1), key `<kind>.<base64url id>`.
//!   A save writes with the key's revision as the expectation and never replaces a newer
//!   version, nor saves one ahead of the actor's last event.
//!
//! # Appends
//!
//! Every publish carries `Nats-Expected-Last-Subject-Sequence` with the stream sequence of the
//! actor's last message: the server rejects it with error 10071 when another writer got
//! there first, and the store returns
//! [`StoreError::Conflict`](aether_core::StoreError::Conflict) with the actual version, read
//! from the stream leader. The store caches each actor's last sequence and version, drops the
//! entry when an append fails or conflicts, and refetches on a miss. Appends to one actor from
//! one store run one after another: the second of two concurrent appends waits for the first
//! and then conflicts unless its expectation still matches. Appends to different actors are
//! published side by side and their acknowledgements awaited concurrently, so throughput grows
//! with the number of active actors.
//!
//! `Nats-Msg-Id` is derived from the command id when every event of the append carries the same
//! one (and from the actor, because the server's duplicate window spans all subjects), else
//! random. A retry of an append whose outcome was unknown
//! ([`StoreError::Unavailable`](aether_core::StoreError::Unavailable)) returns the original
//! outcome when the first try was stored. While the expectation still matches, the server's
//! duplicate acknowledgement reports it. Otherwise the store looks for the command's events
//! among the actor's next 1,000 events, because the server checks the expected sequence
//! before the message id (seen on 2.15.1).
//!
//! # Reads
//!
//! [`read`](aether_core::EventStore::read) fetches the actor's last sequence from the stream
//! leader, then its messages up to that sequence. On servers 2.11 and newer one batched direct
//! get fetches the first 256 messages ([`JetStreamConfig::read_batch`]), which covers most
//! actors in one round trip. An ordered consumer filtered on the actor's subject streams the
//! rest, and all of it on older servers. A direct get may be served by a replica that lags, so
//! the read repeats it, and the consumer waits, until the leader's sequence is reached.
//!
//! Reading one actor costs the server a scan over the stream range that holds its messages,
//! so actors whose events are spread among many others' read slower than the stream replays.
//! [`read_all`](aether_core::EventStore::read_all) ends at the last message matching its
//! filter when it starts; [`subscribe`](aether_core::EventStore::subscribe) keeps an ordered
//! consumer open and follows new messages.
//!
//! # Durability
//!
//! An append is acknowledged once the stream has stored it:
//!
//! - Default server settings: the server acknowledges before the message reaches the disk and
//!   fsyncs every 2 minutes (`sync_interval`). On a single server, a crash of the server or of
//!   its machine can lose the acknowledged appends that were not synced yet.
//! - `jetstream { sync_interval: always }` in the server config: every message is fsynced
//!   before its acknowledgement, so acknowledged appends survive power loss, at a large cost
//!   in throughput (see the crate's `throughput` benchmark).
//! - Three replicas in a cluster (`replicas(3)`): the acknowledgement waits for a majority of
//!   the replicas, so acknowledged appends survive the loss of any one server, also with the
//!   default sync interval. Losing a majority of the replicas before they synced can still
//!   lose them.
//! - Memory storage ([`Storage::Memory`]) keeps nothing across a server restart.
//!
//! # Errors and limits
//!
//! An append or head request that no server responds to stored nothing, so the store sends it
//! again, with pauses of up to 250 ms, until the request timeout has passed. In a cluster this
//! covers the moments in which a new stream's subjects reach the other servers and in which a
//! stream elects a leader. Timeouts, lost connections, no responders after that wait and a
//! cluster without a leader are
//! [`StoreError::Unavailable`](aether_core::StoreError::Unavailable); retrying with the same
//! expectation is safe. The store takes its [`StoreLimits`](aether_core::StoreLimits) from the
//! server's `max_payload`, minus 8 KiB for the envelope and headers, and checks the encoded
//! append against `max_payload` before sending, so an oversized append fails with
//! [`StoreError::PayloadTooLarge`](aether_core::StoreError::PayloadTooLarge) and sends nothing.

mod append;
mod config;
mod envelope;
mod error;
mod heads;
mod layout;
mod read;
mod snapshots;
mod store;

pub use config::{Auth, JetStreamConfig, MAX_NAMESPACE_LEN, Storage, Tls};
pub use envelope::MAX_EVENTS_PER_APPEND;
pub use error::{ConnectError, ConnectFailure, MIN_SERVER_VERSION};
pub use store::JetStreamStore;
