//! The cache of each actor's last stream sequence and version.
//!
//! Each cached actor has a slot behind an async mutex. An append locks its actor's slot from
//! the version check until the acknowledgement, so appends to one actor from one store run one
//! after another while appends to different actors are published side by side.

use std::sync::Arc;

use aether_core::{ActorRef, Version};
use dashmap::DashMap;
use tokio::sync::Mutex;

/// The end of an actor's stream: the stream sequence of its last message and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// Stream sequence of the actor's last message; 0 when it has none.
    pub(crate) sequence: u64,
    /// The actor's version; [`Version::ZERO`] when it has no events.
    pub(crate) version: Version,
}

impl Head {
    /// The head of an actor without events.
    pub(crate) const EMPTY: Head = Head {
        sequence: 0,
        version: Version::ZERO,
    };
}

/// An actor's slot: `None` until the head is fetched, and again after a failure that leaves
/// the head unknown.
pub(crate) type Slot = Arc<Mutex<Option<Head>>>;

/// The cache, bounded by a number of actors.
#[derive(Debug)]
pub(crate) struct Heads {
    slots: DashMap<ActorRef, Slot>,
    capacity: usize,
}

impl Heads {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: DashMap::new(),
            capacity,
        }
    }

    /// Returns the slot of `actor`, creating an empty one. When the cache grows past its
    /// capacity, every slot that no caller has locked is dropped.
    pub(crate) fn slot(&self, actor: &ActorRef) -> Slot {
        let slot = self.slots.entry(actor.clone()).or_default().clone();
        if self.slots.len() > self.capacity {
            // The map and the caller hold a slot in use, so a count of 1 means idle.
            self.slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slot
    }

    /// Number of cached actors.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn eviction_keeps_slots_in_use() {
        let heads = Heads::new(2);
        let a = ActorRef::parse("k", "a").unwrap();
        let held = heads.slot(&a);
        *held.lock().await = Some(Head {
            sequence: 4,
            version: Version::new(2),
        });
        for id in ["b", "c", "d"] {
            heads.slot(&ActorRef::parse("k", id).unwrap());
        }
        assert!(heads.len() <= 3, "idle slots must be dropped");
        let again = heads.slot(&a);
        assert!(Arc::ptr_eq(&held, &again));
        assert_eq!(again.lock().await.unwrap().sequence, 4);
    }
}
