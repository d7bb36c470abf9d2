//! Event records: what a caller appends and what a store returns.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{ActorKind, ActorRef};
use crate::version::{Position, Version};

/// Facts about how and why an event was written. Stored with every event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// When the writer created the event, in UTC.
    pub timestamp: DateTime<Utc>,
    /// Id of the command that produced the event. Repeating a command id is how a caller asks for
    /// idempotent delivery.
    pub command_id: Option<String>,
    /// Id shared by every message of one business flow.
    pub correlation_id: Option<String>,
    /// Id of the message (command or event) that directly caused this one.
    pub causation_id: Option<String>,
    /// Name of the node that wrote the event.
    pub node: Option<String>,
    /// The encoded reply to the command, set on the last event a command produced. It lets a
    /// runtime reply to a repeated command id with the original reply after a restart.
    pub reply: Option<Bytes>,
}

impl EventMetadata {
    /// Metadata stamped with the current time and no ids.
    pub fn now() -> Self {
        Self {
            timestamp: Utc::now(),
            command_id: None,
            correlation_id: None,
            causation_id: None,
            node: None,
            reply: None,
        }
    }

    /// Sets the command id.
    pub fn with_command_id(mut self, id: impl Into<String>) -> Self {
        self.command_id = Some(id.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }

    /// Sets the writing node.
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Sets the encoded command reply.
    pub fn with_reply(mut self, reply: impl Into<Bytes>) -> Self {
        self.reply = Some(reply.into());
        self
    }
}

impl Default for EventMetadata {
    fn default() -> Self {
        Self::now()
    }
}

/// An event to append: an already encoded payload plus its type, schema version and metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Name of the event type, for example `LineAdded`.
    pub event_type: String,
    /// Version of the payload's schema, so readers can upcast old events.
    pub schema_version: u32,
    /// The encoded event. Stores keep the bytes exactly as given.
    pub payload: Bytes,
    /// The ids, time and node of the write.
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// An event with schema version 1 and metadata stamped now.
    pub fn new(event_type: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            event_type: event_type.into(),
            schema_version: 1,
            payload: payload.into(),
            metadata: EventMetadata::now(),
        }
    }

    /// Sets the schema version.
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.schema_version = schema_version;
        self
    }

    /// Replaces the metadata.
    pub fn with_metadata(mut self, metadata: EventMetadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as stored: the appended event plus its actor, version and position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The actor the event belongs to.
    pub actor: ActorRef,
    /// The actor's version after this event (1 for its first event).
    pub version: Version,
    /// The store-wide position of the event.
    pub position: Position,
    /// Name of the event type.
    pub event_type: String,
    /// Version of the payload's schema.
    pub schema_version: u32,
    /// The encoded event, exactly as appended.
    pub payload: Bytes,
    /// The ids, time and node of the write.
    pub metadata: EventMetadata,
}

/// A selection of events for a store-wide read or subscription.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events of these kinds; empty means every kind.
    pub kinds: Vec<ActorKind>,
    /// Only events of this one actor.
    pub actor: Option<ActorRef>,
}

impl EventFilter {
    /// Returns a filter that lets every event through.
    pub fn all() -> Self {
        Self::default()
    }

    /// Returns a filter for the given kinds.
    pub fn kinds(kinds: impl IntoIterator<Item = ActorKind>) -> Self {
        Self {
            kinds: kinds.into_iter().collect(),
            actor: None,
        }
    }

    /// Returns a filter for one actor.
    pub fn actor(actor: ActorRef) -> Self {
        Self {
            kinds: Vec::new(),
            actor: Some(actor),
        }
    }

    /// Returns whether an event of `actor` passes the filter.
    pub fn matches(&self, actor: &ActorRef) -> bool {
        if let Some(only) = &self.actor
            && only != actor
        {
            return false;
        }
        self.kinds.is_empty() || self.kinds.contains(&actor.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_matches_kinds_and_actor() {
        let a = ActorRef::parse("invoice", "1").unwrap();
        let b = ActorRef::parse("customer", "1").unwrap();
        assert!(EventFilter::all().matches(&a));
        let kinds = EventFilter::kinds([a.kind.clone()]);
        assert!(kinds.matches(&a));
        assert!(!kinds.matches(&b));
        let one = EventFilter::actor(b.clone());
        assert!(one.matches(&b));
        assert!(!one.matches(&a));
    }
}
