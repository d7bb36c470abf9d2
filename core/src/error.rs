//! The error every store returns, and the small set of kinds callers branch on.

use std::error::Error as StdError;

use crate::id::{ActorRef, IdError};
use crate::version::{ExpectedVersion, Version};

/// A boxed error from a backend, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The kind of a [`StoreError`], for callers that branch on what went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The actor's version did not match the append's expectation.
    Conflict,
    /// An actor kind or id was rejected.
    InvalidId,
    /// A request was malformed, such as an empty append or a snapshot ahead of the events.
    InvalidInput,
    /// A payload or an append was over the store's size limit.
    PayloadTooLarge,
    /// The store could not be reached in time. Retrying later may succeed.
    Unavailable,
    /// Data read back from the store could not be decoded.
    Corrupt,
    /// Any other failure of the backend.
    Backend,
}

/// A failure of an [`EventStore`](crate::EventStore) or [`Snapshotter`](crate::Snapshotter).
///
/// Messages name the actor and the value at fault; a backend's own error travels as the
/// [source](std::error::Error::source) and is not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The append expected another version than the actor has. Nothing was stored.
    #[error("conflict on {actor}: expected {expected}, actual version is {actual}")]
    Conflict {
        /// The actor appended to.
        actor: ActorRef,
        /// The append's expectation.
        expected: ExpectedVersion,
        /// The actor's version when the append was checked.
        actual: Version,
    },

    /// An actor kind or id is not valid. Nothing was stored.
    #[error(transparent)]
    InvalidId(#[from] IdError),

    /// A request is malformed. Nothing was stored.
    #[error("invalid request for {actor}: {reason}")]
    InvalidInput {
        /// The actor the request was about.
        actor: ActorRef,
        /// The problem with it.
        reason: String,
    },

    /// An event payload, a snapshot or a whole append is larger than the store accepts. Nothing
    /// was stored.
    #[error("{what} for {actor} is {size} bytes, over the store's limit of {limit} bytes")]
    PayloadTooLarge {
        /// The actor the data was for.
        actor: ActorRef,
        /// The oversized item, such as `event payload` or `append`.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// The store could not be reached or did not reply in time. The operation may or may not
    /// have taken effect; retrying with the same expectation is safe.
    #[error("store unavailable while {operation}")]
    Unavailable {
        /// The operation under way, naming the actor where there is one.
        operation: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// Stored data could not be decoded.
    #[error("corrupt data at {location}: {reason}")]
    Corrupt {
        /// The place of the data, such as a key or an actor and version.
        location: String,
        /// The problem with it.
        reason: String,
        /// The decoder's error, if there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// Any other backend failure.
    #[error("{backend} store failed while {operation}")]
    Backend {
        /// The backend's name, such as `sled`.
        backend: &'static str,
        /// The operation under way, naming the actor where there is one.
        operation: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Returns the kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Conflict { .. } => ErrorKind::Conflict,
            StoreError::InvalidId(_) => ErrorKind::InvalidId,
            StoreError::InvalidInput { .. } => ErrorKind::InvalidInput,
            StoreError::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            StoreError::Unavailable { .. } => ErrorKind::Unavailable,
            StoreError::Corrupt { .. } => ErrorKind::Corrupt,
            StoreError::Backend { .. } => ErrorKind::Backend,
        }
    }

    /// Returns whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }

    /// Builds an [`StoreError::Unavailable`] error.
    pub fn unavailable(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            operation: operation.into(),
            source: source.into(),
        }
    }

    /// Builds a [`StoreError::Backend`] error.
    pub fn backend(
        backend: &'static str,
        operation: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        StoreError::Backend {
            backend,
            operation: operation.into(),
            source: source.into(),
        }
    }

    /// Builds a [`StoreError::Corrupt`] error without a source.
    pub fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            location: location.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// Builds a [`StoreError::InvalidInput`] error.
    pub fn invalid_input(actor: &ActorRef, reason: impl Into<String>) -> Self {
        StoreError::InvalidInput {
            actor: actor.clone(),
            reason: reason.into(),
        }
    }
}

/// Displays an error followed by each of its sources, joined with `": "`, the way a command-line
/// program or a test failure prints it.
///
/// Many libraries put their source's message into their own and also return the source, so a
/// source whose message already ends the text printed so far is left out.
///
/// ```
/// use aether_core::{ErrorChain, StoreError};
///
/// let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
/// let err = StoreError::unavailable("appending to invoice/1", io);
/// assert_eq!(
///     ErrorChain(&err).to_string(),
///     "store unavailable while appending to invoice/1: timed out"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn StdError + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !last.ends_with(&text) {
                write!(f, ": {text}")?;
                last = text;
            }
            source = cause.source();
        }
        Ok(())
    }
}

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_message_names_actor_and_versions() {
        let err = StoreError::Conflict {
            actor: ActorRef::parse("invoice", "536365").unwrap(),
            expected: ExpectedVersion::Exact(Version::new(3)),
            actual: Version::new(5),
        };
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(
            err.to_string(),
            "conflict on invoice/536365: expected version 3, actual version is 5"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("error communicating with database: {0}")]
    struct Repeating(#[source] std::io::Error);

    #[test]
    fn error_chain_leaves_out_repeated_sources() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = StoreError::unavailable("connecting", Repeating(io));
        assert_eq!(
            ErrorChain(&err).to_string(),
            "store unavailable while connecting: error communicating with database: refused"
        );
    }

    #[test]
    fn unavailable_is_retryable_and_keeps_source() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let err = StoreError::unavailable("appending to invoice/1", io);
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            "store unavailable while appending to invoice/1"
        );
        assert_eq!(err.source().unwrap().to_string(), "timed out");
    }
}
