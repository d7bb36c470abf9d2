//! Actor identity: a kind name plus an id within that kind.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum length of an [`ActorKind`] in bytes.
pub const MAX_KIND_LEN: usize = 64;

/// Maximum length of an [`ActorId`] in bytes of UTF-8.
pub const MAX_ID_LEN: usize = 1024;

/// Reasons an actor kind or id is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The kind is empty.
    #[error("actor kind is empty")]
    EmptyKind,
    /// The kind is longer than [`MAX_KIND_LEN`].
    #[error("actor kind {kind:?} is {len} bytes long, the maximum is {MAX_KIND_LEN}")]
    KindTooLong {
        /// The rejected kind.
        kind: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The kind contains a character outside `[a-z0-9_-]`.
    #[error("actor kind {kind:?} contains {ch:?}; only a-z, 0-9, '_' and '-' are allowed")]
    InvalidKindChar {
        /// The rejected kind.
        kind: String,
        /// The first character that is not allowed.
        ch: char,
    },
    /// The id is empty.
    #[error("actor id is empty")]
    EmptyId,
    /// The id is longer than [`MAX_ID_LEN`].
    #[error("actor id starting with {prefix:?} is {len} bytes long, the maximum is {MAX_ID_LEN}")]
    IdTooLong {
        /// The first 32 characters of the rejected id.
        prefix: String,
        /// Its length in bytes.
        len: usize,
    },
}

/// The name of a kind of actor, such as `invoice` or `customer`. Cheap to clone.
///
/// A kind is 1 to [`MAX_KIND_LEN`] bytes of lowercase ASCII letters, digits, `_` and `-`, so every
/// backend can use it as it is in keys, subjects and table values.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorKind(Arc<str>);

impl ActorKind {
    /// Validates `kind` and wraps it.
    ///
    /// # Errors
    ///
    /// [`IdError::EmptyKind`], [`IdError::KindTooLong`] or [`IdError::InvalidKindChar`].
    pub fn new(kind: impl Into<String>) -> Result<Self, IdError> {
        let kind = kind.into();
        if kind.is_empty() {
            return Err(IdError::EmptyKind);
        }
        if kind.len() > MAX_KIND_LEN {
            let len = kind.len();
            return Err(IdError::KindTooLong { kind, len });
        }
        if let Some(ch) = kind
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
        {
            return Err(IdError::InvalidKindChar { kind, ch });
        }
        Ok(Self(kind.into()))
    }

    /// Returns the kind as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of one actor within its kind. Cheap to clone.
///
/// Any non-empty UTF-8 string up to [`MAX_ID_LEN`] bytes is valid, including dots, `*`, `>`,
/// spaces, slashes, control characters and non-ASCII text. A backend that cannot store such
/// characters as they are encodes the id; callers always see the original string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(Arc<str>);

impl ActorId {
    /// Validates `id` and wraps it.
    ///
    /// # Errors
    ///
    /// [`IdError::EmptyId`] or [`IdError::IdTooLong`].
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(IdError::EmptyId);
        }
        if id.len() > MAX_ID_LEN {
            let len = id.len();
            let prefix = id.chars().take(32).collect();
            return Err(IdError::IdTooLong { prefix, len });
        }
        Ok(Self(id.into()))
    }

    /// Returns the id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The full address of an actor: its kind and its id.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ActorRef {
    /// The actor's kind.
    pub kind: ActorKind,
    /// The actor's id within the kind.
    pub id: ActorId,
}

impl ActorRef {
    /// Builds a reference from an already validated kind and id.
    pub fn new(kind: ActorKind, id: ActorId) -> Self {
        Self { kind, id }
    }

    /// Validates both parts and builds a reference.
    ///
    /// # Errors
    ///
    /// Any [`IdError`] of [`ActorKind::new`] or [`ActorId::new`].
    pub fn parse(kind: impl Into<String>, id: impl Into<String>) -> Result<Self, IdError> {
        Ok(Self {
            kind: ActorKind::new(kind)?,
            id: ActorId::new(id)?,
        })
    }
}

impl fmt::Display for ActorRef {
    /// Formats as `kind/id`, with the id in debug quoting when it contains characters that would
    /// make the output ambiguous in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = self
            .id
            .0
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '"');
        if plain {
            write!(f, "{}/{}", self.kind, self.id.0)
        } else {
            write!(f, "{}/{:?}", self.kind, self.id.0)
        }
    }
}

impl fmt::Debug for ActorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({self})")
    }
}

macro_rules! string_newtype_impls {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = IdError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0.to_string()
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype_impls!(ActorKind);
string_newtype_impls!(ActorId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_accepts_lowercase_names() {
        assert_eq!(ActorKind::new("invoice").unwrap().as_str(), "invoice");
        assert!(ActorKind::new("order-line_2").is_ok());
    }

    #[test]
    fn kind_rejects_bad_names() {
        assert_eq!(ActorKind::new(""), Err(IdError::EmptyKind));
        assert!(matches!(
            ActorKind::new("Invoice"),
            Err(IdError::InvalidKindChar { ch: 'I', .. })
        ));
        assert!(matches!(
            ActorKind::new("a.b"),
            Err(IdError::InvalidKindChar { ch: '.', .. })
        ));
        assert!(matches!(
            ActorKind::new("k".repeat(MAX_KIND_LEN + 1)),
            Err(IdError::KindTooLong { len: 65, .. })
        ));
    }

    #[test]
    fn id_accepts_any_nonempty_text() {
        for id in ["a b", "a.b", "a*", "a>", "x\r\ny", "ü/ß", "\0"] {
            assert_eq!(ActorId::new(id).unwrap().as_str(), id);
        }
        assert!(ActorId::new("x".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn id_rejects_empty_and_too_long() {
        assert_eq!(ActorId::new(""), Err(IdError::EmptyId));
        let err = ActorId::new("y".repeat(MAX_ID_LEN + 1)).unwrap_err();
        assert!(matches!(err, IdError::IdTooLong { len: 1025, .. }));
        assert!(err.to_string().contains("1025"), "{err}");
    }

    #[test]
    fn deserialize_validates() {
        let ok: ActorRef = serde_json::from_str(r#"{"kind":"invoice","id":"536365"}"#).unwrap();
        assert_eq!(ok.to_string(), "invoice/536365");
        let bad = serde_json::from_str::<ActorRef>(r#"{"kind":"invoice","id":""}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn display_quotes_ambiguous_ids() {
        let actor = ActorRef::parse("t", "x\r\ny").unwrap();
        assert_eq!(actor.to_string(), r#"t/"x\r\ny""#);
    }
}
