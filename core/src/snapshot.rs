//! Snapshot records.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::version::Version;

/// An actor's encoded state as of one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The version whose events the state includes. Never above the actor's last stored event.
    pub version: Version,
    /// Version of the state's schema. A reader that finds another schema ignores the snapshot
    /// and replays the events instead.
    pub schema_version: u32,
    /// The encoded state, exactly as saved.
    pub state: Bytes,
    /// When the snapshot was taken, in UTC. Informational only: snapshots are chosen by version.
    pub taken_at: DateTime<Utc>,
}

impl Snapshot {
    /// A snapshot of `state` at `version`, schema version 1, taken now.
    pub fn new(version: Version, state: impl Into<Bytes>) -> Self {
        Self {
            version,
            schema_version: 1,
            state: state.into(),
            taken_at: Utc::now(),
        }
    }

    /// Sets the schema version.
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.schema_version = schema_version;
        self
    }
}
