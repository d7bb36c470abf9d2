//! Untyped messages: a command given as a kind, an id, a command name and encoded bytes, as the
//! cluster wire and tools carry it.

use bytes::Bytes;

use crate::error::AskError;

/// A command in encoded form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntypedMessage {
    /// The actor kind, such as `invoice`.
    pub kind: String,
    /// The actor id.
    pub id: String,
    /// The command name, such as `AddLine`.
    pub command: String,
    /// The command encoded with the runtime's [`PayloadCodec`](crate::PayloadCodec): the whole
    /// command value, as `serde` serializes the command type.
    pub payload: Bytes,
    /// The command id for idempotency; a new one is generated when `None`.
    pub command_id: Option<String>,
}

/// A domain rejection in encoded form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    /// The rejection's `Display` text.
    pub message: String,
    /// The rejection encoded with the runtime's codec.
    pub payload: Bytes,
}

/// The outcome of an untyped command: the encoded reply, or why there is none.
pub type UntypedReply = Result<Bytes, AskError<Rejection>>;
