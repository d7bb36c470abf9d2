//! Per-actor versions, append expectations and store-wide positions.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The number of events an actor has. The first event is version 1; an actor without events is at
/// [`Version::ZERO`].
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// The version of an actor that has no events.
    pub const ZERO: Version = Version(0);

    /// Wraps a raw count.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Returns the raw count.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after `count` more events.
    ///
    /// # Panics
    ///
    /// Panics if the count overflows `u64`, which no store can reach.
    pub fn advance(self, count: u64) -> Self {
        Self(self.0.checked_add(count).expect("version overflow"))
    }

    /// The version that follows this one.
    pub fn next(self) -> Self {
        self.advance(1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl From<u64> for Version {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

/// The version an append expects the actor to be at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the current version is. Concurrent writers are not detected.
    Any,
    /// The actor must have no events yet (version 0).
    NoEvents,
    /// The actor must be at exactly this version.
    Exact(Version),
}

impl ExpectedVersion {
    /// Returns whether an actor at `actual` satisfies this expectation.
    pub fn matches(self, actual: Version) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoEvents => actual == Version::ZERO,
            ExpectedVersion::Exact(expected) => expected == actual,
        }
    }

    /// The exact version expected, if there is one: `NoEvents` is version 0.
    pub fn exact(self) -> Option<Version> {
        match self {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoEvents => Some(Version::ZERO),
            ExpectedVersion::Exact(v) => Some(v),
        }
    }
}

impl From<Version> for ExpectedVersion {
    /// `Version::ZERO` becomes [`ExpectedVersion::NoEvents`], any other version `Exact`.
    fn from(version: Version) -> Self {
        if version == Version::ZERO {
            ExpectedVersion::NoEvents
        } else {
            ExpectedVersion::Exact(version)
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoEvents => f.write_str("no events"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// A store-wide sequence number. Every stored event has one; positions grow in storage order.
///
/// Positions start at 1. [`Position::START`] (0) means "before the first event", so reading or
/// subscribing after it delivers everything. Positions may have gaps (an aborted PostgreSQL
/// transaction burns its numbers), so consumers compare them and never count them.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(u64);

impl Position {
    /// The position before the first event.
    pub const START: Position = Position(0);

    /// Wraps a raw position.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Returns the raw position.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl From<u64> for Position {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_matching() {
        assert!(ExpectedVersion::Any.matches(Version::new(7)));
        assert!(ExpectedVersion::NoEvents.matches(Version::ZERO));
        assert!(!ExpectedVersion::NoEvents.matches(Version::new(1)));
        assert!(ExpectedVersion::Exact(Version::new(3)).matches(Version::new(3)));
        assert!(!ExpectedVersion::Exact(Version::new(3)).matches(Version::new(4)));
    }

    #[test]
    fn zero_version_means_no_events() {
        assert_eq!(
            ExpectedVersion::from(Version::ZERO),
            ExpectedVersion::NoEvents
        );
        assert_eq!(
            ExpectedVersion::from(Version::new(2)),
            ExpectedVersion::Exact(Version::new(2))
        );
        assert_eq!(ExpectedVersion::NoEvents.exact(), Some(Version::ZERO));
        assert_eq!(ExpectedVersion::Any.exact(), None);
    }
}
