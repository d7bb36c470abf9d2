//! The window of recent command ids each actor keeps, so a repeated command gets its
//! original reply and stores nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use aether_core::{RecordedEvent, Version};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A command the actor already stored events for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecentCommand {
    pub(crate) id: String,
    /// The actor's version after the command's last event.
    pub(crate) version: Version,
    pub(crate) at: DateTime<Utc>,
    /// The encoded reply, stored on the command's last event.
    pub(crate) reply: Option<Bytes>,
}

/// Recent command ids, bounded by count and by age. Rebuilt from event metadata on replay and
/// carried in snapshots, so the window survives passivation and restarts.
#[derive(Debug)]
pub(crate) struct RecentCommands {
    capacity: usize,
    max_age: Duration,
    by_id: HashMap<Arc<str>, RecentCommand>,
    /// The ids in `by_id`, oldest first. Each shares its allocation with the map's key.
    order: VecDeque<Arc<str>>,
}

impl RecentCommands {
    pub(crate) fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            capacity,
            max_age,
            by_id: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Returns the stored command with this id, unless it is older than the maximum age at
    /// `now`.
    pub(crate) fn get(&self, id: &str, now: DateTime<Utc>) -> Option<&RecentCommand> {
        let entry = self.by_id.get(id)?;
        let age = now.signed_duration_since(entry.at);
        match age.to_std() {
            Ok(age) if age > self.max_age => None,
            _ => Some(entry),
        }
    }

    /// Records a command, replacing an entry with the same id. A command with several events is
    /// recorded once per event, and the last one carries the reply.
    pub(crate) fn record(&mut self, entry: RecentCommand) {
        if self.capacity == 0 {
            return;
        }
        if let Some(existing) = self.by_id.get_mut(entry.id.as_str()) {
            *existing = entry;
            return;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_id.remove(&oldest);
        }
        let key: Arc<str> = Arc::from(entry.id.as_str());
        self.order.push_back(key.clone());
        self.by_id.insert(key, entry);
    }

    /// Records the command of a stored event, if it has a command id.
    pub(crate) fn record_event(&mut self, event: &RecordedEvent) {
        if let Some(id) = &event.metadata.command_id {
            self.record(RecentCommand {
                id: id.clone(),
                version: event.version,
                at: event.metadata.timestamp,
                reply: event.metadata.reply.clone(),
            });
        }
    }

    /// Returns the entries, oldest first, for a snapshot.
    pub(crate) fn to_vec(&self) -> Vec<RecentCommand> {
        self.order
            .iter()
            .filter_map(|id| self.by_id.get(id).cloned())
            .collect()
    }

    /// Replaces the contents with entries from a snapshot.
    pub(crate) fn restore(&mut self, entries: Vec<RecentCommand>) {
        self.by_id.clear();
        self.order.clear();
        for entry in entries {
            self.record(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, version: u64) -> RecentCommand {
        RecentCommand {
            id: id.into(),
            version: Version::new(version),
            at: Utc::now(),
            reply: None,
        }
    }

    #[test]
    fn window_evicts_oldest() {
        let mut window = RecentCommands::new(2, Duration::from_secs(60));
        window.record(entry("a", 1));
        window.record(entry("b", 2));
        window.record(entry("c", 3));
        assert!(window.get("a", Utc::now()).is_none());
        assert_eq!(
            window.get("c", Utc::now()).unwrap().version,
            Version::new(3)
        );
        assert_eq!(window.to_vec().len(), 2);
    }

    #[test]
    fn window_forgets_old_entries() {
        let mut window = RecentCommands::new(8, Duration::from_secs(1));
        let mut old = entry("a", 1);
        old.at = Utc::now() - chrono::Duration::seconds(5);
        window.record(old);
        assert!(window.get("a", Utc::now()).is_none());
    }

    #[test]
    fn repeated_id_updates_in_place() {
        let mut window = RecentCommands::new(2, Duration::from_secs(60));
        window.record(entry("a", 1));
        window.record(entry("a", 2));
        window.record(entry("b", 3));
        assert_eq!(
            window.get("a", Utc::now()).unwrap().version,
            Version::new(2)
        );
        assert_eq!(window.to_vec().len(), 2);
    }
}
